"""Crashes: kill `interests extract` at different points, re-run, and lose nothing.

In-process mode with the real engine. Every engine start costs CI a minute on a
2-core machine, so one run of six users is killed three ways in turn, each kill
on the files the one before left: while the engine starts, SIGKILL of the
command alone after a batch (its engine processes must exit too), SIGTERM of
the command alone after the next batch (it closes its engine and keeps the
finished batches), then a re-run finishes every user exactly once. Server mode
is in test_server.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import expected_exit, extract_examples_cmd
from procs import descendants, describe, needs_proc, survivors

from interests.profile.store import iter_jsonl
from interests.schema import ErrorRecord, InterestProfile

pytestmark = pytest.mark.engine
USERS = [f"u{i:03d}" for i in range(1, 7)]


def _start(out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        extract_examples_cmd(out, "--limit", str(len(USERS)), "--batch-size", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its vLLM engine processes
    except ProcessLookupError:  # none left
        pass
    proc.wait()


def _done(out: Path, errors: Path) -> list[str]:
    """User ids with a whole line in the profiles or the errors file."""
    return [d["user_id"] for p in (out, errors) for d in iter_jsonl(p)]


def _lines(*paths: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in paths if p.exists())


def _wait_for_lines(proc: subprocess.Popen[str], out: Path, errors: Path, n: int) -> None:
    """Until ``n`` users are done, failing when the run ends first."""
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline and _lines(out, errors) < n and proc.poll() is None:
        time.sleep(0.2)
    if proc.poll() is not None:
        _kill_group(proc)
        stderr = proc.communicate()[1]
        pytest.fail(f"the run ended (exit {proc.returncode}) before the kill: {stderr[-2000:]}")
    assert _lines(out, errors) >= n, f"fewer than {n} users done in 20 minutes"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@needs_proc
def test_killed_three_ways_then_rerun_finishes_every_user_once(tmp_path):
    out = tmp_path / "profiles.jsonl"
    errors = tmp_path / "profiles.errors.jsonl"
    kill_points: list[tuple[str, int]] = []

    # 1. killed (with its group) while the engine is still starting: nothing written, nothing to lose
    proc = _start(out)
    time.sleep(8)
    _kill_group(proc)
    kill_points.append(("engine start", len(_done(out, errors))))
    assert kill_points[-1][1] == 0

    # 2. `kill -9` of the command alone (not its group) after the first batch: its vLLM EngineCore and
    #    worker exit too. Seen before the fix: both still computing, holding ~3 GB, 11 minutes after the kill.
    proc = _start(out)
    try:
        _wait_for_lines(proc, out, errors, 2)
        engine = descendants(proc.pid)
        assert any(depth == 2 for _, depth in engine.values()), describe(list(engine))  # worker of EngineCore
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = survivors(engine, timeout=60)
        assert not left, f"outlived the killed command: {describe(left)}"
    finally:
        _kill_group(proc)  # whatever is left of its process group
    after_kill = _done(out, errors)
    kill_points.append(("SIGKILL after a batch", len(after_kill)))
    assert 2 <= len(after_kill) < len(USERS) and len(after_kill) == len(set(after_kill)), after_kill

    # 3. SIGTERM to the command alone after its next batch: it closes its vLLM engine on the way out
    #    and keeps what it finished
    proc = _start(out)
    _wait_for_lines(proc, out, errors, len(after_kill) + 1)
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    deadline = time.monotonic() + 60  # the engine's own shutdown takes a few seconds
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    lingering = _group_alive(proc.pid)
    if lingering:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not lingering, "a vLLM engine process outlived the terminated command"
    after_term = _done(out, errors)
    kill_points.append(("SIGTERM after the next batch", len(after_term)))
    assert set(after_kill) < set(after_term) and len(after_term) == len(set(after_term)), after_term

    # 4. re-run to completion: every user exactly once, none lost
    proc = _start(out)
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == expected_exit(errors), err[-3000:]
    assert f"{len(after_term)} already done" in err
    profiles = [InterestProfile.model_validate(d) for d in iter_jsonl(out)]
    records = [ErrorRecord.model_validate(d) for d in iter_jsonl(errors)]
    ids = [p.user_id for p in profiles] + [r.user_id for r in records]
    assert sorted(ids) == USERS, "every user exactly once, none lost"
    assert set(after_term) <= set(ids)
    assert out.read_bytes().endswith(b"\n")
    print(f"kill points tried: {kill_points}; users lost: 0")
