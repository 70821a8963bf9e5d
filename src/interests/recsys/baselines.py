"""The baselines of docs/benchmarks.md: most popular, recency-popularity, ItemKNN (cosine), EASE (Steck 2019).

SASRec, the trained sequential baseline, is in :mod:`interests.recsys.sasrec`.

All follow one small protocol (:class:`Scorer`): ``fit(histories)`` on
known events, then ``score(query)`` gives a dense ``users x items`` score
matrix from each query user's own history (so they also score users they
were not fit on, e.g. the cold-start cut). :func:`rank` turns scores into
top-k lists with each user's seen items excluded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .data import Histories
from .metrics import ndcg_at_k, top_k


class Scorer(Protocol):
    name: str

    def fit(self, data: Histories) -> Scorer: ...

    def score(self, query: Histories) -> np.ndarray: ...


def rank(scores: np.ndarray, query: Histories, k: int) -> np.ndarray:
    """Top-``k`` item indices per row with the row user's own items excluded."""
    s = scores.astype(np.float32, copy=True)
    for r, items in enumerate(query.items):
        s[r, items] = -np.inf
    return top_k(s, k)


def user_ndcg(scores: np.ndarray, query: Histories, targets: Sequence[np.ndarray], k: int = 20) -> np.ndarray:
    """Per query user: NDCG@k of ``scores`` (own items excluded) against ``targets``."""
    ranked = rank(scores, query, k)
    return np.array([ndcg_at_k(r, t, k) for r, t in zip(ranked, targets, strict=True)], dtype=np.float64)


def mean_ndcg(scores: np.ndarray, query: Histories, targets: Sequence[np.ndarray], k: int = 20) -> float:
    """Mean NDCG@k over query users (0 when there are none)."""
    return float(user_ndcg(scores, query, targets, k).mean()) if len(targets) else 0.0


class MostPopular:
    """Items ranked by how many users interacted with them."""

    name = "popular"

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None

    def fit(self, data: Histories) -> MostPopular:
        x = data.matrix()
        self.counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float32)
        return self

    def score(self, query: Histories) -> np.ndarray:
        assert self.counts is not None, "fit first"
        return np.tile(self.counts, (query.n_users, 1))


class RecentPopular:
    """Popularity as of each query user's own time, every event weighted ``2 ** (-age / half_life)``.

    ``score(u, i) = sum over fit events e of item i with t_e <= t_u of 2 ** (-(t_u - t_e) / h)``,
    where ``t_u`` is the time of the query user's last known event and ``h`` is ``half_life_days``
    (``inf``: every earlier event counts 1, popularity up to the user's time). Users' test periods
    lie years apart on MovieLens, so "recent" is measured from each user's own clock, and events
    after it (other users' future) are not counted. A user or event without a time falls back to
    the latest time in the fit data / weight at that time. Ties of equal score keep index order.
    """

    name = "recent-popular"

    def __init__(self, half_life_days: float = 30.0) -> None:
        self.half_life_days = half_life_days
        self.times: np.ndarray | None = None  # fit events, sorted by time
        self.items: np.ndarray | None = None
        self.n_items = 0
        self.t_max = 0.0

    def fit(self, data: Histories) -> RecentPopular:
        items = np.concatenate(data.items) if data.items else np.zeros(0, dtype=np.int64)
        times = np.concatenate(data.times).astype(np.float64) if data.items else np.zeros(0)
        known = times[~np.isnan(times)]
        self.t_max = float(known.max()) if len(known) else 0.0
        times = np.where(np.isnan(times), self.t_max, times)
        order = np.argsort(times, kind="stable")
        self.times, self.items, self.n_items = times[order], items[order], data.n_items
        return self

    def score(self, query: Histories) -> np.ndarray:
        assert self.times is not None and self.items is not None, "fit first"
        h = self.half_life_days * 86400.0
        t_user = np.array(
            [
                float(t[~np.isnan(t)].max()) if len(t) and not np.isnan(t).all() else self.t_max
                for t in query.times
            ]
        )
        out = np.zeros((query.n_users, self.n_items), dtype=np.float32)
        # sweep users in time order, carrying decayed counts forward: O(users x items + events)
        counts = np.zeros(self.n_items, dtype=np.float64)
        t_now, pos = -np.inf, 0
        for r in np.argsort(t_user, kind="stable"):
            t = t_user[r]
            if np.isfinite(t_now) and t > t_now:
                counts *= 2.0 ** (-(t - t_now) / h)
            end = int(np.searchsorted(self.times, t, side="right"))
            if end > pos:
                np.add.at(counts, self.items[pos:end], 2.0 ** (-(t - self.times[pos:end]) / h))
                pos = end
            t_now = t
            out[r] = counts
        return out


class ItemKNN:
    """Item-based k-nearest neighbours: cosine similarity, ``k`` neighbours kept per item."""

    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0) -> None:
        self.k, self.shrink = k, shrink
        self.sim: object | None = None

    def fit(self, data: Histories) -> ItemKNN:
        import scipy.sparse as sp

        x = data.matrix().tocsc()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        sim = (x.T @ x).toarray().astype(np.float32)
        sim /= np.outer(norms, norms) + self.shrink + 1e-9
        np.fill_diagonal(sim, 0.0)
        k = min(self.k, sim.shape[0] - 1)
        if k < sim.shape[0] - 1:
            # keep the k largest similarities of each item (column j: neighbours of j)
            idx = np.argpartition(-sim, k - 1, axis=0)[:k, :]
            cols = np.broadcast_to(np.arange(sim.shape[1]), idx.shape)
            keep = sp.csc_matrix((sim[idx, cols].ravel(), (idx.ravel(), cols.ravel())), shape=sim.shape)
            self.sim = keep.tocsr()
        else:
            self.sim = sp.csr_matrix(sim)
        return self

    def score(self, query: Histories) -> np.ndarray:
        assert self.sim is not None, "fit first"
        return np.asarray((query.matrix() @ self.sim).todense(), dtype=np.float32)


class EASE:
    """Embarrassingly shallow autoencoder: closed-form item-item weights with zero diagonal."""

    name = "ease"

    def __init__(self, lam: float = 100.0) -> None:
        self.lam = lam
        self.B: np.ndarray | None = None

    def fit(self, data: Histories) -> EASE:
        import scipy.linalg as sl

        x = data.matrix()
        g = (x.T @ x).toarray().astype(np.float32)
        g[np.diag_indices_from(g)] += self.lam
        p = sl.inv(g, overwrite_a=True, check_finite=False)
        b = p / (-np.diag(p))
        np.fill_diagonal(b, 0.0)
        self.B = b.astype(np.float32, copy=False)
        return self

    def score(self, query: Histories) -> np.ndarray:
        assert self.B is not None, "fit first"
        return np.asarray(query.matrix() @ self.B, dtype=np.float32)


__all__ = ["EASE", "ItemKNN", "MostPopular", "RecentPopular", "Scorer", "mean_ndcg", "rank", "user_ndcg"]
