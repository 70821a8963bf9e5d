"""Profile extraction across a Ray cluster: one engine per actor, one writer on the driver.

The driver reads the logs, decides what is left to do exactly as
:func:`~interests.profile.extract.extract_profiles` does (users with a record
in ``profiles.jsonl`` or ``profiles.errors.jsonl`` are skipped), computes
what must be shared by every user (the item groups, the rating scale, the
reference time) and splits the remaining users into ``actors`` partitions by
a stable hash of the user id. Each partition is sent, one batch at a time, to
its own actor; an actor holds one backend (an in-process vLLM engine, or a
client of one of the ``--server`` URLs) and runs the unchanged
``extract_profiles`` on each batch. An actor that runs out of its own
partition takes batches from the longest one left.

Only the driver writes, and it writes a batch with the store's atomic append
as soon as the batch comes back, so:

* every user ends with exactly one profile or error record (a single writer,
  which also drops a user it has already written);
* a killed actor loses only the batch it had in flight: Ray restarts it
  (a new engine) and the batch is sent again; a batch that kills its
  actor three times becomes error records instead of a crash loop;
* a killed driver takes its actors (and their engines) with it, and the
  same command resumes from the files, without duplicates;
* no shared file system is needed: results travel back through Ray.

:class:`RayExtractors` holds the actors across calls: logs larger than memory
(:func:`extract_partitioned_ray`) go partition after partition to the same
actors, whose engines load once.

Nothing here is imported by ``import interests``; Ray is imported when
:func:`extract_profiles_ray` runs (``pip install 'interests[ray]'``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import BackendError, ConfigError
from ..events import Catalog, UserHistory
from ..llm.base import Backend
from ..profile.extract import (
    ENGINE_COUNTERS,
    ExtractResult,
    extract_profiles,
    plan_job,
    run_groups,
    sibling_path,
)
from ..profile.grounding import now_iso
from ..profile.privacy import pseudonymise
from ..profile.signals import dataset_reference
from ..profile.store import append_lines, done_users
from ..schema import ErrorRecord

if TYPE_CHECKING:
    from ..ingest.partition import PartitionedLogs
    from ..profile.item_groups import ItemGroups
    from ..taxonomy.model import Taxonomy

#: batches each actor holds at once. One: a dead actor then lost exactly the batch it was running
#: (the one to blame for a poison batch), and the engine's wait for the next one is one round trip
#: (milliseconds against a batch's seconds to minutes).
IN_FLIGHT_PER_ACTOR = 1
#: seconds between probes of an actor that Ray is restarting, and how long it may take (engine load)
RESTART_POLL_S = 0.5
RESTART_TIMEOUT_S = 900.0
#: a batch whose actor died this many times is written as error records (a poison batch, e.g. out of memory)
BATCH_DEATHS = 3
#: the counters of each batch's run that add up to the job's
_SUMMED = ENGINE_COUNTERS
_ADDRESS = re.compile(r"^(local|auto|ray://\S+|[\w.\-]+:\d+)$")
RAY_MISSING = "{what} needs Ray: pip install 'interests[ray]'"


def partition_of(user_id: str, partitions: int) -> int:
    """The partition of ``user_id`` among ``partitions``: stable across processes, runs and machines.

    BLAKE2b of the UTF-8 id, not Python's ``hash()`` (salted per process).
    """
    digest = hashlib.blake2b(str(user_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def check_address(address: str | None) -> str | None:
    """A valid ``--ray`` value: ``local`` (also ``""``), ``auto``, ``ray://HOST:PORT`` or ``HOST:PORT``."""
    if address is None or address == "":
        return None if address is None else "local"
    if not _ADDRESS.match(address):
        raise ConfigError(
            f"--ray {address!r} is not a Ray address: give nothing (a local cluster), auto, "
            "ray://HOST:10001 or HOST:6379 (write --ray=ADDRESS or put --ray after the log files)"
        )
    return address


