"""Child processes do not outlive their driver; `interests serve` stops cleanly whenever it is signalled.

Fast: plain multiprocessing children and a stand-in for the vLLM server (a
sleeping Python). The same with the real engine and server: test_kill.py
(marker engine) and test_server.py (marker server).
"""

from __future__ import annotations

import multiprocessing.spawn
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from procs import children, descendants, describe, needs_proc, survivors

import interests.llm.launch as launch
from interests.errors import BackendError
from interests.llm.lifeline import engine_lifeline

pytestmark = needs_proc
FAKE_SERVER = [sys.executable, "-c", "import time; time.sleep(600)"]


def _driver(tmp_path: Path, code: str) -> subprocess.Popen[str]:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Clean-up whatever a test left: the driver's whole process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _wait_for(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_processes_started_in_the_block_exit_when_the_driver_is_killed(tmp_path, method):
    """vLLM's EngineCore is such a process (spawn on the CPU, usually fork on a GPU); the one
    started outside the block is the control: nothing else is touched."""
    proc = _driver(
        tmp_path,
        f"""
        import multiprocessing, time
        from interests.llm.lifeline import engine_lifeline

        def sleep():
            time.sleep(600)

        if __name__ == "__main__":
            ctx = multiprocessing.get_context({method!r})
            with engine_lifeline():
                armed = ctx.Process(target=sleep)
                armed.start()
            other = ctx.Process(target=sleep)
            other.start()
            print(armed.pid, other.pid, flush=True)
            time.sleep(600)
        """,
    )
    try:
        assert proc.stdout is not None
        armed, other = map(int, proc.stdout.readline().split())
        procs = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone, not its group
        proc.wait()
        assert survivors({armed: procs[armed]}, timeout=15) == []
        assert survivors({other: procs[other]}, timeout=0) == [other], "the unarmed child was touched"
    finally:
        _kill_group(proc)


def test_a_child_that_ignores_sigterm_is_killed_with_its_own_children(tmp_path):
    """vLLM's EngineCore only records a SIGTERM while it loads the model: the watcher SIGKILLs it
    (and what it started) after the grace period."""
    proc = _driver(
        tmp_path,
        """
        import os, subprocess, sys, time
        from interests.llm.lifeline import watch_code

        child = '''
        import signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild
        subprocess.Popen(["sleep", "600"])
        time.sleep(600)
        '''
        code = watch_code(os.getpid(), poll=0.1, grace=0.5) + child.replace("\\n        ", "\\n")
        subprocess.Popen([sys.executable, "-c", code])
        time.sleep(600)
        """,
    )
    try:
        _wait_for(lambda: any(depth == 2 for _, depth in descendants(proc.pid).values()))
        procs = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = survivors(procs, timeout=15)
        assert not left, describe(left)
    finally:
        _kill_group(proc)


def test_only_the_thread_in_the_block_arms_its_children():
    def command() -> list[str]:
        return multiprocessing.spawn.get_command_line(tracker_fd=3, pipe_handle=4)

    other: list[list[str]] = []
    with engine_lifeline():
        inside = command()
        thread = threading.Thread(target=lambda: other.append(command()))
        thread.start()
        thread.join()
    outside = command()
    assert f"_interests_watch_parent({os.getpid()}," in inside[-2]
    assert inside[-2].endswith(outside[-2]) and inside[-1] == outside[-1] == "--multiprocessing-fork"
    assert "_interests_watch_parent" not in other[0][-2] + outside[-2]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, BackendError])
def test_start_server_interrupted_while_waiting_stops_the_server_and_closes_its_log(
    tmp_path, monkeypatch, exc
):
    seen: list[launch.ServerProcess] = []
    logs: list[object] = []

    def wait_healthy(self: launch.ServerProcess, timeout: float = 600.0) -> None:
        seen.append(self)
        logs.append(self._log)
        raise exc("interrupted")

    monkeypatch.setattr(launch, "server_command", lambda *a, **k: FAKE_SERVER)
    monkeypatch.setattr(launch.ServerProcess, "wait_healthy", wait_healthy)
    try:
        with pytest.raises(exc):
            launch.start_server("fake/model", port=launch.free_port(), log_path=tmp_path / "vllm.log")
        [server] = seen
        assert server.process.poll() is not None, "the server was left running"
        assert logs[0].closed  # type: ignore[attr-defined]
    finally:
        for left in seen:
            left.kill()


SERVE_FAKE = f"""
import sys
import interests.llm.launch as launch
launch.server_command = lambda *a, **k: {FAKE_SERVER!r}
from interests.cli import cli
cli(["serve", "--port", "0", "--model", "fake/model", "--log", sys.argv[1]])
"""


def _kill_left(procs: dict[int, tuple[str, int]]) -> None:
    for pid in survivors(procs, timeout=0):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interests_serve_signalled_while_starting_stops_the_server(tmp_path, sig):
    """The stand-in never answers /health: `interests serve` is still starting when signalled."""
    script = tmp_path / "serve.py"
    script.write_text(SERVE_FAKE)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "vllm.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server: dict[int, tuple[str, int]] = {}
    try:
        _wait_for(lambda: bool(children(proc.pid)))
        time.sleep(1.0)  # inside the health wait
        server = descendants(proc.pid)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-2000:]  # interrupted (docs/cli.md, exit codes)
        assert "server stopped" in err and "Traceback" not in err and out == "", err[-2000:]
        left = survivors(server, timeout=10)
        assert not left, describe(left)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _kill_left(server)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_started_server_gets_sigterm_when_its_caller_is_killed(tmp_path):
    proc = _driver(
        tmp_path,
        f"""
        import sys, time
        import interests.llm.launch as launch
        launch.server_command = lambda *a, **k: {FAKE_SERVER!r}
        log = {str(tmp_path / "vllm.log")!r}
        server = launch.start_server("fake/model", port=launch.free_port(), log_path=log, wait=False)
        print(server.process.pid, flush=True)
        time.sleep(600)
        """,
    )
    procs: dict[int, tuple[str, int]] = {}
    try:
        assert proc.stdout is not None
        server = int(proc.stdout.readline())
        procs = descendants(proc.pid)
        assert server in procs
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = survivors(procs, timeout=15)
        assert not left, describe(left)
    finally:
        _kill_group(proc)
        _kill_left(procs)
