"""Logs larger than memory: spill events to per-user partitions on disk, then read one at a time.

:func:`partition_logs` streams the logs once through the usual
:class:`~interests.ingest.stream.EventStream` (same column mapping, same
quarantine, same counts) and appends every valid event to one of ``parts``
files chosen by a stable hash of its user (:func:`user_partition`), so that a
user's events all land in one partition. Iterating the returned
:class:`PartitionedLogs` reads the partitions one after the other and gives a
:class:`~interests.ingest.logs.Logs` for each: exact duplicates are counted
there (a duplicate has the same user, so it is in the same partition) and each
history is sorted by time with ties in file order, as :func:`read_logs` does.
Memory holds one partition's histories at a time instead of the whole log.

The partition files are JSON lines (one compact array per event), kept in
``directory`` so a job can be re-run or resumed from them without reading the
raw logs again (:meth:`PartitionedLogs.open`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from pathlib import Path
from typing import IO, Any

from ..events import Catalog, Event
from .logs import Logs, _collect, open_stream
from .mapping import CatalogMapping, ColumnMapping
from .quarantine import IngestError, Quarantine
from .report import IngestReport
from .stream import _digest

MANIFEST = "manifest.json"


def user_partition(user_id: str, parts: int) -> int:
    """The partition of ``user_id`` among ``parts``: stable across processes, machines and runs
    (BLAKE2 of the id, not Python's salted ``hash``)."""
    digest = blake2b(user_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % parts


def _row(e: Event) -> str:
    return json.dumps(
        [e.user_id, e.item_id, e.ts, e.rating, e.text, e.event, e.source, e.line],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _event(line: str) -> Event:
    u, i, ts, rating, text, kind, source, n = json.loads(line)
    return Event(u, i, ts, rating, text, kind, source, n)


class _DedupStream:
    """Events of one partition file with exact duplicates counted in ``report`` (same rule as
    the reader's: the event key), so that ``_collect`` can group them like ``read_logs``."""

    def __init__(self, path: Path, dedup: bool, report: IngestReport) -> None:
        self.path, self.dedup, self.report = path, dedup, report

    def __iter__(self) -> Iterator[Event]:
        seen: set[int] = set()
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                event = _event(line)
                if self.dedup:
                    key = _digest(event.key())
                    if key in seen:
                        self.report.duplicates += 1
                        continue
                    seen.add(key)
                self.report.rows_used += 1
                yield event


@dataclass
class PartitionedLogs:
    """The partitions written by :func:`partition_logs`; iterate it for one :class:`Logs` per part.

    ``report`` holds the counts of reading the raw logs (users and items
    included); exact duplicates are found while the partitions are read, so
    ``report.duplicates`` and ``report.rows_used`` are final once every
    partition has been iterated (``report.consistent`` holds at every step).
    """

    directory: Path
    parts: int
    catalog: Catalog | None
    report: IngestReport
    quarantine: Quarantine | None = None
    max_events_per_user: int | None = None
    dedup: bool = True
    _done: set[int] = field(default_factory=set)

    def paths(self) -> list[Path]:
        return [self.directory / f"part-{p:05d}.jsonl" for p in range(self.parts)]

    def __len__(self) -> int:
        return self.parts

    def __iter__(self) -> Iterator[Logs]:
        for p, path in enumerate(self.paths()):
            yield self.read(p, path)

    def read(self, part: int, path: Path | None = None) -> Logs:
        """The histories of partition ``part`` (read from disk; nothing is cached)."""
        path = path or self.paths()[part]
        own = IngestReport(files=[path.name])
        stream = _DedupStream(path, self.dedup, own)
        histories = _collect(stream, self.max_events_per_user)  # type: ignore[arg-type]
        own.users = len(histories)
        own.rows_read = own.rows_used + own.duplicates
        own.events_dropped = sum(h.n_dropped for h in histories.values())
        if part not in self._done:
            self._done.add(part)
            # the first pass counted every spilled event as used: move duplicates across
            self.report.rows_used -= own.duplicates
            self.report.duplicates += own.duplicates
            self.report.events_dropped += own.events_dropped
        return Logs(histories=histories, catalog=self.catalog, report=own, quarantine=self.quarantine)

    def user_logs(self, user_id: str) -> Logs:
        """The partition that holds ``user_id`` (the user may not be in it)."""
        return self.read(user_partition(user_id, self.parts))

    @classmethod
    def open(cls, directory: str | Path, catalog: Catalog | None = None) -> PartitionedLogs:
        """Partitions written earlier (by :func:`partition_logs`) without reading the logs again."""
        d = Path(directory)
        try:
            meta = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IngestError(f"{d}: no {MANIFEST}; the partitioning did not finish, run it again") from None
        report = IngestReport(**meta["report"])  # duplicates and users are counted as parts are read
        return cls(d, meta["parts"], catalog, report, None, meta["max_events_per_user"], meta["dedup"])


def partition_logs(
    paths: str | Path | Sequence[str | Path],
    directory: str | Path,
    *,
    parts: int = 16,
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
) -> PartitionedLogs:
    """Stream ``paths`` into ``parts`` per-user partition files under ``directory``.

    Arguments after ``directory`` are those of :func:`~interests.ingest.read_logs`
    and mean the same. ``directory`` is emptied first. Pick ``parts`` so that
    one partition fits in memory comfortably: about 500 bytes an event, so
    1,000,000 events a partition is about 0.5 GB.
    """
    if parts < 1:
        raise IngestError(f"parts must be at least 1, not {parts}")
    if max_events_per_user is not None and max_events_per_user < 1:
        raise IngestError(f"max_events_per_user must be at least 1, not {max_events_per_user}")
    d = Path(directory)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    own = not isinstance(quarantine, Quarantine)
    q = quarantine if isinstance(quarantine, Quarantine) else Quarantine(quarantine, strict=strict)
    files: list[IO[str]] = []
    try:
        # no duplicate set here: duplicates are found per partition, in bounded memory
        stream = open_stream(
            paths, q, mapping, catalog, catalog_mapping, strict_catalog, strict, tz, users, False
        )
        out = PartitionedLogs(d, parts, stream.catalog_given, stream.report, q, max_events_per_user, dedup)
        files = [p.open("w", encoding="utf-8") for p in out.paths()]
        items: set[str] = set()
        users_seen: set[str] = set()
        for event in stream:
            items.add(event.item_id)
            users_seen.add(event.user_id)
            files[user_partition(event.user_id, parts)].write(_row(event) + "\n")
        stream.report.items, stream.report.users = len(items), len(users_seen)
    finally:
        for f in files:
            f.close()
        if own:
            q.close()
    meta = {"parts": parts, "max_events_per_user": max_events_per_user, "dedup": dedup}
    (d / MANIFEST).write_text(json.dumps({**meta, "report": stream.report.to_dict()}), encoding="utf-8")
    return out


__all__ = ["PartitionedLogs", "partition_logs", "user_partition"]
