"""Every version of a user's profile, and the one that held at a date (``interests profile --at``).

``interests update`` keeps each replaced version in ``<profiles>.history.jsonl``,
closed rather than deleted: its ``provenance.valid_to`` is the wall time the
next version was written. Each version also records the event-time span of
the data it covers (``provenance.data_from``/``data_to``, schema 1.3; older
versions: their ``time_patterns.first_seen``/``last_seen``).

A date can be read two ways (``by``):

* ``"event"`` (default; "what did this user like on D?"): the version made
  from the events up to D: the newest version whose data ends at or before D.
  In event time a version holds from its ``data_to`` to the next version's
  ``data_to``; the first version also holds over its own data span (from
  ``data_from``), where no earlier version exists.
* ``"written"`` ("what did the profiles file say on D?"): the version whose
  wall-time interval ``[valid_from, valid_to)`` holds D.

A bare date (``2023-05-01``) means the end of that day in UTC, so the events
of that day count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError, InterestsError
from ..schema import InterestProfile
from .extract import sibling_path
from .store import iter_jsonl

By = Literal["event", "written"]


class NoVersionError(InterestsError):
    """No version of the user's profile holds at the date asked."""


@dataclass
class Version:
    """One version of a user's profile and the intervals it holds over."""

    profile: InterestProfile
    number: int  # 1 = the first written
    data_from: datetime | None
    data_to: datetime | None
    valid_from: datetime
    valid_to: datetime | None  # None: the current version
    event_from: datetime | None = None  # event-time interval: [event_from, event_to)
    event_to: datetime | None = None

    @property
    def current(self) -> bool:
        return self.valid_to is None


def parse_when(value: str | date | datetime) -> datetime:
    """A time in UTC: ISO date (the end of that day), ISO date-time (``Z`` or an offset; none: UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time.max, tzinfo=timezone.utc)
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time.max, tzinfo=timezone.utc)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"not a date: {value!r} (give 2023-05-01 or 2023-05-01T12:00:00Z)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _t(value: str | None) -> datetime | None:
    return parse_when(value) if value else None


def profile_versions(profiles: str | Path, user_id: str) -> list[Version]:
    """Every version of ``user_id``'s profile, oldest first: the history's, then the current one."""
    path = Path(profiles)
    dicts: list[tuple[dict[str, Any], str | None]] = [
        (h["profile"], h.get("valid_to"))
        for h in iter_jsonl(sibling_path(path, "history"))
        if h["user_id"] == user_id
    ]
    dicts += [(d, None) for d in iter_jsonl(path) if d.get("user_id") == user_id]
    versions: list[Version] = []
    for n, (d, closed) in enumerate(dicts, 1):
        p = InterestProfile.model_validate(d)
        prov, tp = p.provenance, p.time_patterns
        written = _t(prov.valid_from or prov.created_at)
        assert written is not None
        versions.append(
            Version(
                p,
                n,
                _t(prov.data_from or tp.first_seen),
                _t(prov.data_to or prov.last_event_at or tp.last_seen),
                written,
                _t(prov.valid_to or closed),
            )
        )
    for k, v in enumerate(versions):  # event-time intervals, and a missing valid_to from the next version
        nxt = versions[k + 1] if k + 1 < len(versions) else None
        if nxt is not None and v.valid_to is None:
            v.valid_to = nxt.valid_from
        v.event_from = v.data_from if k == 0 else v.data_to
        v.event_to = nxt.data_to if nxt is not None else None
    return versions


def _holds(start: datetime | None, end: datetime | None, at: datetime) -> bool:
    return (start is None or start <= at) and (end is None or at < end)


def version_at(profiles: str | Path, user_id: str, at: str | date | datetime, *, by: By = "event") -> Version:
    """The version of ``user_id``'s profile that held at ``at`` (see the module docstring)."""
    when = parse_when(at)
    versions = profile_versions(profiles, user_id)
    if not versions:
        raise NoVersionError(f"no profile for user {user_id!r} in {profiles} or its history")
    if by == "written":
        hits = [v for v in versions if _holds(v.valid_from, v.valid_to, when)]
    elif by == "event":
        hits = [v for v in versions if _holds(v.event_from, v.event_to, when)]
    else:
        raise ConfigError(f"by must be 'event' or 'written', not {by!r}")
    if not hits:
        first = versions[0]
        since = first.valid_from if by == "written" else first.event_from
        raise NoVersionError(
            f"no version of user {user_id!r}'s profile holds at {when.isoformat()} "
            f"({'written' if by == 'written' else 'event'} time; the first holds from "
            f"{since.isoformat() if since else 'unknown'})"
        )
    return hits[-1]


def profile_at(
    profiles: str | Path, user_id: str, at: str | date | datetime, *, by: By = "event"
) -> InterestProfile:
    """The profile ``user_id`` had at ``at``: by event time of the data (default) or wall time written."""
    return version_at(profiles, user_id, at, by=by).profile


def version_summary(v: Version) -> Mapping[str, Any]:
    """What ``interests profile`` prints about a version."""

    def iso(t: datetime | None) -> str | None:
        return None if t is None else t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")

    return {
        "version": v.number,
        "made_by": v.profile.provenance.made_by,
        "data_from": iso(v.data_from),
        "data_to": iso(v.data_to),
        "valid_from": iso(v.valid_from),
        "valid_to": iso(v.valid_to),
        "current": v.current,
    }


__all__ = [
    "NoVersionError",
    "Version",
    "parse_when",
    "profile_at",
    "profile_versions",
    "version_at",
    "version_summary",
]
