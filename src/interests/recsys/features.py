"""Input features of the two towers, computed from profiles, histories, the catalogue and the taxonomy.

Item side: a text embedding of every item (``interests.encode``) and its
taxonomy node (domain, topic). User side, one row per user, each group
optional: the profile's text (summary plus domain and topic names) embedded
with the same encoder; the user's weights over the global taxonomy (from the
profile's cited evidence, or from the history when there is no profile); and
L3 features computed exactly from the events (rhythm, rating sentiment,
trend, recency, volume).

Each user group is a :class:`FeatureGroup` in :data:`USER_GROUPS`, the one
place that lists them: the network, training, explanations and saving read
that list. Adding a user feature is one subclass appended there.
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

    from .model import TwoTowerConfig

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
class FeatureInputs:
    """What the user groups are computed from, for the users of ``query``."""

    query: Histories
    nodes: ItemNodes
    profiles: Mapping[str, InterestProfile] = field(default_factory=dict)
    texts: Mapping[str, str] = field(default_factory=dict)  # free descriptions standing in for a profile
    encoder: Any | None = None  # the text encoder; None: no profile text is encoded
    text_basis: np.ndarray | None = None  # encoder space -> the model's text space (None: no text)
    scale: tuple[float, float] | None = None
    ref_time: float | None = None

    def profile_docs(self) -> tuple[list[int], list[str]]:
        """The rows with a profile or text, and each one's text to embed."""
        rows, docs = [], []
        for r, uid in enumerate(self.query.user_ids):
            p, text = self.profiles.get(uid), self.texts.get(uid)
            if p is not None or text:
                rows.append(r)
                docs.append(profile_text(p) if p is not None else str(text))
        return rows, docs


class FeatureGroup:
    """One input group of the user tower, defined in one place.

    A group computes its per-user matrix (:meth:`rows`, one row per user, zeros
    where a user lacks it), owns its projection into the user vector
    (:meth:`module`, kept on the network as ``module_name``), is switched by the
    :class:`~interests.recsys.model.TwoTowerConfig` flag ``switch`` and appears
    under ``name`` in saved models (``feats.<name>``) and explanations
    (``Explanation.groups``). To add one, subclass and append an instance to
    :data:`USER_GROUPS`; the network, training, scoring, explanations and
    saving all go through that list.
    """

    name: str = ""
    switch: str | None = None  # the config flag that turns it on (None: always on)
    module_name: str = ""  # the network attribute holding its projection (named so in saved weights)
    from_profile: bool = False  # derived from the profile: hidden by profile_dropout, a "profile" source
    reads: tuple[str, ...] = ()  # inputs fit must keep for it: "profiles", "taxonomy", "text"

    def on(self, cfg: TwoTowerConfig) -> bool:
        """Switched on in ``cfg``."""
        return self.switch is None or bool(getattr(cfg, self.switch))

    def size(self, cfg: TwoTowerConfig) -> int:
        """Columns of its rows in a model of shapes ``cfg`` (0: nothing to read, e.g. no taxonomy)."""
        raise NotImplementedError

    def enabled(self, cfg: TwoTowerConfig) -> bool:
        """Switched on and with something to read (the network adds its term)."""
        return self.on(cfg) and self.size(cfg) > 0

    def width(self, cfg: TwoTowerConfig) -> int:
        """The projection's input width."""
        return max(self.size(cfg), 1)

    def module(self, cfg: TwoTowerConfig) -> Any:
        """The projection of a ``[B, width]`` batch to ``[B, dim]`` (default: linear, no bias)."""
        from torch import nn

        return nn.Linear(self.width(cfg), cfg.dim, bias=False)

    def rows(self, x: FeatureInputs) -> np.ndarray:
        """The ``[users, width]`` matrix of ``x.query``'s users."""
        raise NotImplementedError

    def cold_rows(self, x: FeatureInputs, n: int) -> np.ndarray | None:
        """The rows from each user's last ``n`` events, for training's cut histories (None: same rows)."""
        return None

    def terms(self, model: Any, module: Any, row: np.ndarray, item_vec: Any) -> list[tuple[str, float]]:
        """Named shares of this group's term ``module(row) . item_vec`` (explanation ``nodes``)."""
        return []


class ProfileText(FeatureGroup):
    """The profile's summary and node names (or a free text), embedded in the item text space."""

    name, switch, module_name, from_profile = "profile", "use_profile", "prof_proj", True
    reads = ("profiles", "text")

    def size(self, cfg: TwoTowerConfig) -> int:
        return cfg.text_dim

    def rows(self, x: FeatureInputs) -> np.ndarray:
        n = x.query.n_users
        if x.text_basis is None:
            return np.zeros((n, 1), dtype=np.float32)
        if x.encoder is None:
            return np.zeros((n, x.text_basis.shape[1]), dtype=np.float32)
        emb = np.zeros((n, x.encoder.dim), dtype=np.float32)
        rows, docs = x.profile_docs()
        if rows:
            emb[rows] = x.encoder.encode(docs)
        p = emb @ x.text_basis
        return (p / (np.linalg.norm(p, axis=1, keepdims=True) + 1e-9)).astype(np.float32)


