"""Interaction logs -> per-user histories: :func:`read_logs` and :class:`Logs`."""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..events import Catalog, Event, UserHistory
from .catalog import read_catalog
from .mapping import CatalogMapping, ColumnMapping
from .quarantine import IngestError, Quarantine
from .report import IngestReport
from .stream import EventStream

_NO_TIME = -math.inf


def _order(event: Event) -> float:
    return event.ts if event.ts is not None else _NO_TIME


@dataclass
class Logs:
    """Ingested logs: one :class:`UserHistory` per user, the catalogue and the counts.

    ``histories`` keeps users in order of first appearance; each history is
    sorted by time (events without a time first, ties in file order).
    """

    histories: dict[str, UserHistory]
    catalog: Catalog | None
    report: IngestReport
    quarantine: Quarantine | None = None

    def users(self) -> list[str]:
        return list(self.histories)

    def __len__(self) -> int:
        return len(self.histories)

    def __getitem__(self, user_id: str) -> UserHistory:
        return self.histories[user_id]

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.histories

    def events(self) -> Iterator[Event]:
        """All kept events, user by user."""
        for history in self.histories.values():
            yield from history.events

    @property
    def n_events(self) -> int:
        return sum(len(h.events) for h in self.histories.values())


def read_logs(
    paths: str | Path | Sequence[str | Path],
    *,
    mapping: ColumnMapping | str | Mapping[str, Any] | None = None,
    catalog: Catalog | str | Path | None = None,
    catalog_mapping: CatalogMapping | str | Mapping[str, Any] | None = None,
    strict_catalog: bool = False,
    strict: bool = False,
    quarantine: Quarantine | str | Path | None = None,
    tz: str = "UTC",
    max_events_per_user: int | None = None,
    users: Collection[str] | None = None,
    dedup: bool = True,
) -> Logs:
    """Read interaction logs into per-user histories.

    ``paths``: files (CSV/TSV/JSON Lines/Parquet, plain or gzip/bz2/xz), directories
    (read recursively) or ``"-"`` for stdin. ``mapping``: which column is which
    field (:class:`ColumnMapping`, ``"user=userId,item=movieId"`` or a dict;
    default: found by name). ``catalog``: a :class:`Catalog` or a catalogue
    file (read with ``catalog_mapping``). Bad rows go to ``quarantine`` (a
    :class:`Quarantine`, a path for its JSON lines, default in memory);
    ``strict=True`` raises :class:`IngestError` on the first one, and
    ``strict_catalog=True`` quarantines events whose item is not in the
    catalogue. Times without a zone are read in ``tz``. ``max_events_per_user``
    keeps each user's most recent events (the rest counted in
    ``UserHistory.n_dropped``); ``users`` keeps only those users.
    ``dedup=False`` keeps exact duplicate events instead of counting them once
    (for logs whose duplicates are real repeats, or too large for the set of
    row digests, about 80 bytes a row).
    """
    if max_events_per_user is not None and max_events_per_user < 1:
        raise IngestError(f"max_events_per_user must be at least 1, not {max_events_per_user}")
    own = not isinstance(quarantine, Quarantine)
    q = quarantine if isinstance(quarantine, Quarantine) else Quarantine(quarantine, strict=strict)
    try:
        stream = open_stream(
            paths, q, mapping, catalog, catalog_mapping, strict_catalog, strict, tz, users, dedup
        )
        cat = stream.catalog_given
        histories = _collect(stream, max_events_per_user)
    finally:
        if own:
            q.close()
    report = stream.report
    report.users = len(histories)
    report.events_dropped = sum(h.n_dropped for h in histories.values())
    return Logs(histories=histories, catalog=cat, report=report, quarantine=q)


def open_stream(
    paths: str | Path | Sequence[str | Path],
    quarantine: Quarantine,
    mapping: ColumnMapping | str | Mapping[str, Any] | None,
    catalog: Catalog | str | Path | None,
    catalog_mapping: CatalogMapping | str | Mapping[str, Any] | None,
    strict_catalog: bool,
    strict: bool,
    tz: str,
    users: Collection[str] | None,
    dedup: bool,
) -> EventStream:
    """The :class:`EventStream` of :func:`read_logs`'s arguments: the catalogue read first (a
    file is then left out of the logs), its :class:`Catalog` in ``stream.catalog_given``."""
    exclude: list[Path] = []
    cat: Catalog | None
    if catalog is None or isinstance(catalog, Catalog):
        cat = catalog
    else:
        cat = read_catalog(catalog, mapping=catalog_mapping, quarantine=quarantine, strict=strict)
        if str(catalog) != "-":
            exclude.append(Path(catalog))
    stream = EventStream(
        paths,
        mapping=mapping,
        quarantine=quarantine,
        strict=strict,
        tz=tz,
        catalog=cat,
        strict_catalog=strict_catalog,
        users=users,
        dedup=dedup,
        exclude=exclude,
    )
    stream.catalog_given = cat
    return stream


def _collect(stream: EventStream, cap: int | None) -> dict[str, UserHistory]:
    items: set[str] = set()
    if cap is None:
        lists: dict[str, list[Event]] = {}
        for event in stream:
            items.add(event.item_id)
            bucket = lists.get(event.user_id)
            if bucket is None:
                bucket = lists[event.user_id] = []
            bucket.append(event)
        stream.report.items = len(items)
        out = {}
        for user, events in lists.items():
            events.sort(key=_order)  # stable: ties keep file order
            out[user] = UserHistory(user, events)
        return out
    heaps: dict[str, list[tuple[float, int, Event]]] = {}
    dropped: dict[str, int] = {}
    for seq, event in enumerate(stream):
        items.add(event.item_id)
        heap = heaps.get(event.user_id)
        if heap is None:
            heap = heaps[event.user_id] = []
        entry = (_order(event), seq, event)
        if len(heap) < cap:
            heapq.heappush(heap, entry)
        else:
            heapq.heappushpop(heap, entry)
            dropped[event.user_id] = dropped.get(event.user_id, 0) + 1
    stream.report.items = len(items)
    return {
        user: UserHistory(user, [e for _, _, e in sorted(heap)], dropped.get(user, 0))
        for user, heap in heaps.items()
    }


__all__ = ["Logs", "read_logs"]
