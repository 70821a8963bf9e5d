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

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import BackendError, ConfigError
from ..events import Catalog, UserHistory
from ..llm.base import Backend
from ..llm.spec import BackendSpec
from ..profile.extract import (
    ENGINE_COUNTERS,
    ExtractResult,
    extract_profiles,
    job_histories,
    plan_job,
    run_groups,
)
from ..profile.grounding import now_iso
from ..profile.job import ExtractionJob, job_of
from ..profile.signals import dataset_reference
from ..profile.store import append_lines, done_users
from ..schema import ErrorRecord
from .ray_connect import RayCluster, check_address, connect, require_ray

if TYPE_CHECKING:
    from ..ingest.partition import PartitionedLogs

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


def partition_of(user_id: str, partitions: int) -> int:
    """The partition of ``user_id`` among ``partitions``: stable across processes, runs and machines.

    BLAKE2b of the UTF-8 id, not Python's ``hash()`` (salted per process).
    """
    digest = hashlib.blake2b(str(user_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


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

    def _shared(self, data: list[Any]) -> tuple[Catalog | None, ExtractionJob]:
        """The catalogue and the job (groups, rating scale, reference time set), fetched once per
        actor and job call.

        They travel as a ref nested in each call rather than as constructor arguments: Ray
        warns that a restartable actor's arguments in the object store may be lost, and a
        ref held by the driver for the whole job cannot be.
        """
        import ray

        if self._data is None or self._data[0] != data[0]:
            self._data = (data[0], ray.get(data[0]))
        catalog, job = self._data[1]
        return catalog, job

    def extract(
        self, histories: dict[str, UserHistory], data: list[Any]
    ) -> tuple[list[Line], list[Line], dict[str, Any]]:
        """The batch's profile and error lines, ``(user_id, JSON text)``, and the run's counts.

        The usual loop writes them to a scratch file; they travel back as text, so the
        driver writes them without parsing or serialising them again.
        """
        catalog, job = self._shared(data)
        with tempfile.TemporaryDirectory(prefix="interests-ray-") as tmp:
            out = Path(tmp) / "part.jsonl"
            batch = job.replace(output=out, batch_size=max(1, len(histories)))
            res = extract_profiles(histories, batch, self.backend, catalog=catalog)
            return _lines(out), _lines(batch.errors_path), res.to_dict()

    def ready(self) -> int:
        """Answers once the actor (and its engine) is up: the process id."""
        return os.getpid()

    def close(self) -> None:
        """Shut the engine down (a killed actor's engine exits by itself: see ``llm.lifeline``)."""
        self.backend.close()


def _fit(ray: Any, cpus: float, gpus: float) -> int:
    """How many actors of this size the cluster holds in all (not only what is free now)."""
    total = ray.cluster_resources()
    fits = [int(total.get("CPU", 0) // cpus)] if cpus else []
    if gpus:
        fits.append(int(total.get("GPU", 0) // gpus))
    return min(fits) if fits else 1


#: the :class:`RayCluster` fields a call may give as keyword arguments, beside the job's
_CLUSTER = frozenset(f.name for f in dataclasses.fields(RayCluster))


def cluster_of(cluster: RayCluster | str | None, options: dict[str, Any]) -> RayCluster:
    """``cluster`` (an address, or ``None``: the Ray this process is connected to, else a new
    local one) with the cluster fields of ``options`` (taken out of them) set."""
    given = {k: options.pop(k) for k in list(options) if k in _CLUSTER}
    if isinstance(cluster, RayCluster):
        return dataclasses.replace(cluster, **given) if given else cluster
    if cluster is not None:
        given.setdefault("address", cluster)
    return RayCluster(**given)


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
        cluster: RayCluster | str | None = None,
        backend: BackendSpec | Callable[[int], Backend] | None = None,
        *,
        users: int | None = None,
        **cluster_options: Any,
    ) -> None:
        self.ray = require_ray()
        self.cluster = cluster_of(cluster, cluster_options)
        if cluster_options:
            raise TypeError(f"unexpected cluster option(s): {', '.join(sorted(cluster_options))}")
        if backend is not None and isinstance(backend, Backend):
            raise ConfigError(
                "Ray actors build their own backends: give a BackendSpec (or a function of the "
                "actor's index), not a backend"
            )
        c = self.cluster
        self.address = c.address
        self.actors, self.actor_cpus, self.actor_gpus = c.actors, c.actor_cpus, c.actor_gpus
        self.make_backend: Callable[[int], Backend] = backend if backend is not None else BackendSpec()
        self.label = str(getattr(self.make_backend, "model", None) or "default")
        self.users, self.max_actor_failures, self.name_prefix = users, c.max_actor_failures, c.name_prefix
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
        job: ExtractionJob | None = None,
        *,
        catalog: Catalog | None = None,
        on_batch: Callable[[ExtractResult, int], None] | None = None,
        **options: Any,
    ) -> RayExtractResult:
        """:func:`~interests.profile.extract.extract_profiles` of ``logs`` on the pool's actors.

        ``job`` (or its fields as ``options``) as for ``extract_profiles``; its
        ``groups`` and ``rating_scale`` (those of a larger data set that ``logs``
        is a slice of) are used instead of computing them, as ``extract_profiles``
        does.
        """
        job = job_of(job, options)
        histories, users = job_histories(logs, job)
        catalog = catalog if catalog is not None else getattr(logs, "catalog", None)
        output, errors_path, order, done = plan_job(histories, job, users)
        todo = [u for u in order if u not in done]

        result = RayExtractResult(output, errors_path, "ray", self.label)
        result.users_selected, result.users_skipped = len(order), len(order) - len(todo)
        result.errors_before = len((set(order) & done_users(errors_path)) - done_users(output))
        if not todo:
            return result

        t0 = time.perf_counter()
        scale, latest = dataset_reference(histories.values())
        groups = job.groups
        if job.structure == "model":
            groups = None
        elif groups is None:
            groups = run_groups(output, histories, catalog, job.taxonomy)
        # what each actor runs: the driver selected, pseudonymised and writes; the actors only extract
        shared = job.replace(
            users=None,
            limit=None,
            retry_errors=False,
            hash_key=None,
            errors=None,
            taxonomy=None,
            groups=groups,
            rating_scale=job.rating_scale if job.rating_scale is not None else scale,
            as_of=job.as_of if job.as_of is not None else latest,
        )
        batch_size = job.batch_size
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
    job: ExtractionJob | None = None,
    backend: BackendSpec | Callable[[int], Backend] | None = None,
    *,
    cluster: RayCluster | str | None = None,
    catalog: Catalog | None = None,
    on_batch: Callable[[ExtractResult, int], None] | None = None,
    **options: Any,
) -> RayExtractResult:
    """:func:`~interests.profile.extract.extract_profiles` with one engine per Ray actor.

    ``job`` (or its fields as ``options``) means what it means for
    ``extract_profiles``; the output files are the same and a re-run (with or
    without Ray) resumes them. ``backend`` builds an actor's backend from its index
    (a :class:`~interests.llm.spec.BackendSpec`, default the in-process engine on
    the embedded model); it is pickled to the actors, so it must be importable
    there. ``cluster`` is a :class:`~interests.scale.ray_connect.RayCluster` or an
    address; its fields (``address``, ``actors``, ``actor_cpus``, ``actor_gpus``,
    ``max_actor_failures``, ``name_prefix``) may also come as keyword arguments.

    The actors start and stop inside the call (no actor starts when every
    user is done); :class:`RayExtractors` keeps them for several calls.
    """
    with RayExtractors(cluster_of(cluster, options), backend) as pool:
        return pool.extract(logs, job, catalog=catalog, on_batch=on_batch, **options)


def extract_partitioned_ray(
    split: PartitionedLogs,
    job: ExtractionJob | None = None,
    backend: BackendSpec | Callable[[int], Backend] | None = None,
    *,
    cluster: RayCluster | str | None = None,
    on_batch: Callable[[ExtractResult, int], None] | None = None,
    **options: Any,
) -> ExtractResult:
    """:func:`~interests.profile.partitioned.extract_partitioned` on one pool of Ray actors.

    Logs larger than memory on a cluster: the driver holds one partition of
    ``split`` at a time, the item groups, rating scale and reference time are
    those of every partition, and the same actors (engines loaded once) take
    the partitions one after another. Arguments as for
    :func:`extract_profiles_ray`. The result is a :class:`RayExtractResult`
    (counts summed over partitions) unless no user was left to extract.
    """
    from ..profile.partitioned import extract_partitioned

    with RayExtractors(cluster_of(cluster, options), backend, users=split.report.users) as pool:
        return extract_partitioned(split, job_of(job, options), on_batch=on_batch, extract=pool.extract)


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
    "RayCluster",
    "RayExtractResult",
    "RayExtractors",
    "check_address",
    "cluster_of",
    "extract_partitioned_ray",
    "extract_profiles_ray",
    "partition_of",
    "require_ray",
]