class TaxonomyWeights(FeatureGroup):
    """The user's shares of global domains and topics, from the profile's cited items (else the history)."""

    name, switch, module_name, from_profile = "taxonomy", "use_taxonomy", "tax_proj", True
    reads = ("profiles", "taxonomy")

    def size(self, cfg: TwoTowerConfig) -> int:
        return cfg.n_domains + cfg.n_topics

    def rows(self, x: FeatureInputs) -> np.ndarray:
        q, nodes = x.query, x.nodes
        out = np.zeros((q.n_users, nodes.n_domains + nodes.n_topics), dtype=np.float32)
        if not nodes.n_topics:
            return out
        for r, uid in enumerate(q.user_ids):
            p = x.profiles.get(uid)
            cited = [q.item_index[i] for i in (p.item_ids() if p is not None else ()) if i in q.item_index]
            idx = np.array(cited if cited else q.items[r], dtype=np.int64)
            d, t = nodes.domain[idx], nodes.topic[idx]
            if (t >= 0).any():
                out[r, : nodes.n_domains] = np.bincount(d[d >= 0], minlength=nodes.n_domains) / len(idx)
                out[r, nodes.n_domains :] = np.bincount(t[t >= 0], minlength=nodes.n_topics) / len(idx)
        return out

    def terms(self, model: Any, module: Any, row: np.ndarray, item_vec: Any) -> list[tuple[str, float]]:
        """One share per global node the user has weight on (labels where the taxonomy has them)."""
        import torch

        nodes = model.nodes
        contrib = (module.weight.T @ item_vec) * torch.tensor(row)
        names = [nodes.name(n) for n in [*nodes.domain_ids, *nodes.topic_ids]]
        return [(names[k], float(c)) for k, c in enumerate(contrib.tolist()) if row[k] != 0]


class L3Group(FeatureGroup):
    """L3 features computed exactly from the events (:func:`l3_features`), through a small MLP."""

    name, switch, module_name = "l3", "use_l3", "l3_mlp"

    def size(self, cfg: TwoTowerConfig) -> int:
        return L3_DIM

    def module(self, cfg: TwoTowerConfig) -> Any:
        from torch import nn

        return nn.Sequential(nn.Linear(L3_DIM, cfg.dim), nn.ReLU(), nn.Linear(cfg.dim, cfg.dim))

    def rows(self, x: FeatureInputs) -> np.ndarray:
        return self._rows(x, None)

    def cold_rows(self, x: FeatureInputs, n: int) -> np.ndarray:
        return self._rows(x, n)

    def _rows(self, x: FeatureInputs, last: int | None) -> np.ndarray:
        q = x.query
        out = np.zeros((q.n_users, L3_DIM), dtype=np.float32)
        for r in range(q.n_users):
            s = slice(max(0, len(q.items[r]) - last), None) if last else slice(None)
            out[r] = l3_features(q.items[r][s], q.times[r][s], q.ratings[r][s], x.scale, x.ref_time)
        return out


#: the user tower's input groups besides the history, in the order their terms are added
USER_GROUPS: list[FeatureGroup] = [ProfileText(), TaxonomyWeights(), L3Group()]


def feature_group(name: str) -> FeatureGroup:
    """The registered group called ``name``."""
    for g in USER_GROUPS:
        if g.name == name:
            return g
    from interests.errors import ConfigError

    raise ConfigError(
        f"no user feature group {name!r} is registered (interests.recsys.features.USER_GROUPS has "
        f"{', '.join(g.name for g in USER_GROUPS)}); register it before loading or building this model"
    )


@dataclass
class UserFeatures:
    """Per-user rows of every user group, aligned with a :class:`Histories` (zeros where absent)."""

    groups: dict[str, np.ndarray]  # group name -> [n, width]
    has_profile: np.ndarray  # [n] bool
    cold: dict[str, np.ndarray] = field(default_factory=dict)  # rows from each user's last few events

    def __getitem__(self, name: str) -> np.ndarray:
        return self.groups[name]

    def take(self, rows: Sequence[int]) -> UserFeatures:
        """The rows ``rows`` of every group (the training-only ``cold`` rows are dropped)."""
        r = np.asarray(rows, dtype=np.int64)
        return UserFeatures({n: x[r] for n, x in self.groups.items()}, self.has_profile[r])

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The groups and ``has_profile`` as named arrays (booleans as uint8, what safetensors stores)."""
        out = {prefix + n: np.asarray(x) for n, x in self.groups.items()}
        return out | {prefix + "has_profile": np.asarray(self.has_profile, dtype=np.uint8)}

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], names: Sequence[str], prefix: str = ""
    ) -> UserFeatures:
        """Inverse of :meth:`to_arrays` for the groups ``names``."""
        groups = {n: arrays[prefix + n] for n in names}
        return cls(groups, arrays[prefix + "has_profile"].astype(bool))


def user_features(
    x: FeatureInputs, groups: Sequence[FeatureGroup], *, cold_n: int | None = None
) -> UserFeatures:
    """Every group's rows for ``x.query``'s users.

    With ``cold_n``, ``cold`` also holds the rows of groups that depend on the
    history's length (L3) computed from each user's last ``cold_n`` events:
    training uses them when it cuts a history that short, so the model sees
    the same kind of row it gets for a cold user.
    """
    has_profile = np.zeros(x.query.n_users, dtype=bool)
    has_profile[x.profile_docs()[0]] = True
    cold: dict[str, np.ndarray] = {}
    if cold_n:
        cold = {g.name: c for g in groups if (c := g.cold_rows(x, cold_n)) is not None}
    return UserFeatures({g.name: g.rows(x) for g in groups}, has_profile, cold)


__all__ = [
    "L3_DIM",
    "USER_GROUPS",
    "FeatureGroup",
    "FeatureInputs",
    "ItemNodes",
    "L3Group",
    "ProfileText",
    "TaxonomyWeights",
    "UserFeatures",
    "feature_group",
    "get_text_encoder",
    "item_texts",
    "l3_features",
    "profile_text",
    "user_features",
]
