"""The bounded profile refresh queue: users with new events wait here for a background refresh.

``POST /events`` never waits for a profile: it puts the user on a bounded
queue and returns. When the queue is full the user is marked *stale* instead
(the response says ``"refresh": "deferred"``); a worker thread drains the
queue in batches and calls the *refresher*, a ``Callable[[list[str]], None]``
injected into the app, and retries stale users whenever the queue has been
idle for ``stale_retry_s``. A user already waiting is not queued twice: the
refresh reads the user's state when it runs, so it sees every event posted
before it started. A refresher that raises marks its users stale (they are
retried later; :class:`RefreshFailed` names the users that failed when the
others were refreshed); the error's type is logged, never its message, which
might quote a review.

:class:`ProfileRefresher` is the service's refresher, the rule of ``interests
update`` (:func:`interests.profile.update.plan_changes`) applied to a batch:
exact statistics for every user whose events changed, and new words from an
LLM only for users whose hierarchy changed (a domain or topic appeared or
went, a domain's share moved by ``weight_shift``; every changed user with
``refresh=True``) and for users without a profile. :func:`default_refresher`
makes one without an LLM (those users get the data's own labels),
:func:`llm_refresher` one with a backend.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from interests.profile.job import ExtractionJob
from interests.profile.update import WEIGHT_SHIFT

from .refresh_child import Child, ChildDied

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog
    from interests.llm.base import Backend
    from interests.profile.item_groups import ItemGroups
    from interests.profile.skeleton import SkeletonRules
    from interests.profile.update import BackendLike, RefreshResult

    from .state import UserStore

log = logging.getLogger(__name__)

Refresher = Callable[[list[str]], None]


class RefreshFailed(Exception):
    """Raised by a refresher when some users of its batch failed and the others were refreshed.

    The queue marks only ``user_ids`` stale. The message is what the log
    shows: counts and error types, never an error's own text (it might quote a
    review).
    """

    def __init__(self, user_ids: Iterable[str], what: str) -> None:
        super().__init__(what)
        self.user_ids = list(user_ids)


class ProfileRefresher:
    """Refresh a batch of users' profiles and store them: exact statistics, an LLM's words where needed.

    For every user the rule of ``interests update`` decides
    (:func:`~interests.profile.update.plan_changes`): *unchanged* (the
    profile already reflects every event) nothing; *exact* (same groups)
    every statistic recomputed, the previous words kept, no LLM; *llm* (a
    group appeared or went, a domain's share moved by ``weight_shift``, or
    ``refresh``) and *new* (no profile yet): new words from ``backend``
    (:func:`~interests.profile.update.refresh_profiles`, the prompts and
    decoding of ``interests extract``). Without a backend those users get
    the data's own labels. Exact profiles are stored before the LLM is
    asked, so a failing backend costs only the users that needed it: they
    keep their previous profile and are marked stale (retried later).

    ``backend``: a :class:`~interests.llm.base.Backend`, or a function making
    one, called in the worker thread the first time a user needs words (an
    in-process engine then loads there, never in a request). ``groups``
    (:class:`~interests.profile.item_groups.ItemGroups`) default to
    ``group_items`` over every user's history, made once on the first
    refresh: grouping only the users of one batch would cluster a handful of
    items and name their interests differently from the rest. ``store``,
    ``catalog`` and ``groups`` are filled in by
    :func:`~interests.api.app.create_app` when not given. ``options`` are
    :class:`~interests.profile.job.ExtractionJob` fields for ``refresh_profiles``
    (``tz``, ``batch_size``, ``max_new_tokens``, ``max_attempts``, ``max_items``,
    ``prompt_dir``, ``redact``), checked when the refresher is made.
    """

    def __init__(
        self,
        backend: BackendLike | None = None,
        *,
        store: UserStore | None = None,
        catalog: Catalog | None = None,
        groups: ItemGroups | None = None,
        refresh: bool = False,
        weight_shift: float = WEIGHT_SHIFT,
        rules: SkeletonRules | None = None,
        half_life_days: float | None = None,
        process: bool = False,
        **options: Any,
    ) -> None:
        self.backend = backend
        self.store, self.catalog, self.groups = store, catalog, groups
        self.refresh, self.weight_shift = refresh, weight_shift
        self.rules, self.half_life_days = rules, half_life_days
        #: the prompts and decoding of the LLM refreshes (checked here, not at the first refresh)
        self.job = ExtractionJob.of(skeleton_rules=rules, half_life_days=half_life_days, **options)
        #: users by what their last refresh did (``exact``, ``llm``, ``new``, ``unchanged``)
        self.counts: Counter[str] = Counter()
        self._engine: Backend | None = None
        #: without a backend, refresh in a child process (:mod:`~interests.api.refresh_child`)
        self.process = process and backend is None
        self._child: Child | None = None

    @property
    def llm(self) -> bool:
        """Whether users whose hierarchy changed get new words from an LLM."""
        return self.backend is not None

    def bind(
        self, store: UserStore, catalog: Catalog | None = None, groups: ItemGroups | None = None
    ) -> ProfileRefresher:
        """Fill in the app's store (and catalogue and groups, where not given); one app a refresher."""
        from interests.errors import ConfigError

        if self.store is not None and self.store is not store:
            raise ConfigError("a ProfileRefresher refreshes the profiles of one app: make one for each app")
        self.store = store
        self.catalog = self.catalog if self.catalog is not None else catalog
        self.groups = self.groups if self.groups is not None else groups
        return self

    def engine(self) -> Backend:
        """The backend, made on the first call (in the worker thread)."""
        from interests.llm.base import Backend

        if self._engine is None:
            assert self.backend is not None
            self._engine = self.backend if isinstance(self.backend, Backend) else self.backend()
        return self._engine

    def __call__(self, user_ids: list[str]) -> None:
        from interests.profile.item_groups import extend_groups, group_items
        from interests.profile.signals import dataset_reference
        from interests.profile.update import plan_changes, refresh_profiles

        store = self.store
        if store is None:
            raise RuntimeError("this ProfileRefresher has no store: pass it to create_app(refresher=...)")
        if self.process:
            return self._in_child(user_ids)
        if self.groups is None:  # only the worker thread calls this: no race
            self.groups = group_items({u: store.history(u) for u in store.user_ids()}, self.catalog)
        posted = {u: store.n_posted(u) for u in user_ids}
        histories = {u: store.history(u) for u in user_ids}
        extend_groups(self.groups, histories, self.catalog)  # items first seen in posted events
        old = {u: p for u in user_ids if (p := store.profile(u)) is not None}
        as_of = dataset_reference(histories.values())[1]
        changes, skeletons = plan_changes(
            histories,
            old,
            self.groups,
            self.catalog,
            rules=self.rules,
            weight_shift=self.weight_shift,
            refresh=self.refresh,
            half_life_days=self.half_life_days,
            as_of=as_of,
        )
        self.counts.update(c.kind for c in changes.values())
        words = [u for u, c in changes.items() if c.kind in ("new", "llm")] if self.llm else []
        exact = [u for u, c in changes.items() if c.kind != "unchanged" and u not in words]
        failed: dict[str, str] = {}

        def run(users: list[str], backend: Any) -> RefreshResult:
            return refresh_profiles(
                {u: histories[u] for u in users},
                old,
                self.job.replace(groups=self.groups, as_of=as_of),
                backend,
                catalog=self.catalog,
                changes={u: changes[u] for u in users},
                skeletons={u: skeletons[u] for u in users if u in skeletons},
            )

        if exact:
            self._keep(run(exact, None), posted, failed)
        if words:
            try:
                result = run(words, self.engine)
            except Exception as exc:  # the backend failed: those users keep their profile, marked stale
                failed.update((u, type(exc).__name__) for u in words)
            else:
                self._keep(result, posted, failed)
        if failed:
            why = ", ".join(f"{n} {what}" for what, n in Counter(failed.values()).most_common())
            raise RefreshFailed(failed, why)

    def _in_child(self, user_ids: list[str]) -> None:
        """The same refresh without an LLM, computed in the child process: this one only gathers
        the users' arrays (about 0.1 ms a user) and stores the profiles that come back."""
        store = self.store
        assert store is not None
        if self._child is None:
            settings = {
                "rules": self.rules,
                "weight_shift": self.weight_shift,
                "refresh": self.refresh,
                "half_life_days": self.half_life_days,
                "job": self.job,
            }
            self._child = Child(self.catalog, self.groups, store.known.item_ids, settings)
        child = self._child
        posted = {u: store.n_posted(u) for u in user_ids}
        parts = {u: store.history_parts(u) for u in user_ids}
        old = {u: p for u in user_ids if (p := store.profile(u)) is not None}
        everyone = None
        if not child.grouped:  # the child groups every user's items once, as the thread would
            everyone = {u: store.history_parts(u) for u in store.user_ids()}
        try:
            kinds, profiles, errors = child.refresh(parts, old, everyone)
        except ChildDied:  # killed, out of memory: these users are marked stale, a new child next time
            self._child = None
            child.close()
            raise
        self.counts.update(kinds)
        from interests.profile.update import RefreshResult

        failed: dict[str, str] = {}
        self._keep(RefreshResult(profiles=profiles), posted, failed)
        failed.update((u, f"{stage} error") for u, stage in errors)
        if failed:
            why = ", ".join(f"{n} {what}" for what, n in Counter(failed.values()).most_common())
            raise RefreshFailed(failed, why)

    def _keep(self, result: RefreshResult, posted: dict[str, int], failed: dict[str, str]) -> None:
        store = self.store
        assert store is not None
        store.set_profiles(result.profiles)
        failed.update((e.user_id, f"{e.stage} error") for e in result.errors)
        # events posted while the refresh ran are not in these profiles: still stale
        store.mark_stale([u for u in result.profiles if store.n_posted(u) != posted[u]])

    def close(self) -> None:
        """Close a backend this refresher made (an in-process engine stops), and the child process."""
        child, self._child = self._child, None
        if child is not None:
            child.close()
        engine, self._engine = self._engine, None
        if engine is not None and engine is not self.backend:
            engine.close()


