"""Bad input rows: where they go and the error raised in strict mode.

Every row that cannot be used becomes one :class:`~interests.schema.QuarantinedRow`
JSON line (``file``, 1-based ``line``, ``reason``, ``raw`` text). The reasons are
a small fixed vocabulary (the ``REASON_*`` constants) so that counts by reason
stay meaningful.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TextIO

from ..errors import InterestsError
from ..schema import QuarantinedRow

REASON_JSON = "unparsable JSON"
REASON_NOT_OBJECT = "not a JSON object"
REASON_CSV = "unparsable CSV row"
REASON_COLUMNS = "wrong number of columns"
REASON_USER = "missing user"
REASON_ITEM = "missing item"
REASON_TIME = "bad timestamp"
REASON_TIME_RANGE = "timestamp out of range"
REASON_RATING = "bad rating"
REASON_UNKNOWN_ITEM = "unknown item"
REASON_ENCODING = "not UTF-8"
REASON_TOO_LONG = "line too long"
REASON_READ = "unreadable data"  # a corrupt or truncated compressed/Parquet file

REASONS: tuple[str, ...] = (
    REASON_JSON,
    REASON_NOT_OBJECT,
    REASON_CSV,
    REASON_COLUMNS,
    REASON_USER,
    REASON_ITEM,
    REASON_TIME,
    REASON_TIME_RANGE,
    REASON_RATING,
    REASON_UNKNOWN_ITEM,
    REASON_ENCODING,
    REASON_TOO_LONG,
    REASON_READ,
)

MAX_RAW_CHARS = 10_000
"""Raw text kept per quarantined row (longer rows are cut and marked)."""

MAX_ROWS_IN_MEMORY = 10_000
"""Quarantined rows kept in :attr:`Quarantine.rows` (all of them go to the file)."""


class IngestError(InterestsError, ValueError):
    """Input that cannot be read: a bad row in strict mode, or a file/mapping problem.

    ``file``, ``line`` and ``reason`` say where, when the error is about one row.
    """

    def __init__(self, message: str, *, file: str = "", line: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.reason = reason


def clip_raw(raw: str | bytes) -> str:
    """Raw row text for the quarantine file: bytes shown with escapes, long text cut."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="backslashreplace")
    raw = raw.rstrip("\r\n")
    if len(raw) > MAX_RAW_CHARS:
        raw = f"{raw[:MAX_RAW_CHARS]}...[{len(raw) - MAX_RAW_CHARS} more characters cut]"
    return raw


class Quarantine:
    """Collects bad rows; writes them as JSON lines to ``path`` or keeps them in memory.

    The file is opened in append mode on the first bad row (so a clean run
    leaves no file) and flushed after every row. A row the file already holds
    (same file, line, reason and text: a resumed run reading the same logs
    again) is counted but not written twice. With ``strict=True`` the
    first bad row raises :class:`IngestError` naming the file, line and reason
    (after it was recorded).
    """

    def __init__(self, path: str | Path | None = None, strict: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.strict = strict
        self.count = 0
        self.rows: list[QuarantinedRow] = []
        self.counts_by_reason: dict[str, int] = {}
        self._fh: TextIO | None = None
        self._seen: set[tuple[str, int, str, str]] = set()

    def _open(self, path: Path) -> TextIO:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            with path.open(encoding="utf-8", errors="replace") as f:
                for text in f:
                    try:
                        old = QuarantinedRow.model_validate_json(text)
                    except ValueError:  # a torn last line of a killed run: rewritten below
                        continue
                    self._seen.add((old.file, old.line, old.reason, old.raw))
        fh = path.open("a", encoding="utf-8")
        if path.stat().st_size and not path.read_bytes()[-1:] == b"\n":
            fh.write("\n")  # end a torn line so the next row starts on its own
        return fh

    def add(self, file: str, line: int, reason: str, raw: str | bytes) -> None:
        """Record one bad row (``line`` is 1-based)."""
        row = QuarantinedRow(file=file, line=line, reason=reason, raw=clip_raw(raw))
        self.count += 1
        self.counts_by_reason[reason] = self.counts_by_reason.get(reason, 0) + 1
        if len(self.rows) < MAX_ROWS_IN_MEMORY:
            self.rows.append(row)
        if self.path is not None:
            if self._fh is None:
                self._fh = self._open(self.path)
            key = (row.file, row.line, row.reason, row.raw)
            if key not in self._seen:
                self._seen.add(key)
                self._fh.write(row.model_dump_json() + "\n")
                self._fh.flush()
        if self.strict:
            snippet = row.raw if len(row.raw) <= 200 else row.raw[:200] + "..."
            raise IngestError(
                f"{file}, line {line}: {reason}: {snippet!r} "
                "(run without --strict to quarantine bad rows and go on)",
                file=file,
                line=line,
                reason=reason,
            )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "memory"
        return f"Quarantine({where!r}, count={self.count}, strict={self.strict})"


__all__ = ["REASONS", "IngestError", "Quarantine", "clip_raw"]
