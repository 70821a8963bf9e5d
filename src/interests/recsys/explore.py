"""Exploration: slots for domains a user has not touched, from how users move between domains.

**Domains** are the taxonomy's L1 domains when the model has a taxonomy,
else each item's first catalogue category (the model's ``domains``).

**Transitions** (:class:`Transitions`, computed at fit time from the training
histories and saved with the model): walking each user's events in time
order, every time the user enters a domain for the first time, one unit of
mass goes from the domains already touched (split evenly) to the new one::

    T[a, b] += 1 / |touched|        for every a touched before b's first event

so ``P(b | a) = (T[a, b] + alpha q_b) / (sum_b' T[a, b'] + alpha)`` is how
often users who know ``a`` next open ``b`` (``q`` the share of first
entries per domain, ``alpha`` = 1 smoothing towards it).

**A user's next domain**: ``p(b) = sum_a w_a P(b | a)`` over the domains the
user has not touched, where ``w`` is the user's domain mix: the share of the
user's events in each domain, averaged with the profile's weights over
taxonomy domains when the user has a profile. Without a usable history (or
a model saved before transitions were kept and without histories to rebuild
them) ``p`` is the popularity of the unseen domains (users who touched them).

**The bandit** (:class:`DomainBandit`, kept by ``interests api``): a Beta
posterior per user x domain with the prior ``Beta(s p(b), s (1 - p(b)))``
(``s`` = 20 pseudo-observations; ``p`` renormalised over the candidates).
Each time an explore slot shows domain ``b`` it counts one trial; an event
posted for an item of ``b`` by that user turns the trial into a success.
Explore slots are then ordered by a Thompson sample from each posterior, so
a domain the user keeps ignoring loses its slot to the next candidate.
Offline (CLI, SDK without a bandit) the order is the prior mean: ``p(b)``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

PRIOR_STRENGTH = 20.0
SMOOTHING = 1.0


@dataclass
class Transitions:
    """First-entry transition mass between domains, and how many users touched each one."""

    counts: np.ndarray  # [D, D] float32: mass from touched a to newly entered b
    entries: np.ndarray  # [D] float32: first entries into b after some other domain
    users: np.ndarray  # [D] float32: users who touched b at all

    @property
    def n_domains(self) -> int:
        return len(self.users)

    @classmethod
    def fit(cls, item_lists: Any, item_domain: np.ndarray, n_domains: int) -> Transitions:
        """From per-user item index sequences in time order (``Histories.items``)."""
        counts = np.zeros((n_domains, n_domains), dtype=np.float64)
        entries = np.zeros(n_domains, dtype=np.float64)
        users = np.zeros(n_domains, dtype=np.float64)
        for items in item_lists:
            doms = item_domain[np.asarray(items, dtype=np.int64)] if len(items) else np.zeros(0, np.int64)
            doms = doms[doms >= 0]
            if not len(doms):
                continue
            _, first = np.unique(doms, return_index=True)
            order = doms[np.sort(first)]  # domains in the order the user entered them
            users[order] += 1
            for n in range(1, len(order)):
                counts[order[:n], order[n]] += 1.0 / n
                entries[order[n]] += 1
        return cls(counts.astype(np.float32), entries.astype(np.float32), users.astype(np.float32))

    def to_arrays(self, prefix: str = "explore.") -> dict[str, np.ndarray]:
        return {
            prefix + "counts": self.counts,
            prefix + "entries": self.entries,
            prefix + "users": self.users,
        }

    @classmethod
    def from_arrays(cls, t: Any, prefix: str = "explore.") -> Transitions | None:
        if prefix + "counts" not in t:
            return None
        return cls(t[prefix + "counts"], t[prefix + "entries"], t[prefix + "users"])

    def next_domain(self, weights: np.ndarray, touched: np.ndarray, alpha: float = SMOOTHING) -> np.ndarray:
        """``p(b)`` over untouched domains (0 on touched ones), summing to 1 when any is left."""
        D = self.n_domains
        q = self.entries + 1e-3
        q = q / q.sum()
        w = np.asarray(weights, dtype=np.float64)
        if w.sum() > 0 and self.counts.size:
            w = w / w.sum()
            rows = self.counts.astype(np.float64)
            cond = (rows + alpha * q[None, :]) / (rows.sum(axis=1, keepdims=True) + alpha)
            p = w @ cond
        else:
            p = popularity(self.users) if D else np.zeros(0)
        p = np.where(touched, 0.0, p)
        total = p.sum()
        return p / total if total > 0 else p


def popularity(users: np.ndarray) -> np.ndarray:
    """Share of users who touched each domain (the fallback and the offline baseline)."""
    u = np.asarray(users, dtype=np.float64) + 1e-6
    return u / u.sum()


def user_mix(items: np.ndarray, item_domain: np.ndarray, n_domains: int) -> np.ndarray:
    """Share of the user's events in each domain."""
    doms = item_domain[np.asarray(items, dtype=np.int64)] if len(items) else np.zeros(0, np.int64)
    doms = doms[doms >= 0]
    w = np.bincount(doms, minlength=n_domains).astype(np.float64)
    return w / w.sum() if w.sum() > 0 else w


