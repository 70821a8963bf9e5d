"""L3 per user against the shared taxonomy: one float32 row of named columns per user.

With D global domains and T global topics (ids from ``taxonomy.json``, in
tree order), a row holds these blocks; a column is named ``block:key``
(``domain_weight:d02``, ``hour:19``, ``domain_hour:d02:19``), scalars by
their block name alone:

===================== ===== ===========================================================
block                 width meaning
===================== ===== ===========================================================
domain_weight         D     share of the profile's cited evidence items in the domain
topic_weight          T     same per topic (sums to 1 over T)
domain_activity       D     share of the user's events in the domain (= weight without histories)
topic_activity        T     same per topic
domain_sentiment      D     mean rating mapped onto -1..1 (0 when nothing rated)
domain_n_ratings      D     number of ratings behind it
topic_sentiment       T     same per topic
domain_trend          D     +1 rising, 0 steady, -1 fading (share of activity, later vs earlier half)
domain_slope          D     least-squares slope of the domain's share of activity per year
domain_recency_days   D     days from the user's last event to the last event in the domain (-1: never)
domain_freshness      D     exp(-recency_days / 90); 0 when never seen
domain_cadence_days   D     median days between the domain's events (0 when < 2 events)
domain_hour           D*24  the domain's events by hour of day (UTC), shares
domain_weekday        D*7   the domain's events by weekday (Monday first), shares
topic_trend           T     as domain_trend, per topic
topic_freshness       T     as domain_freshness, per topic
hour                  24    all events by hour of day (shares)
weekday               7     all events by weekday (shares)
entropy_domain        1     Shannon entropy of domain_activity / log(D), 0..1 (diversity)
entropy_topic         1     Shannon entropy of topic_activity / log(T), 0..1
drift                 1     total variation distance between the domain mix of the first
                            and second half of the user's events (0 same, 1 disjoint)
sentiment             1     mean rating of all the user's events on -1..1 (0 when none)
recency_days          1     days from the user's last event to the latest event of any user
n_events              1     events used
n_items               1     distinct items cited as evidence in the profile
===================== ===== ===========================================================

Without histories, activity equals weight, sentiment comes from the
profile's node sentiment, rhythm from its time patterns, trends from its
``by_domain`` entries (mapped onto global domains through their evidence),
and per-domain rhythm, recency, cadence and drift are 0.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..profile.signals import trend
from ..stats import normalise_rating, rating_scale, rhythm

if TYPE_CHECKING:
    from ..events import Event, UserHistory
    from ..schema import InterestProfile
    from .model import ItemAssignment, Taxonomy

Put = Callable[[np.ndarray, str, "np.ndarray | float | Sequence[float]"], None]
FRESHNESS_DAYS = 90.0
TREND_VALUE = {"rising": 1.0, "steady": 0.0, "fading": -1.0}


def column_layout(domain_ids: Sequence[str], topic_ids: Sequence[str]) -> list[str]:
    """Column names of a user-vector row, in order."""
    D = [f":{d}" for d in domain_ids]
    T = [f":{t}" for t in topic_ids]
    cols: list[str] = []
    for block, keys in [
        ("domain_weight", D),
        ("topic_weight", T),
        ("domain_activity", D),
        ("topic_activity", T),
        ("domain_sentiment", D),
        ("domain_n_ratings", D),
        ("topic_sentiment", T),
        ("domain_trend", D),
        ("domain_slope", D),
        ("domain_recency_days", D),
        ("domain_freshness", D),
        ("domain_cadence_days", D),
    ]:
        cols += [block + k for k in keys]
    cols += [f"domain_hour:{d}:{h}" for d in domain_ids for h in range(24)]
    cols += [f"domain_weekday:{d}:{w}" for d in domain_ids for w in range(7)]
    cols += ["topic_trend" + k for k in T] + ["topic_freshness" + k for k in T]
    cols += [f"hour:{h}" for h in range(24)] + [f"weekday:{w}" for w in range(7)]
    cols += ["entropy_domain", "entropy_topic", "drift", "sentiment", "recency_days", "n_events", "n_items"]
    return cols


@dataclass
class UserVectors:
    """A float32 matrix [users, columns] with a name for each row and column."""

    user_ids: list[str]
    columns: list[str]
    matrix: np.ndarray
    domain_ids: list[str]
    topic_ids: list[str]

    def block(self, name: str) -> np.ndarray:
        """The columns of one block (``"domain_weight"``, ``"hour"``, ``"drift"``...)."""
        idx = [k for k, c in enumerate(self.columns) if c == name or c.startswith(name + ":")]
        if not idx:
            raise KeyError(name)
        return self.matrix[:, idx]

    def row(self, user_id: str) -> dict[str, float]:
        r = self.matrix[self.user_ids.index(user_id)]
        return dict(zip(self.columns, (float(v) for v in r), strict=True))

    def save(self, path: str | Path) -> Path:
        """Write Parquet: ``user_id`` then one float32 column per name (schema metadata has the ids)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = [pa.array(self.user_ids, pa.string())] + [
            pa.array(self.matrix[:, k], pa.float32()) for k in range(self.matrix.shape[1])
        ]
        meta = {
            b"interests.format": b"user_vectors/1.0",
            b"domain_ids": json.dumps(self.domain_ids).encode(),
            b"topic_ids": json.dumps(self.topic_ids).encode(),
        }
        table = pa.table(arrays, names=["user_id", *self.columns]).replace_schema_metadata(meta)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out)
        return out

    @classmethod
    def load(cls, path: str | Path) -> UserVectors:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        cols = [c for c in table.column_names if c != "user_id"]
        matrix = np.column_stack([table.column(c).to_numpy() for c in cols]).astype(np.float32)
        return cls(
            user_ids=[str(u) for u in table.column("user_id").to_pylist()],
            columns=cols,
            matrix=matrix.reshape(table.num_rows, len(cols)),
            domain_ids=json.loads(meta.get(b"domain_ids", b"[]")),
            topic_ids=json.loads(meta.get(b"topic_ids", b"[]")),
        )


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    if len(p) < 2:
        return 0.0
    return float(-(p * np.log(p)).sum())


