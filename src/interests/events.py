"""In-memory types for ingested logs: events, catalogue items, user histories.

Plain dataclasses (not pydantic) because millions of them are made during
ingestion; the on-disk formats are defined in :mod:`interests.schema`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Event:
    """One interaction of a user with an item.

    ``ts`` is epoch seconds (UTC) or ``None`` when the log has no time column.
    ``source`` and ``line`` point back at the row in the input file.
    """

    user_id: str
    item_id: str
    ts: float | None = None
    rating: float | None = None
    text: str | None = None
    event: str | None = None
    source: str = ""
    line: int = 0

    def key(self) -> tuple[str, str, float | None, str | None, str | None, float | None]:
        """Identity used to count duplicate events once."""
        return (self.user_id, self.item_id, self.ts, self.event, self.text, self.rating)


@dataclass(slots=True)
class Item:
    """A catalogue item: title, categories (genres), description, attributes."""

    item_id: str
    title: str = ""
    categories: list[str] = field(default_factory=list)
    description: str = ""
    attributes: dict[str, str] = field(default_factory=dict)

    def label(self) -> str:
        return self.title or self.item_id


class Catalog(Mapping[str, Item]):
    """Items by id. Unknown ids give a bare :class:`Item` through :meth:`get_item`."""

    def __init__(self, items: Mapping[str, Item] | None = None, *, source: str = "") -> None:
        self._items: dict[str, Item] = dict(items or {})
        self.source = source

    def __getitem__(self, key: str) -> Item:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Item) -> None:
        self._items[item.item_id] = item

    def get_item(self, item_id: str) -> Item:
        return self._items.get(item_id) or Item(item_id=item_id)


@dataclass(slots=True)
class UserHistory:
    """A user's events sorted by time (ties keep file order).

    When ingestion caps the events kept per user, ``n_dropped`` counts the
    older events that were summarised instead of kept.
    """

    user_id: str
    events: list[Event]
    n_dropped: int = 0

    def item_ids(self) -> list[str]:
        """Distinct item ids in order of first appearance."""
        return list(dict.fromkeys(e.item_id for e in self.events))


def history_digest(events: Sequence[Event]) -> str:
    """SHA-256 of a user's events (item, time, rating, kind, text; not the file position).

    Two reads of the same rows give the same digest, whatever file or line they
    came from; any added, removed or changed event gives another one.
    """
    h = hashlib.sha256()
    for e in events:
        h.update(json.dumps([e.item_id, e.ts, e.rating, e.event, e.text], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


__all__ = ["Catalog", "Event", "Item", "UserHistory", "history_digest"]
