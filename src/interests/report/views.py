"""What a report shows, computed once for both formats: per-user and run-level views.

The templates only lay these views out; every number, chart and piece of
evidence is decided here (and tested here).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from ..events import Catalog, Event, UserHistory
from ..ingest.timeparse import zone as tz_zone
from ..schema import (
    DomainTrend,
    ErrorRecord,
    InterestProfile,
    Provenance,
    QuarantinedRow,
    Sentiment,
    Stats,
    TimePatterns,
)
from ..stats import weekly_grid
from . import charts
from .evidence import EvidenceItem, events_by_item, evidence_items
from .recommendations import Recommendation

if TYPE_CHECKING:  # pragma: no cover
    from ..taxonomy.model import Taxonomy

MAX_MONTHS = 48
NOT_CITED = "items not cited as evidence"


def domain_key(name: str) -> str:
    """A domain name normalised for filtering (whitespace collapsed, lower case, no ``|``)."""
    return " ".join(name.split()).lower().replace("|", "/")


def slug(text: str) -> str:
    """An HTML id made of ``[A-Za-z0-9_-]`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"


@dataclass
class TopicView:
    name: str
    weight: float
    sentiment: Sentiment
    attributes: list[tuple[str, str]]
    items: list[EvidenceItem]
    anchor: str

    @property
    def sentiment_meter(self) -> Markup:
        return charts.meter(self.sentiment.rating, title=f"sentiment of {self.name}")


@dataclass
class DomainView:
    name: str
    weight: float
    sentiment: Sentiment
    topics: list[TopicView]
    trend: DomainTrend | None
    color: str
    anchor: str

    @property
    def n_items(self) -> int:
        return len({i.item_id for t in self.topics for i in t.items})

    @property
    def weight_bar(self) -> Markup:
        return charts.weight_bar(self.weight, title=f"weight of {self.name}", fill=self.color)

    @property
    def sentiment_meter(self) -> Markup:
        return charts.meter(self.sentiment.rating, title=f"sentiment of {self.name}")


@dataclass
class UserView:
    """Everything one user's report shows."""

    user_id: str
    anchor: str
    summary: str
    domains: list[DomainView]
    sentiment: Sentiment
    stats: Stats
    time_patterns: TimePatterns
    provenance: Provenance
    attributes: list[tuple[str, str, str, str]]  # name, value, domain, topic
    trends: list[DomainTrend]
    heatmap: Markup
    heatmap_exact: bool
    heat_rows: list[str]
    activity: Markup | None
    timeline: Markup | None
    versions: Markup | None  # how the domains moved across the profile's versions (interests update)
    version_rows: list[tuple[str, str]]  # (version label, "domain 40%, ...") for Markdown
    sparks: list[tuple[str, str, str]]  # domain, trend, sparkline (Markdown)
    periods: tuple[str, str] | None
    recommendations: list[Recommendation]
    has_logs: bool
    n_logged_events: int
    not_in_logs: list[str]
    search: str = ""
    full: bool = True

    @property
    def n_topics(self) -> int:
        return sum(len(d.topics) for d in self.domains)

    @property
    def domain_keys(self) -> str:
        """``|name|name|`` of the domains, lower-cased (what the index filter matches)."""
        return "|" + "|".join(domain_key(d.name) for d in self.domains) + "|"

    @property
    def topic_keys(self) -> str:
        """``|name|name|`` of the L2 topics, lower-cased (what the index's topic filter matches)."""
        return "|" + "|".join(domain_key(t.name) for d in self.domains for t in d.topics) + "|"

    @property
    def sentiment_meter(self) -> Markup:
        return charts.meter(self.sentiment.rating, title="sentiment of the whole profile")

    @property
    def rising(self) -> list[str]:
        return [t.domain for t in self.trends if t.trend == "rising"]

    @property
    def fading(self) -> list[str]:
        return [t.domain for t in self.trends if t.trend == "fading"]


def _grid(events: Iterable[Event], tz: str) -> list[list[float]]:
    grid: list[list[float]] = weekly_grid((e.ts for e in events if e.ts is not None), tz_zone(tz)).tolist()
    return grid


def _month(ts: float) -> tuple[int, int]:
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.year, dt.month


def _periods(stamps: Sequence[float]) -> tuple[list[str], list[tuple[int, int]]]:
    """Month labels and keys from the first to the last stamp (quarters past :data:`MAX_MONTHS`)."""
    (y0, m0), (y1, m1) = _month(min(stamps)), _month(max(stamps))
    months = [(y, m) for y in range(y0, y1 + 1) for m in range(1, 13) if (y0, m0) <= (y, m) <= (y1, m1)]
    if len(months) <= MAX_MONTHS:
        return [f"{y}-{m:02d}" for y, m in months], months
    quarters = list(dict.fromkeys((y, (m - 1) // 3 + 1) for y, m in months))
    return [f"{y}-Q{q}" for y, q in quarters], quarters


def _activity(
    profile: InterestProfile, history: UserHistory, trends: Mapping[str, DomainTrend]
) -> tuple[Markup | None, list[tuple[str, str, str]], tuple[str, str] | None]:
    stamps = [e.ts for e in history.events if e.ts is not None]
    if not stamps:
        return None, [], None
    labels, keys = _periods(stamps)
    quarterly = bool(labels) and "Q" in labels[0]
    index = {k: n for n, k in enumerate(keys)}
    domain_of: dict[str, str] = {}
    for d in profile.domains:
        for t in d.topics:
            for i in t.item_ids:
                domain_of.setdefault(i, d.name)
    names = [d.name for d in profile.domains]
    counts = {n: [0.0] * len(keys) for n in [*names, NOT_CITED]}
    for e in history.events:
        if e.ts is None:
            continue
        y, m = _month(e.ts)
        key = (y, (m - 1) // 3 + 1) if quarterly else (y, m)
        counts[domain_of.get(e.item_id, NOT_CITED)][index[key]] += 1
    if not any(counts[NOT_CITED]):
        del counts[NOT_CITED]
    series = [charts.Series(n, v, trends[n].trend if n in trends else None) for n, v in counts.items()]
    chart = charts.activity(labels, series, title=f"Activity of {profile.user_id} over time, by domain")
    sparks = [(s.name, s.trend or "", charts.sparkline(s.values)) for s in series]
    return chart, sparks, (labels[0], labels[-1])


def _timeline(tp: TimePatterns) -> Markup | None:
    spans_in = [t for t in tp.by_domain if t.first_seen and t.last_seen]
    if not spans_in or not tp.first_seen or not tp.last_seen:
        return None

    def ts(s: str) -> float:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

    lo, hi = ts(tp.first_seen), ts(tp.last_seen)
    span = max(hi - lo, 1.0)
    spans = [
        charts.Span(
            t.domain, (ts(t.first_seen) - lo) / span, (ts(t.last_seen) - lo) / span, t.trend, t.n_events
        )
        for t in spans_in
        if t.first_seen and t.last_seen
    ]
    return charts.timeline(
        spans,
        start_label=tp.first_seen[:10],
        end_label=tp.last_seen[:10],
        title="First and last seen, by domain",
    )


def version_parts(profiles_path: Path, user_id: str) -> list[tuple[str, list[tuple[str, float]]]]:
    """Every version of the user's profile (the history file, then the current one): label, weights."""
    from interests.profile.versions import profile_versions

    out = []
    for v in profile_versions(profiles_path, user_id):
        when = v.data_to or v.valid_from
        label = f"v{v.number} {when:%Y-%m-%d}" if when else f"v{v.number}"
        out.append((label, [(d.name, d.weight) for d in v.profile.domains]))
    return out


def user_view(
    profile: InterestProfile,
    *,
    history: UserHistory | None = None,
    catalog: Catalog | None = None,
    recommendations: Sequence[Recommendation] = (),
    anchor: str | None = None,
    full: bool = True,
    versions: Sequence[tuple[str, Sequence[tuple[str, float]]]] = (),
) -> UserView:
    """The view of one profile, with evidence from ``history`` and titles from ``catalog``.

    ``full=False`` skips the charts (for users listed on an index without a section).
    ``versions``: (label, [(domain, weight), ...]) of every version of the
    profile, oldest first (:func:`version_parts`); two or more make a chart.
    """
    anchor = anchor or "user-" + slug(profile.user_id)
    by_item = events_by_item(history)
    trends = {t.domain: t for t in profile.time_patterns.by_domain}
    domains = []
    attributes: list[tuple[str, str, str, str]] = []
    for di, d in enumerate(profile.domains):
        topics = []
        for ti, t in enumerate(d.topics):
            attrs = [(a.name, a.value) for a in t.attributes]
            attributes += [(n, v, d.name, t.name) for n, v in attrs]
            items = evidence_items(t.item_ids, catalog=catalog, by_item=by_item) if full else []
            topics.append(TopicView(t.name, t.weight, t.sentiment, attrs, items, f"{anchor}-d{di}-t{ti}"))
        domains.append(
            DomainView(
                d.name, d.weight, d.sentiment, topics, trends.get(d.name), charts.color(di), f"{anchor}-d{di}"
            )
        )
    tp = profile.time_patterns
    if history is not None and any(e.ts is not None for e in history.events):
        grid, exact, unit = _grid(history.events, tp.timezone), True, "events"
    else:
        grid, exact, unit = [[w * h for h in tp.hour_of_day] for w in tp.weekday], False, "share"
    heat = Markup("")
    activity: Markup | None = None
    sparks: list[tuple[str, str, str]] = []
    periods: tuple[str, str] | None = None
    timeline: Markup | None = None
    if full:
        title = f"Activity of {profile.user_id} by hour of day and weekday"
        heat = charts.heatmap(grid, title=title, unit=unit)
        activity, sparks, periods = _activity(profile, history, trends) if history else (None, [], None)
        timeline = _timeline(tp)
    logged = set(by_item)
    text = " ".join(
        [
            profile.user_id,
            profile.summary,
            *(d.name for d in profile.domains),
            *(t.name for d in profile.domains for t in d.topics),
        ]
    )
    return UserView(
        user_id=profile.user_id,
        anchor=anchor,
        summary=profile.summary,
        domains=domains,
        sentiment=profile.sentiment,
        stats=profile.stats,
        time_patterns=tp,
        provenance=profile.provenance,
        attributes=attributes,
        trends=list(tp.by_domain),
        heatmap=heat,
        heatmap_exact=exact,
        heat_rows=charts.shade_rows(grid),
        activity=activity,
        timeline=timeline,
        versions=charts.versions(versions, title=f"Domains of {profile.user_id} across profile versions")
        if full and len(versions) > 1
        else None,
        version_rows=[(lab, ", ".join(f"{n} {w:.0%}" for n, w in parts)) for lab, parts in versions]
        if len(versions) > 1
        else [],
        sparks=sparks,
        periods=periods,
        recommendations=list(recommendations),
        has_logs=history is not None,
        n_logged_events=len(history.events) if history else 0,
        not_in_logs=[i for i in profile.item_ids() if history is not None and i not in logged],
        search=" ".join(text.split()).lower(),
        full=full,
    )


@dataclass
class IndexView:
    """The run-level page: users, domain distribution, errors, quarantine, statistics."""

    users: list[UserView]
    domain_rows: list[DomainRow]
    domain_source: str
    domain_chart: Markup | None
    errors: list[ErrorRecord]
    errors_by_stage: list[tuple[str, int]]
    quarantine: list[QuarantinedRow]
    quarantine_total: int
    quarantine_by_reason: list[tuple[str, int]]
    stats: list[tuple[str, str]]
    domain_options: list[tuple[str, str]] = field(default_factory=list)  # L1 names only
    topic_options: list[tuple[str, str]] = field(default_factory=list)  # L2 names only
    sections: int = 0
    errors_given: bool = False
    quarantine_given: bool = False


@dataclass
class DomainRow:
    """One domain of the run: how many users have it, and (from a taxonomy) its items and topics."""

    label: str
    users: int
    items: int | None = None
    topics: list[str] = field(default_factory=list)


def domain_distribution(
    profiles: Sequence[InterestProfile], taxonomy: Taxonomy | None = None
) -> list[DomainRow]:
    """Domains of the run, most users first.

    From a taxonomy (anything with ``.domains`` whose entries have ``label``,
    ``n_users``, ``size`` and ``topics``): its global domains. Otherwise the
    profiles' own domain names (whitespace and case folded) with the number
    of users that have each.
    """
    if taxonomy is not None:
        rows = []
        for d in getattr(taxonomy, "domains", None) or []:
            topics = [str(_get(t, "label", "name", "id")) for t in _get(d, "topics") or []]
            size = _get(d, "size")
            rows.append(
                DomainRow(
                    label=str(_get(d, "label", "name", "id")),
                    users=int(_get(d, "n_users", "users") or 0),
                    items=None if size is None else int(size),
                    topics=topics,
                )
            )
        return sorted(rows, key=lambda r: (-r.users, -(r.items or 0), r.label))
    spelled: dict[str, Counter[str]] = {}
    users: Counter[str] = Counter()
    for p in profiles:
        for key in {domain_key(d.name) for d in p.domains}:
            users[key] += 1
        for d in p.domains:
            spelled.setdefault(domain_key(d.name), Counter())[d.name] += 1
    rows = [DomainRow(spelled[k].most_common(1)[0][0], n) for k, n in users.items()]
    return sorted(rows, key=lambda r: (-r.users, r.label))


def _get(obj: Any, *names: str) -> Any:
    for n in names:
        v = obj.get(n) if isinstance(obj, Mapping) else getattr(obj, n, None)
        if v is not None:
            return v
    return None


def _mean(values: Sequence[float]) -> str:
    return f"{sum(values) / len(values):.2f}" if values else "\u2013"


def run_statistics(
    profiles: Sequence[InterestProfile], errors: Sequence[ErrorRecord], quarantine_total: int
) -> list[tuple[str, str]]:
    """Extraction statistics of a run as ``(label, value)`` rows."""
    prov = [p.provenance for p in profiles]
    n_users = len(profiles) + len({e.user_id for e in errors} - {p.user_id for p in profiles})
    created = sorted(p.created_at for p in prov)
    rows = [
        ("users", str(n_users)),
        ("profiles", str(len(profiles))),
        ("error records", str(len(errors))),
        ("success rate", f"{len(profiles) / n_users:.1%}" if n_users else "\u2013"),
        ("quarantined rows", str(quarantine_total)),
        ("events used", str(sum(p.events_used for p in prov))),
        ("events in logs", str(sum(p.events_total for p in prov))),
        ("truncated prompts", str(sum(p.truncated for p in prov))),
        ("mean attempts", _mean([float(p.attempts) for p in prov])),
        ("mean domains per profile", _mean([float(len(p.domains)) for p in profiles])),
        ("mean topics per profile", _mean([float(sum(len(d.topics) for d in p.domains)) for p in profiles])),
        ("mean evidence coverage", _mean([p.stats.evidence_coverage for p in profiles])),
        ("models", ", ".join(sorted({p.model for p in prov})) or "\u2013"),
        ("backends", ", ".join(sorted({p.backend for p in prov})) or "\u2013"),
        (
            "prompt templates",
            ", ".join(sorted({f"{p.prompt_template} ({p.prompt_hash[:12]})" for p in prov})) or "\u2013",
        ),
        ("created", f"{created[0]} \u2013 {created[-1]}" if created else "\u2013"),
    ]
    return rows


def filter_options(profiles: Sequence[InterestProfile], level: int) -> list[tuple[str, str]]:
    """``(key, label)`` of every name at one level of the profiles (1: L1 domains, 2: L2 topics), by key.

    The index's domain filter lists level 1 and its topic filter level 2, so a
    topic name never shows up as a domain (and the reverse).
    """
    labels: dict[str, str] = {}
    for p in profiles:
        for d in p.domains:
            for name in [d.name] if level == 1 else [t.name for t in d.topics]:
                labels.setdefault(domain_key(name), name)
    return sorted(labels.items())


def index_view(
    profiles: Sequence[InterestProfile],
    users: Sequence[UserView],
    *,
    taxonomy: Taxonomy | None = None,
    errors: Sequence[ErrorRecord] = (),
    quarantine: Sequence[QuarantinedRow] = (),
    quarantine_shown: int = 500,
    errors_given: bool = False,
    quarantine_given: bool = False,
    sections: int | None = None,
) -> IndexView:
    """The run-level view over ``profiles`` and their user views."""
    rows = domain_distribution(profiles, taxonomy)
    source = "profiles" if taxonomy is None else "taxonomy"
    by_users = any(r.users for r in rows)
    bars = [(r.label, float(r.users if by_users else r.items or 0)) for r in rows[:30]]
    title = "Users per domain" if by_users else "Catalogue items per domain"
    return IndexView(
        users=list(users),
        domain_rows=rows,
        domain_source=source,
        domain_chart=charts.bars(bars, title=title, kind="domains") if rows else None,
        errors=list(errors),
        errors_by_stage=Counter(str(e.stage) for e in errors).most_common(),
        quarantine=list(quarantine[:quarantine_shown]),
        quarantine_total=len(quarantine),
        quarantine_by_reason=Counter(q.reason for q in quarantine).most_common(),
        stats=run_statistics(profiles, errors, len(quarantine)),
        domain_options=filter_options(profiles, 1),
        topic_options=filter_options(profiles, 2),
        sections=len(users) if sections is None else min(sections, len(users)),
        errors_given=errors_given,
        quarantine_given=quarantine_given,
    )


__all__ = [
    "DomainRow",
    "DomainView",
    "IndexView",
    "TopicView",
    "UserView",
    "domain_distribution",
    "domain_key",
    "filter_options",
    "index_view",
    "run_statistics",
    "slug",
    "user_view",
]
