"""The per-user temporal split of docs/benchmarks.md ("Protocol") and the evaluation cases built from it.

Each user's events are already in time order (ties in file order). The last
10% (at least 1) is **test**, the 10% before it (at least 1 when the user has
3 or more events) is **valid**, the rest **train**. Scoring valid, models see
train only; scoring test, train + valid. The cold-start segment cuts each
evaluated user's known history to its most recent ``cold_events`` events
(other users keep everything for fitting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .data import Histories

Stage = Literal["valid", "test"]
Segment = Literal["all", "cold"]


def split_sizes(n: int, frac: float = 0.1) -> tuple[int, int, int]:
    """(n_train, n_valid, n_test) of a user with ``n`` events."""
    if n <= 0:
        return 0, 0, 0
    n_test = max(1, round(frac * n))  # Python rounds half to even, as the reference did
    n_valid = max(1, round(frac * n)) if n >= 3 else 0
    n_valid = min(n_valid, n - n_test)
    return n - n_test - n_valid, n_valid, n_test


@dataclass
class TemporalSplit:
    """Boundaries of each user's train / valid / test events."""

    data: Histories
    n_train: np.ndarray
    n_valid: np.ndarray
    n_test: np.ndarray

    @classmethod
    def of(cls, data: Histories, frac: float = 0.1) -> TemporalSplit:
        sizes = np.array([split_sizes(len(x), frac) for x in data.items], dtype=np.int64).reshape(-1, 3)
        return cls(data, sizes[:, 0], sizes[:, 1], sizes[:, 2])

    def known(self, stage: Stage) -> Histories:
        """Every user's events a model may see when scoring ``stage``."""
        ends = self.n_train if stage == "valid" else self.n_train + self.n_valid
        users = list(range(self.data.n_users))
        return self.data.take(users, [slice(0, int(e)) for e in ends])

    def targets(self, stage: Stage) -> list[np.ndarray]:
        """Per-user target item indices of ``stage`` (distinct)."""
        out = []
        for u, items in enumerate(self.data.items):
            a = int(self.n_train[u]) + (0 if stage == "valid" else int(self.n_valid[u]))
            b = a + int(self.n_valid[u] if stage == "valid" else self.n_test[u])
            out.append(np.unique(items[a:b]))
        return out

    def case(self, stage: Stage, segment: Segment = "all", cold_events: int = 3) -> EvalCase:
        """The fit data, query histories, exclusions and targets of one evaluation."""
        fit = self.known(stage)
        targets = self.targets(stage)
        users = [u for u in range(fit.n_users) if len(targets[u]) > 0 and len(fit.items[u]) > 0]
        if segment == "all":
            query = fit.take(users)
        else:
            query = fit.take(users, [slice(max(0, len(fit.items[u]) - cold_events), None) for u in users])
        return EvalCase(stage, segment, fit, query, users, [targets[u] for u in users])


@dataclass
class EvalCase:
    """One evaluation: fit on ``fit``; score ``query`` users; rank against ``targets``.

    ``users`` are the rows of ``fit`` the query users are; their excluded items are
    exactly their ``query`` items (train(+valid), or the cold-start cut).
    """

    stage: Stage
    segment: Segment
    fit: Histories
    query: Histories
    users: list[int]
    targets: list[np.ndarray]


__all__ = ["EvalCase", "Segment", "Stage", "TemporalSplit", "split_sizes"]
