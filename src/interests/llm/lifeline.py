"""Engine processes die with the process that started them, even one killed with SIGKILL.

A killed driver (``kill -9`` of ``interests extract``, the OOM killer) runs no
``finally`` block and no ``atexit`` hook, so nothing it does on the way out can
stop its vLLM engine. The engine side has to notice on its own. Two tools:

* :func:`engine_lifeline`, around ``vllm.LLM(...)`` in
  :class:`~interests.llm.vllm_local.VLLMBackend`: every process that the
  calling thread starts through :mod:`multiprocessing` inside the block (vLLM's
  EngineCore) runs a watcher thread that polls ``os.getppid()``. When the
  parent is gone (the child has been re-parented) it sends itself SIGTERM
  (vLLM's EngineCore then aborts its requests and shuts its workers down),
  and SIGKILL to its own children and itself if it is still alive
  :data:`GRACE_S` seconds later (vLLM only records a SIGTERM that arrives
  while the engine is still loading). The workers watch the EngineCore
  through vLLM's own death pipe.

  vLLM's CPU platform starts the EngineCore with the ``spawn`` method (it sets
  ``VLLM_WORKER_MULTIPROC_METHOD=spawn`` itself, whatever the user set): a
  fresh interpreter, so an ``os.register_at_fork`` hook never runs there. The
  watcher is put in front of the child's ``-c`` program instead, by wrapping
  ``multiprocessing.spawn.get_command_line`` (self-contained code: the child
  does not need to import this package). On a GPU vLLM uses ``fork`` unless
  CUDA is already initialised; forked children get the watcher from an
  ``os.register_at_fork`` hook. Both are armed only for the thread inside the
  block, so other threads' processes are left alone.

  Polling the parent process rather than ``PR_SET_PDEATHSIG`` because Linux
  sends the parent-death signal when the *thread* that forked the child
  exits: an engine started from a worker thread would die with that thread.
  A watcher costs one wake-up every :data:`POLL_S` seconds.

* :func:`parent_death_preexec`, the ``preexec_fn`` of the ``vllm serve`` child
  of :func:`~interests.llm.launch.start_server`: ``prctl(PR_SET_PDEATHSIG)``, so
  the server gets SIGTERM when the process that started it dies. That is
  Linux only; elsewhere it is ``None`` (no lifeline: stop the server yourself).

On systems other than POSIX :func:`engine_lifeline` does nothing (vLLM does
not run there). The ``forkserver`` start method is not covered (its children
are the fork server's, not the driver's); vLLM does not use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing.spawn
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: prctl option: signal to receive when the parent (thread) dies
PR_SET_PDEATHSIG = 1
#: seconds between two looks at the parent
POLL_S = 0.5
#: seconds a child has after its SIGTERM before it is SIGKILLed with its own children
GRACE_S = 10.0

# Run in the child, so self-contained: the spawned EngineCore executes it before
# multiprocessing's own program (no import of this package needed there).
WATCH_SOURCE = """\
def _interests_watch_parent(parent, poll, grace):
    import os, signal, threading, time

    def children():
        pids = []
        try:
            for tid in os.listdir("/proc/self/task"):
                with open("/proc/self/task/%s/children" % tid) as f:
                    pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def watch():
        while os.getppid() == parent:
            time.sleep(poll)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        for pid in children():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="interests-lifeline", daemon=True).start()
"""

_namespace: dict[str, Any] = {}
exec(WATCH_SOURCE, _namespace)  # the same code in this process (forked children, tests)


def watch_parent(parent: int, poll: float = POLL_S, grace: float = GRACE_S) -> None:
    """Start the watcher thread in this process: SIGTERM, then SIGKILL, once ``parent`` is gone."""
    _namespace["_interests_watch_parent"](parent, poll, grace)


def watch_code(parent: int, poll: float = POLL_S, grace: float = GRACE_S) -> str:
    """Python source that starts the watcher of ``parent`` (prefixed to a spawned child's program)."""
    return f"{WATCH_SOURCE}_interests_watch_parent({parent}, {poll!r}, {grace!r})\n"


# thread ident -> nesting depth of engine_lifeline(); only the owning thread changes its key
_armed: dict[int, int] = {}
_installed = False
_forking_pid = 0
_original_get_command_line: Callable[..., list[str]] = multiprocessing.spawn.get_command_line


def _with_watcher(cmd: list[str], parent: int) -> list[str]:
    """``[python, *opts, "-c", PROG, "--multiprocessing-fork"]`` with the watcher before PROG."""
    if len(cmd) >= 3 and cmd[-3] == "-c" and cmd[-1] == "--multiprocessing-fork":
        return [*cmd[:-2], watch_code(parent) + cmd[-2], cmd[-1]]
    return cmd  # a frozen executable or another layout: no lifeline rather than a broken start


def _get_command_line(**kwds: Any) -> list[str]:
    cmd = _original_get_command_line(**kwds)
    if threading.get_ident() in _armed:
        return _with_watcher(list(cmd), os.getpid())
    return list(cmd)


def _before_fork() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _armed
    armed = threading.get_ident() in _armed  # the child's thread is the one that forked
    _armed = {}  # the child's own children are not ours to arm
    if armed:
        watch_parent(_forking_pid)


def _install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    multiprocessing.spawn.get_command_line = _get_command_line
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def engine_lifeline() -> Iterator[None]:
    """Processes this thread starts through multiprocessing inside the block die with this process."""
    if os.name != "posix":
        yield
        return
    _install()
    ident = threading.get_ident()
    _armed[ident] = _armed.get(ident, 0) + 1
    try:
        yield
    finally:
        depth = _armed.pop(ident, 1) - 1
        if depth:
            _armed[ident] = depth


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def parent_death_preexec(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn``: the child gets ``sig`` when the thread that starts it exits; ``None`` off Linux.

    Linux ties the signal to the *thread* that forks the child, so call
    ``Popen`` from a thread that lives as long as the child should (the main
    thread). A parent that died before the child armed the signal is caught
    by comparing ``os.getppid()`` with the pid recorded here.
    """
    prctl = _prctl()  # resolved here: no dynamic loading between fork and exec
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


__all__ = [
    "GRACE_S",
    "POLL_S",
    "engine_lifeline",
    "parent_death_preexec",
    "watch_code",
    "watch_parent",
]
