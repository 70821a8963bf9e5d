"""The evaluation protocols' splits (docs/benchmarks.md, "Protocol") and the evaluation cases built from them.

``last`` (:class:`TemporalSplit`): per-user, the latest events held out.
``time`` (:class:`GlobalTimeSplit`): one cut time for everybody.

**last.**
Each user's events are already in time order (ties in file order). The last
10% (at least 1) is **test**, the 10% before it (at least 1 when the user has
3 or more events) is **valid**, the rest **train**. Scoring valid, models see
train only; scoring test, train + valid. The cold-start segment cuts each
evaluated user's known history to its most recent ``cold_events`` events
(other users keep everything for fitting).

**time.** Two global cut times, quantiles of all event times: the test cut
leaves ``test_frac`` (10%) of the events at or after it, the valid cut
``valid_frac`` (10%) more before it. Scoring test, models see every event
before the test cut and the target is each user's first event at or after it;
scoring valid, every event before the valid cut, and the target is each
user's first event in ``[valid cut, test cut)``. A user with no event before
a cut is new at that time: nothing to rank from, so not evaluated (counted as
``new`` in :meth:`GlobalTimeSplit.counts`); their later events are not
trained on either (they are after the cut). Events sharing the cut's
timestamp are after it, so the share after a cut can exceed the fraction on
day-granular logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .data import Histories

Stage = Literal["valid", "test"]
Segment = Literal["all", "cold"]
Protocol = Literal["last", "time"]
PROTOCOLS: tuple[str, ...] = ("last", "time")


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

    def ends(self, stage: Stage) -> np.ndarray:
        """Per user: how many of their first events a model may see when scoring ``stage``."""
        return self.n_train if stage == "valid" else self.n_train + self.n_valid

    def known(self, stage: Stage) -> Histories:
        """Every user's events a model may see when scoring ``stage``."""
        users = list(range(self.data.n_users))
        return self.data.take(users, [slice(0, int(e)) for e in self.ends(stage)])

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
        return _case(self, stage, segment, cold_events)


@dataclass
class GlobalTimeSplit:
    """The ``time`` protocol: cut times ``valid_cut < test_cut`` shared by every user."""

    data: Histories
    valid_cut: float
    test_cut: float

    @classmethod
    def of(cls, data: Histories, test_frac: float = 0.1, valid_frac: float = 0.1) -> GlobalTimeSplit:
        times = np.concatenate(data.times) if data.times else np.zeros(0)
        if len(times) == 0 or np.isnan(times).any():
            from interests.errors import ConfigError

            raise ConfigError("the time protocol needs a timestamp on every event (map a time column)")
        test_cut = float(np.quantile(times, 1.0 - test_frac, method="higher"))
        valid_cut = float(np.quantile(times, 1.0 - test_frac - valid_frac, method="higher"))
        return cls(data, min(valid_cut, test_cut), test_cut)

    def cut(self, stage: Stage) -> float:
        return self.valid_cut if stage == "valid" else self.test_cut

    def ends(self, stage: Stage) -> np.ndarray:
        """Per user: how many events come before ``stage``'s cut (the events in time order)."""
        c = self.cut(stage)
        return np.array([int(np.searchsorted(t, c, side="left")) for t in self.data.times], dtype=np.int64)

    def known(self, stage: Stage) -> Histories:
        users = list(range(self.data.n_users))
        return self.data.take(users, [slice(0, int(e)) for e in self.ends(stage)])

    def targets(self, stage: Stage) -> list[np.ndarray]:
        """Per user: the first event at or after the cut (valid: before the test cut too), or none."""
        out = []
        for u, e in enumerate(self.ends(stage)):
            t = self.data.times[u]
            ok = e < len(t) and (stage == "test" or t[e] < self.test_cut)
            out.append(self.data.items[u][e : e + 1] if ok else np.zeros(0, dtype=np.int64))
        return out

    def counts(self, stage: Stage) -> dict[str, int]:
        """Users with a target after the cut: ``known`` (events before it, evaluated) and ``new``."""
        ends, targets = self.ends(stage), self.targets(stage)
        has = [len(t) > 0 for t in targets]
        return {
            "known": int(sum(h and e > 0 for h, e in zip(has, ends, strict=True))),
            "new": int(sum(h and e == 0 for h, e in zip(has, ends, strict=True))),
        }

    def case(self, stage: Stage, segment: Segment = "all", cold_events: int = 3) -> EvalCase:
        return _case(self, stage, segment, cold_events)


def make_split(data: Histories, protocol: str = "last") -> TemporalSplit | GlobalTimeSplit:
    """The split of ``protocol`` (``"last"``: per-user leave-last-out; ``"time"``: a global cut)."""
    if protocol == "last":
        return TemporalSplit.of(data)
    if protocol == "time":
        return GlobalTimeSplit.of(data)
    from interests.errors import ConfigError

    raise ConfigError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")


def _case(
    split: TemporalSplit | GlobalTimeSplit, stage: Stage, segment: Segment, cold_events: int
) -> EvalCase:
    fit = split.known(stage)
    targets = split.targets(stage)
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


__all__ = [
    "PROTOCOLS",
    "EvalCase",
    "GlobalTimeSplit",
    "Protocol",
    "Segment",
    "Stage",
    "TemporalSplit",
    "make_split",
    "split_sizes",
]
