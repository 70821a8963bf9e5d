"""Crashes: SIGKILL `interests extract` at different points, re-run, and lose nothing.

In-process mode with the real engine (each run starts vLLM, so the number of
kill points is small to keep CI fast); server mode in test_server.py.
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


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its vLLM engine processes
    except ProcessLookupError:  # none left
        pass
    proc.wait()


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill_at_start_and_mid_run_then_rerun_finishes_every_user_once(tmp_path):
    out = tmp_path / "profiles.jsonl"
    errors = tmp_path / "profiles.errors.jsonl"
    kill_points = []

    # 1. killed while the engine is still starting: nothing written, nothing to lose
    proc = _start(out)
    time.sleep(8)
    _kill(proc)
    kill_points.append(("engine start", _lines(out) + _lines(errors)))

    # 2. killed after the first batch landed
    proc = _start(out)
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline and _lines(out) + _lines(errors) < 2 and proc.poll() is None:
        time.sleep(0.2)
    _kill(proc)
    done_at_kill = {d["user_id"] for p in (out, errors) for d in iter_jsonl(p)}
    kill_points.append(("after a batch", len(done_at_kill)))
    assert 2 <= len(done_at_kill) < len(USERS), kill_points

    # 3. re-run to completion
    proc = _start(out)
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == expected_exit(errors), err[-3000:]
    assert f"{len(done_at_kill)} already done" in err
    profiles = [InterestProfile.model_validate(d) for d in iter_jsonl(out)]
    records = [ErrorRecord.model_validate(d) for d in iter_jsonl(errors)]
    ids = [p.user_id for p in profiles] + [r.user_id for r in records]
    assert sorted(ids) == USERS, "every user exactly once, none lost"
    assert done_at_kill <= set(ids)
    assert out.read_bytes().endswith(b"\n")
    print(f"kill points tried: {kill_points}; users lost: 0")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_sigterm_mid_run_stops_the_engine_too_and_keeps_finished_batches(tmp_path):
    """SIGTERM to the command alone (not its group): it closes its vLLM engine on the way out."""
    out = tmp_path / "profiles.jsonl"
    errors = tmp_path / "profiles.errors.jsonl"
    proc = _start(out)
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline and _lines(out) + _lines(errors) < 2 and proc.poll() is None:
        time.sleep(0.2)
    if proc.poll() is not None:
        pytest.fail(
            f"the run ended (exit {proc.returncode}) before it could be terminated: "
            f"{proc.communicate()[1][-2000:]}"
        )
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
    done = [d["user_id"] for p in (out, errors) for d in iter_jsonl(p)]
    assert len(done) >= 2 and len(done) == len(set(done)), done


@needs_proc
def test_sigkill_of_the_command_alone_leaves_no_engine_process(tmp_path):
    """`kill -9` of `interests extract` (not its group) mid-run: its vLLM EngineCore and worker exit too.

    Seen before the fix: both still computing, holding ~3 GB, 11 minutes after the kill."""
    out = tmp_path / "profiles.jsonl"
    errors = tmp_path / "profiles.errors.jsonl"
    proc = _start(out)
    try:
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline and _lines(out) + _lines(errors) < 2 and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before it could be killed"
        engine = descendants(proc.pid)
        assert any(depth == 2 for _, depth in engine.values()), describe(list(engine))  # worker of EngineCore
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = survivors(engine, timeout=60)
        assert not left, f"outlived the killed command: {describe(left)}"
    finally:
        _kill(proc)  # whatever is left of its process group
