"""Steering: recommendations from chosen nodes of the hierarchy, ranked by the model's own scores.

A *node* is a set of catalogue items named by the hierarchy:

* a **domain** or a **topic** of the shared taxonomy (``model.nodes``, from
  :meth:`interests.taxonomy.Taxonomy.assign_items` at fit time), by id
  (``d03``, ``d03.t01``), label (``Jazz``) or path (``Music > Jazz``);
* a **category** of the catalogue (every category an item lists, e.g. every
  MovieLens genre of a film), which is how a model trained without a
  taxonomy is steered.

Names resolve case-insensitively: an exact id first, then a label or path;
``--domain`` looks at taxonomy domains then categories, ``--topic`` at topics
then categories, ``--avoid`` and ``--mix`` at all three. An unknown name is a
:class:`~interests.errors.ConfigError` listing the closest names.

:class:`Steering` is what a caller asks for; :meth:`Steerer.pick` turns one
user's fused score row into the list: ``domains``/``topics`` keep only items
of those nodes, ``avoid`` drops items of those nodes (exploration slots too),
``mix`` gives each node a share of the slots (largest remainder rounding;
a node that runs out of items gives its slots to the others), and
``explore`` slots (:mod:`interests.recsys.explore`) go last. Every
:class:`Pick` carries the node it came from and its source.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from interests.errors import ConfigError

from .metrics import top_k
from .rerank import mmr_rerank

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog

    from .features import ItemNodes

#: where each recommended item came from
SOURCES = ("history", "profile", "steering", "exploration")
KINDS = ("domain", "topic", "category")


def parse_mix(
    text: str | Mapping[str, float] | Iterable[tuple[str, float]] | None,
) -> tuple[tuple[str, float], ...]:
    """``"jazz=0.6,sci-fi=0.4"`` (or ``jazz=60%``, or a mapping) -> ``(("jazz", 0.6), ("sci-fi", 0.4))``.

    Shares must be positive; they are normalised to sum to 1 when the list is built.
    """
    if text is None:
        return ()
    if isinstance(text, str):
        pairs: list[tuple[str, Any]] = []
        for part in text.split(","):
            if not part.strip():
                continue
            name, sep, value = part.rpartition("=")
            if not sep or not name.strip():
                raise ConfigError(f"--mix part {part.strip()!r} is not NAME=SHARE, e.g. jazz=0.6,sci-fi=0.4")
            pairs.append((name.strip(), value.strip()))
    else:
        pairs = list(text.items()) if isinstance(text, Mapping) else list(text)
    out: list[tuple[str, float]] = []
    for name, value in pairs:
        raw = str(value).strip()
        try:
            share = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            raise ConfigError(f"--mix share {raw!r} of {name!r} is not a number (0.6 or 60%)") from None
        if not share > 0 or not np.isfinite(share):
            raise ConfigError(f"--mix share of {name!r} must be a positive number, got {raw!r}")
        out.append((str(name), share))
    if len({n.lower() for n, _ in out}) != len(out):
        raise ConfigError("--mix names a node twice")
    return tuple(out)


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    return tuple(v.strip() for v in value if v and v.strip())


@dataclass(frozen=True)
class Steering:
    """What to steer a list to: nodes to draw from, nodes to avoid, or shares per node."""

    domains: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    mix: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(
        cls,
        domains: str | Iterable[str] | None = None,
        topics: str | Iterable[str] | None = None,
        avoid: str | Iterable[str] | None = None,
        mix: str | Mapping[str, float] | Iterable[tuple[str, float]] | None = None,
    ) -> Steering:
        """Build from loose arguments (a name, a list of names, ``"a=0.6,b=0.4"`` for ``mix``)."""
        s = cls(_names(domains), _names(topics), _names(avoid), parse_mix(mix))
        if s.mix and (s.domains or s.topics):
            raise ConfigError("give either --mix or --domain/--topic, not both (mix already names the nodes)")
        return s

    @property
    def active(self) -> bool:
        return bool(self.domains or self.topics or self.avoid or self.mix)

    @property
    def includes(self) -> bool:
        return bool(self.domains or self.topics or self.mix)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domains": list(self.domains),
            "topics": list(self.topics),
            "avoid": list(self.avoid),
            "mix": {n: s for n, s in self.mix},
        }


@dataclass(frozen=True)
class Node:
    """A resolved node: its kind, id(s), display name and member items (a boolean mask)."""

    kind: str
    id: str
    label: str
    members: np.ndarray = field(repr=False)

    @property
    def size(self) -> int:
        return int(self.members.sum())


@dataclass(frozen=True)
class Pick:
    """One item of a list: where it came from (``source``) and the node it stands for (``node``)."""

    item: int
    score: float
    source: str
    node: str | None
    domain: int = -1  # the explored domain's index (exploration slots only)


@dataclass(frozen=True)
class Recommended:
    """One recommended item as the SDK, the CLI, the API and the reports show it."""

    item_id: str
    score: float
    title: str = ""
    node: str | None = None  # "Domain > Topic" of the taxonomy, or the catalogue category
    source: str = "history"  # one of SOURCES

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "score": self.score,
            "node": self.node,
            "source": self.source,
        }


@dataclass
class ItemCategories:
    """Every catalogue category of every item, as a CSR list over a category vocabulary."""

    indptr: np.ndarray
    indices: np.ndarray
    names: list[str]

    @classmethod
    def from_catalog(cls, item_ids: Sequence[str], catalog: Catalog | None) -> ItemCategories:
        vocab: dict[str, int] = {}
        indptr = [0]
        indices: list[int] = []
        for iid in item_ids:
            cats = catalog[iid].categories if (catalog is not None and iid in catalog) else []
            for c in dict.fromkeys(str(c).strip() for c in cats):
                if c:
                    indices.append(vocab.setdefault(c, len(vocab)))
            indptr.append(len(indices))
        return cls(np.array(indptr, dtype=np.int64), np.array(indices, dtype=np.int64), list(vocab))

    @classmethod
    def empty(cls, n_items: int) -> ItemCategories:
        return cls(np.zeros(n_items + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), [])

    @property
    def n_items(self) -> int:
        return len(self.indptr) - 1

    def first(self) -> np.ndarray:
        """Each item's first category index (``-1`` for none)."""
        has = self.indptr[1:] > self.indptr[:-1]
        out = np.full(self.n_items, -1, dtype=np.int64)
        out[has] = self.indices[self.indptr[:-1][has]]
        return out

    def members(self, c: int) -> np.ndarray:
        rows = np.repeat(np.arange(self.n_items), np.diff(self.indptr))
        mask = np.zeros(self.n_items, dtype=bool)
        mask[rows[self.indices == c]] = True
        return mask


