"""Streaming readers: files (plain or compressed) -> raw records with line numbers.

Nothing here reads a whole file into memory. Text formats are read line by
line through a UTF-8 decoder (UTF-16 when the file starts with its byte-order
mark) that keeps undecodable bytes as surrogates, so a row with bad bytes is
quarantined as ``not UTF-8`` without spoiling the rest of the file; lines
longer than :data:`MAX_LINE_CHARS` are skipped in chunks and quarantined as
``line too long``. Parquet is read in record batches.

A record is a tuple ``(line, values, raw, error)``: the 1-based line (row
number for Parquet), the parsed values (a list for CSV, a dict or list for
JSON, a dict for Parquet; ``None`` when the row is bad), the raw text (``None``
for Parquet, where it is made from the values on demand) and the quarantine
reason (``None`` when the row parsed).
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import lzma
import re
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import InputNotFoundError
from .quarantine import (
    REASON_COLUMNS,
    REASON_CSV,
    REASON_ENCODING,
    REASON_JSON,
    REASON_READ,
    REASON_TOO_LONG,
    IngestError,
)

MAX_LINE_CHARS = 1_000_000
BATCH_ROWS = 65_536

SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "json",
    ".json": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
COMPRESSED_SUFFIXES = {".gz", ".gzip", ".bz2", ".xz"}
_SURROGATE = re.compile("[\udc80-\udcff]")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _mark_undecodable(err: UnicodeError) -> tuple[str, int]:
    """surrogateescape for UTF-16: mark bytes that do not decode so their line is quarantined."""
    if isinstance(err, UnicodeDecodeError):
        return "\udcff" * (err.end - err.start), err.end
    raise err


codecs.register_error("interests-mark", _mark_undecodable)
Record = tuple[int, Any, "str | None", "str | None"]

csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_CHARS))


@dataclass(frozen=True)
class InputFile:
    """One input: a path (``None`` for stdin), its display name and format by suffix."""

    path: Path | None
    name: str
    format: str | None  # "csv" | "tsv" | "json" | "parquet" | None (sniff the content)
    from_dir: bool = False


def format_for(path: Path) -> str | None:
    """Format from the suffix (``.csv.gz`` -> ``csv``); ``None`` when unknown."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes = suffixes[:-1]
    return SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None


class MissingInputError(IngestError, InputNotFoundError):
    """A log or catalogue path that does not exist (an :class:`IngestError` and a ``FileNotFoundError``)."""

    def __init__(self, message: str, path: str | Path) -> None:
        super().__init__(message, file=str(path))
        self.filename = str(path)


