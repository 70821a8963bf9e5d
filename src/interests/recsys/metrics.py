"""Ranking metrics of docs/benchmarks.md ("Protocol"): Recall@K, NDCG@K, coverage@K, diversity@K.

Binary relevance; NDCG's ideal DCG is over ``min(|targets|, K)`` items;
Recall@K is hits over ``min(|targets|, K)`` (so a perfect list scores 1; this is
the definition that reproduces the reference numbers of the protocol). All functions take ranked index lists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_at_k(ranked: Sequence[int] | np.ndarray, targets: Sequence[int] | np.ndarray, k: int) -> float:
    """Hits in the first ``k`` of ``ranked`` over ``min(|targets|, k)``."""
    t = set(np.asarray(targets).tolist())
    if not t:
        return 0.0
    hits = sum(1 for i in np.asarray(ranked)[:k].tolist() if i in t)
    return hits / min(len(t), k)


def ndcg_at_k(ranked: Sequence[int] | np.ndarray, targets: Sequence[int] | np.ndarray, k: int) -> float:
    """Binary-relevance NDCG@k with ideal DCG over ``min(|targets|, k)`` hits."""
    t = set(np.asarray(targets).tolist())
    if not t:
        return 0.0
    dcg = sum(1.0 / np.log2(r + 2) for r, i in enumerate(np.asarray(ranked)[:k].tolist()) if i in t)
    idcg = sum(1.0 / np.log2(r + 2) for r in range(min(len(t), k)))
    return float(dcg / idcg)


def coverage_at_k(ranked_lists: Sequence[Sequence[int]] | np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-``k`` list."""
    seen: set[int] = set()
    for r in ranked_lists:
        seen.update(np.asarray(r)[:k].tolist())
    return len(seen) / max(n_items, 1)


def diversity_at_k(ranked: Sequence[int] | np.ndarray, domains: np.ndarray, k: int) -> float:
    """Intra-list diversity: distinct top-level domains in the top ``k`` over its length."""
    top = np.asarray(ranked)[:k]
    if len(top) == 0:
        return 0.0
    return len(set(domains[top].tolist())) / len(top)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores of each row, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.arange(scores.shape[0])[:, None]
    order = np.lexsort((part, -scores[rows, part]), axis=1)
    return part[rows, order]


def summarize(
    ranked_lists: np.ndarray,
    targets: Sequence[np.ndarray],
    n_items: int,
    domains: np.ndarray | None = None,
    ks: Sequence[int] = (10, 20),
) -> dict[str, float]:
    """Mean Recall/NDCG@ks plus coverage@max(ks) and diversity@max(ks) over users."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = float(
            np.mean([recall_at_k(r, t, k) for r, t in zip(ranked_lists, targets, strict=True)])
        )
        out[f"ndcg@{k}"] = float(
            np.mean([ndcg_at_k(r, t, k) for r, t in zip(ranked_lists, targets, strict=True)])
        )
    kmax = max(ks)
    out[f"coverage@{kmax}"] = coverage_at_k(ranked_lists, n_items, kmax)
    if domains is not None:
        out[f"diversity@{kmax}"] = float(np.mean([diversity_at_k(r, domains, kmax) for r in ranked_lists]))
    return out


__all__ = ["coverage_at_k", "diversity_at_k", "ndcg_at_k", "recall_at_k", "summarize", "top_k"]
