"""Indexed interaction histories: the numeric form every recommender here works on.

:class:`Histories` holds, per user, the item indices, timestamps and ratings
of their events in time order (ties keep file order), over a fixed item
vocabulary. It is built from the product's ingested logs
(``dict[user_id, UserHistory]``) and sliced by :mod:`interests.recsys.split`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

    from interests.events import Catalog, UserHistory


@dataclass
class Histories:
    """Per-user event sequences over an item vocabulary ``item_ids``.

    ``items[u]`` are indices into ``item_ids`` in time order; ``times[u]`` epoch
    seconds (NaN when unknown); ``ratings[u]`` the explicit rating (NaN when none).
    """

    user_ids: list[str]
    item_ids: list[str]
    items: list[np.ndarray]
    times: list[np.ndarray]
    ratings: list[np.ndarray]
    item_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.item_index:
            self.item_index = {i: k for k, i in enumerate(self.item_ids)}

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self) -> dict[str, int]:
        return {u: k for k, u in enumerate(self.user_ids)}

    def matrix(self) -> sp.csr_matrix:
        """Binary user x item matrix (an item seen twice counts once)."""
        import scipy.sparse as sp

        rows = np.repeat(np.arange(self.n_users), [len(x) for x in self.items])
        cols = np.concatenate(self.items) if self.items else np.zeros(0, dtype=np.int64)
        m = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(self.n_users, self.n_items)
        )
        m.data[:] = 1.0
        return m

    def take(self, users: Sequence[int], slices: Sequence[slice] | None = None) -> Histories:
        """A sub-population (and optionally a slice of each user's events)."""
        sl = slices or [slice(None)] * len(users)
        return Histories(
            [self.user_ids[u] for u in users],
            self.item_ids,
            [self.items[u][s] for u, s in zip(users, sl, strict=True)],
            [self.times[u][s] for u, s in zip(users, sl, strict=True)],
            [self.ratings[u][s] for u, s in zip(users, sl, strict=True)],
            self.item_index,
        )

    def with_users(self, user_ids: Sequence[str], item_lists: Sequence[Sequence[str]]) -> Histories:
        """Histories for ad-hoc users given as item id lists (unknown ids dropped)."""
        items = [
            np.array([self.item_index[i] for i in lst if i in self.item_index], dtype=np.int64)
            for lst in item_lists
        ]
        return Histories(
            list(user_ids),
            self.item_ids,
            items,
            [np.full(len(x), np.nan) for x in items],
            [np.full(len(x), np.nan) for x in items],
            self.item_index,
        )


def from_user_histories(
    histories: Mapping[str, UserHistory],
    item_ids: Iterable[str] | None = None,
) -> Histories:
    """Index ingested histories. The vocabulary is ``item_ids`` (default: every logged item)."""
    if item_ids is None:
        vocab: dict[str, None] = {}
        for h in histories.values():
            for e in h.events:
                vocab.setdefault(e.item_id, None)
        ids = list(vocab)
    else:
        ids = list(dict.fromkeys(item_ids))
    index = {i: k for k, i in enumerate(ids)}
    users, items, times, ratings = [], [], [], []
    for uid, h in histories.items():
        evs = [e for e in h.events if e.item_id in index]
        users.append(uid)
        items.append(np.array([index[e.item_id] for e in evs], dtype=np.int64))
        times.append(np.array([np.nan if e.ts is None else e.ts for e in evs], dtype=np.float64))
        ratings.append(np.array([np.nan if e.rating is None else e.rating for e in evs], dtype=np.float64))
    return Histories(users, ids, items, times, ratings, index)


def item_domains(
    item_ids: Sequence[str], catalog: Catalog | None, assignments: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Top-level domain label index per item: taxonomy L1 when given, else the first category.

    ``assignments`` maps item ids to :class:`interests.taxonomy.ItemAssignment`
    (or ``(domain_id, topic_id, prob)`` tuples).

    Items with neither get their own singleton label, so they never look alike.
    """
    labels: dict[str, int] = {}
    out = np.zeros(len(item_ids), dtype=np.int64)
    for k, iid in enumerate(item_ids):
        name: str | None = None
        if assignments and iid in assignments:
            a = assignments[iid]
            name = f"tax:{getattr(a, 'domain_id', None) or a[0]}"
        elif catalog is not None and iid in catalog and catalog[iid].categories:
            name = f"cat:{catalog[iid].categories[0]}"
        key = name if name is not None else f"item:{iid}"
        out[k] = labels.setdefault(key, len(labels))
    return out


__all__ = ["Histories", "from_user_histories", "item_domains"]
