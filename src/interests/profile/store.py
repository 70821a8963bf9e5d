"""JSON Lines files that survive crashes: whole-batch appends, fsync, repair on open.

A batch of lines is written with a single ``write`` on a file opened for
appending, then fsync'd. A process killed in the middle of a write can leave
at most one partial last line; :func:`repair` cuts it off before a re-run
appends, so a file never holds a half-written record twice.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..errors import InputFormatError, InputNotFoundError
from ..schema import ErrorRecord, InterestProfile

log = logging.getLogger(__name__)

_GZIP = b"\x1f\x8b"


def repair(path: str | Path) -> int:
    """Truncate a partial (unterminated) last line; return the bytes removed."""
    p = Path(path)
    if not p.exists():
        return 0
    size = p.stat().st_size
    if size == 0:
        return 0
    with p.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        pos = size - 1
        chunk = 65536
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            block = f.read(pos - start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                pos = start + nl + 1
                break
            pos = start
        f.truncate(pos)
        f.flush()
        os.fsync(f.fileno())
        return size - pos


def append_lines(path: str | Path, records: Iterable[BaseModel | dict[str, Any] | str]) -> int:
    """Append records as JSON lines in one write, then fsync. Returns the count.

    A ``str`` record is a line already serialised (without its newline), as
    the Ray actors send them back (:mod:`interests.scale.ray_extract`).
    """
    lines = []
    for r in records:
        if isinstance(r, str):
            text = r
        elif isinstance(r, BaseModel):
            text = r.model_dump_json()
        else:
            text = json.dumps(r, ensure_ascii=False)
        lines.append(text + "\n")
    if not lines:
        return 0
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(lines).encode("utf-8")
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(lines)


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Parsed lines of a JSON Lines file; a torn last line is skipped."""
    p = Path(path)
    if not p.exists():
        return
    with p.open("r", encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                return  # partial line from a killed writer
            line = line.strip()
            if line:
                yield json.loads(line)


def read_records(path: str | Path, what: str = "profile") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of a JSON Lines file given as input, with one-line errors.

    A missing file raises :class:`~interests.errors.InputNotFoundError`; a binary, compressed,
    pretty-printed (a JSON array, an object over several lines) or non-JSON file raises
    :class:`~interests.errors.InputFormatError` naming the file, the line and the fix. A torn
    last line (no newline and not JSON: a killed writer) is skipped with a warning that names
    it; a whole last line without its newline is read.
    """
    p = Path(path)
    kind = f"{what}s file (JSON Lines, one {what} a line)"
    fixed = p.with_name(p.stem + (".lines.jsonl" if p.suffix == ".jsonl" else ".jsonl")).name
    if not p.is_file():
        if p.is_dir():
            raise InputFormatError(f"{p} is a folder: give the {kind}")
        raise InputNotFoundError(f"{what}s file not found: {p}", p)
    with p.open("rb") as f:
        head = f.read(8192)
        if head.startswith(_GZIP):
            raise InputFormatError(f"{p} is compressed (gzip): decompress it (gunzip) and give the {kind}")
        if b"\0" in head:
            raise InputFormatError(f"{p} is not a text file (binary data): give the {kind}")
        f.seek(0)
        for n, raw in enumerate(f, start=1):
            text = raw.strip()
            if not text:
                continue
            try:
                line = text.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InputFormatError(f"{p}, line {n}: not UTF-8 text: give the {kind}") from None
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                if not raw.endswith(b"\n") and line.startswith("{"):
                    log.warning(
                        "%s, line %d: skipped a torn last line (no newline at the end and not whole JSON: "
                        "a writer was killed while writing it)",
                        p,
                        n,
                    )
                    return
                if line.startswith("["):
                    raise InputFormatError(
                        f"{p}, line {n}: a JSON array, not JSON Lines: write one {what} a line "
                        f"(e.g. jq -c '.[]' {p} > {fixed})"
                    ) from None
                if line == "{" or (line.startswith('"') and ":" in line) or line.endswith(("{", "[", ",")):
                    raise InputFormatError(
                        f"{p}, line {n}: not a whole JSON object; the file looks pretty-printed (one object "
                        f"over several lines): write one {what} a line (e.g. jq -c . {p} > {fixed})"
                    ) from None
                raise InputFormatError(f"{p}, line {n}: not JSON ({exc.msg}): give the {kind}") from None
            if isinstance(obj, list):
                raise InputFormatError(
                    f"{p}, line {n}: a JSON array, not one {what} a line (e.g. jq -c '.[]' {p} > {fixed})"
                )
            if not isinstance(obj, dict):
                raise InputFormatError(f"{p}, line {n}: not a JSON object: give the {kind}")
            yield n, obj


def read_validated(path: str | Path, model: Any, what: str) -> list[Any]:
    """:func:`read_records` validated as ``model``; a record that is not one is a one-line error."""
    from pydantic import ValidationError

    out = []
    for n, data in read_records(path, what):
        try:
            out.append(model.model_validate(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in first["loc"]) or "record"
            raise InputFormatError(
                f"{path}, line {n}: not a valid {what} record ({loc}: {first['msg']})"
                + ("; give the profiles.jsonl written by `interests extract`" if what == "profile" else "")
            ) from None
    return out


def read_profiles(path: str | Path) -> list[InterestProfile]:
    """Every profile in a ``profiles.jsonl`` file, validated.

    A missing file raises :class:`~interests.errors.InputNotFoundError` (a ``FileNotFoundError``),
    a file that is not JSON Lines profiles :class:`~interests.errors.InputFormatError`.
    """
    return read_validated(path, InterestProfile, "profile")


def read_errors(path: str | Path) -> list[ErrorRecord]:
    """Every error record of a ``profiles.errors.jsonl`` file; none when the file does not exist
    (a run without errors writes none). Other problems raise as in :func:`read_profiles`."""
    if not Path(path).exists():
        return []
    return read_validated(path, ErrorRecord, "error")


def done_users(*paths: str | Path | None) -> set[str]:
    """User ids that already have a record in any of ``paths``."""
    done: set[str] = set()
    for p in paths:
        if p is not None:
            done.update(str(d["user_id"]) for d in iter_jsonl(p) if "user_id" in d)
    return done


def rewrite_without(path: str | Path, user_ids: set[str]) -> int:
    """Atomically drop the records of ``user_ids`` from a file (temp file + rename)."""
    p = Path(path)
    if not p.exists() or not user_ids:
        return 0
    kept = [d for d in iter_jsonl(p) if str(d.get("user_id")) not in user_ids]
    removed = sum(1 for _ in iter_jsonl(p)) - len(kept)
    replace_lines(p, kept)
    return removed


def replace_lines(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write ``records`` as the whole file atomically: a temp file, fsync, then rename over ``path``."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for d in records:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def write_temp(path: str | Path, data: bytes) -> Path:
    """``data`` in ``<path>.tmp`` beside ``path``, fsync'd, with ``path``'s permissions when it exists:
    the first half of an atomic replace (:func:`replace_bytes`; several files: rename them after)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    mode = p.stat().st_mode & 0o777 if p.exists() else 0o644
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def fsync_dir(path: str | Path) -> None:
    """fsync a folder, so the renames in it survive a power cut."""
    fd = os.open(Path(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically (temp file, fsync, rename, fsync of the folder):
    a crash leaves the old file or the new one, never a torn one. Keeps the file's permissions."""
    p = Path(path)
    os.replace(write_temp(p, data), p)
    fsync_dir(p.parent)


__all__ = [
    "append_lines",
    "done_users",
    "fsync_dir",
    "iter_jsonl",
    "read_errors",
    "read_profiles",
    "read_records",
    "read_validated",
    "repair",
    "replace_bytes",
    "replace_lines",
    "rewrite_without",
    "write_temp",
]
