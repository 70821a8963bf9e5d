"""Input features of the two towers, computed from profiles, histories, the catalogue and the taxonomy.

Item side: a text embedding of every item (``interests.encode``) and its
taxonomy node (domain, topic). User side, one row per user, each group
optional: the profile's text (summary plus domain and topic names) embedded
with the same encoder; the user's weights over the global taxonomy (from the
profile's cited evidence, or from the history when there is no profile); and
L3 features computed exactly from the events (rhythm, rating sentiment,
trend, recency, volume).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..stats import normalise_rating, rhythm
from .data import Histories

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog
    from interests.schema import InterestProfile
    from interests.taxonomy.model import Taxonomy

L3_DIM = 24 + 7 + 6
DAY = 86400.0


def get_text_encoder(spec: str | None) -> Any:
    """The shared encoder of :mod:`interests.encode` (``"hashing"``, ``"smollm2-135m"``, a path)."""
    from interests.encode import get_encoder

    return get_encoder(spec)


def item_texts(item_ids: Sequence[str], catalog: Catalog | None) -> list[str]:
    from interests.encode import item_text
    from interests.events import Item

    out = []
    for iid in item_ids:
        item = catalog.get_item(iid) if catalog is not None else Item(item_id=iid)
        out.append(item_text(item))
    return out


def profile_text(profile: InterestProfile) -> str:
    """Summary plus the names of the profile's domains and topics, heaviest first."""
    parts = [profile.summary]
    for d in sorted(profile.domains, key=lambda d: -d.weight):
        parts.append(d.name + ": " + ", ".join(t.name for t in d.topics))
    return ". ".join(p for p in parts if p)


@dataclass
class ItemNodes:
    """Taxonomy node index of every item (``-1`` when the taxonomy has no opinion)."""

    domain: np.ndarray
    topic: np.ndarray
    domain_ids: list[str]
    topic_ids: list[str]
    topic_domain: np.ndarray  # topic index -> domain index
    labels: dict[str, str] = field(default_factory=dict)  # node id -> the taxonomy's label

    def name(self, node_id: str) -> str:
        """The node's label (its id when the taxonomy gave none)."""
        return self.labels.get(node_id) or node_id

    @classmethod
    def empty(cls, n_items: int) -> ItemNodes:
        z = np.full(n_items, -1, dtype=np.int64)
        return cls(z, z.copy(), [], [], np.zeros(0, dtype=np.int64))

    @classmethod
    def from_taxonomy(cls, taxonomy: Taxonomy, item_ids: Sequence[str], catalog: Catalog | None) -> ItemNodes:
        from interests.events import Item

        items = [catalog.get_item(i) if catalog is not None else Item(item_id=i) for i in item_ids]
        assign = taxonomy.assign_items(items)
        d_index = {d: k for k, d in enumerate(taxonomy.domain_ids)}
        t_index = {t: k for k, t in enumerate(taxonomy.topic_ids)}
        dom = np.array([d_index.get(assign[i].domain_id, -1) if i in assign else -1 for i in item_ids])
        top = np.array([t_index.get(assign[i].topic_id, -1) if i in assign else -1 for i in item_ids])
        return cls(
            dom.astype(np.int64),
            top.astype(np.int64),
            list(taxonomy.domain_ids),
            list(taxonomy.topic_ids),
            np.asarray(taxonomy.topic_domain_index(), dtype=np.int64),
            _labels(taxonomy),
        )

    @property
    def n_domains(self) -> int:
        return len(self.domain_ids)

    @property
    def n_topics(self) -> int:
        return len(self.topic_ids)


def _labels(taxonomy: Taxonomy) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in getattr(taxonomy, "domains", []):
        out[d.id] = getattr(d, "llm_label", None) or d.label
        for t in getattr(d, "topics", []):
            out[t.id] = t.label
    return out


def l3_features(
    items: np.ndarray,
    times: np.ndarray,
    ratings: np.ndarray,
    scale: tuple[float, float] | None,
    ref_time: float | None,
) -> np.ndarray:
    """Rhythm (24 hour + 7 weekday shares), rating sentiment, trend, recency and volume."""
    out = np.zeros(L3_DIM, dtype=np.float32)
    t = times[~np.isnan(times)]
    if len(t):
        out[:24], out[24:31] = rhythm(t)
        if ref_time is not None:
            out[31] = math.log1p(max(0.0, ref_time - t.max()) / DAY) / 10.0
        out[32] = math.log1p((t.max() - t.min()) / DAY) / 10.0
    r = ratings[~np.isnan(ratings)]
    if len(r) and scale is not None and scale[1] > scale[0]:
        norm = normalise_rating(r, scale)
        out[33] = float(norm.mean())
        half = len(norm) // 2
        out[34] = float(norm[half:].mean() - norm[:half].mean()) if half else 0.0
    out[35] = math.log1p(len(items)) / 5.0
    out[36] = len(np.unique(items)) / max(len(items), 1)
    return out


