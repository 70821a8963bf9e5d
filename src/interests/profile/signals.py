"""Exact per-user statistics: counts, category shares, rhythms, trends, rating sentiment.

"Never ask the model what can be computed": everything here is computed from
the events and goes both into the prompt (as facts for the model to
interpret) and into the profile's L3 fields (as the ground truth).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import pairwise

from ..events import Catalog, Event, UserHistory
from ..ingest.timeparse import zone as tz_zone
from ..schema import CategoryShare, DomainTrend, Sentiment, Stats, TimePatterns
from ..stats import normalise_rating, rhythm
from ..stats import rating_scale as scale_of

SESSION_GAP_S = 30 * 60
TREND_THRESHOLD = 0.1  # change in share of activity between the halves of a history
SECONDS_PER_YEAR = 365.25 * 86400


@dataclass
class UserSignals:
    """Everything computed exactly for one user."""

    stats: Stats
    time_patterns: TimePatterns
    sentiment: Sentiment
    category_trends: list[DomainTrend]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def rating_sentiment(events: Iterable[Event], scale: tuple[float, float] | None) -> Sentiment:
    """Mean normalised rating of ``events`` (``rating=None`` when none is rated)."""
    ratings = [e.rating for e in events if e.rating is not None]
    if not ratings or scale is None:
        return Sentiment(rating=None, n_ratings=0)
    mean = statistics.fmean(normalise_rating(r, scale) for r in ratings)
    return Sentiment(rating=round(mean, 4), n_ratings=len(ratings))


def trend(events: Sequence[Event], member: Sequence[bool]) -> tuple[str, float]:
    """Rising/steady/fading of a subset of a user's events (``member`` flags it).

    Compares the subset's share of activity in the later half of the user's
    timed events with the earlier half (split by count, so bursts do not
    dominate), and returns the least-squares slope of membership against
    time in years as the magnitude.
    """
    timed = [(e.ts, m) for e, m in zip(events, member, strict=True) if e.ts is not None]
    if len(timed) < 4:
        return "steady", 0.0
    half = len(timed) // 2
    early = sum(m for _, m in timed[:half]) / half
    late = sum(m for _, m in timed[half:]) / (len(timed) - half)
    xs = [t / SECONDS_PER_YEAR for t, _ in timed]
    ys = [1.0 if m else 0.0 for _, m in timed]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var > 0 else 0.0
    diff = late - early
    label = "rising" if diff > TREND_THRESHOLD else "fading" if diff < -TREND_THRESHOLD else "steady"
    return label, round(slope, 4)


def subset_trend(name: str, events: Sequence[Event], member: Sequence[bool]) -> DomainTrend:
    """The :class:`DomainTrend` of the events flagged by ``member``."""
    mine = [e for e, m in zip(events, member, strict=True) if m]
    label, slope = trend(events, member)
    stamps = sorted(e.ts for e in mine if e.ts is not None)
    gaps = [(b - a) / 86400 for a, b in pairwise(stamps)]
    return DomainTrend(
        domain=name,
        trend=label,  # type: ignore[arg-type]
        slope=slope,
        n_events=len(mine),
        first_seen=iso(stamps[0]) if stamps else None,
        last_seen=iso(stamps[-1]) if stamps else None,
        cadence_days=round(statistics.median(gaps), 3) if gaps else None,
    )


def _sessions(stamps: Sequence[float]) -> list[list[float]]:
    sessions: list[list[float]] = []
    for ts in stamps:
        if sessions and ts - sessions[-1][-1] <= SESSION_GAP_S:
            sessions[-1].append(ts)
        else:
            sessions.append([ts])
    return sessions


def time_patterns(events: Sequence[Event], *, tz: str = "UTC", as_of: float | None = None) -> TimePatterns:
    """Hour-of-day and weekday shares, first/last seen, recency and sessions."""
    stamps = sorted(e.ts for e in events if e.ts is not None)
    zone = tz_zone(tz)
    hour_shares, day_shares = rhythm(stamps, zone)
    hours, days = [round(float(h), 4) for h in hour_shares], [round(float(d), 4) for d in day_shares]
    if not stamps:
        return TimePatterns(timezone=tz, hour_of_day=hours, weekday=days)
    sessions = _sessions(stamps)
    ref = as_of if as_of is not None else stamps[-1]
    gaps = [(b[0] - a[-1]) / 86400 for a, b in pairwise(sessions)]
    local_days = {datetime.fromtimestamp(ts, tz=zone).date() for ts in stamps}
    return TimePatterns(
        timezone=tz,
        hour_of_day=hours,
        weekday=days,
        first_seen=iso(stamps[0]),
        last_seen=iso(stamps[-1]),
        as_of=iso(ref),
        recency_days=round(max(0.0, ref - stamps[-1]) / 86400, 3),
        active_days=len(local_days),
        n_sessions=len(sessions),
        median_session_events=float(statistics.median(len(s) for s in sessions)),
        median_gap_days=round(statistics.median(gaps), 3) if gaps else None,
    )


def top_category(item_categories: Sequence[str]) -> str | None:
    return item_categories[0] if item_categories else None


def dataset_reference(
    histories: Iterable[UserHistory],
) -> tuple[tuple[float, float] | None, float | None]:
    """The data set's rating scale (min, max) and latest timestamp: shared by every user's signals."""
    histories = list(histories)
    stamps = [e.ts for h in histories for e in h.events if e.ts is not None]
    return scale_of(e.rating for h in histories for e in h.events), max(stamps, default=None)


def compute_signals(
    history: UserHistory,
    catalog: Catalog | None = None,
    *,
    tz: str = "UTC",
    as_of: float | None = None,
    rating_scale: tuple[float, float] | None = None,
    top_k: int = 10,
) -> UserSignals:
    """Exact statistics of one user's history (the ``signals`` stage)."""
    events = history.events
    cat = catalog or Catalog()
    ratings = [e.rating for e in events if e.rating is not None]
    scale = rating_scale or scale_of(ratings)
    counts: Counter[str] = Counter()
    for e in events:
        for c in cat.get_item(e.item_id).categories:
            counts[c] += 1
    n = len(events)
    top = [CategoryShare(name=c, count=k, share=round(k / n, 4)) for c, k in counts.most_common(top_k)]
    stats = Stats(
        n_events=n,
        n_items=len({e.item_id for e in events}),
        n_rated=len(ratings),
        mean_rating=round(statistics.fmean(ratings), 4) if ratings else None,
        rating_scale=scale,
        n_with_text=sum(1 for e in events if e.text),
        event_types=dict(Counter(e.event or "event" for e in events)),
        top_categories=top,
    )
    trends = [
        subset_trend(c.name, events, [c.name in cat.get_item(e.item_id).categories for e in events])
        for c in top[:5]
    ]
    return UserSignals(
        stats=stats,
        time_patterns=time_patterns(events, tz=tz, as_of=as_of),
        sentiment=rating_sentiment(events, scale),
        category_trends=trends,
    )


__all__ = [
    "UserSignals",
    "compute_signals",
    "dataset_reference",
    "iso",
    "rating_sentiment",
    "subset_trend",
    "time_patterns",
    "trend",
]
