"""Where each item may sit in a hierarchy: candidate group keys per item, from the data.

One :class:`ItemGroups` is made per run (:func:`item_groups`) and read by every
user's skeleton (:mod:`interests.profile.skeleton`). Three sources, chosen in order:

* ``taxonomy``: a shared taxonomy built earlier (``interests taxonomy build``):
  each item's path is its (global domain, global topic).
* ``category``: the catalogue's categories. An item's candidates are all its
  categories in catalogue order; a category path (``Films > Sci-fi``) and a
  flat label set (MovieLens genres) are both handled by the skeleton, which
  picks for each user the candidate with the most of that user's events.
* ``cluster``: catalogues without categories. Items are clustered on
  behaviour (a truncated SVD of the user-item matrix: items that the same
  users touch) joined with text (TF-IDF of title and description): topics by
  KMeans, domains by grouping topics whose centroids are close. Text alone
  fails when items of a topic share no words; behaviour alone fails for
  items few users touched; the measured comparison is in docs/benchmarks.md.

Labels: a category's label is its name; a cluster's label is made from the
words most distinctive of its items' titles (c-TF-IDF).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..events import Catalog, UserHistory

if TYPE_CHECKING:
    from ..taxonomy.model import Taxonomy

Source = Literal["taxonomy", "category", "cluster"]

#: a catalogue "has categories" when at least this share of the logged items carry one
CATEGORY_COVERAGE = 0.5
#: dimensions of the behaviour and text item vectors used for clustering
BEHAVIOUR_DIM = 16
TEXT_DIM = 32
#: relative weight of behaviour against text in the joined item vector
BEHAVIOUR_WEIGHT = 0.5
#: silhouette a grouping of topics into domains must reach; below it each topic is its own domain
MIN_DOMAIN_SILHOUETTE = 0.35
#: KMeans on at most this many items when choosing the number of clusters
SELECTION_SAMPLE = 4000

_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)


@dataclass
class ItemGroups:
    """Candidate group keys per item (most general first) and a label per key."""

    source: Source
    paths: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def candidates(self, item_id: str) -> list[str]:
        return self.paths.get(item_id, [])

    def label(self, key: str) -> str:
        return self.labels.get(key, key)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "paths": self.paths, "labels": self.labels, "metrics": self.metrics}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ItemGroups:
        return cls(
            d["source"], dict(d.get("paths", {})), dict(d.get("labels", {})), dict(d.get("metrics", {}))
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

    @classmethod
    def of(cls, histories: Mapping[str, UserHistory]) -> UserItems:
        return cls().add(histories)

    def add(self, histories: Mapping[str, UserHistory]) -> UserItems:
        """Add the users of ``histories`` (a user must not be added twice)."""
        for user, h in histories.items():
            cols = [self._item(i) for i in dict.fromkeys(e.item_id for e in h.events)]
            self._rows.append(np.full(len(cols), len(self.users), dtype=np.int32))
            self._cols.append(np.asarray(cols, dtype=np.int32))
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
    catalogue's categories when most logged items have some, else clusters.
    """
    cat = catalog or Catalog()
    touched = histories if isinstance(histories, UserItems) else UserItems.of(histories)
    items = touched.items
    if source is None:
        if taxonomy is not None:
            source = "taxonomy"
        else:
            with_cats = sum(1 for i in items if cat.get_item(i).categories)
            source = "category" if items and with_cats >= CATEGORY_COVERAGE * len(items) else "cluster"
    if source == "taxonomy":
        if taxonomy is None:
            raise ValueError("source='taxonomy' needs a taxonomy")
        return _from_taxonomy(items, cat, taxonomy)
    if source == "category":
        return _from_categories(items, cat)
    return _from_clusters(touched, cat, seed)


def extend_groups(
    groups: ItemGroups,
    histories: Mapping[str, UserHistory],
    catalog: Catalog | None = None,
    *,
    taxonomy: Taxonomy | None = None,
) -> list[str]:
    """Give items logged since ``groups`` were made their candidates, in place; returns them.

    Categories and a taxonomy place a new item exactly as a full run would.
    Item clusters are not re-fitted (that would rename every user's groups):
    a new item of a catalogue without categories has no candidate, so it stays
    out of the hierarchy until a full ``extract`` regroups the catalogue.
    """
    cat = catalog or Catalog()
    new = [i for i in dict.fromkeys(e.item_id for h in histories.values() for e in h.events)]
    new = [i for i in new if i not in groups.paths]
    if not new:
        return []
    if groups.source == "category":
        more = _from_categories(new, cat)
    elif groups.source == "taxonomy" and taxonomy is not None:
        more = _from_taxonomy(new, cat, taxonomy)
    else:
        return new
    groups.paths.update(more.paths)
    for k, v in more.labels.items():
        groups.labels.setdefault(k, v)
    return new


def _from_categories(items: Sequence[str], catalog: Catalog) -> ItemGroups:
    groups = ItemGroups("category")
    for i in items:
        cats = list(dict.fromkeys(c.strip() for c in catalog.get_item(i).categories if c.strip()))
        groups.paths[i] = cats
        for c in cats:
            groups.labels.setdefault(c, c)
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
            groups.paths[i] = [a.domain_id, a.topic_id]
    return groups