def _node_ratings(profile: InterestProfile) -> dict[str, tuple[float, int]]:
    out: dict[str, tuple[float, int]] = {}
    for d in profile.domains:
        for t in d.topics:
            s = t.sentiment if t.sentiment.rating is not None else d.sentiment
            if s.rating is not None:
                for i in t.item_ids:
                    out.setdefault(i, (s.rating, max(s.n_ratings, 1)))
    return out


def compute_user_vectors(
    taxonomy: Taxonomy,
    profiles: Sequence[InterestProfile],
    histories: Mapping[str, UserHistory] | None = None,
) -> UserVectors:
    """One row of :func:`column_layout` per profile (see the module docstring)."""
    dom_ids, top_ids = taxonomy.domain_ids, taxonomy.topic_ids
    d_index = {d: k for k, d in enumerate(dom_ids)}
    t_index = {t: k for k, t in enumerate(top_ids)}
    cols = column_layout(dom_ids, top_ids)
    starts: dict[str, int] = {}
    for k, c in enumerate(cols):
        starts.setdefault(c.split(":", 1)[0], k)
    n_d, n_t = len(dom_ids), len(top_ids)
    scale = rating_scale(e.rating for h in (histories or {}).values() for e in h.events)
    scale = scale if scale and scale[0] < scale[1] else None
    latest = max(
        (e.ts for h in (histories or {}).values() for e in h.events if e.ts is not None), default=None
    )
    assign = taxonomy.assignments
    rows = np.zeros((len(profiles), len(cols)), dtype=np.float32)

    def put(r: np.ndarray, block: str, values: np.ndarray | float | Sequence[float]) -> None:
        start = starts[block]
        v = np.atleast_1d(np.asarray(values, dtype=np.float32)).ravel()
        r[start : start + len(v)] = v

    for row, profile in zip(rows, profiles, strict=True):
        cited = [i for i in dict.fromkeys(i for d in profile.domains for t in d.topics for i in t.item_ids)]
        known = [i for i in cited if i in assign]
        w_d, w_t = np.zeros(n_d), np.zeros(n_t)
        for i in known:
            w_d[d_index[assign[i].domain_id]] += 1
            w_t[t_index[assign[i].topic_id]] += 1
        if known:
            w_d, w_t = w_d / len(known), w_t / len(known)
        put(row, "domain_weight", w_d)
        put(row, "topic_weight", w_t)
        put(row, "n_items", len(cited))
        history = (histories or {}).get(profile.user_id)
        if history is not None and history.events:
            _from_history(row, put, history.events, assign, d_index, t_index, scale, latest)
        else:
            _from_profile(row, put, profile, known, assign, d_index, t_index, w_d, w_t)
        act_d = row[starts["domain_activity"] : starts["domain_activity"] + n_d].astype(np.float64)
        act_t = row[starts["topic_activity"] : starts["topic_activity"] + n_t].astype(np.float64)
        put(row, "entropy_domain", _entropy(act_d) / math.log(n_d) if n_d > 1 else 0.0)
        put(row, "entropy_topic", _entropy(act_t) / math.log(n_t) if n_t > 1 else 0.0)
    return UserVectors([p.user_id for p in profiles], cols, rows, list(dom_ids), list(top_ids))


