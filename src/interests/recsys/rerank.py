"""Diversity re-ranking across top-level (L1) domains, MMR-style.

Greedy: from the ``pool`` best candidates, repeatedly take the item with the
highest ``(1 - strength) * relevance - strength * redundancy``, where
relevance is the score rescaled to 0..1 over the pool and redundancy is the
share of already chosen items in the candidate's domain. ``strength=0``
keeps the original order; ``strength=1`` cycles through domains.
"""

from __future__ import annotations

import numpy as np


def mmr_rerank(
    candidates: np.ndarray, scores: np.ndarray, domains: np.ndarray, k: int, strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank ``candidates`` (best first, with their ``scores``) to ``k`` items; returns (items, scores)."""
    if strength <= 0 or len(candidates) == 0:
        return candidates[:k], scores[:k]
    s = scores.astype(np.float64)
    finite = np.isfinite(s)
    lo, hi = (s[finite].min(), s[finite].max()) if finite.any() else (0.0, 1.0)
    rel = np.where(finite, (s - lo) / (hi - lo if hi > lo else 1.0), -1.0)
    dom = domains[candidates]
    chosen: list[int] = []
    counts: dict[int, int] = {}
    left = np.ones(len(candidates), dtype=bool)
    for _ in range(min(k, len(candidates))):
        red = np.array([counts.get(int(d), 0) for d in dom], dtype=np.float64) / max(len(chosen), 1)
        val = (1 - strength) * rel - strength * red
        val[~left] = -np.inf
        j = int(np.argmax(val))
        chosen.append(j)
        left[j] = False
        counts[int(dom[j])] = counts.get(int(dom[j]), 0) + 1
    idx = np.array(chosen, dtype=np.int64)
    return candidates[idx], scores[idx]


__all__ = ["mmr_rerank"]