# ---- clusters ----------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text) if len(w) >= 3]


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def item_vectors(
    touched: UserItems, catalog: Catalog, seed: int = 0
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Items (by id) and their (behaviour, text) unit vectors: SVD of the user-item matrix, SVD of TF-IDF."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    m, items = touched.matrix()
    # items x users, each user row scaled by 1/sqrt(activity) so heavy users do not dominate
    activity = np.asarray(m.sum(axis=1)).ravel()
    scale = 1.0 / np.sqrt(np.maximum(activity, 1.0))
    mt = (m.multiply(scale[:, None])).T.tocsr()
    behaviour = _svd(mt, BEHAVIOUR_DIM, seed)
    texts = [" ".join(_item_words(catalog, i)) for i in items]
    if any(texts):
        tfidf = TfidfVectorizer(min_df=1, sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b").fit_transform(
            texts
        )
        text = _svd(tfidf, TEXT_DIM, seed)
    else:
        text = np.zeros((len(items), 1))
    return items, _unit(behaviour), _unit(text)


def _svd(x: Any, dim: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD

    n_min = min(x.shape)
    k = max(1, min(dim, n_min - 1))
    if n_min <= 1:
        return np.asarray(x.toarray(), dtype=np.float64)
    return np.asarray(TruncatedSVD(n_components=k, random_state=seed).fit_transform(x), dtype=np.float64)


def _item_words(catalog: Catalog, item_id: str) -> list[str]:
    item = catalog.get_item(item_id)
    return _words(" ".join([item.title, item.description, *item.attributes.values()]))


def _choose_k(x: np.ndarray, ks: Sequence[int], seed: int) -> np.ndarray:
    """KMeans labels for the k in ``ks`` with the best silhouette (on a sample for big inputs)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(x)
    if n < 3:
        return np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, SELECTION_SAMPLE, replace=False)) if n > SELECTION_SAMPLE else np.arange(n)
    best: tuple[float, int] | None = None
    for k in ks:
        if not 2 <= k < len(sample):
            continue
        labels = KMeans(k, n_init=4, random_state=seed).fit_predict(x[sample])
        if len(set(labels.tolist())) < 2:
            continue
        s = float(silhouette_score(x[sample], labels))
        if best is None or s > best[0]:
            best = (s, k)
    if best is None:
        return np.zeros(n, dtype=np.int64)
    return np.asarray(KMeans(best[1], n_init=4, random_state=seed).fit_predict(x), dtype=np.int64)


def _group_topics(centroids: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Domains as groups of topic centroids (agglomerative, cosine); identity below the silhouette floor."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    n = len(centroids)
    identity = np.arange(n, dtype=np.int64)
    if n < 4:
        return identity, 0.0
    best: tuple[float, np.ndarray] = (MIN_DOMAIN_SILHOUETTE, identity)
    for k in range(2, n - 1):
        labels = AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(
            centroids
        )
        s = float(silhouette_score(centroids, labels, metric="cosine"))
        if s > best[0]:
            best = (s, np.asarray(labels, dtype=np.int64))
    return best[1], (best[0] if best[1] is not identity else 0.0)


def _from_clusters(touched: UserItems, catalog: Catalog, seed: int) -> ItemGroups:
    groups = ItemGroups("cluster")
    if not touched.items:
        return groups
    items, behaviour, text = item_vectors(touched, catalog, seed)
    x = np.hstack([np.sqrt(BEHAVIOUR_WEIGHT) * behaviour, np.sqrt(1 - BEHAVIOUR_WEIGHT) * text])
    n = len(items)
    k_max = max(2, min(60, n // 4))
    ks = sorted({k for k in (*range(2, 13), 16, 20, 25, 30, 40, 50, 60) if k <= k_max})
    topic = _choose_k(x, ks, seed)
    t_ids = sorted(set(topic.tolist()))
    centroids = np.vstack([_unit(x[topic == t].mean(axis=0, keepdims=True))[0] for t in t_ids])
    domain_of, silhouette = _group_topics(centroids, seed)
    groups.metrics = {
        "topics": float(len(t_ids)),
        "domains": float(len(set(domain_of.tolist()))),
        "domain_silhouette": round(silhouette, 4),
    }
    words = [_item_words(catalog, i) for i in items]
    t_key = {t: f"c{int(domain_of[k]) + 1}.{k + 1}" for k, t in enumerate(t_ids)}
    for k, i in enumerate(items):
        tk = t_key[int(topic[k])]
        groups.paths[i] = [tk.split(".")[0], tk]
    members: dict[str, list[int]] = {}
    for k, i in enumerate(items):
        for key in groups.paths[i]:
            members.setdefault(key, []).append(k)
    groups.labels = _distinctive_labels(members, words)
    return groups


def _distinctive_labels(
    members: Mapping[str, Sequence[int]], words: Sequence[Sequence[str]]
) -> dict[str, str]:
    """A label per group from its most distinctive words (c-TF-IDF), unique among the labels."""
    df: Counter[str] = Counter(w for ws in words for w in set(ws))
    n = max(len(words), 1)
    labels: dict[str, str] = {}
    used: set[str] = set()
    for key, idx in sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        tf: Counter[str] = Counter(w for k in idx for w in set(words[k]))
        scored = sorted(
            tf, key=lambda w: (-(tf[w] / len(idx)) * np.log(1 + n / df[w]) if tf[w] >= 2 else 0.0, w)
        )
        top = [w for w in scored if tf[w] >= 2][:3] or scored[:2]
        n_words = 2 if "." in key else 3
        label = " / ".join(w.capitalize() for w in top[:n_words]) or f"Group {key}"
        if label in used:
            label = f"{label} ({key})"
        used.add(label)
        labels[key] = label
    return labels


__all__ = ["ItemGroups", "UserItems", "group_items", "item_vectors"]
