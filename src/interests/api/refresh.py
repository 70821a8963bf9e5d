"""The bounded profile refresh queue: users with new events wait here for a background refresh.

``POST /events`` never waits for a profile: it puts the user on a bounded
queue and returns. When the queue is full the user is marked *stale* instead
(the response says ``"refresh": "deferred"``); a worker thread drains the
queue in batches and calls the *refresher*, a ``Callable[[list[str]], None]``
injected into the app, and retries stale users whenever the queue has been
idle for ``stale_retry_s``. A user already waiting is not queued twice: the
refresh reads the user's state when it runs, so it sees every event posted
before it started. A refresher that raises marks its users stale (they are
retried later); the error's type is logged, never its message, which might
quote a review.

:func:`default_refresher` refreshes with :func:`interests.profile.update.refresh_profiles`
(exact statistics, no LLM).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog

    from .state import UserStore

log = logging.getLogger(__name__)

Refresher = Callable[[list[str]], None]


def default_refresher(store: UserStore, catalog: Catalog | None = None, groups: Any = None) -> Refresher:
    """Refresh profiles with ``interests.profile.update.refresh_profiles`` (no LLM) and store them.

    ``groups`` (:class:`~interests.profile.item_groups.ItemGroups`) default to
    ``group_items`` over every user's history, made once on the first
    refresh: grouping only the users of one batch would cluster a handful of
    items and name their interests differently from the rest.
    """
    made: list[Any] = [groups]

    def refresh(user_ids: list[str]) -> None:
        from interests.profile.item_groups import extend_groups, group_items
        from interests.profile.update import refresh_profiles

        if made[0] is None:  # only the worker thread calls this: no race
            made[0] = group_items({u: store.history(u) for u in store.user_ids()}, catalog)
        histories = {u: store.history(u) for u in user_ids}
        extend_groups(made[0], histories, catalog)  # items first seen in posted events
        old = {u: p for u in user_ids if (p := store.profile(u)) is not None}
        result = refresh_profiles(histories, old, catalog=catalog, groups=made[0], backend=None)
        store.set_profiles(result.profiles)
        failed = [e.user_id for e in result.errors]
        if failed:
            store.mark_stale(failed)
            log.warning("profile refresh failed for %d of %d users", len(failed), len(user_ids))

    return refresh


class RefreshQueue:
    """A bounded queue of user ids and the worker thread that refreshes them in batches."""

    def __init__(
        self,
        store: UserStore,
        refresher: Refresher,
        *,
        maxsize: int = 1000,
        batch_size: int = 64,
        stale_retry_s: float = 60.0,
        on_done: Callable[[int, bool], None] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("the refresh queue needs room for at least one user")
        self.store, self.refresher = store, refresher
        self.batch_size, self.stale_retry_s = batch_size, stale_retry_s
        self.on_done = on_done  # (users, ok) after every refresher call: metrics
        self._q: queue.Queue[str] = queue.Queue(maxsize)
        self._waiting: set[str] = set()
        self._lock = threading.Lock()
        self._busy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_stale_try = time.monotonic()

    @property
    def depth(self) -> int:
        return self._q.qsize()

    def submit(self, user_id: str) -> Literal["queued", "deferred"]:
        """Queue a refresh of ``user_id``, never blocking; ``deferred``: queue full, user marked stale."""
        self._ensure_worker()
        with self._lock:
            if user_id in self._waiting:
                return "queued"
            try:
                self._q.put_nowait(user_id)
            except queue.Full:
                self.store.mark_stale([user_id])
                return "deferred"
            self._waiting.add(user_id)
            return "queued"

    def waiting(self, user_id: str) -> bool:
        """Queued and not yet taken by the worker."""
        return user_id in self._waiting

    def start(self) -> None:
        """Start (or, after :meth:`close`, restart) the worker thread."""
        self._stop.clear()
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if (self._thread is None or not self._thread.is_alive()) and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._run, name="interests-refresh", daemon=True)
                    self._thread.start()

    def _next_batch(self) -> tuple[list[str], bool]:
        """(users, whether they came off the queue); stale users when the queue is idle."""
        try:
            first = self._q.get(timeout=0.2)
        except queue.Empty:
            if self.store.stale and time.monotonic() - self._last_stale_try >= self.stale_retry_s:
                self._last_stale_try = time.monotonic()
                self._busy = True
                return self.store.take_stale(self.batch_size), False
            return [], False
        batch = [first]
        while len(batch) < self.batch_size:
            try:
                batch.append(self._q.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            self._waiting.difference_update(batch)
        return batch, True

    def _run(self) -> None:
        while not self._stop.is_set():
            batch, queued = self._next_batch()
            if not batch:
                self._busy = False
                continue
            self._busy = True
            ok = True
            try:
                self.refresher(batch)
            except Exception as exc:  # a refresher bug must not kill the worker or lose the users
                ok = False
                self.store.mark_stale(batch)
                log.error("profile refresh of %d users failed: %s", len(batch), type(exc).__name__)
            finally:
                self._busy = False
                for _ in batch if queued else ():
                    self._q.task_done()
            if self.on_done is not None:
                self.on_done(len(batch), ok)

    def idle(self) -> bool:
        """Nothing queued and no refresh running (a user taken off the queue counts until refreshed)."""
        return self._q.unfinished_tasks == 0 and not self._busy

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until :meth:`idle` (tests, shutdown); False on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.idle():
                return True
            time.sleep(0.01)
        return self.idle()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the batch in flight (queued users are lost; their events are not)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


__all__ = ["RefreshQueue", "Refresher", "default_refresher"]
