"""JSON Lines files that survive crashes: whole-batch appends, fsync, repair on open.

A batch of lines is written with a single ``write`` on a file opened for
appending, then fsync'd. A process killed in the middle of a write can leave
at most one partial last line; :func:`repair` cuts it off before a re-run
appends, so a file never holds a half-written record twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..schema import ErrorRecord, InterestProfile


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


def read_profiles(path: str | Path) -> list[InterestProfile]:
    """Every profile in a ``profiles.jsonl`` file, validated."""
    return [InterestProfile.model_validate(d) for d in iter_jsonl(path)]


def read_errors(path: str | Path) -> list[ErrorRecord]:
    return [ErrorRecord.model_validate(d) for d in iter_jsonl(path)]


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
    "repair",
    "replace_bytes",
    "replace_lines",
    "rewrite_without",
    "write_temp",
]
