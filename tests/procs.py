"""Process trees from /proc (Linux): which processes a command started, and whether they are gone.

A process is identified by its pid *and* its start time, so a pid reused by an
unrelated process never counts as a survivor; a zombie (dead, not yet reaped
by whoever inherited it) counts as gone.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

PROC = Path("/proc")
needs_proc = pytest.mark.skipif(
    not (PROC / "self" / "task").is_dir(), reason="reads process trees from /proc (Linux)"
)


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of ``pid``, or None when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[0], fields[19]  # fields 3 and 22 of proc(5)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (started by any of its threads)."""
    kids: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def descendants(pid: int) -> dict[int, tuple[str, int]]:
    """Every live descendant of ``pid``: pid -> (start time, depth; 1 for a child)."""
    found: dict[int, tuple[str, int]] = {}
    todo = [(pid, 0)]
    while todo:
        parent, depth = todo.pop()
        for kid in children(parent):
            stat = _stat(kid)
            if kid not in found and stat is not None and stat[0] not in "ZX":
                found[kid] = (stat[1], depth + 1)
                todo.append((kid, depth + 1))
    return found


def alive(pid: int, start_time: str) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in "ZX" and stat[1] == start_time


def survivors(procs: dict[int, tuple[str, int]], timeout: float) -> list[int]:
    """The processes of ``procs`` still alive after waiting up to ``timeout`` seconds for them to exit."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid, (start, _) in procs.items() if alive(pid, start)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.25)


def describe(pids: list[int]) -> list[str]:
    """``pid: command line`` of each, for assertion messages."""
    out = []
    for pid in pids:
        try:
            cmd = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except OSError:
            cmd = "?"
        out.append(f"{pid}: {cmd}")
    return out