def default_refresher(
    store: UserStore,
    catalog: Catalog | None = None,
    groups: ItemGroups | None = None,
    *,
    process: bool = True,
) -> ProfileRefresher:
    """Refresh profiles without an LLM (exact statistics; new groups get the data's own labels).

    ``process``: compute them in a child process at a lower CPU priority
    (:mod:`~interests.api.refresh_child`), so a refresh never holds the
    service's GIL; ``False``: in the refresh thread.
    """
    return ProfileRefresher(store=store, catalog=catalog, groups=groups, process=process)


def llm_refresher(
    backend: BackendLike,
    *,
    catalog: Catalog | None = None,
    groups: ItemGroups | None = None,
    refresh: bool = False,
    weight_shift: float = WEIGHT_SHIFT,
    **options: Any,
) -> ProfileRefresher:
    """A refresher that asks ``backend`` for new words where a user's hierarchy changed, for
    ``create_app(refresher=...)``; see :class:`ProfileRefresher`.

    ::

        from interests.llm.server import ServerBackend

        app = create_app(model, profiles, catalog=catalog,
                         refresher=llm_refresher(lambda: ServerBackend("http://127.0.0.1:8001/v1")))
    """
    return ProfileRefresher(
        backend, catalog=catalog, groups=groups, refresh=refresh, weight_shift=weight_shift, **options
    )


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

    def forget(self, user_id: str) -> bool:
        """Take ``user_id`` off the queue (``DELETE /users/{id}``); whether it was waiting."""
        with self._lock:
            self._waiting.discard(user_id)
            with self._q.mutex:
                n = self._q.queue.count(user_id)
                for _ in range(n):
                    self._q.queue.remove(user_id)
                self._q.unfinished_tasks -= n
                if n:
                    self._q.not_full.notify(n)
            return n > 0

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
            failed: list[str] = []
            try:
                self.refresher(batch)
            except RefreshFailed as exc:  # some users failed, the others were refreshed
                mine = set(batch)
                failed = [u for u in dict.fromkeys(exc.user_ids) if u in mine]
                self.store.mark_stale(failed)
                log.warning("profile refresh failed for %d of %d users: %s", len(failed), len(batch), exc)
            except Exception as exc:  # a refresher bug must not kill the worker or lose the users
                failed = batch
                self.store.mark_stale(batch)
                log.error("profile refresh of %d users failed: %s", len(batch), type(exc).__name__)
            finally:
                self._busy = False
                for _ in batch if queued else ():
                    self._q.task_done()
            if self.on_done is not None:
                if len(batch) > len(failed):
                    self.on_done(len(batch) - len(failed), True)
                if failed:
                    self.on_done(len(failed), False)

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
        """Stop the worker after the batch in flight (queued users are lost; their events are not),
        then close the refresher's backend (an engine still in use by a batch that outlived
        ``timeout`` is left to exit with the process)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        close = getattr(self.refresher, "close", None)
        if callable(close) and (self._thread is None or not self._thread.is_alive()):
            close()


__all__ = [
    "ProfileRefresher",
    "RefreshFailed",
    "RefreshQueue",
    "Refresher",
    "default_refresher",
    "llm_refresher",
]