@dataclass(frozen=True)
class BackendSpec:
    """How each actor builds its backend: sent to the actors, so the engine itself never travels.

    With ``servers`` the actors use the OpenAI-compatible servers, actor
    ``i`` the ``i % len(servers)``-th; otherwise each actor starts its own
    in-process vLLM engine on ``model``. ``engine`` holds
    :class:`~interests.llm.vllm_local.VLLMBackend` keyword arguments,
    ``client`` :class:`~interests.llm.server.ServerBackend` ones.
    """

    model: str | None = None
    servers: tuple[str, ...] = ()
    engine: Mapping[str, Any] = field(default_factory=dict)
    client: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gpus(self) -> int:
        """GPUs one engine needs (its tensor-parallel size)."""
        return 0 if self.servers else int(self.engine.get("tensor_parallel_size", 1) or 1)

    def __call__(self, index: int) -> Backend:
        if self.servers:
            from ..llm.server import ServerBackend

            return ServerBackend(
                self.servers[index % len(self.servers)], model=self.model, **dict(self.client)
            )
        from ..llm.vllm_local import VLLMBackend

        return VLLMBackend(self.model, **dict(self.engine))


@dataclass
class RayExtractResult(ExtractResult):
    """:class:`ExtractResult` plus what the cluster did."""

    actors: int = 0
    actor_cpus: float = 0.0
    actor_gpus: float = 0.0
    actor_failures: int = 0  # calls lost to a dead actor (each batch was sent again)
    partition_sizes: list[int] = field(default_factory=list)
    #: seconds from the start of the job until each actor was up (its engine loaded); the job's
    #: ``seconds`` include them
    actor_start_seconds: list[float] = field(default_factory=list)
    #: what adds up when the results of several calls are combined (the partitions of one job), besides
    #: the counts of every :class:`ExtractResult`; lists add up element by element
    SUMMED: ClassVar[tuple[str, ...]] = ("actor_failures", "partition_sizes")


@dataclass
class _Batch:
    partition: int
    users: list[str]
    deaths: int = 0


Line = tuple[str, str]  # (user id, the record's JSON text)


def _lines(path: Path) -> list[Line]:
    """Every complete line of a JSON Lines file with its user id (none when the file was never written)."""
    if not path.exists():  # a batch without a failed user writes no errors file
        return []
    with path.open(encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.endswith("\n") and line.strip()]
    return [(str(json.loads(line)["user_id"]), line) for line in lines]


class _Extractor:
    """One Ray actor: one backend, ``extract_profiles`` on each batch it is sent."""

    def __init__(
        self,
        index: int,
        make_backend: Callable[[int], Backend],
    ) -> None:
        self.backend = make_backend(index)
        start = getattr(self.backend, "start", None)
        if callable(start):
            start()  # load the engine now, on every actor at once, not inside the first batch
        self._data: tuple[Any, Any] | None = None  # (object ref, (catalogue, shared settings))

    def _shared(self, data: list[Any]) -> tuple[Catalog | None, dict[str, Any]]:
        """The catalogue and shared settings (with the options), fetched once per actor and job call.

        They travel as a ref nested in each call rather than as constructor arguments: Ray
        warns that a restartable actor's arguments in the object store may be lost, and a
        ref held by the driver for the whole job cannot be.
        """
        import ray

        if self._data is None or self._data[0] != data[0]:
            self._data = (data[0], ray.get(data[0]))
        catalog, shared = self._data[1]
        return catalog, shared

    def extract(
        self, histories: dict[str, UserHistory], data: list[Any]
    ) -> tuple[list[Line], list[Line], dict[str, Any]]:
        """The batch's profile and error lines, ``(user_id, JSON text)``, and the run's counts.

        The usual loop writes them to a scratch file; they travel back as text, so the
        driver writes them without parsing or serialising them again.
        """
        catalog, shared = self._shared(data)
        with tempfile.TemporaryDirectory(prefix="interests-ray-") as tmp:
            out = Path(tmp) / "part.jsonl"
            res = extract_profiles(
                histories,
                catalog=catalog,
                output=out,
                backend=self.backend,
                batch_size=max(1, len(histories)),
                **shared,
            )
            return _lines(out), _lines(sibling_path(out, "errors")), res.to_dict()

    def ready(self) -> int:
        """Answers once the actor (and its engine) is up: the process id."""
        return os.getpid()

    def close(self) -> None:
        """Shut the engine down (a killed actor's engine exits by itself: see ``llm.lifeline``)."""
        self.backend.close()


