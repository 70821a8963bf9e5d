"""Evidence behind each node: item titles, dates, ratings, review snippets and log rows.

Every item a profile cites is looked up in the catalogue (title, categories,
attributes) and, when the logs are given, in the user's history: each event
on it becomes an :class:`EvidenceEvent` that points back at its row
(``Event.source`` and ``Event.line``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

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
    href: str | None

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


def source_href(source: str, line: int, link_base: Path | None) -> str | None:
    """A link to the log file, relative to the report's folder when it can be.

    The path is percent-quoted, so a source name cannot become a
    ``javascript:`` (or any other scheme) URL.
    """
    if not source:
        return None
    path = Path(source)
    if link_base is not None:
        try:
            rel = os.path.relpath(path.resolve(), link_base.resolve())
            return quote(Path(rel).as_posix())
        except ValueError:  # another drive on Windows
            pass
    return "file://" + quote(path.resolve().as_posix())


def _iso(ts: float | None) -> tuple[str | None, str | None]:
    if ts is None:
        return None, None
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.isoformat(timespec="minutes").replace("+00:00", "Z"), dt.date().isoformat()


def evidence_event(e: Event, link_base: Path | None) -> EvidenceEvent:
    when, date = _iso(e.ts)
    return EvidenceEvent(
        when=when,
        date=date,
        event=e.event,
        rating=e.rating,
        text=snippet(redact(e.text)),  # reports never show personal data from the logs
        source=e.source,
        line=e.line,
        href=source_href(e.source, e.line, link_base),
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
    link_base: Path | None = None,
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
                events=[evidence_event(e, link_base) for e in by_item.get(iid, [])],
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
    "source_href",
]
