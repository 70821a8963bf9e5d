"""Item vectors and clusters: what groups items where the catalogue has no informative level.

Behaviour (a truncated SVD of the user-item matrix: items that the same
users touch) joined with text (an SVD of TF-IDF over title, description and
attribute values); KMeans picks topics (k by silhouette), and topics are
grouped into domains by the users who mix them, the moves between them from
one event to the next, and their text (:func:`group_topics`). Text alone
fails when items of a topic share no words; behaviour alone fails for items
few users touched; measured in docs/benchmarks.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..events import Catalog

if TYPE_CHECKING:
    from .item_groups import UserItems

#: dimensions of the behaviour and text item vectors used for clustering
BEHAVIOUR_DIM = 16
TEXT_DIM = 32
#: relative weight of behaviour against text in the joined item vector
BEHAVIOUR_WEIGHT = 0.5
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


def joined(behaviour: np.ndarray, text: np.ndarray) -> np.ndarray:
    return np.hstack([np.sqrt(BEHAVIOUR_WEIGHT) * behaviour, np.sqrt(1 - BEHAVIOUR_WEIGHT) * text])


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
    return items, unit(behaviour), unit(text)


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


__all__ = ["choose_k", "group_topics", "item_vectors", "joined", "unit"]
