"""Where each item may sit in a hierarchy: candidate paths ``[L1, L2]`` per item, from the data.

One :class:`ItemGroups` is made per run (:func:`group_items`) and read by every
user's skeleton (:mod:`interests.profile.skeleton`). Three sources, chosen in order:

* ``taxonomy``: a shared taxonomy built earlier (``interests taxonomy build``):
  each item's path is its (global domain, global topic).
* ``category``: the catalogue's informative category levels
  (:mod:`interests.profile.category_levels`): L1 the first level that tells
  items apart, L2 the next; a one-level group is cut into item clusters; a
  flat label set gets groups of labels above it.
* ``cluster``: catalogues with no informative level. Topics are clusters of
  item vectors (behaviour + text), domains are groups of topics
  (:mod:`interests.profile.item_clusters`).

Labels: a category's label is its name; a cluster's label is made from the
words most distinctive of its items' titles (:mod:`interests.profile.group_names`).
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..events import Catalog, UserHistory
from .category_levels import CategoryLevels, category_levels, label_counts, split_levels
from .group_names import distinctive_names, item_title_words, label_group_name
from .item_clusters import choose_k, group_topics, item_vectors, joined, unit

if TYPE_CHECKING:
    from ..taxonomy.model import Taxonomy

Source = Literal["taxonomy", "category", "cluster"]

#: a catalogue "has categories" when at least this share of the logged items carry one
CATEGORY_COVERAGE = 0.5
#: format of the saved groups (1: a flat list of keys per item; 2: candidate paths per item)
FORMAT = 2
#: a one-level catalogue with more labels than this gets an L1 of label groups above them
MAX_FLAT_DOMAINS = 8
#: weight of shared items against users and text when grouping flat labels
LABEL_ITEM_WEIGHT = 0.4
#: an L1 group of a one-level catalogue is cut into item clusters from this many items
MIN_SUBCLUSTER_ITEMS = 6
#: at most this many clusters inside one L1 group, and the silhouette they must reach
MAX_SUBCLUSTERS = 6
SUBCLUSTER_SILHOUETTE = 0.1
#: an attribute value on more than this share of the logged items never makes a topic
COMMON_ATTRIBUTE_SHARE = 0.5


@dataclass
class ItemGroups:
    """Candidate paths per item (``[L1 key]`` or ``[L1 key, L2 key]``) and a label per key.

    ``kinds`` says who made a key where it differs from ``source``: ``"cluster"``
    for an L2 cut out of a category by item clusters, ``"label-group"`` for an
    L1 made of flat labels that go together. ``common_attributes`` lists the
    attribute values (``"brand: Acme"``) that most logged items share: they
    never make a topic.
    """

    source: Source
    paths: dict[str, list[list[str]]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    common_attributes: list[str] = field(default_factory=list)

    def candidates(self, item_id: str) -> list[list[str]]:
        """The item's candidate paths, most likely first."""
        return self.paths.get(item_id, [])

    def label(self, key: str) -> str:
        return self.labels.get(key, key)

    def kind(self, key: str) -> str:
        return self.kinds.get(key, self.source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "source": self.source,
            "paths": self.paths,
            "labels": self.labels,
            "metrics": self.metrics,
            "kinds": self.kinds,
            "common_attributes": self.common_attributes,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ItemGroups:
        paths: dict[str, list[list[str]]] = {}
        for item, v in dict(d.get("paths", {})).items():
            if v and isinstance(v[0], str):  # format 1: one flat list of keys, most general first
                paths[item] = [list(v[:2])]
            else:
                paths[item] = [list(p) for p in v]
        return cls(
            d["source"],
            paths,
            dict(d.get("labels", {})),
            dict(d.get("metrics", {})),
            dict(d.get("kinds", {})),
            list(d.get("common_attributes", [])),
        )

    def save(self, path: str | Path) -> Path:
        """Write the groups as JSON (temp file + rename): a later run groups items the same way."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | Path) -> ItemGroups:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


class UserItems:
    """Which items each user touched: all that grouping needs from the logs.

    A compact stand-in for the histories (two int32 arrays of distinct
    (user, item) pairs), so groups can be made over logs read one partition at
    a time (:mod:`interests.ingest.partition`). :meth:`matrix` orders users
    and items by id, so the same logs give the same groups whatever order
    their users are read in.
    """

    def __init__(self) -> None:
        self.items: list[str] = []  # first-seen order
        self.users: list[str] = []
        self.index: dict[str, int] = {}
        self._rows: list[np.ndarray] = []
        self._cols: list[np.ndarray] = []
        self._steps: Counter[tuple[int, int]] = Counter()  # consecutive distinct items of one user

    @classmethod
    def of(cls, histories: Mapping[str, UserHistory]) -> UserItems:
        return cls().add(histories)

    def add(self, histories: Mapping[str, UserHistory]) -> UserItems:
        """Add the users of ``histories`` (a user must not be added twice)."""
        for user, h in histories.items():
            cols = [self._item(i) for i in dict.fromkeys(e.item_id for e in h.events)]
            self._rows.append(np.full(len(cols), len(self.users), dtype=np.int32))
            self._cols.append(np.asarray(cols, dtype=np.int32))
            seq = [self.index[e.item_id] for e in h.events]
            self._steps.update((a, b) if a < b else (b, a) for a, b in itertools.pairwise(seq) if a != b)
            self.users.append(user)
        if len(self._rows) > 1024:  # keep the number of small arrays bounded
            self._rows, self._cols = [np.concatenate(self._rows)], [np.concatenate(self._cols)]
        return self

    def _item(self, item_id: str) -> int:
        k = self.index.get(item_id)
        if k is None:
            k = self.index[item_id] = len(self.items)
            self.items.append(item_id)
        return k

    def steps(self) -> dict[tuple[str, str], int]:
        """How often two items follow each other in a user's history (either order)."""
        return {(self.items[a], self.items[b]): n for (a, b), n in self._steps.items()}

    def matrix(self) -> tuple[Any, list[str]]:
        """Binary users x items CSR matrix, users and items sorted by id; and the items in that order."""
        from scipy.sparse import csr_matrix

        rows = np.concatenate(self._rows) if self._rows else np.zeros(0, dtype=np.int32)
        cols = np.concatenate(self._cols) if self._cols else np.zeros(0, dtype=np.int32)
        item_order = sorted(range(len(self.items)), key=self.items.__getitem__)
        user_rank = np.empty(len(self.users), dtype=np.int64)
        user_rank[sorted(range(len(self.users)), key=self.users.__getitem__)] = np.arange(len(self.users))
        item_rank = np.empty(len(self.items), dtype=np.int64)
        item_rank[item_order] = np.arange(len(self.items))
        m = csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (user_rank[rows], item_rank[cols])),
            shape=(len(self.users), len(self.items)),
        )
        return m, [self.items[k] for k in item_order]


