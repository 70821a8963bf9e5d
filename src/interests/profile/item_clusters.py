"""Item vectors and clusters: what groups items where the catalogue has no informative level.

Behaviour (a truncated SVD of the user-item matrix: items that the same
users touch) joined with text (an SVD of TF-IDF over title, description and
attribute names and values); KMeans picks topics (k by silhouette), and topics are
grouped into domains by the users who mix them, the moves between them from
one event to the next, and their text (:func:`group_topics`). Text alone
fails when items of a topic share no words; behaviour alone fails for items
few users touched; measured in docs/benchmarks.md.

Two rules keep small or boilerplate-heavy catalogues apart (docs/schema.md):
description sentences repeated verbatim across the catalogue ("Sold by
Northwind.", "No expiration, no fees.") say who sells an item, not what it is,
and are left out of its text (:func:`boilerplate`); and behaviour weighs less
when few users made it (:func:`behaviour_weight`): a dozen users' matrix puts
together every pair of interests its users happen to hold.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..events import Catalog

if TYPE_CHECKING:
    from .item_groups import UserItems

#: dimensions of the behaviour and text item vectors used for clustering
BEHAVIOUR_DIM = 16
TEXT_DIM = 32
#: relative weight of behaviour against text in the joined item vector, from this many users on
BEHAVIOUR_WEIGHT = 0.5
FULL_BEHAVIOUR_USERS = 24
#: the least weight of behaviour, however few the users
MIN_BEHAVIOUR_WEIGHT = 0.25
#: a description sentence in at least this share of the logged items (and at least 3) is boilerplate
BOILERPLATE_SHARE = 0.02
#: weight of shared users against text when grouping topics into domains (catalogues without categories)
TOPIC_USER_WEIGHT = 0.8
#: within that, weight of moves from one topic to another between consecutive events against shared users
STEP_WEIGHT = 0.8
#: KMeans on at most this many items when choosing the number of clusters
SELECTION_SAMPLE = 4000

_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text) if len(w) >= 3]


def unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def behaviour_weight(n_users: int) -> float:
    """Weight of behaviour in the joined vector: :data:`BEHAVIOUR_WEIGHT` from
    :data:`FULL_BEHAVIOUR_USERS` users on, down to :data:`MIN_BEHAVIOUR_WEIGHT` for fewer.

    Measured on planted logs without categories (docs/benchmarks.md): at 12
    users a weight of 0.5 merged interests its users happened to hold together
    (topic ARI 0.91, domain ARI 0.70), 0.25 kept them apart (0.96, 0.91); from
    24 users on both weights gave the same groups.
    """
    share = min(1.0, n_users / FULL_BEHAVIOUR_USERS)
    return max(MIN_BEHAVIOUR_WEIGHT, BEHAVIOUR_WEIGHT * share)


def joined(behaviour: np.ndarray, text: np.ndarray, n_users: int = FULL_BEHAVIOUR_USERS) -> np.ndarray:
    w = behaviour_weight(n_users)
    return np.hstack([np.sqrt(w) * behaviour, np.sqrt(1 - w) * text])


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
    skip = boilerplate(items, catalog)
    texts = [" ".join(_item_words(catalog, i, skip)) for i in items]
    if any(texts):
        tfidf = TfidfVectorizer(min_df=1, sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b").fit_transform(
            texts
        )
        text = _svd(tfidf, TEXT_DIM, seed)
    else:
        text = np.zeros((len(items), 1))
    return items, unit(behaviour), unit(text)


def _svd(x: Any, dim: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD

    n_min = min(x.shape)
    k = max(1, min(dim, n_min - 1))
    if n_min <= 1:
        return np.asarray(x.toarray(), dtype=np.float64)
    return np.asarray(TruncatedSVD(n_components=k, random_state=seed).fit_transform(x), dtype=np.float64)


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def boilerplate(items: Sequence[str], catalog: Catalog) -> frozenset[str]:
    """Description sentences that :data:`BOILERPLATE_SHARE` of ``items`` (and at least 3) repeat verbatim."""
    counts: Counter[str] = Counter()
    for i in items:
        counts.update(set(_sentences(catalog.get_item(i).description)))
    least = max(3.0, BOILERPLATE_SHARE * len(items))
    return frozenset(s for s, c in counts.items() if c >= least)


def _item_words(catalog: Catalog, item_id: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """Title, description less ``skip``, attribute names and values: the words of its text vector."""
    item = catalog.get_item(item_id)
    description = " ".join(s for s in _sentences(item.description) if s not in skip)
    return _words(" ".join([item.title, description, *item.attributes, *item.attributes.values()]))


def choose_k(x: np.ndarray, ks: Iterable[int], seed: int, floor: float | None = None) -> np.ndarray:
    """KMeans labels for the k in ``ks`` with the best silhouette (on a sample for big inputs).

    One cluster (all zeros) when no k reaches ``floor``.
    """
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
        if (floor is None or s >= floor) and (best is None or s > best[0]):
            best = (s, k)
    if best is None:
        return np.zeros(n, dtype=np.int64)
    return np.asarray(KMeans(best[1], n_init=4, random_state=seed).fit_predict(x), dtype=np.int64)


def group_topics(
    topic: np.ndarray, t_ids: Sequence[int], x: np.ndarray, m_items: Any, steps: np.ndarray
) -> tuple[np.ndarray, float]:
    """Domains as groups of topics whose items the same users mix and whose text is close.

    Each topic is described by its users (which users touched its items) and
    its mean item vector; topics are grouped agglomeratively (cosine) into the
    number of domains with the best silhouette. Fewer than four topics make one
    domain each only when they share no users.
    """
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    n = len(t_ids)
    identity = np.arange(n, dtype=np.int64)
    if n < 3:
        return identity, 0.0
    touched = np.vstack([np.asarray(m_items[:, topic == t].sum(axis=1)).ravel() > 0 for t in t_ids])
    touched = touched.astype(np.float64)
    co = touched @ touched.T
    size = np.maximum(np.diag(co), 1.0)
    lift = co * max(touched.shape[1], 1) / np.outer(size, size)  # > 1: the same users mix the two topics
    centroids = np.vstack([unit(x[topic == t].mean(axis=0, keepdims=True))[0] for t in t_ids])
    text_sim = np.clip(centroids @ centroids.T, 0.0, 1.0)
    mix = np.clip(np.log(np.maximum(lift, 1e-9)), 0.0, None)
    off = ~np.eye(n, dtype=bool)
    mix = np.minimum(mix / max(float(mix[off].max(initial=0.0)), 1e-9), 1.0)
    # topics a user moves between from one event to the next
    flow = steps / np.sqrt(np.outer(steps.sum(axis=1), steps.sum(axis=1)) + 1e-9)
    flow = np.minimum(flow / max(float(flow[off].max(initial=0.0)), 1e-9), 1.0)
    sim = (
        TOPIC_USER_WEIGHT * (STEP_WEIGHT * flow + (1 - STEP_WEIGHT) * mix)
        + (1 - TOPIC_USER_WEIGHT) * text_sim
    )
    dist = 1.0 - sim
    np.fill_diagonal(dist, 0.0)
    best: tuple[float, np.ndarray] = (-1.0, identity)
    # a real level above the topics: about three to five topics a domain, as for flat labels
    for k in range(max(2, -(-n // 5)), max(2, n // 3) + 1):
        if k >= n:
            break
        labels = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage="average").fit_predict(
            dist
        )
        s = float(silhouette_score(dist, labels, metric="precomputed"))
        if s > best[0]:
            best = (s, np.asarray(labels, dtype=np.int64))
    return best[1], max(best[0], 0.0)


__all__ = ["behaviour_weight", "boilerplate", "choose_k", "group_topics", "item_vectors", "joined", "unit"]