def expand_paths(
    paths: str | Path | Sequence[str | Path], exclude: Sequence[Path] = ()
) -> tuple[list[InputFile], dict[str, str]]:
    """Files to read (directories expanded recursively, sorted) and skipped files with reasons."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    excluded = {p.resolve() for p in exclude}
    files: list[InputFile] = []
    skipped: dict[str, str] = {}
    for p in items:
        if str(p) == "-":
            files.append(InputFile(None, "<stdin>", None))
            continue
        path = Path(p)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if not child.is_file():
                    continue
                fmt = format_for(child)
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    skipped[str(child)] = "hidden file"
                elif fmt is None:
                    skipped[str(child)] = f"unsupported file type {''.join(child.suffixes) or '(none)'!r}"
                elif child.resolve() in excluded:
                    skipped[str(child)] = "the catalogue file"
                else:
                    files.append(InputFile(child, str(child), fmt, from_dir=True))
        elif path.is_file():
            files.append(InputFile(path, str(path), format_for(path)))
        else:
            raise MissingInputError(f"no such file or directory: {str(p)!r}", p)
    return files, skipped


class _Lines:
    """Decoded lines of a text stream with line numbers; bad lines go to ``bad``."""

    def __init__(self, text: IO[str], max_chars: int = MAX_LINE_CHARS) -> None:
        self.text = text
        self.max_chars = max_chars
        self.lineno = 0
        self.consumed: list[tuple[int, str]] = []  # lines handed out for the current record
        self.bad: list[Record] = []
        self.pending: deque[tuple[int, str]] = deque()  # lines pushed back for re-reading
        self.failed = False  # reading raised (corrupt compressed data): stop there

    def push_back(self, lines: Sequence[tuple[int, str]]) -> None:
        self.pending.extendleft(reversed(lines))

    def flush_bad(self) -> list[Record]:
        out, self.bad = self.bad, []
        return out

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        # a plain iterator, not a generator: after the end it can go on with pushed-back lines
        if self.pending:
            lineno, line = self.pending.popleft()
            self.consumed.append((lineno, line))
            return line
        while not self.failed:
            try:
                line = self.text.readline(self.max_chars + 1)
            except (OSError, EOFError, ValueError, lzma.LZMAError) as err:
                if not self.failed:
                    self.failed = True
                    self.bad.append((self.lineno + 1, None, f"{type(err).__name__}: {err}", REASON_READ))
                raise StopIteration from None
            if not line:
                raise StopIteration
            self.lineno += 1
            if len(line) > self.max_chars and not line.endswith("\n"):
                self._skip_rest()
                self.bad.append((self.lineno, None, line[:1000], REASON_TOO_LONG))
                continue
            if not line.isascii():
                if _SURROGATE.search(line):
                    raw = line.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                    self.bad.append((self.lineno, None, raw, REASON_ENCODING))
                    continue
                if line[0] == "\ufeff":
                    line = line[1:]
            self.consumed.append((self.lineno, line))
            return line
        raise StopIteration

    def _skip_rest(self) -> None:
        while True:
            chunk = self.text.readline(self.max_chars)
            if not chunk or chunk.endswith("\n"):
                return


def _open_binary(f: InputFile) -> tuple[IO[bytes], list[IO[bytes]]]:
    """The decompressed byte stream and the streams to close afterwards."""
    raw: Any = sys.stdin.buffer if f.path is None else f.path.open("rb")
    owned = [] if f.path is None else [raw]
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw)
    head = raw.peek(6)[:6]
    stream: Any
    if head.startswith(b"\x1f\x8b"):
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    elif head.startswith(b"BZh"):
        stream = bz2.BZ2File(raw)
    elif head.startswith(b"\xfd7zXZ\x00"):
        stream = lzma.LZMAFile(raw)
    else:
        return raw, owned
    return stream, [stream, *owned]


def _sniff_delimiter(line: str, tsv: bool) -> str:
    """The candidate delimiter that splits the first line into the most fields."""
    candidates = "\t,;|" if tsv else ",\t;|"
    best, best_n = candidates[0], 1
    for d in candidates:
        n = len(next(csv.reader([line], delimiter=d)))
        if n > best_n:
            best, best_n = d, n
    return best


class Source:
    """An open input file: its format, header (``columns``) and records.

    ``Source(file, header=False)`` reads a CSV without a header (positional mapping).
    """

    def __init__(self, file: InputFile, *, header: bool = True) -> None:
        self.file = file
        self.name = file.name
        self.header = header
        self.columns: list[str] | None = None
        self._closers: list[IO[Any]] = []
        self._parquet: Any = None
        self.format = file.format
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        if self.file.path is not None and self.format in (None, "parquet"):
            with self.file.path.open("rb") as fh:
                magic = fh.read(4)
            if magic == b"PAR1":
                import pyarrow.parquet as pq

                self.format = "parquet"
                self._parquet = pq.ParquetFile(self.file.path)
                self.columns = list(self._parquet.schema_arrow.names)
                return
            if self.format == "parquet":
                raise IngestError(f"{self.name}: not a Parquet file (no PAR1 magic bytes)")
        stream, self._closers = _open_binary(self.file)
        head = stream.peek(64)[:64] if hasattr(stream, "peek") else b""
        # UTF-16 with a byte-order mark (Excel's "Unicode text", PowerShell's default) is read as
        # such; everything else as UTF-8, with undecodable lines quarantined
        utf16 = head[:2] in _UTF16_BOMS
        encoding, errors = ("utf-16", "interests-mark") if utf16 else ("utf-8-sig", "surrogateescape")
        if self.format is None:
            start = head.decode(encoding, "ignore").lstrip("\ufeff \t\r\n")
            self.format = "json" if start[:1] in ("{", "[") else "csv"
        self._text = io.TextIOWrapper(stream, encoding=encoding, errors=errors, newline=None)
        self._lines = _Lines(self._text)
        if self.format in ("csv", "tsv"):
            self._start_csv()

    def _start_csv(self) -> None:
        lines = iter(self._lines)
        first = next((ln for ln in lines if ln.strip()), None)
        self._bad_first = self._lines.flush_bad()
        if first is None:  # an empty file
            self._reader: Iterator[list[str]] = iter(())
            self.columns = [] if self.header else None
            return
        self._lines.push_back(self._lines.consumed[-1:])
        self._lines.consumed.clear()
        delimiter = _sniff_delimiter(first, tsv=self.format == "tsv")
        self._reader = csv.reader(lines, delimiter=delimiter, strict=True)
        if self.header:
            try:
                self.columns = [c.strip() for c in next(self._reader)]
            except (StopIteration, csv.Error):
                self.columns = []
            self._lines.consumed.clear()

    def records(self, select: Sequence[str] | None = None) -> Iterator[Record]:
        """The records; ``select`` limits the Parquet columns read."""
        if self.format == "parquet":
            yield from self._parquet_records(select)
        elif self.format == "json":
            yield from self._json_records()
        else:
            yield from self._csv_records()

    def _parquet_records(self, select: Sequence[str] | None) -> Iterator[Record]:
        row = 0
        try:
            for batch in self._parquet.iter_batches(
                batch_size=BATCH_ROWS, columns=list(select) if select else None
            ):
                for rec in batch.to_pylist():
                    row += 1
                    yield row, rec, None, None
        except (OSError, ValueError) as err:  # pyarrow's errors derive from these
            yield row + 1, None, f"{type(err).__name__}: {err}", REASON_READ

    def _json_records(self) -> Iterator[Record]:
        lines = self._lines
        for line in lines:
            lines.consumed.clear()
            if lines.bad:
                yield from lines.flush_bad()
            text = line.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except ValueError:
                yield lines.lineno, None, line, REASON_JSON
                continue
            yield lines.lineno, obj, line, None
        yield from lines.flush_bad()

    def _csv_records(self) -> Iterator[Record]:
        lines, reader = self._lines, self._reader
        yield from self._bad_first
        width = len(self.columns) if self.columns else 0
        while True:
            lines.consumed.clear()
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:
                yield from lines.flush_bad()
                yield self._bad_record(REASON_CSV)
                continue
            if lines.bad:
                yield from lines.flush_bad()
            if not lines.consumed:
                continue
            if len(row) <= 1 and not (row and row[0].strip()):
                continue  # blank line
            consumed = lines.consumed
            raw = consumed[0][1] if len(consumed) == 1 else "".join(t for _, t in consumed)
            if width and len(row) != width:
                yield consumed[0][0], None, raw, REASON_COLUMNS
            else:
                yield consumed[0][0], row, raw, None
        yield from lines.flush_bad()

    def _bad_record(self, reason: str) -> Record:
        """An unparsable record. One spanning several lines (a stray quote that ran on to
        the end of the file or past the field size limit) blames only its first line, and
        the lines after it are read again."""
        consumed = list(self._lines.consumed)
        if not consumed:
            return self._lines.lineno, None, "", reason
        if len(consumed) > 1:
            self._lines.push_back(consumed[1:])
        return consumed[0][0], None, consumed[0][1], reason

    def close(self) -> None:
        text = getattr(self, "_text", None)
        if text is not None and self.file.path is None:
            try:
                text.detach()  # leave stdin open
            except ValueError:
                pass
        elif text is not None:
            text.close()
        for fh in reversed(self._closers):
            fh.close()
        self._closers = []

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MAX_LINE_CHARS", "InputFile", "Source", "expand_paths", "format_for"]