def group_items(
    histories: Mapping[str, UserHistory] | UserItems,
    catalog: Catalog | None = None,
    *,
    taxonomy: Taxonomy | None = None,
    source: Source | None = None,
    seed: int = 0,
) -> ItemGroups:
    """Candidate groups for every logged item (the run-level half of the ``skeleton`` stage).

    ``histories`` may be a :class:`UserItems` (logs too large to hold).
    ``source`` forces one source; by default the taxonomy when given, else the
    catalogue's informative category levels when most logged items have one
    (:mod:`interests.profile.category_levels`), else clusters.
    """
    cat = catalog or Catalog()
    touched = histories if isinstance(histories, UserItems) else UserItems.of(histories)
    items = touched.items
    if source == "taxonomy" or (source is None and taxonomy is not None):
        if taxonomy is None:
            raise ValueError("source='taxonomy' needs a taxonomy")
        groups = _from_taxonomy(items, cat, taxonomy)
    else:
        levels = category_levels(items, cat)
        use_categories = source == "category" or (
            source is None and items and levels.coverage >= CATEGORY_COVERAGE
        )
        groups = (
            _from_categories(touched, cat, levels, seed)
            if use_categories
            else _from_clusters(touched, cat, seed)
        )
        groups.metrics.update({f"categories_{k}": v for k, v in levels.metrics.items()})
        groups.metrics["categories_levels_dropped"] = float(len(levels.dropped_levels))
    groups.common_attributes = _common_attributes(items, cat)
    return groups


