"""The ``time`` protocol: one global cut; nothing trained on is after it; targets are first events after."""

from __future__ import annotations

import numpy as np
import pytest

from interests.errors import ConfigError
from interests.recsys.data import Histories
from interests.recsys.split import GlobalTimeSplit, make_split


def world() -> Histories:
    """Users with staggered starts on a shared clock (some start after the cuts: new users)."""
    rng = np.random.default_rng(0)
    items, times = [], []
    for u in range(40):
        start = u * 4.0  # the last users begin late
        t = np.sort(start + rng.uniform(0, 60, 8)).astype(np.float64)
        items.append(rng.integers(0, 12, 8))
        times.append(t)
    return Histories(
        [f"u{u}" for u in range(40)],
        [str(i) for i in range(12)],
        items,
        times,
        [np.full(8, np.nan) for _ in range(40)],
    )


def test_nothing_known_comes_after_the_cut_and_targets_are_first_events_after() -> None:
    data = world()
    split = GlobalTimeSplit.of(data)
    assert split.valid_cut < split.test_cut
    all_t = np.concatenate(data.times)
    assert 0.05 <= float(np.mean(all_t >= split.test_cut)) <= 0.2
    for stage in ("valid", "test"):
        cut = split.cut(stage)
        known = split.known(stage)
        assert all((t < cut).all() for t in known.times)  # no training event at or after the cut
        case = split.case(stage)
        for u, tgt in zip(case.users, case.targets, strict=True):
            t = data.times[u]
            first = int(np.argmax(t >= cut))
            assert t[first] >= cut and (first == 0 or t[first - 1] < cut)
            assert tgt.tolist() == [data.items[u][first]]  # the first event after the cut
            assert len(case.fit.items[u]) == first > 0  # evaluated users have a history
            if stage == "valid":
                assert t[first] < split.test_cut  # valid targets come before the test cut
        counts = split.counts(stage)
        assert counts["known"] == len(case.users)
    assert split.counts("valid")["new"] > 0  # the late starters are new users, not evaluated
    # valid sees strictly less than test
    assert sum(map(len, split.known("valid").items)) < sum(map(len, split.known("test").items))


def test_make_split_names_the_protocols() -> None:
    data = world()
    assert isinstance(make_split(data, "time"), GlobalTimeSplit)
    assert (make_split(data, "last").ends("test") >= make_split(data, "last").ends("valid")).all()
    with pytest.raises(ConfigError):
        make_split(data, "random")
    no_time = Histories(
        data.user_ids, data.item_ids, data.items, [t * np.nan for t in data.times], data.ratings
    )
    with pytest.raises(ConfigError, match="timestamp"):
        GlobalTimeSplit.of(no_time)
