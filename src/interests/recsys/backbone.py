"""The item-item backbone fused into the two-tower score, chosen on valid among EASE and ItemKNN.

``score(u, i) = sum_j decay**age(j) * B[j, i]`` where ``age(j)`` counts the
user's events after ``j`` and ``B`` is an item-item matrix: EASE weights
(Steck 2019) or ItemKNN cosine similarities (each item's ``k`` nearest
neighbours). With ``decay=1`` this is plain EASE / ItemKNN. ``B`` is kept
sparse: the ``keep`` largest weights (by magnitude) of every item column, so a
saved model stays small.

Which matrix fits a data set is not known in advance (on small catalogues
ItemKNN can beat EASE; issue #15), so :func:`choose_backbone` picks the kind,
its parameter and the decay on the valid split's NDCG@20, the way the
baselines of ``interests evaluate`` are tuned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import Histories

log = logging.getLogger(__name__)

#: the backbones :func:`choose_backbone` tries: (kind, parameter) with EASE's lambda / ItemKNN's k
BACKBONE_GRID: tuple[tuple[str, float], ...] = (
    ("ease", 100.0),
    ("ease", 500.0),
    ("itemknn", 50),
    ("itemknn", 100),
    ("itemknn", 200),
)
DECAY_GRID: tuple[float, ...] = (0.8, 0.9, 0.95, 1.0)
KINDS = ("ease", "itemknn")


def recency_matrix(query: Histories, decay: float) -> Any:
    """Sparse ``users x items`` history matrix, each event weighted ``decay**age``; repeats add up."""
    import scipy.sparse as sp

    rows = np.repeat(np.arange(query.n_users), [len(x) for x in query.items])
    cols = np.concatenate(query.items) if query.items else np.zeros(0, dtype=np.int64)
    vals = np.concatenate([decay ** np.arange(len(x))[::-1] for x in query.items]) if query.items else cols
    m = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(query.n_users, query.n_items))
    m.sum_duplicates()
    return m


def prune_columns(b: Any, keep: int) -> Any:
    """Keep the ``keep`` largest-magnitude entries of every column of ``b`` (sparse CSR)."""
    import scipy.sparse as sp

    if sp.issparse(b):
        b = b.toarray()
    n = b.shape[0]
    if keep <= 0 or keep >= n - 1:
        return sp.csr_matrix(b)
    idx = np.argpartition(-np.abs(b), keep - 1, axis=0)[:keep, :]
    cols = np.broadcast_to(np.arange(b.shape[1]), idx.shape)
    return sp.csc_matrix((b[idx, cols].ravel(), (idx.ravel(), cols.ravel())), shape=b.shape).tocsr()


class ItemWeights:
    """Item-item matrices of one data set, computed once per (kind, parameter) and shared by callers.

    ``interests evaluate`` keeps one per protocol stage, so the baselines, the
    backbone choice and every seed and variant of the two-tower reuse the same
    EASE inversions.
    """

    def __init__(self, data: Histories) -> None:
        self.data = data
        self.mats: dict[tuple[str, float], Any] = {}

    def get(self, kind: str, param: float) -> Any:
        """EASE (dense ``ndarray``) or ItemKNN (sparse, ``k`` per column) weights of ``data``."""
        from .baselines import EASE, ItemKNN

        if kind not in KINDS:
            raise ValueError(f"unknown backbone kind {kind!r}; one of {', '.join(KINDS)}")
        key = (kind, float(param))
        if key not in self.mats:
            t = time.perf_counter()
            m: Any
            if kind == "ease":
                m = EASE(float(param)).fit(self.data).B
            else:
                m = ItemKNN(int(param)).fit(self.data).sim
            assert m is not None
            self.mats[key] = m
            log.info("%s %s: %.1fs", kind, param, time.perf_counter() - t)
        return self.mats[key]


@dataclass
class ItemItemBackbone:
    """A sparse item-item matrix scored over recency-weighted histories."""

    B: Any  # scipy CSR [items, items]
    decay: float = 0.9
    kind: str = "ease"
    param: float = 100.0  # EASE lambda or ItemKNN k

    @classmethod
    def fit(
        cls,
        data: Histories,
        kind: str = "ease",
        param: float = 100.0,
        decay: float = 0.9,
        keep: int = 500,
        weights: ItemWeights | None = None,
    ) -> ItemItemBackbone:
        """Fit ``kind`` on ``data`` (or take it from ``weights``, built on the same data) and prune."""
        w = weights if weights is not None else ItemWeights(data)
        return cls(prune_columns(w.get(kind, param), keep), decay, kind, param)

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

    def describe(self) -> str:
        what = f"EASE lambda {self.param:g}" if self.kind == "ease" else f"ItemKNN k={int(self.param)}"
        return f"{what}, decay {self.decay:g}"


#: the name earlier versions used (EASE was the only kind)
EaseBackbone = ItemItemBackbone


def choose_backbone(
    weights: ItemWeights,
    query: Histories,
    targets: Sequence[np.ndarray],
    *,
    grid: Sequence[tuple[str, float]] = BACKBONE_GRID,
    decays: Sequence[float] = DECAY_GRID,
    keep: int = 500,
) -> tuple[ItemItemBackbone, dict[str, Any]]:
    """The (kind, parameter, decay) of ``grid x decays`` with the best NDCG@20 on ``query``/``targets``.

    ``weights`` are fit on the events before ``targets`` (the valid split's
    fit data). Ties go to the earlier grid entry (EASE first, smaller values
    first). Returns the chosen backbone (fit on ``weights.data``) and a record
    of every candidate's valid NDCG@20.
    """
    from .baselines import mean_ndcg

    n = weights.data.n_items
    grid = [(k, p) for k, p in grid if k != "itemknn" or n > 1]
    seen: dict[str, float] = {}
    best: tuple[float, int, ItemItemBackbone] | None = None
    for order, (kind, param) in enumerate(grid):
        b = prune_columns(weights.get(kind, param), keep)
        for d in decays:
            cand = ItemItemBackbone(b, d, kind, param)
            s = mean_ndcg(cand.score(query), query, targets, 20)
            seen[cand.describe()] = round(s, 5)
            if best is None or s > best[0]:
                best = (s, order, cand)
    assert best is not None, "an empty backbone grid"
    log.info("backbone: %s (valid NDCG@20 %.4f)", best[2].describe(), best[0])
    return best[2], {"kind": best[2].kind, "param": best[2].param, "decay": best[2].decay, "valid": seen}


__all__ = [
    "BACKBONE_GRID",
    "DECAY_GRID",
    "EaseBackbone",
    "ItemItemBackbone",
    "ItemWeights",
    "choose_backbone",
    "prune_columns",
    "recency_matrix",
]
