"""Evidence behind each node: item titles, dates, ratings, review snippets and log rows.

Every item a profile cites is looked up in the catalogue (title, categories,
attributes) and, when the logs are given, in the user's history: each event
on it becomes an :class:`EvidenceEvent` that names its row (``events.csv:42``,
from ``Event.source`` and ``Event.line``) as text. The rows carry no links: a
link relative to the report breaks once the report is moved, and one absolute
link a row weighs more than the row. A report links each log file once
instead, by an absolute ``file://`` URI (:func:`source_uri`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..events import Catalog, Event, UserHistory
from ..profile.redact import redact

SNIPPET_CHARS = 200


@dataclass
class EvidenceEvent:
    """One logged interaction with an evidence item."""

    when: str | None
    date: str | None
    event: str | None
    rating: float | None
    text: str | None
    source: str
    line: int

    @property
    def where(self) -> str:
        """``file:line`` of the log row (file name only), or ``""`` when unknown."""
        if not self.source:
            return ""
        name = os.path.basename(self.source)
        return f"{name}:{self.line}" if self.line else name


@dataclass
class EvidenceItem:
    """An item cited as evidence, with its catalogue data and the user's events on it."""

    item_id: str
    title: str
    categories: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    events: list[EvidenceEvent] = field(default_factory=list)

    @property
    def ratings(self) -> list[float]:
        return [e.rating for e in self.events if e.rating is not None]

    @property
    def snippets(self) -> list[str]:
        return [e.text for e in self.events if e.text]


def snippet(text: str | None, limit: int = SNIPPET_CHARS) -> str | None:
    """Whitespace-collapsed text cut to ``limit`` characters (``None`` stays ``None``)."""
    if not text:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


def source_uri(source: str) -> str | None:
    """The absolute ``file://`` URI of a log file (``None`` for no source): it survives moving the report.

    The path is percent-quoted by :meth:`pathlib.Path.as_uri`, so a source name
    cannot become a ``javascript:`` (or any other scheme) URL.
    """
    if not source:
        return None
    return Path(source).resolve().as_uri()


def sources(items: Iterable[EvidenceItem]) -> list[tuple[str, str]]:
    """``(file name, file:// URI)`` of every log file the evidence rows of ``items`` cite, by name."""
    named = {e.source for i in items for e in i.events if e.source}
    out = {(os.path.basename(s), uri) for s in named if (uri := source_uri(s))}
    return sorted(out)


def _iso(ts: float | None) -> tuple[str | None, str | None]:
    if ts is None:
        return None, None
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.isoformat(timespec="minutes").replace("+00:00", "Z"), dt.date().isoformat()


def evidence_event(e: Event) -> EvidenceEvent:
    when, date = _iso(e.ts)
    return EvidenceEvent(
        when=when,
        date=date,
        event=e.event,
        rating=e.rating,
        text=snippet(redact(e.text)),  # reports never show personal data from the logs
        source=e.source,
        line=e.line,
    )


def events_by_item(history: UserHistory | None) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for e in history.events if history else []:
        out.setdefault(e.item_id, []).append(e)
    return out


def evidence_items(
    item_ids: Sequence[str],
    *,
    catalog: Catalog | None,
    by_item: dict[str, list[Event]],
) -> list[EvidenceItem]:
    """The :class:`EvidenceItem` of each id, in the profile's order."""
    cat = catalog or Catalog()
    out = []
    for iid in item_ids:
        item = cat.get_item(iid)
        out.append(
            EvidenceItem(
                item_id=iid,
                title=redact(item.label()) or item.item_id,
                categories=list(item.categories),
                attributes=dict(item.attributes),
                events=[evidence_event(e) for e in by_item.get(iid, [])],
            )
        )
    return out


__all__ = [
    "EvidenceEvent",
    "EvidenceItem",
    "events_by_item",
    "evidence_event",
    "evidence_items",
    "snippet",
    "source_uri",
    "sources",
]