class NodeIndex:
    """Every node a list can be steered to, and the node each item is shown under."""

    def __init__(self, nodes: ItemNodes, categories: ItemCategories | None, n_items: int) -> None:
        self.nodes, self.categories, self.n_items = nodes, categories, n_items
        self._cache: dict[tuple[str, str], Node] = {}
        ids: dict[str, list[tuple[str, str, str]]] = {}  # lower-case key -> [(kind, id, label)]

        def add(key: str, kind: str, nid: str, label: str) -> None:
            entry = (kind, nid, label)
            lst = ids.setdefault(key.strip().lower(), [])
            if entry not in lst:
                lst.append(entry)

        for d in nodes.domain_ids:
            add(d, "domain", d, nodes.name(d))
            add(nodes.name(d), "domain", d, nodes.name(d))
        for k, t in enumerate(nodes.topic_ids):
            dom = nodes.domain_ids[int(nodes.topic_domain[k])] if len(nodes.topic_domain) > k else None
            path = f"{nodes.name(dom)} > {nodes.name(t)}" if dom is not None else nodes.name(t)
            for key in (t, nodes.name(t), path):
                add(key, "topic", t, path)
        for c in categories.names if categories is not None else []:
            add(c, "category", c, c)
        self._keys = ids

    # ---- names ---------------------------------------------------------------------------------
    def names(self, kinds: Sequence[str] = KINDS) -> list[str]:
        """Display names of every node of ``kinds``."""
        out: dict[str, None] = {}
        for entries in self._keys.values():
            for kind, _, label in entries:
                if kind in kinds:
                    out.setdefault(label, None)
        return list(out)

    def resolve(self, ref: str, kinds: Sequence[str] = KINDS, what: str = "node") -> Node:
        """The node ``ref`` names (id, label or ``Domain > Topic`` path; case-insensitive)."""
        key = ref.strip().lower()
        entries = self._keys.get(key, [])
        for kind in kinds:
            hits = [(k, i, lab) for k, i, lab in entries if k == kind]
            if hits:
                return self._node(kind, hits)
        available = self.names(kinds)
        if not available:
            raise ConfigError(
                f"cannot steer by {what} {ref!r}: this model has no {' or '.join(kinds)} names "
                "(train it with a taxonomy, or with a catalogue that lists categories)"
            )
        by_lower = {a.lower(): a for a in available}
        close = [a for a in by_lower if key and key in a][:5]
        close += [
            c for c in difflib.get_close_matches(key, list(by_lower), n=5, cutoff=0.5) if c not in close
        ]
        hint = (
            "close names: " + ", ".join(by_lower[c] for c in close)
            if close
            else "known names include: " + ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
        )
        raise ConfigError(f"unknown {what} {ref!r} in this model; {hint}")

    def _node(self, kind: str, hits: list[tuple[str, str, str]]) -> Node:
        ids = sorted({i for _, i, _ in hits})
        cache_key = (kind, ",".join(ids))
        if cache_key in self._cache:
            return self._cache[cache_key]
        mask = np.zeros(self.n_items, dtype=bool)
        nd = self.nodes
        for nid in ids:
            if kind == "domain":
                mask |= nd.domain == nd.domain_ids.index(nid)
            elif kind == "topic":
                mask |= nd.topic == nd.topic_ids.index(nid)
            else:
                assert self.categories is not None
                mask |= self.categories.members(self.categories.names.index(nid))
        node = Node(kind, ",".join(ids), hits[0][2], mask)
        self._cache[cache_key] = node
        return node

    def domain_space(self, fallback: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The domains exploration works over: ``(domain index per item or -1, names)``.

        Taxonomy L1 domains when the model has a taxonomy, else each item's first
        catalogue category; a model saved before categories were kept uses its
        ``domains`` labels (``fallback``), unnamed, labels of a single item left out.
        """
        nd, c = self.nodes, self.categories
        if nd.n_domains:
            return nd.domain, [nd.name(d) for d in nd.domain_ids]
        if c is not None and c.names:
            return c.first(), list(c.names)
        lab = np.asarray(fallback, dtype=np.int64)
        if not len(lab):
            return lab, []
        counts = np.bincount(lab)
        keep = np.flatnonzero(counts > 1)
        remap = np.full(len(counts), -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        return remap[lab], [f"domain {k + 1}" for k in range(len(keep))]

    def item_node(self, i: int) -> str | None:
        """The node an item is shown under: ``Domain > Topic`` of the taxonomy, else its first category."""
        nd = self.nodes
        if nd.n_topics and nd.topic[i] >= 0:
            t = nd.topic_ids[nd.topic[i]]
            d = nd.domain_ids[nd.domain[i]] if nd.domain[i] >= 0 else None
            return f"{nd.name(d)} > {nd.name(t)}" if d is not None else nd.name(t)
        if nd.n_domains and nd.domain[i] >= 0:
            return nd.name(nd.domain_ids[nd.domain[i]])
        c = self.categories
        if c is not None and c.indptr[i + 1] > c.indptr[i]:
            return c.names[int(c.indices[c.indptr[i]])]
        return None


@dataclass(frozen=True)
class Resolved:
    """A :class:`Steering` with its names resolved against one model."""

    include: list[Node]
    avoid: list[Node]
    mix: list[tuple[Node, float]]

    @classmethod
    def of(cls, steering: Steering | None, index: NodeIndex) -> Resolved:
        if steering is None:
            return cls([], [], [])
        inc = [index.resolve(d, ("domain", "category"), "domain") for d in steering.domains]
        inc += [index.resolve(t, ("topic", "category"), "topic") for t in steering.topics]
        avoid = [index.resolve(a, KINDS, "node to avoid") for a in steering.avoid]
        mix = [(index.resolve(n, KINDS, "--mix node"), s) for n, s in steering.mix]
        return cls(inc, avoid, mix)

    def avoid_mask(self, n_items: int) -> np.ndarray:
        mask = np.zeros(n_items, dtype=bool)
        for node in self.avoid:
            mask |= node.members
        return mask


def mix_slots(shares: Sequence[float], k: int) -> list[int]:
    """Slots per node for ``k`` items: shares normalised, rounded by largest remainder (sum is ``k``)."""
    w = np.asarray(shares, dtype=np.float64)
    w = w / w.sum()
    raw = w * k
    base = np.floor(raw).astype(int)
    order = np.argsort(-(raw - base), kind="stable")
    for j in order[: k - int(base.sum())]:
        base[j] += 1
    return base.tolist()


def pick(
    scores: np.ndarray,
    k: int,
    *,
    index: NodeIndex,
    steer: Resolved,
    domains: np.ndarray,
    diverse: float = 0.0,
    explore: Sequence[tuple[int, np.ndarray, str]] = (),
) -> list[Pick]:
    """The list for one user from a fused score row (items to leave out already ``-inf``).

    ``explore``: exploration slots as ``(domain, member mask, domain name)``,
    best first; each gets the best-scored item of its domain still available
    (fewer explore candidates than slots: the rest go to the main list).
    Model picks get source ``"model"``; the caller tells history from profile.
    """
    s = scores.astype(np.float32, copy=True)
    if steer.avoid:
        s[steer.avoid_mask(len(s))] = -np.inf
    out: list[Pick] = []
    taken = np.zeros(len(s), dtype=bool)
    slots: list[tuple[int, str, int]] = []
    for d, mask, name in explore:
        if len(slots) >= k:
            break
        cand = np.flatnonzero(mask & np.isfinite(s))
        if len(cand):
            slots.append((int(cand[np.argmax(s[cand])]), name, int(d)))
    n_main = k - len(slots)
    for i, _, _ in slots:
        s[i] = -np.inf  # an explore item is not also a main item
    if steer.mix and n_main > 0:
        out = _mix(s, n_main, steer.mix)
    else:
        ss = s
        if steer.include:
            allowed = np.zeros(len(s), dtype=bool)
            for node in steer.include:
                allowed |= node.members
            ss = np.where(allowed, s, -np.inf).astype(np.float32)
        if n_main > 0:
            pool = n_main if diverse <= 0 else min(len(ss), max(5 * n_main, 50))
            top = top_k(ss[None, :], pool)[0]
            cand = top[np.isfinite(ss[top])]
            items, vals = mmr_rerank(cand, ss[cand], domains, n_main, diverse)
            for i, v in zip(items.tolist(), vals.tolist(), strict=True):
                if steer.include:
                    label = next(n.label for n in steer.include if n.members[i])
                    out.append(Pick(i, float(v), "steering", label))
                else:
                    out.append(Pick(i, float(v), "model", index.item_node(i)))
    taken[[p.item for p in out]] = True
    for i, name, d in slots:
        if not taken[i]:
            out.append(Pick(i, float(scores[i]), "exploration", name, d))
    return out


def _mix(s: np.ndarray, k: int, mix: Sequence[tuple[Node, float]]) -> list[Pick]:
    """Largest-remainder slots per node, each filled with the node's best items; by score."""
    want = mix_slots([w for _, w in mix], k)
    finite = np.isfinite(s)
    chosen: dict[int, str] = {}
    order = sorted(range(len(mix)), key=lambda j: -mix[j][1])  # bigger shares choose first
    short = 0
    for j in order:
        node = mix[j][0]
        cand = np.flatnonzero(node.members & finite)
        cand = cand[np.argsort(-s[cand], kind="stable")]
        got = 0
        for i in cand.tolist():
            if got >= want[j]:
                break
            if i not in chosen:
                chosen[i] = node.label
                got += 1
        short += want[j] - got
    if short:  # nodes that ran out give their slots to the others, best score first
        allowed = np.zeros(len(s), dtype=bool)
        for node, _ in mix:
            allowed |= node.members
        rest = np.flatnonzero(allowed & finite)
        rest = rest[np.argsort(-s[rest], kind="stable")]
        for i in rest.tolist():
            if short <= 0:
                break
            if i not in chosen:
                chosen[i] = next(n.label for n, _ in mix if n.members[i])
                short -= 1
    picks = [Pick(i, float(s[i]), "steering", node) for i, node in chosen.items()]
    return sorted(picks, key=lambda p: (-p.score, p.item))


__all__ = [
    "KINDS",
    "SOURCES",
    "ItemCategories",
    "Node",
    "NodeIndex",
    "Pick",
    "Recommended",
    "Resolved",
    "Steering",
    "mix_slots",
    "parse_mix",
    "pick",
]