def extend_groups(
    groups: ItemGroups,
    histories: Mapping[str, UserHistory],
    catalog: Catalog | None = None,
    *,
    taxonomy: Taxonomy | None = None,
) -> list[str]:
    """Give items logged since ``groups`` were made their candidates, in place; returns them.

    A taxonomy places a new item exactly as a full run would; a category path
    that the groups already know places it under the same keys. Clusters and
    flat-label groups are not re-fitted (that would rename every user's
    groups): a new item with no known key has no candidate and stays out of
    the hierarchy until a full ``extract`` regroups the catalogue.
    """
    cat = catalog or Catalog()
    new = [i for i in dict.fromkeys(e.item_id for h in histories.values() for e in h.events)]
    new = [i for i in new if i not in groups.paths]
    if not new:
        return []
    if groups.source == "taxonomy" and taxonomy is not None:
        more = _from_taxonomy(new, cat, taxonomy)
        groups.paths.update(more.paths)
        for k, v in more.labels.items():
            groups.labels.setdefault(k, v)
    elif groups.source == "category":
        # names the groups already hold, at the level they hold them
        by_name: dict[str, str] = {}
        for key, label in groups.labels.items():
            if groups.kind(key) == "category":
                by_name.setdefault(label.casefold(), key)
        for i in new:
            names = [n for c in cat.get_item(i).categories for n in split_levels(c)]
            keys = [by_name[n.casefold()] for n in names if n.casefold() in by_name]
            l1 = [k for k in keys if " > " not in k]
            l2 = [k for k in keys if " > " in k]
            paths = [[k.split(" > ")[0], k] for k in l2] + [[k] for k in l1 if not any(p[0] == k for p in l2)]
            if paths:
                groups.paths[i] = paths
    return new


def _common_attributes(items: Sequence[str], catalog: Catalog) -> list[str]:
    """Attribute values that more than half the logged items carry: they describe the shop, not a user."""
    counts: Counter[str] = Counter(
        f"{a}: {v}" for i in items for a, v in catalog.get_item(i).attributes.items() if v
    )
    return sorted(k for k, n in counts.items() if n > COMMON_ATTRIBUTE_SHARE * max(len(items), 1))


def _from_categories(touched: UserItems, catalog: Catalog, levels: CategoryLevels, seed: int) -> ItemGroups:
    """L1 = the first informative level, L2 = the next; item clusters where a level is missing."""
    groups = ItemGroups("category")
    labels_by_item = {i: [p for p in levels.paths.get(i, [])] for i in touched.items}
    one_level = levels.depth() <= 1
    n_labels = len(label_counts(labels_by_item))
    if one_level and n_labels > MAX_FLAT_DOMAINS:
        return _label_groups(touched, catalog, labels_by_item, seed, groups)
    # an L2 is keyed by its name, or by its path where the name sits under two parents or is an L1 too
    parents: dict[str, set[str]] = {}
    for ps in labels_by_item.values():
        for p in ps:
            if len(p) > 1:
                parents.setdefault(p[1], set()).add(p[0])
    l1_names = {p[0] for ps in labels_by_item.values() for p in ps}
    for i, ps in labels_by_item.items():
        out: list[list[str]] = []
        for p in ps:
            l1 = p[0]
            groups.labels.setdefault(l1, l1)
            if len(p) > 1:
                l2 = p[1] if len(parents[p[1]]) == 1 and p[1] not in l1_names else f"{l1} > {p[1]}"
                groups.labels.setdefault(l2, p[1])
                out.append([l1, l2])
            else:
                out.append([l1])
        groups.paths[i] = out
    _split_flat_domains(groups, touched, catalog, seed)
    groups.metrics["flat_label_groups"] = 0.0
    return groups


