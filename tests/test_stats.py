"""The shared statistics (rating scale, weekly rhythm) every stage uses."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from interests.stats import normalise_rating, rating_scale, rhythm, weekly_grid


def test_rating_scale_skips_missing_and_nan() -> None:
    assert rating_scale([None, 3.0, math.nan, 1.0, 5.0, None]) == (1.0, 5.0)
    assert rating_scale([None, math.nan]) is None
    assert rating_scale([]) is None
    assert rating_scale([4.0]) == (4.0, 4.0)


def test_normalise_rating_scalar_and_array_agree() -> None:
    scale = (1.0, 5.0)
    values = np.array([1.0, 2.0, 3.0, 5.0, 7.0])
    assert normalise_rating(3.0, scale) == 0.0
    assert normalise_rating(5.0, scale) == 1.0 and normalise_rating(1.0, scale) == -1.0
    assert normalise_rating(9.0, scale) == 1.0  # clipped
    np.testing.assert_allclose(
        normalise_rating(values, scale), [normalise_rating(float(v), scale) for v in values]
    )
    assert normalise_rating(4.0, (4.0, 4.0)) == 0.0
    assert not normalise_rating(values, (4.0, 4.0)).any()


def test_weekly_grid_fast_utc_path_equals_calendar_path() -> None:
    rng = np.random.default_rng(0)
    stamps = rng.uniform(0, 2e9, size=500)
    fast = weekly_grid(stamps)  # arithmetic on seconds
    calendar = weekly_grid(stamps, ZoneInfo("UTC"))  # datetime per stamp
    np.testing.assert_array_equal(fast, calendar)
    assert fast.sum() == 500


def test_weekly_grid_in_a_time_zone() -> None:
    # Monday 2024-01-01 23:30 UTC is Tuesday 01:30 in Europe/Helsinki (UTC+2)
    ts = datetime(2024, 1, 1, 23, 30, tzinfo=timezone.utc).timestamp()
    utc = weekly_grid([ts])
    local = weekly_grid([ts], ZoneInfo("Europe/Helsinki"))
    assert utc[0, 23] == 1 and utc.sum() == 1
    assert local[1, 1] == 1 and local.sum() == 1
    fixed = weekly_grid([ts], timezone(timedelta(hours=2)))
    np.testing.assert_array_equal(fixed, local)


def test_rhythm_shares() -> None:
    base = datetime(2024, 1, 6, 20, tzinfo=timezone.utc).timestamp()  # a Saturday evening
    hours, days = rhythm([base, base + 60, base + 86400])  # two on Saturday 20h, one on Sunday 20h
    assert hours[20] == 1.0 and hours.sum() == 1.0
    np.testing.assert_allclose(days[5:], [2 / 3, 1 / 3])
    h0, d0 = rhythm([])
    assert not h0.any() and not d0.any()


def test_rating_scale_of_an_array_equals_the_scale_of_its_values() -> None:
    values = np.array([3.0, np.nan, 1.0, 5.0])
    assert rating_scale(values) == rating_scale(values.tolist()) == (1.0, 5.0)
    assert rating_scale(np.array([np.nan])) is None
