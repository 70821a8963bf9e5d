"""L1/L2 clustering of the users' interest nodes, and readable labels for the clusters.

A node is one user's domain (L1) or topic (L2) as named in their profile.
Its vector mixes the embedding of its name with the mean embedding of its
evidence items (``item_text``): names carry the user's wording, evidence
carries what the items are, so "Sci-fi classics" and "Star Wars stuff"
meet when their items do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..encode import TextEncoder
from ..events import Catalog
from ..schema import InterestProfile

NAME_WEIGHT = 0.3  # share of the node's name in its vector; the rest is its evidence
MIN_TOPIC_SILHOUETTE = 0.1  # below this, a domain's topic nodes stay one topic
MAX_TREE_POINTS = 5000  # above this, the Ward tree is built on a sample (its memory is O(n^2))
SILHOUETTE_TOLERANCE = 0.05  # take the smallest k scoring within 5% of the best score (parsimony)


@dataclass
class Node:
    """A user's domain or topic node."""

    user_id: str
    name: str
    item_ids: list[str]
    parent: int = -1  # for a topic node: index of its domain node
    children: list[int] = field(default_factory=list)


def collect_nodes(profiles: Sequence[InterestProfile]) -> tuple[list[Node], list[Node]]:
    """Domain nodes and topic nodes of all profiles (topics point at their domain)."""
    domains: list[Node] = []
    topics: list[Node] = []
    for p in profiles:
        for d in p.domains:
            d_items = list(dict.fromkeys(i for t in d.topics for i in t.item_ids))
            if not d_items:
                continue
            dn = Node(p.user_id, d.name, d_items)
            domains.append(dn)
            for t in d.topics:
                if t.item_ids:
                    dn.children.append(len(topics))
                    topics.append(Node(p.user_id, t.name, list(dict.fromkeys(t.item_ids)), len(domains) - 1))
    return domains, topics


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(n == 0, 1.0, n)).astype(np.float32)


def node_vectors(
    nodes: Sequence[Node], encoder: TextEncoder, item_vectors: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Unit vectors: ``NAME_WEIGHT`` * name + (1 - ``NAME_WEIGHT``) * mean evidence."""
    if not nodes:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    names = encoder.encode([n.name for n in nodes])
    evidence = np.zeros_like(names)
    for k, n in enumerate(nodes):
        vecs = [item_vectors[i] for i in n.item_ids if i in item_vectors]
        if vecs:
            evidence[k] = _unit(np.mean(vecs, axis=0))
    return _unit(NAME_WEIGHT * names + (1 - NAME_WEIGHT) * evidence)


def _cut(tree: np.ndarray, k: int) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster

    return (fcluster(tree, t=k, criterion="maxclust") - 1).astype(np.int64)


def _polish(x: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """One KMeans run started from the clusters' centroids (fixes Ward's greedy merges)."""
    from sklearn.cluster import KMeans

    k = int(labels.max()) + 1
    centroids = np.vstack([x[labels == c].mean(axis=0) for c in range(k)])
    polished = KMeans(k, init=centroids, n_init=1, random_state=seed).fit_predict(x).astype(np.int64)
    return polished if len(set(polished.tolist())) == k else labels


def choose_clusters(
    x: np.ndarray,
    k: int | None = None,
    *,
    k_max: int = 20,
    min_silhouette: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, dict[int, float]]:
    """Cluster labels for unit vectors ``x``; ``k`` chosen by cosine silhouette when not given.

    One Ward tree is cut at every ``k`` from 2 to ``k_max``; the smallest
    ``k`` scoring within ``SILHOUETTE_TOLERANCE`` (5%) of the best score wins, and its
    clusters are polished by KMeans. Returns the labels and the silhouette
    of every ``k`` tried. With ``min_silhouette``, a best score under it
    means "no structure": one cluster.
    """
    from scipy.cluster.hierarchy import linkage
    from sklearn.metrics import silhouette_score

    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64), {}
    if n > MAX_TREE_POINTS:
        idx = np.random.default_rng(seed).choice(n, size=MAX_TREE_POINTS, replace=False)
        sub, sub_scores = choose_clusters(x[idx], k, k_max=k_max, min_silhouette=min_silhouette, seed=seed)
        k_found = int(sub.max()) + 1
        if k_found == 1:
            return np.zeros(n, dtype=np.int64), sub_scores
        centroids = np.vstack([x[idx][sub == c].mean(axis=0) for c in range(k_found)])
        return _polish(x, (x @ centroids.T).argmax(axis=1).astype(np.int64), seed), sub_scores
    distinct = len(np.unique(np.round(x, 5), axis=0))
    if distinct < 2 or (k is not None and k <= 1):
        return np.zeros(n, dtype=np.int64), {}
    tree = linkage(x.astype(np.float64), method="ward")
    if k is not None:
        return _polish(x, _cut(tree, min(k, distinct)), seed), {}
    if distinct < 3:
        return _cut(tree, 2), {}
    scores: dict[int, float] = {}
    fits: dict[int, np.ndarray] = {}
    n_sil = 3000 if n > 3000 else None
    for kk in range(2, min(k_max, distinct - 1) + 1):
        labels = _cut(tree, kk)
        if len(set(labels.tolist())) < 2:
            continue
        scores[kk] = round(
            float(silhouette_score(x, labels, metric="cosine", sample_size=n_sil, random_state=seed)), 4
        )
        fits[kk] = labels
    if not scores:
        return np.zeros(n, dtype=np.int64), scores
    best = max(scores.values())
    if min_silhouette is not None and best < min_silhouette:
        return np.zeros(n, dtype=np.int64), scores
    chosen = min(kk for kk, s in scores.items() if s >= best * (1 - SILHOUETTE_TOLERANCE))
    return _polish(x, fits[chosen], seed), scores


def _norm(name: str) -> str:
    return " ".join(name.split()).strip(" .-").casefold()


def describe(
    nodes: Sequence[Node], vectors: np.ndarray, catalog: Catalog, *, top: int = 3
) -> tuple[str, list[str], list[str]]:
    """A readable label, the most frequent node names and evidence categories of a cluster."""
    counts = Counter(_norm(n.name) for n in nodes)
    spelled: dict[str, str] = {}
    for n in nodes:
        spelled.setdefault(_norm(n.name), " ".join(n.name.split()))
    centroid = _unit(vectors.mean(axis=0))
    sims = vectors @ centroid
    closeness: dict[str, float] = {}
    for n, s in zip(nodes, sims, strict=True):
        closeness[_norm(n.name)] = max(closeness.get(_norm(n.name), -1.0), float(s))
    ranked = sorted(counts, key=lambda k: (-counts[k], -closeness[k], k))
    categories: Counter[str] = Counter()
    for n in nodes:
        for i in n.item_ids:
            categories.update(catalog.get_item(i).categories)
    names = [spelled[k] for k in ranked[:top]]
    return names[0] if names else "(unnamed)", names, [c for c, _ in categories.most_common(top)]


__all__ = ["NAME_WEIGHT", "Node", "choose_clusters", "collect_nodes", "describe", "node_vectors"]
