"""The child process of a profile refresher without an LLM: exact statistics, off the service's GIL.

Measured on ml-latest-small (2 cores), a refresh costs about 10 ms of pure
Python a user (skeleton grounding, signals, digests). In the service's
process that time holds the GIL, and the readers of a service taking 30
posts a second waited for it (read p99 0.4-0.7 s at 200 requests/s). Here
the service only gathers each user's arrays (:meth:`~interests.api.state.UserStore.history_parts`,
about 0.1 ms a user) and stores the profiles that come back; the child,
started with ``python -m interests.api.refresh_child`` (never a fork of a
threaded server, never a re-import of the caller's ``__main__``), builds the
histories, plans the changes (:func:`~interests.profile.update.plan_changes`)
and re-grounds them (:func:`~interests.profile.update.refresh_profiles`,
no backend) at a lower CPU priority (``nice`` +10), so on a busy machine the
requests come first and the refreshes wait.

The protocol is pickled messages over the child's stdin and stdout
(:class:`multiprocessing.connection.Connection`): ``("init", catalog,
groups, item_ids, settings)`` once, then ``("refresh", parts, old,
everyone)`` answered by ``("ok", kinds, profiles, errors)`` or ``("error",
type name)`` (never an error's text: it might quote a review). ``everyone``
(every user's arrays) comes with the first batch when the child must group
the items itself, as the thread would on its first refresh.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from interests.events import Catalog
    from interests.profile.item_groups import ItemGroups
    from interests.schema import InterestProfile

    from .state import Posted

    Parts = tuple[np.ndarray, np.ndarray, np.ndarray, list[Posted]]

NICE = 10  # the child's CPU priority below the service's (Unix nice increment)


class ChildDied(RuntimeError):
    """The child process exited or its pipe broke; a new one is started on the next batch."""


class Child:
    """One child process and its pipes; :meth:`refresh` is called from one thread at a time."""

    def __init__(
        self,
        catalog: Catalog | None,
        groups: ItemGroups | None,
        item_ids: list[str],
        settings: Mapping[str, Any],
    ) -> None:
        self.grouped = groups is not None  # False: the first batch sends every user's arrays
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "interests.api.refresh_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._send = Connection(os.dup(self._proc.stdin.fileno()), readable=False)
        self._recv = Connection(os.dup(self._proc.stdout.fileno()), writable=False)
        self._proc.stdin.close()
        self._proc.stdout.close()
        self._lock = threading.Lock()
        self._call(("init", catalog, groups, item_ids, dict(settings)), reply=False)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _call(self, message: tuple[Any, ...], reply: bool = True) -> Any:
        with self._lock:
            try:
                self._send.send(message)
                return self._recv.recv() if reply else None
            except (EOFError, OSError) as exc:
                raise ChildDied(f"the refresh process exited ({type(exc).__name__})") from None

    def refresh(
        self,
        parts: dict[str, Parts],
        old: dict[str, InterestProfile],
        everyone: dict[str, Parts] | None = None,
    ) -> tuple[list[str], dict[str, InterestProfile], list[tuple[str, str]]]:
        """(change kind of every user, new profiles, (user, stage) of every error)."""
        answer = self._call(("refresh", parts, old, everyone))
        if answer[0] != "ok":
            raise RuntimeError(f"the refresh process failed: {answer[1]}")
        self.grouped = True
        return answer[1], answer[2], answer[3]

    def close(self, timeout: float = 5.0) -> None:
        """Ask the child to exit (it finishes the batch in flight), then make sure it did."""
        for conn in (self._send, self._recv):
            try:
                conn.close()  # the child reads EOF and exits
            except OSError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _refresh(
    state: dict[str, Any],
    parts: dict[str, Parts],
    old: dict[str, InterestProfile],
    everyone: dict[str, Parts] | None,
) -> tuple[list[str], dict[str, InterestProfile], list[tuple[str, str]]]:
    """What :meth:`ProfileRefresher.__call__ <interests.api.refresh.ProfileRefresher.__call__>`
    does without a backend, over arrays."""
    from interests.profile.item_groups import extend_groups, group_items
    from interests.profile.signals import dataset_reference
    from interests.profile.update import plan_changes, refresh_profiles

    from .state import build_history

    ids, catalog, s = state["item_ids"], state["catalog"], state["settings"]
    if state["groups"] is None:
        if everyone is None:
            raise RuntimeError("no item groups and no histories to make them from")
        state["groups"] = group_items({u: build_history(u, *p, ids) for u, p in everyone.items()}, catalog)
    groups = state["groups"]
    histories = {u: build_history(u, *p, ids) for u, p in parts.items()}
    extend_groups(groups, histories, catalog)  # items first seen in posted events
    as_of = dataset_reference(histories.values())[1]
    changes, skeletons = plan_changes(
        histories,
        old,
        groups,
        catalog,
        rules=s["rules"],
        weight_shift=s["weight_shift"],
        refresh=s["refresh"],
        half_life_days=s["half_life_days"],
        as_of=as_of,
    )
    exact = [u for u, c in changes.items() if c.kind != "unchanged"]
    if not exact:
        return [c.kind for c in changes.values()], {}, []
    result = refresh_profiles(
        {u: histories[u] for u in exact},
        old,
        s["job"].replace(groups=groups, as_of=as_of),
        None,
        catalog=catalog,
        changes={u: changes[u] for u in exact},
        skeletons={u: skeletons[u] for u in exact if u in skeletons},
    )
    return [c.kind for c in changes.values()], result.profiles, [(e.user_id, e.stage) for e in result.errors]


def main() -> None:
    """The child's loop: one message in, one answer out, until the service closes the pipe."""
    recv = Connection(os.dup(0), writable=False)
    send = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the service closes us
    try:
        os.nice(NICE)
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        pass
    state: dict[str, Any] = {}
    while True:
        try:
            message = recv.recv()
        except (EOFError, OSError):
            return
        if message[0] == "init":
            _, catalog, groups, item_ids, settings = message
            state = {"catalog": catalog, "groups": groups, "item_ids": item_ids, "settings": settings}
            continue
        try:
            answer: tuple[Any, ...] = ("ok", *_refresh(state, *message[1:]))
        except Exception as exc:  # the service marks the batch stale and retries it later
            answer = ("error", type(exc).__name__)
        try:
            send.send(answer)
        except OSError:
            return


if __name__ == "__main__":
    main()
