"""What every stage computes the same way over events: the rating scale and the weekly rhythm.

Signals (profiles), the taxonomy's user vectors, the recommender's L3 features
and the reports all use these, so a rhythm or a normalised rating means the
same thing wherever it appears.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone, tzinfo
from typing import overload

import numpy as np

DAY = 86400


def rating_scale(ratings: Iterable[float | None]) -> tuple[float, float] | None:
    """``(min, max)`` of the ratings given (``None`` values skipped), or ``None`` when there are none."""
    if isinstance(ratings, np.ndarray):  # the recommender's arrays, NaN for "no rating": no Python loop
        r = ratings[~np.isnan(ratings)]
        return (float(r.min()), float(r.max())) if len(r) else None
    lo = hi = None
    for r in ratings:
        if r is not None and r == r:  # skips NaN, the recommender's "no rating"
            lo = r if lo is None else min(lo, r)
            hi = r if hi is None else max(hi, r)
    return (float(lo), float(hi)) if lo is not None and hi is not None else None


@overload
def normalise_rating(rating: float, scale: tuple[float, float]) -> float: ...
@overload
def normalise_rating(rating: np.ndarray, scale: tuple[float, float]) -> np.ndarray: ...
def normalise_rating(rating: float | np.ndarray, scale: tuple[float, float]) -> float | np.ndarray:
    """Map ratings linearly from ``scale`` onto -1..1 (0 when the scale is a single value)."""
    lo, hi = scale
    if isinstance(rating, np.ndarray):
        if hi <= lo:
            return np.zeros_like(rating, dtype=np.float64)
        return np.clip(2.0 * (rating - lo) / (hi - lo) - 1.0, -1.0, 1.0)
    if hi <= lo:
        return 0.0
    return max(-1.0, min(1.0, 2.0 * (rating - lo) / (hi - lo) - 1.0))


def weekly_grid(stamps: Iterable[float], tz: tzinfo | None = None) -> np.ndarray:
    """Event counts by weekday (rows, Monday first) and hour (columns) in ``tz`` (UTC by default)."""
    t = np.fromiter(stamps, dtype=np.float64)
    grid = np.zeros((7, 24))
    if not len(t):
        return grid
    if tz is None or tz is timezone.utc:
        hours = ((t % DAY) // 3600).astype(np.int64)
        days = ((t // DAY + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday
    else:
        local = [datetime.fromtimestamp(ts, tz=tz) for ts in t]
        hours = np.array([d.hour for d in local], dtype=np.int64)
        days = np.array([d.weekday() for d in local], dtype=np.int64)
    np.add.at(grid, (days, hours), 1.0)
    return grid


def rhythm(stamps: Iterable[float], tz: tzinfo | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Shares of events by hour of day (24) and weekday (7, Monday first); zeros without events."""
    grid = weekly_grid(stamps, tz)
    n = max(grid.sum(), 1.0)
    return grid.sum(axis=0) / n, grid.sum(axis=1) / n


__all__ = ["normalise_rating", "rating_scale", "rhythm", "weekly_grid"]