class DomainBandit:
    """Thompson sampling over domains, one Beta posterior per user x domain (bounded LRU state).

    Only what happened since the service started is kept: ``shown`` and
    ``clicked`` counts per (user, domain) that an explore slot offered; the
    prior comes from :meth:`Transitions.next_domain` at each request.
    """

    def __init__(self, max_entries: int = 100_000, strength: float = PRIOR_STRENGTH, seed: int | None = None):
        self.max_entries, self.strength = max_entries, strength
        self._d: OrderedDict[tuple[str, int], list[int]] = OrderedDict()
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self._d)

    def forget(self, user: str) -> int:
        """Drop every count of ``user`` (``DELETE /users/{id}``); returns how many entries went."""
        with self._lock:
            keys = [k for k in self._d if k[0] == user]
            for k in keys:
                del self._d[k]
            return len(keys)

    def counts(self, user: str, domain: int) -> tuple[int, int]:
        """``(shown, clicked)`` of ``user`` x ``domain``."""
        with self._lock:
            s = self._d.get((user, domain))
            return (s[0], s[1]) if s else (0, 0)

    def shown(self, user: str, domains: list[int]) -> None:
        with self._lock:
            for d in domains:
                entry = self._d.setdefault((user, int(d)), [0, 0])
                entry[0] += 1
                self._d.move_to_end((user, int(d)))
            while len(self._d) > self.max_entries:
                self._d.popitem(last=False)

    def clicked(self, user: str, domain: int) -> bool:
        """An event of ``user`` in ``domain``: a success when an explore slot showed it and is unanswered."""
        with self._lock:
            entry = self._d.get((user, int(domain)))
            if entry is None or entry[1] >= entry[0]:
                return False
            entry[1] += 1
            return True

    def posterior(self, user: str, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)`` of every domain's Beta posterior for ``user`` (prior mean ``prior``)."""
        m = np.clip(np.asarray(prior, dtype=np.float64), 1e-4, 1 - 1e-4)
        a, b = self.strength * m, self.strength * (1 - m)
        with self._lock:
            for d in range(len(m)):
                s = self._d.get((user, d))
                if s:
                    a[d] += s[1]
                    b[d] += max(s[0] - s[1], 0)
        return a, b

    def order(self, user: str, prior: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """``candidates`` ordered by a Thompson sample of their posteriors, best first."""
        if not len(candidates):
            return candidates
        a, b = self.posterior(user, prior)
        with self._lock:
            draw = self._rng.beta(a[candidates], b[candidates])
        return candidates[np.argsort(-draw, kind="stable")]


def explore_order(
    transitions: Transitions | None,
    item_domain: np.ndarray,
    n_domains: int,
    user_items: np.ndarray,
    *,
    profile_weights: np.ndarray | None = None,
    blocked: np.ndarray | None = None,
    bandit: DomainBandit | None = None,
    user: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Untouched domains for one user, best first, and ``p(b)`` over all domains.

    ``blocked``: domains never to offer (avoided, or with no item left).
    """
    touched = np.zeros(n_domains, dtype=bool)
    doms = item_domain[np.asarray(user_items, dtype=np.int64)] if len(user_items) else np.zeros(0, np.int64)
    touched[doms[doms >= 0]] = True
    w = user_mix(user_items, item_domain, n_domains)
    if profile_weights is not None and profile_weights.sum() > 0:
        pw = np.clip(np.asarray(profile_weights, dtype=np.float64), 0, None)
        if pw.sum() > 0:
            w = 0.5 * w + 0.5 * pw / pw.sum() if w.sum() > 0 else pw / pw.sum()
    if transitions is not None and transitions.n_domains == n_domains:
        p = transitions.next_domain(w, touched)
    else:
        users = np.bincount(item_domain[item_domain >= 0], minlength=n_domains).astype(np.float64)
        p = np.where(touched, 0.0, popularity(users))
        p = p / p.sum() if p.sum() > 0 else p
    cand_mask = ~touched
    if blocked is not None:
        cand_mask &= ~blocked
    cand = np.flatnonzero(cand_mask)
    if bandit is not None and user is not None:
        return bandit.order(user, p, cand), p
    return cand[np.argsort(-p[cand], kind="stable")], p


__all__ = [
    "PRIOR_STRENGTH",
    "DomainBandit",
    "Transitions",
    "explore_order",
    "popularity",
    "user_mix",
]
