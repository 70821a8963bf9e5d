"""The backbone fused into the two-tower score, chosen on valid among EASE, ItemKNN and SASRec.

Item-item backbones: ``score(u, i) = sum_j decay**age(j) * B[j, i]`` where
``age(j)`` counts the user's events after ``j`` and ``B`` is an item-item
matrix: EASE weights (Steck 2019) or ItemKNN cosine similarities (each item's
``k`` nearest neighbours). With ``decay=1`` this is plain EASE / ItemKNN.
``B`` is kept sparse: the ``keep`` largest weights (by magnitude) of every
item column, so a saved model stays small.

The sequential backbone (:class:`SequenceBackbone`) is SASRec with the
full-catalogue loss (:mod:`interests.recsys.sasrec`), the strongest baseline
on data whose order carries the signal (issue #15).

Which backbone fits a data set is not known in advance (on small catalogues
ItemKNN can beat EASE, and SASRec both), so :func:`choose_backbone` picks the
kind, its parameter and the decay (SASRec: its epoch count) on the valid
split's NDCG@20, the way the baselines of ``interests evaluate`` are tuned.
Every backbone answers ``score(query)``, ``contributions(query, row, item)``
(per history item, summing to the score: what explanations show) and
``describe()``.
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
KINDS = ("ease", "itemknn")  # item-item kinds; "sasrec" is the sequential one
ALL_KINDS = (*KINDS, "sasrec")


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
    """Backbone fits of one data set (item-item matrices, SASRec models), each computed once.

    ``interests evaluate`` keeps one per protocol stage, so the baselines, the
    backbone choice and every seed and variant of the two-tower reuse the same
    EASE inversions and SASRec trainings.
    """

    def __init__(self, data: Histories) -> None:
        self.data = data
        self.mats: dict[tuple[str, float], Any] = {}
        self.seqs: dict[tuple[Any, ...], Any] = {}

    def sasrec(
        self,
        seed: int,
        *,
        epochs: int | None = None,
        valid: tuple[Histories, Sequence[np.ndarray]] | None = None,
        config: dict[str, Any] | None = None,
    ) -> Any:
        """SASRec fit on ``data``: ``epochs`` epochs, or early-stopped on ``valid`` (NDCG@20).

        An early-stopped model keeps the weights of its best epoch, which are the weights of
        a run of exactly that many epochs (same seed, same order): it also answers later asks
        for that epoch count.
        """
        from .sasrec import SASRec, SASRecConfig

        default = SASRecConfig()
        over = {k: v for k, v in (config or {}).items() if getattr(default, k, None) != v}  # one key a model
        frozen = tuple(sorted(over.items()))
        key = (seed, epochs, frozen) if valid is None else (seed, "valid", frozen)
        if key not in self.seqs:
            m = SASRec(**{**over, "seed": seed}).fit(self.data, valid=valid, epochs=epochs)
            self.seqs[key] = m
            if valid is not None:
                self.seqs.setdefault((seed, max(1, m.train_log.best_epoch), frozen), m)
            log.info("sasrec seed %s: %d epochs, %.1fs", seed, m.train_log.epochs, m.train_log.seconds)
        return self.seqs[key]

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

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        b = self.B.tocsr()
        return {
            f"{prefix}indptr": b.indptr.astype(np.int64),
            f"{prefix}indices": b.indices.astype(np.int64),
            f"{prefix}data": b.data.astype(np.float32),
        }


#: the name earlier versions used (EASE was the only kind)
EaseBackbone = ItemItemBackbone


@dataclass
class SequenceBackbone:
    """SASRec as the backbone: the last position's hidden state against every item."""

    model: Any  # interests.recsys.sasrec.SASRec, trained
    kind: str = "sasrec"

    @property
    def epochs(self) -> int:
        return int(self.model.train_log.best_epoch or self.model.train_log.epochs)

    def score(self, query: Histories) -> np.ndarray:
        return np.asarray(self.model.score(query), dtype=np.float32)

    def contributions(self, query: Histories, row: int, item: int) -> dict[int, float]:
        """The score split over the history items it reads, in proportion to leave-one-out drops.

        A Transformer's score is not a sum over items, so this is an attribution, not an
        identity: for each of the last ``max_len`` positions, how much the item's score falls
        when that event is left out (rises count 0); the score is shared in those proportions
        (equally when nothing falls), so the terms still add up to it exactly.
        """
        items = np.asarray(query.items[row])
        L = self.model.config.max_len
        first = max(0, len(items) - L)
        positions = list(range(first, len(items)))
        if not positions:
            return {}
        full = float(self.score(query.take([row]))[0, item])
        drop = Histories(
            [str(p) for p in positions],
            query.item_ids,
            [np.delete(items, p) for p in positions],
            [np.zeros(len(items) - 1) for _ in positions],
            [np.zeros(len(items) - 1) for _ in positions],
            item_index=query.item_index,
        )
        left = self.score(drop)[:, item].astype(np.float64)
        d = np.maximum(full - left, 0.0)
        share = d / d.sum() if d.sum() > 0 else np.full(len(positions), 1.0 / len(positions))
        out: dict[int, float] = {}
        for p, w in zip(positions, share, strict=True):
            j = int(items[p])
            out[j] = out.get(j, 0.0) + full * float(w)
        return out

    def describe(self) -> str:
        return f"SASRec, {self.epochs} epochs"

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": v for k, v in self.model.state().items()}