def _split_flat_domains(groups: ItemGroups, touched: UserItems, catalog: Catalog, seed: int) -> None:
    """Where most items of an L1 group have no L2, cut the group into item clusters (its topics)."""
    members: dict[str, list[str]] = {}
    for i, ps in groups.paths.items():
        for p in ps:
            members.setdefault(p[0], []).append(i)
    flat = {
        d: ids
        for d, ids in members.items()
        if sum(1 for i in ids if any(len(p) > 1 and p[0] == d for p in groups.paths[i])) < 0.5 * len(ids)
        and len(ids) >= MIN_SUBCLUSTER_ITEMS
    }
    if not flat:
        return
    items, behaviour, text = item_vectors(touched, catalog, seed)
    row = {i: k for k, i in enumerate(items)}
    x = joined(behaviour, text, len(touched.users))
    words = item_title_words(catalog, items)
    split = 0
    for d, ids in sorted(flat.items()):
        idx = [row[i] for i in ids if i in row]
        sub = choose_k(
            x[idx], range(2, min(MAX_SUBCLUSTERS, len(idx) // 3) + 1), seed, floor=SUBCLUSTER_SILHOUETTE
        )
        if len(set(sub.tolist())) < 2:
            continue
        split += 1
        keys = {c: f"{d} > ~{c + 1}" for c in set(sub.tolist())}
        names = distinctive_names(
            {keys[c]: [k for k, s in zip(idx, sub.tolist(), strict=True) if s == c] for c in keys},
            words,
            background=[words[k] for k in idx],
        )
        for k, c in zip(idx, sub.tolist(), strict=True):
            i, key = items[k], keys[c]
            groups.paths[i] = [[d, key] if p == [d] else p for p in groups.paths[i]]
        for key, name in names.items():
            groups.labels[key] = name
            groups.kinds[key] = "cluster"
    groups.metrics["domains_split_by_clusters"] = float(split)


def _label_groups(
    touched: UserItems,
    catalog: Catalog,
    labels_by_item: Mapping[str, list[list[str]]],
    seed: int,
    groups: ItemGroups,
) -> ItemGroups:
    """A flat label set: L1 = labels that go together (shared items, users, text), L2 = the labels."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    counts = label_counts(labels_by_item)
    labels = sorted(counts)
    items, behaviour, text = item_vectors(touched, catalog, seed)
    row = {i: k for k, i in enumerate(items)}
    pos = {lab: k for k, lab in enumerate(labels)}
    incidence = np.zeros((len(labels), len(items)))
    for i, ps in labels_by_item.items():
        for p in ps:
            if i in row:
                incidence[pos[p[0]], row[i]] = 1.0
    share = incidence / np.maximum(incidence.sum(axis=1, keepdims=True), 1.0)
    vec = np.hstack(
        [
            np.sqrt(LABEL_ITEM_WEIGHT) * unit(incidence),
            np.sqrt((1 - LABEL_ITEM_WEIGHT) / 2) * unit(share @ behaviour),
            np.sqrt((1 - LABEL_ITEM_WEIGHT) / 2) * unit(share @ text),
        ]
    )
    vec = unit(vec)
    best: tuple[float, np.ndarray] | None = None
    # a few labels a group (about 3 to 5): Ward on unit vectors keeps groups of similar size
    for k in range(max(2, -(-len(labels) // 5)), max(2, len(labels) // 3) + 1):
        if k >= len(labels):
            break
        cut = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(vec)
        s = float(silhouette_score(vec, cut, metric="cosine"))
        if best is None or s > best[0] + 1e-9:
            best = (s, np.asarray(cut))
    group_of = best[1] if best is not None else np.zeros(len(labels), dtype=np.int64)
    members: dict[int, list[str]] = {}
    for lab, g in zip(labels, group_of.tolist(), strict=True):
        members.setdefault(int(g), []).append(lab)
    key_of: dict[str, str] = {}
    for _g, labs in sorted(members.items(), key=lambda kv: (-sum(counts[x] for x in kv[1]), kv[0])):
        key = f"g{len(set(key_of.values())) + 1}"
        groups.labels[key] = label_group_name(labs, counts)
        groups.kinds[key] = "label-group"
        for lab in labs:
            key_of[lab] = key
            groups.labels[lab] = lab
    for i, ps in labels_by_item.items():
        groups.paths[i] = [[key_of[p[0]], p[0]] for p in ps]
    groups.metrics["flat_label_groups"] = float(len(members))
    groups.metrics["flat_label_silhouette"] = round(best[0], 4) if best is not None else 0.0
    return groups


def _from_taxonomy(items: Sequence[str], catalog: Catalog, taxonomy: Taxonomy) -> ItemGroups:
    missing = [catalog.get_item(i) for i in items if i not in taxonomy.assignments]
    if missing:
        taxonomy.assign_items(missing)
    groups = ItemGroups("taxonomy")
    for d in taxonomy.domains:
        groups.labels[d.id] = d.llm_label or d.label
        for t in d.topics:
            groups.labels[t.id] = t.label
    for i in items:
        a = taxonomy.assignments.get(i)
        if a is not None:
            groups.paths[i] = [[a.domain_id, a.topic_id]]
    return groups


def _from_clusters(touched: UserItems, catalog: Catalog, seed: int) -> ItemGroups:
    groups = ItemGroups("cluster")
    if not touched.items:
        return groups
    items, behaviour, text = item_vectors(touched, catalog, seed)
    x = joined(behaviour, text, len(touched.users))
    n = len(items)
    k_max = max(2, min(60, n // 4))
    ks = sorted({k for k in (*range(2, 13), 16, 20, 25, 30, 40, 50, 60) if k <= k_max})
    topic = choose_k(x, ks, seed)
    t_ids = sorted(set(topic.tolist()))
    m, _ = touched.matrix()
    t_pos = {t: k for k, t in enumerate(t_ids)}
    row = {i: k for k, i in enumerate(items)}
    steps = np.zeros((len(t_ids), len(t_ids)))
    for (a, b), c in touched.steps().items():
        ta, tb = t_pos[int(topic[row[a]])], t_pos[int(topic[row[b]])]
        if ta != tb:
            steps[ta, tb] += c
            steps[tb, ta] += c
    domain_of, silhouette = group_topics(topic, t_ids, x, m, steps)
    groups.metrics = {
        "topics": float(len(t_ids)),
        "domains": float(len(set(domain_of.tolist()))),
        "domain_silhouette": round(silhouette, 4),
    }
    t_key = {t: f"c{int(domain_of[k]) + 1}.{k + 1}" for k, t in enumerate(t_ids)}
    for k, i in enumerate(items):
        tk = t_key[int(topic[k])]
        groups.paths[i] = [[tk.split(".")[0], tk]]
    members: dict[str, list[int]] = {}
    for k, i in enumerate(items):
        for key in groups.paths[i][0]:
            members.setdefault(key, []).append(k)
    words = item_title_words(catalog, items)
    groups.labels = distinctive_names({k: v for k, v in members.items() if "." in k}, words, n_words=2)
    # a domain by the leading word of each of its two largest topics: what it holds, not a word they share
    for d_key in sorted(k for k in members if "." not in k):
        tops = sorted((k for k in members if k.startswith(d_key + ".")), key=lambda k: (-len(members[k]), k))
        heads = list(dict.fromkeys(groups.labels[k].split(" & ")[0] for k in tops))[:2]
        groups.labels[d_key] = " & ".join(heads) if heads else f"Group {d_key}"
    return groups


__all__ = ["ItemGroups", "UserItems", "group_items", "item_vectors"]