def require_ray(what: str = "distributed extraction") -> Any:
    """The ``ray`` module, or a :class:`ConfigError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(RAY_MISSING.format(what=what)) from exc
    return ray


def connect(ray: Any, address: str) -> None:
    """``ray.init``, keeping this process's SIGTERM handling (Ray's own aborts the process).

    A local cluster started here runs its workers at the driver's priority: Ray lowers
    workers' priority by 15 by default (``worker_niceness``), which on a shared machine
    starved the engines in the actors against the same engine in one process.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    local = {"include_dashboard": False, "_system_config": {"worker_niceness": 0}}
    ray.init(address=address, log_to_driver=True, **(local if address == "local" else {}))
    if main and callable(previous):  # e.g. the CLI's SIGTERM-as-Ctrl-C: finished batches are kept
        signal.signal(signal.SIGTERM, previous)


def _fit(ray: Any, cpus: float, gpus: float) -> int:
    """How many actors of this size the cluster holds in all (not only what is free now)."""
    total = ray.cluster_resources()
    fits = [int(total.get("CPU", 0) // cpus)] if cpus else []
    if gpus:
        fits.append(int(total.get("GPU", 0) // gpus))
    return min(fits) if fits else 1


#: arguments of ``extract_profiles`` that the driver handles itself; the others (``max_new_tokens``,
#: ``max_items``, ``prompt_dir``, ``tz``, ``redact``, ...) travel to the actors with each call
_DRIVER_ARGS = frozenset(
    {
        "logs",
        "catalog",
        "output",
        "errors",
        "backend",
        "model",
        "batch_size",
        "limit",
        "users",
        "retry_errors",
        "on_batch",
        "hash_key",
        "structure",
        "taxonomy",
        "as_of",
        "groups",
        "rating_scale",
    }
)


def _actor_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked against ``extract_profiles``'s arguments here, not in every actor."""
    known = set(inspect.signature(extract_profiles).parameters) - _DRIVER_ARGS
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unexpected extraction option(s): {', '.join(unknown)}")
    return dict(options)


class RayExtractors:
    """A pool of Ray actors, one engine each, that serves any number of :meth:`extract` calls.

    The actors (and their engines) start with the first call that has users
    to extract and stop when the pool is closed (``with RayExtractors(...) as
    pool:``), so a job made of several calls -- the partitions of logs larger
    than memory (:func:`extract_partitioned_ray`) -- loads its engines once.
    The constructor's arguments are those of :func:`extract_profiles_ray`
    that concern the cluster; ``users`` caps the actors at that many users
    (default: the users of the call that starts them).
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        actors: int | None = None,
        actor_cpus: float = 1.0,
        actor_gpus: float | None = None,
        backend: Callable[[int], Backend] | None = None,
        model: str | None = None,
        users: int | None = None,
        max_actor_failures: int | None = None,
        name_prefix: str | None = None,
    ) -> None:
        self.ray = require_ray()
        self.address = check_address(address)
        self.actors, self.actor_cpus, self.actor_gpus = actors, actor_cpus, actor_gpus
        self.make_backend = backend if backend is not None else BackendSpec(model=model)
        self.label = str(getattr(self.make_backend, "model", None) or model or "default")
        self.users, self.max_actor_failures, self.name_prefix = users, max_actor_failures, name_prefix
        self.pool: list[Any] = []
        self.gpus = 0.0
        #: seconds from the start of the pool until each actor answered (its engine loaded)
        self.start_seconds: list[float] = []
        self._t0 = 0.0
        self._own_ray = False

    def __enter__(self) -> RayExtractors:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, users: int | None = None) -> int:
        """Start the actors unless they run, at most ``users`` (or the pool's ``users``): how many run."""
        if self.pool:
            return len(self.pool)
        ray = self.ray
        if not ray.is_initialized():
            connect(ray, self.address or "local")
            self._own_ray = True
        self._t0 = time.perf_counter()
        gpus = self.actor_gpus
        if gpus is None:
            gpus = float(getattr(self.make_backend, "gpus", 0)) if ray.cluster_resources().get("GPU") else 0.0
        fit = _fit(ray, self.actor_cpus, gpus)
        if fit < 1:
            raise ConfigError(
                f"the Ray cluster has {ray.cluster_resources()} in all: not enough for one actor of "
                f"{self.actor_cpus:g} CPUs and {gpus:g} GPUs (lower --actor-cpus / --actor-gpus or add nodes)"
            )
        n = self.actors if self.actors is not None else fit
        cap = self.users if self.users is not None else users
        n = max(1, n if cap is None else min(n, cap))
        env = {k: v for k, v in os.environ.items() if k.startswith("VLLM_")}  # the driver's engine settings
        actor_options: dict[str, Any] = {
            "num_cpus": self.actor_cpus,
            "num_gpus": gpus,
            "max_restarts": -1,  # bounded by max_actor_failures in each call
            "max_task_retries": 0,  # the driver re-sends lost batches itself (and counts them)
        }
        if env:
            actor_options["runtime_env"] = {"env_vars": env}
        extractor = ray.remote(_Extractor)
        self.gpus = gpus
        for i in range(n):
            name = {"name": f"{self.name_prefix}-{i}"} if self.name_prefix else {}
            self.pool.append(extractor.options(**actor_options, **name).remote(i, self.make_backend))
        self.start_seconds = [0.0] * n
        return n

    def close(self) -> None:
        """Stop the actors (and their engines), and the local Ray cluster if the pool started it."""
        try:
            if self.pool:
                _stop(self.ray, self.pool)
        finally:
            self.pool = []
            if self._own_ray:
                self._own_ray = False
                self.ray.shutdown()

    def extract(
        self,
        logs: Any,
        *,
        catalog: Catalog | None = None,
        output: str | Path = "out/profiles.jsonl",
        errors: str | Path | None = None,
        batch_size: int = 32,
        limit: int | None = None,
        users: Collection[str] | None = None,
        retry_errors: bool = False,
        hash_key: bytes | None = None,
        as_of: float | None = None,
        taxonomy: Taxonomy | None = None,
        structure: str = "data",
        on_batch: Callable[[ExtractResult, int], None] | None = None,
        groups: ItemGroups | None = None,
        rating_scale: tuple[float, float] | None = None,
        **options: Any,
    ) -> RayExtractResult:
        """:func:`~interests.profile.extract.extract_profiles` of ``logs`` on the pool's actors.

        Arguments as for :func:`extract_profiles_ray`; ``groups`` and
        ``rating_scale`` (those of a larger data set that ``logs`` is a slice
        of) are used instead of computing them, as ``extract_profiles`` does.
        """
        options = _actor_options(options)
        if structure not in ("data", "model"):
            raise ValueError(f"structure must be 'data' or 'model', not {structure!r}")
        histories: Mapping[str, UserHistory] = getattr(logs, "histories", logs)
        if hash_key is not None:
            histories, users = pseudonymise(histories, users, hash_key)
        catalog = catalog if catalog is not None else getattr(logs, "catalog", None)
        output, errors_path, order, done = plan_job(
            histories, output, errors, users, limit, retry_errors, hashed=hash_key is not None
        )
        todo = [u for u in order if u not in done]

        result = RayExtractResult(output, errors_path, "ray", self.label)
        result.users_selected, result.users_skipped = len(order), len(order) - len(todo)
        result.errors_before = len((set(order) & done_users(errors_path)) - done_users(output))
        if not todo:
            return result

        t0 = time.perf_counter()
        scale, latest = dataset_reference(histories.values())
        if structure == "model":
            groups = None
        elif groups is None:
            groups = run_groups(output, histories, catalog, taxonomy)
        shared = {
            "structure": structure,
            "groups": groups,
            "rating_scale": rating_scale if rating_scale is not None else scale,
            "as_of": as_of if as_of is not None else latest,
            **options,
        }
        n = self.start(len(todo))
        result.actors, result.actor_cpus, result.actor_gpus = n, self.actor_cpus, self.gpus
        queues: list[deque[_Batch]] = [deque() for _ in range(n)]
        parts: list[list[str]] = [[] for _ in range(n)]
        for u in todo:
            parts[partition_of(u, n)].append(u)
        result.partition_sizes = [len(p) for p in parts]
        for i, part in enumerate(parts):
            queues[i].extend(_Batch(i, part[k : k + batch_size]) for k in range(0, len(part), batch_size))
        data = self.ray.put((catalog, shared))
        _run(
            self.ray,
            self.pool,
            queues,
            histories,
            [data],
            output,
            errors_path,
            result,
            on_batch,
            (self._t0, self.start_seconds),
            t0,
            self.max_actor_failures,
        )
        result.actor_start_seconds = list(self.start_seconds)
        result.seconds = time.perf_counter() - t0
        return result


def extract_profiles_ray(
    logs: Any,
    *,
    catalog: Catalog | None = None,
    output: str | Path = "out/profiles.jsonl",
    errors: str | Path | None = None,
    address: str | None = None,
    actors: int | None = None,
    actor_cpus: float = 1.0,
    actor_gpus: float | None = None,
    backend: Callable[[int], Backend] | None = None,
    model: str | None = None,
    batch_size: int = 32,
    limit: int | None = None,
    users: Collection[str] | None = None,
    retry_errors: bool = False,
    hash_key: bytes | None = None,
    as_of: float | None = None,
    taxonomy: Taxonomy | None = None,
    structure: str = "data",
    on_batch: Callable[[ExtractResult, int], None] | None = None,
    max_actor_failures: int | None = None,
    name_prefix: str | None = None,
    groups: ItemGroups | None = None,
    rating_scale: tuple[float, float] | None = None,
    **options: Any,
) -> RayExtractResult:
    """:func:`~interests.profile.extract.extract_profiles` with one engine per Ray actor.

    ``address`` is ``None`` (the Ray this process is connected to, else a new
    local cluster), ``"local"`` (a new local cluster), ``"auto"``,
    ``"ray://HOST:10001"`` or ``"HOST:6379"``. ``actors`` defaults to as many
    as the cluster holds, each asking for ``actor_cpus`` CPUs and
    ``actor_gpus`` GPUs (default: the engine's tensor-parallel size where the
    cluster has GPUs, else none). ``backend`` builds an actor's backend from
    its index (a :class:`BackendSpec`, the default being the in-process engine
    on ``model``); it is pickled to the actors, so it must be importable there.
    The other arguments, and ``options`` (``max_attempts``, ``max_new_tokens``,
    ``max_items``, ``prompt_dir``, ``tz``, ``redact``, ``skeleton_rules``,
    ``half_life_days``), mean what they mean for ``extract_profiles``; the
    output files are the same and a re-run (with or without Ray) resumes them.
    ``name_prefix`` names the actors ``<prefix>-<index>`` (to find them with
    ``ray.get_actor``); ``max_actor_failures`` (default 3 per actor) stops a
    job whose actors keep dying.

    The actors start and stop inside the call (no actor starts when every
    user is done); :class:`RayExtractors` keeps them for several calls.
    """
    with RayExtractors(
        address=address,
        actors=actors,
        actor_cpus=actor_cpus,
        actor_gpus=actor_gpus,
        backend=backend,
        model=model,
        max_actor_failures=max_actor_failures,
        name_prefix=name_prefix,
    ) as pool:
        return pool.extract(
            logs,
            catalog=catalog,
            output=output,
            errors=errors,
            batch_size=batch_size,
            limit=limit,
            users=users,
            retry_errors=retry_errors,
            hash_key=hash_key,
            as_of=as_of,
            taxonomy=taxonomy,
            structure=structure,
            on_batch=on_batch,
            groups=groups,
            rating_scale=rating_scale,
            **options,
        )


def extract_partitioned_ray(
    split: PartitionedLogs,
    *,
    address: str | None = None,
    actors: int | None = None,
    actor_cpus: float = 1.0,
    actor_gpus: float | None = None,
    backend: Callable[[int], Backend] | None = None,
    model: str | None = None,
    max_actor_failures: int | None = None,
    name_prefix: str | None = None,
    **kwargs: Any,
) -> ExtractResult:
    """:func:`~interests.profile.partitioned.extract_partitioned` on one pool of Ray actors.

    Logs larger than memory on a cluster: the driver holds one partition of
    ``split`` at a time, the item groups, rating scale and reference time are
    those of every partition, and the same actors (engines loaded once) take
    the partitions one after another. The cluster arguments are those of
    :func:`extract_profiles_ray`, ``kwargs`` those of ``extract_partitioned``.
    The result is a :class:`RayExtractResult` (counts summed over partitions)
    unless no user was left to extract.
    """
    from ..profile.partitioned import extract_partitioned

    with RayExtractors(
        address=address,
        actors=actors,
        actor_cpus=actor_cpus,
        actor_gpus=actor_gpus,
        backend=backend,
        model=model,
        users=split.report.users,
        max_actor_failures=max_actor_failures,
        name_prefix=name_prefix,
    ) as pool:
        return extract_partitioned(split, extract=pool.extract, **kwargs)


def _stop(ray: Any, pool: list[Any], timeout: float = 60.0) -> None:
    """Close every actor's engine (briefly waited for), then end the actors."""
    try:
        ray.get([actor.close.remote() for actor in pool], timeout=timeout)
    except Exception:  # a dead or hung actor: killing it is enough, its engine follows it
        pass
    for actor in pool:
        ray.kill(actor)


def _next_batch(queues: Sequence[deque[_Batch]], slot: int) -> _Batch | None:
    """The slot's own partition first; otherwise the tail of the longest partition left."""
    if queues[slot]:
        return queues[slot].popleft()
    longest = max(range(len(queues)), key=lambda i: len(queues[i]))
    return queues[longest].pop() if queues[longest] else None


def _run(
    ray: Any,
    pool: list[Any],
    queues: list[deque[_Batch]],
    histories: Mapping[str, UserHistory],
    data: list[Any],
    output: Path,
    errors_path: Path,
    result: RayExtractResult,
    on_batch: Callable[[ExtractResult, int], None] | None,
    starts: tuple[float, list[float]],
    t0: float,
    max_actor_failures: int | None,
) -> None:
    """Send the batches of ``queues`` to the actors of ``pool`` and write what comes back.

    ``starts`` is the pool's start time and its actors' start seconds (filled in
    as actors first answer); ``t0`` the call's start.
    """
    from ray.exceptions import RayActorError, WorkerCrashedError

    lost = (RayActorError, WorkerCrashedError)
    limit = max_actor_failures if max_actor_failures is not None else BATCH_DEATHS * len(pool)
    inflight: dict[Any, tuple[int, _Batch]] = {}
    written: set[str] = set()
    # After an actor died, Ray restarts it; a cheap probe call tells when it answers again. Batches
    # go to it only then, so a batch that fails is one the actor was running (Ray reports both a
    # death mid-batch and a call sent during the restart as ActorUnavailableError).
    probes: dict[Any, int] = {}
    paused: dict[int, float] = {}  # slot -> when to probe it again
    probe_failures = [0] * len(pool)

    def submit(slot: int) -> None:
        busy = slot in paused or slot in probes.values()
        while not busy and sum(1 for s, _ in inflight.values() if s == slot) < IN_FLIGHT_PER_ACTOR:
            batch = _next_batch(queues, slot)
            if batch is None:
                return
            ref = pool[slot].extract.remote({u: histories[u] for u in batch.users}, data)
            inflight[ref] = (slot, batch)

    def write(profiles: list[Line], records: list[Line]) -> int:
        profiles = [(u, line) for u, line in profiles if u not in written]
        records = [(u, line) for u, line in records if u not in written]
        append_lines(output, [line for _, line in profiles])
        append_lines(errors_path, [line for _, line in records])
        written.update(u for u, _ in profiles)
        written.update(u for u, _ in records)
        result.profiles += len(profiles)
        result.errors += len(records)
        return len(profiles) + len(records)

    def lost_batch(batch: _Batch) -> None:
        result.actor_failures += 1
        batch.deaths += 1
        if result.actor_failures > limit:
            raise BackendError(
                f"extraction actors died {result.actor_failures} times (the Ray logs say why: out of "
                "memory?); finished batches are saved: re-run the same command to resume"
            )
        if batch.deaths >= BATCH_DEATHS:
            reason = f"the extraction actor died {batch.deaths} times on this user's batch"
            records = [
                (
                    u,
                    ErrorRecord(
                        user_id=u, stage="generate", reason=reason, created_at=now_iso()
                    ).model_dump_json(),
                )
                for u in batch.users
            ]
            write([], records)
        else:
            queues[batch.partition].appendleft(batch)  # the restarted actor (or another) takes it again

    pool_t0, start_seconds = starts
    for slot in range(len(pool)):  # batches go to an actor once it answers (its engine is loaded)
        probes[pool[slot].ready.remote()] = slot
    while inflight or probes or paused:
        for slot, until in list(paused.items()):
            if until <= time.monotonic():
                del paused[slot]
                probes[pool[slot].ready.remote()] = slot
        waiting = [*inflight, *probes]
        ready, _ = ray.wait(waiting, num_returns=1, timeout=RESTART_POLL_S) if waiting else ([], [])
        if not ready:
            time.sleep(0 if waiting else RESTART_POLL_S)
            continue
        ref = ready[0]
        if ref in probes:
            slot = probes.pop(ref)
            try:
                ray.get(ref)
            except lost:
                probe_failures[slot] += 1
                if probe_failures[slot] * RESTART_POLL_S > RESTART_TIMEOUT_S:
                    raise BackendError(
                        f"extraction actor {slot} did not come back within {RESTART_TIMEOUT_S:g} s; "
                        "finished batches are saved: re-run the same command to resume"
                    ) from None
                paused[slot] = time.monotonic() + RESTART_POLL_S
            else:
                probe_failures[slot] = 0
                if not start_seconds[slot]:
                    start_seconds[slot] = time.perf_counter() - pool_t0
            for other in range(len(pool)):
                submit(other)
            continue
        slot, batch = inflight.pop(ref)
        try:
            profiles, records, counts = ray.get(ref)
        except lost:
            lost_batch(batch)
            paused[slot] = time.monotonic()  # probe the restarted actor before sending it more
        else:
            n = write(profiles, records)
            result.backend, result.model = counts["backend"], counts["model"]
            for key in _SUMMED:
                setattr(result, key, getattr(result, key) + counts[key])
            for key, value in counts["redactions"].items():
                result.redactions[key] = result.redactions.get(key, 0) + value
            result.seconds = time.perf_counter() - t0
            if on_batch is not None:
                on_batch(result, n)
        for other in range(len(pool)):
            submit(other)


__all__ = [
    "BackendSpec",
    "RayExtractResult",
    "RayExtractors",
    "check_address",
    "extract_partitioned_ray",
    "extract_profiles_ray",
    "partition_of",
    "require_ray",
]
