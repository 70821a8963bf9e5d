"""Rows -> validated :class:`~interests.events.Event` objects, streamed, with counts.

:class:`EventStream` is the layer under :func:`~interests.ingest.read_logs`:
it resolves the column mapping per file, cleans and validates every row,
quarantines the bad ones, drops exact duplicates and counts everything, so
that ``rows_read == rows_used + rows_quarantined + duplicates + rows_filtered``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from hashlib import blake2b
from pathlib import Path
from typing import Any

from ..events import Catalog, Event
from .mapping import ColumnMapping, Resolved
from .quarantine import (
    REASON_COLUMNS,
    REASON_ITEM,
    REASON_NOT_OBJECT,
    REASON_UNKNOWN_ITEM,
    REASON_USER,
    IngestError,
    Quarantine,
)
from .readers import InputFile, Record, Source, expand_paths
from .report import IngestReport
from .timeparse import TimeParser
from .values import FieldError, clean_id, clean_text, join_texts, parse_rating

PROBE_RECORDS = 100
_CACHE_LIMIT = 1_000


def event_kind(rating: float | None, text: str | None, text_is_tag: bool) -> str:
    """The event type when the log has no event column.

    ``"tag"`` for text from a tag column, ``"review"`` for other text,
    ``"rating"`` for a rating alone, ``"interaction"`` otherwise.
    """
    if text is not None:
        return "tag" if text_is_tag and rating is None else "review"
    return "rating" if rating is not None else "interaction"


class EventStream:
    """Iterate over the events of ``paths``; counts accumulate in :attr:`report`.

    Arguments are those of :func:`~interests.ingest.read_logs`; ``exclude``
    lists files to leave out of directories (the catalogue), ``dedup=False``
    keeps exact duplicates.
    """

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        mapping: ColumnMapping | str | Mapping[str, Any] | None = None,
        quarantine: Quarantine | None = None,
        strict: bool = False,
        tz: str = "UTC",
        catalog: Catalog | None = None,
        strict_catalog: bool = False,
        users: Collection[str] | None = None,
        dedup: bool = True,
        exclude: Sequence[Path] = (),
    ) -> None:
        self.mapping = ColumnMapping.parse(mapping)
        self.positional = self.mapping.positional
        self.quarantine = quarantine if quarantine is not None else Quarantine(strict=strict)
        self.strict = strict
        self.parse_time = TimeParser(tz)
        if strict_catalog and catalog is None:
            raise IngestError("strict_catalog needs a catalogue: pass catalog=... (--catalog FILE)")
        self.catalog = catalog if strict_catalog else None
        self.users = {str(u) for u in users} if users is not None else None
        self.dedup = dedup
        self._seen: set[int] = set()  # 96-bit digests of event keys (see _digest)
        self.files, skipped = expand_paths(paths, exclude)
        self.report = IngestReport(skipped_files=skipped)
        self.catalog_given = catalog  # the catalogue passed in (self.catalog only with strict_catalog)
        self._t0 = time.perf_counter()

    def __iter__(self) -> Iterator[Event]:
        for f in self.files:
            yield from self._read_file(f)
        self.report.seconds = round(time.perf_counter() - self._t0, 3)

    # -- files -----------------------------------------------------------
    def _read_file(self, f: InputFile) -> Iterator[Event]:
        with Source(f, header=not self.positional) as src:
            if src.format == "json":
                yield from self._read_json(f, src)
                return
            if self.positional:
                res = self.mapping.resolve_positions()
            elif src.columns == [] and src.format != "parquet":
                self.report.files.append(f.name)  # an empty file
                return
            else:
                res = self.mapping.resolve(src.columns or [])
                if res.user is None or res.item is None:
                    missing = "user" if res.user is None else "item"
                    cols = ", ".join(src.columns or []) or "(none)"
                    if _binary(src.columns or []):
                        if f.from_dir:
                            self.report.skipped_files[f.name] = "not text (binary data)"
                            return
                        raise IngestError(
                            f"{f.name} is not text (binary data): give CSV, TSV, JSON Lines or Parquet "
                            "logs (plain or gzip/bz2/xz)"
                        )
                    if f.from_dir:
                        self.report.skipped_files[f.name] = f"no {missing} column (columns: {cols})"
                        return
                    if not self.mapping.is_default(missing):
                        named = getattr(self.mapping, missing)
                        raise IngestError(
                            f"{f.name}: no column {named!r} (--map {missing}={named}); "
                            f"the file's columns are: {cols}"
                        )
                    raise IngestError(
                        f"{f.name}: no column for {missing} (columns: {cols}); name it with "
                        f"--map {missing}=COLUMN, or map a file without a header by position: "
                        "--map user=0,item=1,rating=2,time=3"
                    )
            self.report.files.append(f.name)
            if src.format == "parquet":
                names = src.columns or []
                if self.positional and max(_indices(res), default=-1) >= len(names):
                    raise IngestError(
                        f"{f.name}: the mapping addresses column {max(_indices(res))} "
                        f"but the file has {len(names)} columns"
                    )
                named = res.named(names)
                select = sorted(
                    {
                        c
                        for c in (named.user, named.item, named.time, named.rating, named.event, *named.text)
                        if c is not None
                    }
                )
                for rec in src.records(select):
                    ev = self._row(f.name, rec, named)
                    if ev is not None:
                        yield ev
            else:
                need = max(_indices(res), default=-1) + 1 if self.positional else 0
                for rec in src.records():
                    if need and rec[3] is None and len(rec[1]) < need:
                        rec = (rec[0], None, rec[2], REASON_COLUMNS)
                    ev = self._row(f.name, rec, res)
                    if ev is not None:
                        yield ev

    def _read_json(self, f: InputFile, src: Source) -> Iterator[Event]:
        records = src.records()
        head: list[Record] = []
        if f.from_dir:  # leave out JSON files that are not logs (catalogues, configs)
            for rec in records:
                head.append(rec)
                if rec[3] is None or len(head) >= PROBE_RECORDS:
                    break
            first = head[-1] if head else None
            if first is not None and not self._looks_like_log(first):
                self.report.skipped_files[f.name] = "not a log: its first JSON record has no user and item"
                return
        self.report.files.append(f.name)
        cache: dict[tuple[str, ...], Resolved[str]] = {}
        positions = self.mapping.resolve_positions() if self.positional else None
        need = max(_indices(positions), default=-1) + 1 if positions else 0
        for rec in _chain(head, records):
            line, obj, raw, error = rec
            if error is None:
                if positions is not None:
                    if not isinstance(obj, list):
                        rec = (line, None, raw, REASON_NOT_OBJECT)
                    elif len(obj) < need:
                        rec = (line, None, raw, REASON_COLUMNS)
                    ev = self._row(f.name, rec, positions)
                    if ev is not None:
                        yield ev
                    continue
                if not isinstance(obj, dict):
                    self._row(f.name, (line, None, raw, REASON_NOT_OBJECT), None)
                    continue
                keys = tuple(obj)
                res = cache.get(keys)
                if res is None:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    res = cache[keys] = self.mapping.resolve(keys).named(keys)
                ev = self._row(f.name, rec, res)
                if ev is not None:
                    yield ev
            else:
                self._row(f.name, rec, None)

    def _looks_like_log(self, rec: Record) -> bool:
        obj = rec[1]
        if rec[3] is not None:
            return False
        if self.positional:
            return isinstance(obj, list)
        if not isinstance(obj, dict):
            return False
        res = self.mapping.resolve(tuple(obj))
        return res.user is not None and res.item is not None

    # -- rows ------------------------------------------------------------
    def _bad(self, file: str, line: int, reason: str, raw: str | None, values: Any) -> None:
        rep = self.report
        rep.rows_quarantined += 1
        rep.by_reason[reason] = rep.by_reason.get(reason, 0) + 1
        if raw is None:
            raw = json.dumps(values, default=str, ensure_ascii=False)
        self.quarantine.add(file, line, reason, raw)
        if self.strict:
            raise IngestError(f"{file}, line {line}: {reason}", file=file, line=line, reason=reason)

    def _row(self, file: str, rec: Record, res: Resolved[Any] | None) -> Event | None:
        """The event of one record, or ``None`` (the row was counted where it went)."""
        line, values, raw, error = rec
        self.report.rows_read += 1
        if error is not None or res is None:
            self._bad(file, line, error or REASON_NOT_OBJECT, raw, values)
            return None
        get = values.get if isinstance(values, dict) else values.__getitem__
        user = clean_id(get(res.user)) if res.user is not None else None
        if user is None:
            self._bad(file, line, REASON_USER, raw, values)
            return None
        if self.users is not None and user not in self.users:
            self.report.rows_filtered += 1
            return None
        item = clean_id(get(res.item)) if res.item is not None else None
        if item is None:
            self._bad(file, line, REASON_ITEM, raw, values)
            return None
        try:
            ts = self.parse_time(get(res.time)) if res.time is not None else None
            rating = parse_rating(get(res.rating)) if res.rating is not None else None
        except FieldError as err:
            self._bad(file, line, err.reason, raw, values)
            return None
        if len(res.text) == 1:
            text = clean_text(get(res.text[0]))
        else:
            text = join_texts([get(c) for c in res.text]) if res.text else None
        kind = clean_text(get(res.event), 100) if res.event is not None else None
        if kind is None:
            kind = event_kind(rating, text, res.text_is_tag)
        if self.catalog is not None and item not in self.catalog:
            self._bad(file, line, REASON_UNKNOWN_ITEM, raw, values)
            return None
        event = Event(user, item, ts, rating, text, kind, file, line)
        if self.dedup:
            key = _digest(event.key())
            if key in self._seen:
                self.report.duplicates += 1
                return None
            self._seen.add(key)
        self.report.rows_used += 1
        return event


def _binary(columns: Sequence[str]) -> bool:
    """Whether a header is binary data: NUL bytes, control characters or bytes that are not UTF-8."""
    return any(
        ch == "\0" or "\udc80" <= ch <= "\udcff" or (ch < " " and ch not in "\t") for c in columns for ch in c
    )


def _digest(key: tuple[Any, ...]) -> int:
    """A 96-bit digest of an event key: about 80 bytes a row in the duplicate set instead of
    the 300-odd of the whole key (bench/memory.py); a false duplicate needs a collision, about
    n**2 / 2**97 for n rows (1e-11 at a billion)."""
    return int.from_bytes(
        blake2b(repr(key).encode("utf-8", "backslashreplace"), digest_size=12).digest(), "big"
    )


def _indices(res: Resolved[Any] | None) -> list[int]:
    if res is None:
        return []
    vals = [res.user, res.item, res.time, res.rating, res.event, *res.text]
    return [v for v in vals if isinstance(v, int)]


def _chain(head: list[Record], rest: Iterator[Record]) -> Iterator[Record]:
    yield from head
    yield from rest


def iter_events(
    paths: str | Path | Sequence[str | Path],
    *,
    mapping: ColumnMapping | str | Mapping[str, Any] | None = None,
    quarantine: Quarantine | str | Path | None = None,
    strict: bool = False,
    tz: str = "UTC",
    catalog: Catalog | None = None,
    strict_catalog: bool = False,
    users: Collection[str] | None = None,
    dedup: bool = True,
) -> Iterator[Event]:
    """Stream the valid events of ``paths`` in file order (no sorting, no grouping).

    Bad rows go to ``quarantine`` (a :class:`Quarantine`, a path for its JSON
    lines, or ``None`` to keep them in memory). For the counts, iterate an
    :class:`EventStream` instead and read its ``report``.
    """
    own = not isinstance(quarantine, Quarantine)
    q = quarantine if isinstance(quarantine, Quarantine) else Quarantine(quarantine, strict=strict)
    try:
        yield from EventStream(
            paths,
            mapping=mapping,
            quarantine=q,
            strict=strict,
            tz=tz,
            catalog=catalog,
            strict_catalog=strict_catalog,
            users=users,
            dedup=dedup,
        )
    finally:
        if own:
            q.close()


__all__ = ["EventStream", "event_kind", "iter_events"]
