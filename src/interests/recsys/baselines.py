"""The baselines of BENCHMARK.md: most popular, ItemKNN (cosine) and EASE (Steck 2019).

All follow one small protocol (:class:`Scorer`): ``fit(histories)`` on
known events, then ``score(query)`` gives a dense ``users x items`` score
matrix from each query user's own history (so they also score users they
were not fit on, e.g. the cold-start cut). :func:`rank` turns scores into
top-k lists with each user's seen items excluded.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .data import Histories
from .metrics import top_k


class Scorer(Protocol):
    name: str

    def fit(self, data: Histories) -> Scorer: ...

    def score(self, query: Histories) -> np.ndarray: ...


def rank(scores: np.ndarray, query: Histories, k: int) -> np.ndarray:
    """Top-``k`` item indices per row with the row user's own items excluded."""
    s = scores.astype(np.float32, copy=True)
    for r, items in enumerate(query.items):
        s[r, items] = -np.inf
    return top_k(s, k)


class MostPopular:
    """Items ranked by how many users interacted with them."""

    name = "popular"

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None

    def fit(self, data: Histories) -> MostPopular:
        x = data.matrix()
        self.counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float32)
        return self

    def score(self, query: Histories) -> np.ndarray:
        assert self.counts is not None, "fit first"
        return np.tile(self.counts, (query.n_users, 1))


class ItemKNN:
    """Item-based k-nearest neighbours: cosine similarity, ``k`` neighbours kept per item."""

    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0) -> None:
        self.k, self.shrink = k, shrink
        self.sim: object | None = None

    def fit(self, data: Histories) -> ItemKNN:
        import scipy.sparse as sp

        x = data.matrix().tocsc()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        sim = (x.T @ x).toarray().astype(np.float32)
        sim /= np.outer(norms, norms) + self.shrink + 1e-9
        np.fill_diagonal(sim, 0.0)
        k = min(self.k, sim.shape[0] - 1)
        if k < sim.shape[0] - 1:
            # keep the k largest similarities of each item (column j: neighbours of j)
            idx = np.argpartition(-sim, k - 1, axis=0)[:k, :]
            cols = np.broadcast_to(np.arange(sim.shape[1]), idx.shape)
            keep = sp.csc_matrix((sim[idx, cols].ravel(), (idx.ravel(), cols.ravel())), shape=sim.shape)
            self.sim = keep.tocsr()
        else:
            self.sim = sp.csr_matrix(sim)
        return self

    def score(self, query: Histories) -> np.ndarray:
        assert self.sim is not None, "fit first"
        return np.asarray((query.matrix() @ self.sim).todense(), dtype=np.float32)


class EASE:
    """Embarrassingly shallow autoencoder: closed-form item-item weights with zero diagonal."""

    name = "ease"

    def __init__(self, lam: float = 100.0) -> None:
        self.lam = lam
        self.B: np.ndarray | None = None

    def fit(self, data: Histories) -> EASE:
        import scipy.linalg as sl

        x = data.matrix()
        g = (x.T @ x).toarray().astype(np.float32)
        g[np.diag_indices_from(g)] += self.lam
        p = sl.inv(g, overwrite_a=True, check_finite=False)
        b = p / (-np.diag(p))
        np.fill_diagonal(b, 0.0)
        self.B = b.astype(np.float32, copy=False)
        return self

    def score(self, query: Histories) -> np.ndarray:
        assert self.B is not None, "fit first"
        return np.asarray(query.matrix() @ self.B, dtype=np.float32)


__all__ = ["EASE", "ItemKNN", "MostPopular", "Scorer", "rank"]
