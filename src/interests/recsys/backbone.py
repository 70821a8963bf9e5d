"""The item-item backbone fused into the two-tower score: EASE over a recency-weighted history.

``score(u, i) = sum_j decay**age(j) * B[j, i]`` where ``B`` are EASE weights
(Steck 2019) and ``age(j)`` counts the user's events after ``j``. With
``decay=1`` this is plain EASE. ``B`` is kept sparse: the ``keep`` largest
weights (by magnitude) of every item column, so a saved model stays small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import Histories


def recency_matrix(query: Histories, decay: float) -> Any:
    """Sparse ``users x items`` history matrix, each event weighted ``decay**age``; repeats add up."""
    import scipy.sparse as sp

    rows = np.repeat(np.arange(query.n_users), [len(x) for x in query.items])
    cols = np.concatenate(query.items) if query.items else np.zeros(0, dtype=np.int64)
    vals = np.concatenate([decay ** np.arange(len(x))[::-1] for x in query.items]) if query.items else cols
    m = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(query.n_users, query.n_items))
    m.sum_duplicates()
    return m


def prune_columns(b: np.ndarray, keep: int) -> Any:
    """Keep the ``keep`` largest-magnitude entries of every column of ``b`` (sparse CSR)."""
    import scipy.sparse as sp

    n = b.shape[0]
    if keep <= 0 or keep >= n - 1:
        return sp.csr_matrix(b)
    idx = np.argpartition(-np.abs(b), keep - 1, axis=0)[:keep, :]
    cols = np.broadcast_to(np.arange(b.shape[1]), idx.shape)
    return sp.csc_matrix((b[idx, cols].ravel(), (idx.ravel(), cols.ravel())), shape=b.shape).tocsr()


@dataclass
class EaseBackbone:
    """EASE weights (sparse) scored over recency-weighted histories."""

    B: Any  # scipy CSR [items, items]
    decay: float = 0.9

    @classmethod
    def fit(
        cls,
        data: Histories,
        lam: float = 100.0,
        decay: float = 0.9,
        keep: int = 500,
        dense: np.ndarray | None = None,
    ) -> EaseBackbone:
        """Fit EASE on ``data`` (or reuse precomputed dense weights ``dense``) and prune."""
        from .baselines import EASE

        b = dense if dense is not None else EASE(lam).fit(data).B
        assert b is not None
        return cls(prune_columns(b, keep), decay)

    def score(self, query: Histories) -> np.ndarray:
        return np.asarray((recency_matrix(query, self.decay) @ self.B).todense(), dtype=np.float32)

    def contributions(self, query: Histories, row: int, item: int) -> dict[int, float]:
        """Per history item ``j``: ``w_j * B[j, item]`` (they sum to the backbone score)."""
        m = recency_matrix(query.take([row]), self.decay)
        col = self.B[:, item].toarray().ravel()
        out: dict[int, float] = {}
        for j, w in zip(m.indices.tolist(), m.data.tolist(), strict=True):
            out[j] = out.get(j, 0.0) + float(w * col[j])
        return out


__all__ = ["EaseBackbone", "prune_columns", "recency_matrix"]