Backbone = ItemItemBackbone | SequenceBackbone


def load_backbone(t: dict[str, np.ndarray], prefix: str, n_items: int, cfg: Any) -> Backbone | None:
    """The backbone :meth:`to_arrays` saved under ``prefix`` for a model of ``cfg``, if any."""
    import scipy.sparse as sp

    from .sasrec import SASRec

    if cfg.backbone_kind == "sasrec":
        state = {k[len(prefix) :]: v for k, v in t.items() if k.startswith(prefix)}
        if not state:
            return None
        m = SASRec.from_state(n_items, state, **cfg.sasrec)
        m.train_log.best_epoch = m.train_log.epochs = cfg.sasrec_epochs
        return SequenceBackbone(m)
    if f"{prefix}data" not in t:
        return None
    b = sp.csr_matrix(
        (t[f"{prefix}data"], t[f"{prefix}indices"], t[f"{prefix}indptr"]), shape=(n_items, n_items)
    )
    kind = cfg.backbone_kind if cfg.backbone_kind in KINDS else "ease"
    param = cfg.ease_lambda if kind == "ease" else cfg.knn_k
    return ItemItemBackbone(b, cfg.recency_decay, kind, param)


def choose_backbone(
    weights: ItemWeights,
    query: Histories,
    targets: Sequence[np.ndarray],
    *,
    grid: Sequence[tuple[str, float]] = BACKBONE_GRID,
    decays: Sequence[float] = DECAY_GRID,
    keep: int = 500,
    sequential: bool = False,
    seed: int = 0,
    sasrec: dict[str, Any] | None = None,
) -> tuple[Backbone, dict[str, Any]]:
    """The (kind, parameter, decay) of ``grid x decays`` with the best NDCG@20 on ``query``/``targets``.

    ``weights`` are fit on the events before ``targets`` (the valid split's
    fit data). Ties go to the earlier grid entry (EASE first, smaller values
    first). ``sequential`` also trains SASRec (``seed``, config overrides
    ``sasrec``) early-stopped on the same targets, taken when its best valid
    NDCG@20 beats every item-item candidate. Returns the chosen backbone (fit
    on ``weights.data``) and a record of every candidate's valid NDCG@20.
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
    chosen: Backbone = best[2]
    score = best[0]
    if sequential:
        m = weights.sasrec(seed, valid=(query, targets), config=sasrec)
        seq = SequenceBackbone(m)
        s = float(m.train_log.best_valid or 0.0)
        seen[seq.describe()] = round(s, 5)
        if s > score:
            chosen, score = seq, s
    log.info("backbone: %s (valid NDCG@20 %.4f)", chosen.describe(), score)
    record: dict[str, Any] = {"kind": chosen.kind, "valid_ndcg@20": round(score, 5), "valid": seen}
    if isinstance(chosen, SequenceBackbone):
        record["epochs"] = chosen.epochs
    else:
        record |= {"param": chosen.param, "decay": chosen.decay}
    return chosen, record


__all__ = [
    "ALL_KINDS",
    "BACKBONE_GRID",
    "Backbone",
    "DECAY_GRID",
    "EaseBackbone",
    "ItemItemBackbone",
    "ItemWeights",
    "SequenceBackbone",
    "choose_backbone",
    "load_backbone",
    "prune_columns",
    "recency_matrix",
]