def _from_history(
    row: np.ndarray,
    put: Put,
    events: Sequence[Event],
    assign: Mapping[str, ItemAssignment],
    d_index: Mapping[str, int],
    t_index: Mapping[str, int],
    scale: tuple[float, float] | None,
    latest: float | None,
) -> None:
    n_d, n_t = len(d_index), len(t_index)
    ev_d = [d_index[assign[e.item_id].domain_id] if e.item_id in assign else -1 for e in events]
    ev_t = [t_index[assign[e.item_id].topic_id] if e.item_id in assign else -1 for e in events]
    stamps = [e.ts for e in events if e.ts is not None]
    hours, days = rhythm(stamps)
    put(row, "hour", hours)
    put(row, "weekday", days)
    put(row, "n_events", len(events))
    last = max(stamps) if stamps else None
    put(row, "recency_days", (latest - last) / 86400 if latest is not None and last is not None else 0.0)
    norm = [normalise_rating(e.rating, scale) if e.rating is not None and scale else None for e in events]
    rated = [v for v in norm if v is not None]
    put(row, "sentiment", statistics.fmean(rated) if rated else 0.0)

    def per_node(labels: list[int], n: int) -> dict[str, np.ndarray]:
        out = {k: np.zeros(n) for k in ("act", "sent", "nr", "trend", "slope", "rec", "fresh", "cad")}
        out["hour"], out["weekday"] = np.zeros((n, 24)), np.zeros((n, 7))
        mapped = sum(1 for x in labels if x >= 0)
        for k in range(n):
            member = [x == k for x in labels]
            count = sum(member)
            if not count:
                out["rec"][k] = -1.0
                continue
            out["act"][k] = count / max(mapped, 1)
            vals = [v for v, m in zip(norm, member, strict=True) if m and v is not None]
            out["sent"][k] = statistics.fmean(vals) if vals else 0.0
            out["nr"][k] = len(vals)
            label, slope = trend(events, member)
            out["trend"][k], out["slope"][k] = TREND_VALUE[label], slope
            mine = sorted(e.ts for e, m in zip(events, member, strict=True) if m and e.ts is not None)
            if mine and last is not None:
                days_ago = (last - mine[-1]) / 86400
                out["rec"][k], out["fresh"][k] = days_ago, math.exp(-days_ago / FRESHNESS_DAYS)
                gaps = [(b - a) / 86400 for a, b in itertools.pairwise(mine)]
                out["cad"][k] = statistics.median(gaps) if gaps else 0.0
                out["hour"][k], out["weekday"][k] = rhythm(mine)
        return out

    dom, top = per_node(ev_d, n_d), per_node(ev_t, n_t)
    put(row, "domain_activity", dom["act"])
    put(row, "topic_activity", top["act"])
    put(row, "domain_sentiment", dom["sent"])
    put(row, "domain_n_ratings", dom["nr"])
    put(row, "topic_sentiment", top["sent"])
    put(row, "domain_trend", dom["trend"])
    put(row, "domain_slope", dom["slope"])
    put(row, "domain_recency_days", dom["rec"])
    put(row, "domain_freshness", dom["fresh"])
    put(row, "domain_cadence_days", dom["cad"])
    put(row, "domain_hour", dom["hour"])
    put(row, "domain_weekday", dom["weekday"])
    put(row, "topic_trend", top["trend"])
    put(row, "topic_freshness", top["fresh"])
    mapped = [x for x in ev_d if x >= 0]
    if len(mapped) >= 2 and n_d:
        half = len(mapped) // 2
        early = np.bincount(mapped[:half], minlength=n_d) / half
        late = np.bincount(mapped[half:], minlength=n_d) / (len(mapped) - half)
        put(row, "drift", 0.5 * float(np.abs(early - late).sum()))