@dataclass
class UserFeatures:
    """Per-user input groups aligned with a :class:`Histories` (zeros where a group is absent)."""

    profile: np.ndarray  # [n, text_dim]
    taxonomy: np.ndarray  # [n, D + T]
    l3: np.ndarray  # [n, L3_DIM]
    has_profile: np.ndarray  # [n] bool
    l3_cold: np.ndarray | None = None  # [n, L3_DIM] from each user's last few events (training only)

    #: the groups a saved model keeps (``l3_cold`` is a training-time view)
    SAVED = ("profile", "taxonomy", "l3", "has_profile")

    def take(self, rows: Sequence[int]) -> UserFeatures:
        """The rows ``rows`` of every group (the training-only ``l3_cold`` is dropped)."""
        r = np.asarray(rows, dtype=np.int64)
        return UserFeatures(**{name: getattr(self, name)[r] for name in self.SAVED})

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The saved groups as named arrays (booleans as uint8, what safetensors stores)."""
        return {
            prefix + n: np.asarray(getattr(self, n), dtype=np.uint8 if n == "has_profile" else None)
            for n in self.SAVED
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> UserFeatures:
        """Inverse of :meth:`to_arrays`."""
        got = {n: arrays[prefix + n] for n in cls.SAVED}
        got["has_profile"] = got["has_profile"].astype(bool)
        return cls(**got)


def user_features(
    query: Histories,
    *,
    profiles: Mapping[str, InterestProfile] | None,
    encoder: Any | None,
    nodes: ItemNodes,
    scale: tuple[float, float] | None,
    ref_time: float | None,
    texts: Mapping[str, str] | None = None,
    cold_n: int | None = None,
) -> UserFeatures:
    """Feature rows for ``query`` users; ``texts`` are free descriptions standing in for a profile.

    With ``cold_n``, ``l3_cold`` also holds the L3 features of each user's last
    ``cold_n`` events: training uses them when it cuts a history that short, so
    the model sees the same kind of L3 row it gets for a cold user.
    """
    n = query.n_users
    dim = encoder.dim if encoder is not None else 0
    prof = np.zeros((n, dim), dtype=np.float32)
    tax = np.zeros((n, nodes.n_domains + nodes.n_topics), dtype=np.float32)
    l3 = np.zeros((n, L3_DIM), dtype=np.float32)
    has = np.zeros(n, dtype=bool)
    l3c = np.zeros((n, L3_DIM), dtype=np.float32)
    rows, docs = [], []
    for r, uid in enumerate(query.user_ids):
        p = (profiles or {}).get(uid)
        text = (texts or {}).get(uid)
        if p is not None or text:
            rows.append(r)
            docs.append(profile_text(p) if p is not None else str(text))
            has[r] = True
        l3[r] = l3_features(query.items[r], query.times[r], query.ratings[r], scale, ref_time)
        if cold_n:
            s = slice(max(0, len(query.items[r]) - cold_n), None)
            l3c[r] = l3_features(query.items[r][s], query.times[r][s], query.ratings[r][s], scale, ref_time)
        if nodes.n_topics:
            cited = [
                query.item_index[i] for i in (p.item_ids() if p is not None else ()) if i in query.item_index
            ]
            idx = np.array(cited if cited else query.items[r], dtype=np.int64)
            d, t = nodes.domain[idx], nodes.topic[idx]
            if (t >= 0).any():
                tax[r, : nodes.n_domains] = np.bincount(d[d >= 0], minlength=nodes.n_domains) / len(idx)
                tax[r, nodes.n_domains :] = np.bincount(t[t >= 0], minlength=nodes.n_topics) / len(idx)
    if rows and encoder is not None:
        prof[rows] = encoder.encode(docs)
    return UserFeatures(prof, tax, l3, has, l3c if cold_n else None)


__all__ = [
    "L3_DIM",
    "ItemNodes",
    "UserFeatures",
    "get_text_encoder",
    "item_texts",
    "l3_features",
    "profile_text",
    "user_features",
]