def _from_profile(
    row: np.ndarray,
    put: Put,
    profile: InterestProfile,
    known: Sequence[str],
    assign: Mapping[str, ItemAssignment],
    d_index: Mapping[str, int],
    t_index: Mapping[str, int],
    w_d: np.ndarray,
    w_t: np.ndarray,
) -> None:
    n_d, n_t = len(d_index), len(t_index)
    put(row, "domain_activity", w_d)
    put(row, "topic_activity", w_t)
    tp = profile.time_patterns
    put(row, "hour", tp.hour_of_day)
    put(row, "weekday", tp.weekday)
    put(row, "n_events", profile.stats.n_events)
    put(row, "recency_days", tp.recency_days or 0.0)
    put(row, "sentiment", profile.sentiment.rating or 0.0)
    put(row, "domain_recency_days", -np.ones(n_d))
    ratings = _node_ratings(profile)
    s_d, n_r, s_t, c_t = np.zeros(n_d), np.zeros(n_d), np.zeros(n_t), np.zeros(n_t)
    for i in known:
        if i in ratings:
            d, t = d_index[assign[i].domain_id], t_index[assign[i].topic_id]
            s_d[d] += ratings[i][0]
            n_r[d] += 1
            s_t[t] += ratings[i][0]
            c_t[t] += 1
    put(row, "domain_sentiment", np.divide(s_d, n_r, out=np.zeros(n_d), where=n_r > 0))
    put(row, "domain_n_ratings", n_r)
    put(row, "topic_sentiment", np.divide(s_t, c_t, out=np.zeros(n_t), where=c_t > 0))
    # trends of the profile's own domains, mapped through the majority of their evidence
    trend_d, slope_d, best = np.zeros(n_d), np.zeros(n_d), np.zeros(n_d)
    by_name = {t.domain: t for t in tp.by_domain}
    for node in profile.domains:
        hits = [d_index[assign[i].domain_id] for t in node.topics for i in t.item_ids if i in assign]
        entry = by_name.get(node.name)
        if not hits or entry is None:
            continue
        k = max(set(hits), key=hits.count)
        if node.weight > best[k]:
            best[k], trend_d[k], slope_d[k] = node.weight, TREND_VALUE[entry.trend], entry.slope
    put(row, "domain_trend", trend_d)
    put(row, "domain_slope", slope_d)


__all__ = ["FRESHNESS_DAYS", "UserVectors", "column_layout", "compute_user_vectors", "rating_scale"]
