"""The extraction stage: histories in, one profile or error record per user out.

For each batch of users: exact signals, prompts within the token budget,
one constrained-decoding call for the whole batch, validation, retries of
what failed (larger budget, different decoding), grounding, and one atomic
append of the batch's profiles and error records. A re-run with the same
output skips users that already have a record, so a killed run resumes and
loses at most the batch in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from .. import __version__
from ..events import Catalog, UserHistory, history_digest
from ..llm.base import Backend, GenRequest, GenResult
from ..llm.spec import BackendSpec
from ..schema import ErrorRecord, InterestProfile, Provenance
from .draft import draft_model, skeleton_model
from .grounding import GroundingError, ground_profile, now_iso
from .item_groups import ItemGroups, extend_groups, group_items
from .job import ExtractionJob, job_of
from .privacy import check_resume_ids, pseudonymise
from .prompting import Prompt, PromptRenderer
from .redact import Redactor
from .signals import compute_signals, dataset_reference, iso
from .skeleton import Skeleton, build_skeleton
from .skeleton_grounding import ground_skeleton
from .store import append_lines, done_users, repair, rewrite_without

if TYPE_CHECKING:
    from ..ingest.logs import Logs
    from ..taxonomy.model import Taxonomy

RAW_OUTPUT_CHARS = 4000


def sibling_path(output: str | Path, kind: str, suffix: str = ".jsonl") -> Path:
    """``out/profiles.jsonl`` -> ``out/profiles.<kind>.jsonl`` (or ``<kind><suffix>``)."""
    p = Path(output)
    stem = p.name[: -len(".jsonl")] if p.name.endswith(".jsonl") else p.stem
    return p.with_name(f"{stem}.{kind}{suffix}")


def run_groups(
    output: str | Path,
    histories: Mapping[str, UserHistory],
    catalog: Catalog | None,
    taxonomy: Taxonomy | None = None,
) -> ItemGroups:
    """The item groups of the profiles in ``output``: made once and saved next to them.

    ``<output>.groups.json`` keeps them, so a resumed run and a later
    ``interests update`` group items exactly as the first run did (a cluster
    grouping refitted on other logs would give every user new groups).
    Items logged since get their candidates from the catalogue
    (:func:`~interests.profile.item_groups.extend_groups`).
    """
    path = sibling_path(output, "groups", ".json")
    if path.exists():
        groups = ItemGroups.load(path)
        if extend_groups(groups, histories, catalog, taxonomy=taxonomy) and groups.source != "cluster":
            groups.save(path)
        return groups
    groups = group_items(histories, catalog, taxonomy=taxonomy)
    groups.save(path)
    return groups


@dataclass
class Attempt:
    """Decoding settings of one try: later tries get a larger budget and sampling."""

    max_tokens: int
    temperature: float


def attempt_plan(max_new_tokens: int, max_attempts: int) -> list[Attempt]:
    plan = [Attempt(max_new_tokens, 0.0)]
    for k in range(1, max_attempts):
        plan.append(Attempt(int(max_new_tokens * 1.5), 0.3 * k))
    return plan


#: the engine's counters in an :class:`ExtractResult`: summed when runs are combined (partitions, Ray batches)
ENGINE_COUNTERS = (
    "valid_first_try",
    "retries",
    "truncated_prompts",
    "prompt_tokens",
    "output_tokens",
    "cached_tokens",
    "engine_seconds",
)


@dataclass
class ExtractResult:
    """What a run did (what the CLI summary prints)."""

    output: Path
    errors_path: Path
    backend: str
    model: str
    users_selected: int = 0
    users_skipped: int = 0
    profiles: int = 0
    errors: int = 0
    errors_before: int = 0  # skipped users whose record from an earlier run is an error
    valid_first_try: int = 0
    retries: int = 0
    truncated_prompts: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0
    engine_seconds: float = 0.0
    redactions: dict[str, int] = field(default_factory=dict)

    @property
    def attempted(self) -> int:
        return self.profiles + self.errors

    @property
    def users_with_errors(self) -> int:
        """Selected users whose record is an error (this run's and earlier runs'): the CLI exits 1 if any."""
        return self.errors + self.errors_before

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["output"], d["errors_path"] = str(self.output), str(self.errors_path)
        d["users_with_errors"] = self.users_with_errors
        return d


@dataclass
class _Job:
    history: UserHistory
    prompt: Prompt
    model: type[BaseModel]
    failures: list[str] = field(default_factory=list)
    last: GenResult | None = None
    stage: str = "generate"
    skeleton: Skeleton | None = None


def _batches(seq: Sequence[str], n: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _parse(job: _Job, result: GenResult) -> BaseModel | str:
    """The validated draft, or the reason it failed."""
    if result.finish_reason == "error":
        job.stage = "generate"
        return f"backend error: {result.error}"
    if result.finish_reason == "length":
        job.stage = "generate"
        return "output cut off at max_tokens"
    try:
        return job.model.model_validate_json(result.text)
    except ValidationError as exc:
        job.stage = "validate"
        first = exc.errors()[0]
        return (
            f"invalid JSON for the schema: {first.get('msg')} at {'/'.join(map(str, first.get('loc', ())))}"
        )


def plan_job(
    histories: Mapping[str, UserHistory], job: ExtractionJob, users: Collection[str] | None = None
) -> tuple[Path, Path, list[str], set[str]]:
    """A run's set-up: ``(output, errors path, selected users in order, users already done)``.

    ``users`` are the job's users as the records name them (pseudonyms with a
    ``hash_key``; default: the job's own). Both files are repaired; the profiles file
    exists afterwards (even when empty), the errors file only once a user ended in an
    error record. With ``retry_errors`` the error records are dropped first, so those
    users run again.
    """
    output, errors_path = job.output, job.errors_path
    for p in (output, errors_path):
        repair(p)
        p.parent.mkdir(parents=True, exist_ok=True)
    output.touch()
    if job.retry_errors:
        rewrite_without(errors_path, done_users(errors_path))
    users = job.users if users is None else users
    wanted = None if users is None else set(users)  # once, not per user (was quadratic in --users)
    order = [u for u in histories if wanted is None or u in wanted]
    if job.limit is not None:
        order = order[: job.limit]
    done = done_users(output, errors_path)
    check_resume_ids(done, hashed=job.hash_key is not None)
    return output, errors_path, order, done


def job_histories(
    logs: Logs | Mapping[str, UserHistory], job: ExtractionJob
) -> tuple[Mapping[str, UserHistory], Collection[str] | None]:
    """The histories of ``logs`` and the selected users, both pseudonymised when the job hashes ids."""
    histories: Mapping[str, UserHistory] = logs if isinstance(logs, Mapping) else logs.histories
    users: Collection[str] | None = job.users
    if job.hash_key is not None:
        histories, users = pseudonymise(histories, users, job.hash_key)
    return histories, users


BackendArg = Backend | BackendSpec | Callable[[int], Backend] | None


def own_backend(backend: BackendArg) -> tuple[Backend, bool]:
    """``(backend, whether this call made it and closes it)``: a :class:`Backend` is used as it
    is; a spec (default: the in-process engine on the embedded model), or any function of an
    index making a backend (what Ray actors call), is built here."""
    if isinstance(backend, Backend):
        return backend, False
    return (backend if backend is not None else BackendSpec())(0), True


def extract_profiles(
    logs: Logs | Mapping[str, UserHistory],
    job: ExtractionJob | None = None,
    backend: BackendArg = None,
    *,
    catalog: Catalog | None = None,
    on_batch: Callable[[ExtractResult, int], None] | None = None,
    **options: Any,
) -> ExtractResult:
    """Write a grounded profile (or an error record) for every user ``job`` selects.

    ``logs`` is a :class:`interests.ingest.Logs` or a mapping of user id to
    :class:`UserHistory` (then ``catalog`` gives the catalogue). ``job`` is an
    :class:`~interests.profile.job.ExtractionJob`; ``options`` are its fields
    (``output``, ``batch_size``, ``users``, ``structure``, ``hash_key``, ...), set on
    ``job`` or on a default one. With ``structure="data"`` (the default) each user's
    domains and topics are computed from the data (:mod:`interests.profile.skeleton`)
    and the model only names them. ``backend`` is a :class:`~interests.llm.base.Backend`
    (used as it is) or a :class:`~interests.llm.spec.BackendSpec` (built here and
    closed at the end; default: the in-process engine on the embedded model).
    ``on_batch(result, users)`` sees the running counts after each batch is written.
    """
    job = job_of(job, options)
    histories, users = job_histories(logs, job)
    catalog = catalog if catalog is not None else getattr(logs, "catalog", None)
    output, errors_path, order, done = plan_job(histories, job, users)
    empty = [u for u in order if u not in done and not histories[u].events]
    todo = [u for u in order if u not in done and histories[u].events]
    append_lines(
        errors_path,
        [
            ErrorRecord(user_id=u, stage="ingest", reason="no usable events", created_at=now_iso())
            for u in empty
        ],
    )

    engine, own = own_backend(backend)
    result = ExtractResult(output, errors_path, engine.name, engine.model)
    result.users_selected, result.users_skipped = len(order), len(order) - len(todo) - len(empty)
    result.errors = len(empty)
    result.errors_before = len((set(order) & done_users(errors_path)) - set(empty) - done_users(output))

    scale, latest = dataset_reference(histories.values())
    groups = job.groups
    if job.structure == "model":
        groups = None
    elif groups is None and todo:
        groups = run_groups(output, histories, catalog, job.taxonomy)
    t0 = time.perf_counter()
    try:
        runner = BatchRunner.of(
            job,
            histories,
            catalog,
            engine,
            result,
            groups=groups,
            as_of=job.as_of if job.as_of is not None else latest,
            scale=job.rating_scale if job.rating_scale is not None else scale,
            skeleton=job.structure == "data",
        )
        for batch in _batches(todo, job.batch_size):
            profiles, records = _run_batch(batch, runner)
            append_lines(output, profiles)
            append_lines(errors_path, records)
            result.profiles += len(profiles)
            result.errors += len(records)
            result.seconds = time.perf_counter() - t0
            result.redactions = dict(runner.redactor.counts)
            if on_batch is not None:
                on_batch(result, len(batch))
    finally:
        if own:
            engine.close()
    result.seconds = time.perf_counter() - t0
    return result


@dataclass
class BatchRunner:
    """What every batch of a run shares: the job, the data, the engine, the prompts and the plan.

    Made by :meth:`of`; :func:`extract_profiles` and
    :func:`~interests.profile.update.refresh_profiles` run their batches through it.
    """

    job: ExtractionJob
    histories: Mapping[str, UserHistory]
    catalog: Catalog | None
    backend: Backend
    result: ExtractResult
    redactor: Redactor
    renderer: PromptRenderer
    plan: list[Attempt]
    prompt_budget: int
    groups: ItemGroups | None
    as_of: float | None
    scale: tuple[float, float] | None

    @classmethod
    def of(
        cls,
        job: ExtractionJob,
        histories: Mapping[str, UserHistory],
        catalog: Catalog | None,
        backend: Backend,
        result: ExtractResult,
        *,
        groups: ItemGroups | None,
        as_of: float | None,
        scale: tuple[float, float] | None,
        skeleton: bool = True,
    ) -> BatchRunner:
        """The runner of ``job``: prompts rendered as the job says, within the backend's context."""
        redactor = Redactor(enabled=job.redact)
        renderer = PromptRenderer(job.prompt_dir, redactor=redactor, skeleton=skeleton)
        plan = attempt_plan(job.max_new_tokens, job.max_attempts)
        budget = backend.max_model_len - max(a.max_tokens for a in plan) - 8
        return cls(
            job, histories, catalog, backend, result, redactor, renderer, plan, budget, groups, as_of, scale
        )


def _run_batch(batch: Sequence[str], run: BatchRunner) -> tuple[list[InterestProfile], list[ErrorRecord]]:
    opts, histories, catalog, backend = run.job, run.histories, run.catalog, run.backend
    renderer = run.renderer
    prompt_budget, as_of, result = run.prompt_budget, run.as_of, run.result
    half_life_days = opts.half_life_days
    profiles: list[InterestProfile] = []
    records: list[ErrorRecord] = []
    jobs: dict[str, _Job] = {}
    signals = {}
    for uid in batch:
        h = histories[uid]
        try:
            signals[uid] = compute_signals(h, catalog, tz=opts.tz, as_of=as_of, rating_scale=run.scale)
            skeleton = (
                build_skeleton(h, run.groups, catalog, opts.skeleton_rules)
                if run.groups is not None
                else None
            )
            limits = {"max_tokens": prompt_budget, "max_items": opts.max_items}
            if skeleton is not None:
                prompt = renderer.render_skeleton(
                    h, signals[uid], skeleton, catalog, count_tokens=backend.count_tokens, **limits
                )
            else:
                prompt = renderer.render(
                    h, signals[uid], catalog, count_tokens=backend.count_tokens, **limits
                )
            if prompt.tokens > prompt_budget:
                raise ValueError(
                    f"prompt needs {prompt.tokens} tokens even with one item a group; budget {prompt_budget}"
                )
            model = (
                skeleton_model(prompt.slots)
                if prompt.slots is not None
                else draft_model(prompt.item_ids, with_text=prompt.with_text, domain_names=prompt.categories)
            )
            jobs[uid] = _Job(h, prompt, model, skeleton=skeleton)
            result.truncated_prompts += int(prompt.truncated)
        except Exception as exc:  # a bad user must not stop the batch
            records.append(ErrorRecord(user_id=uid, stage="prompt", reason=str(exc), created_at=now_iso()))

    pending = list(jobs)
    for n, attempt in enumerate(run.plan):
        if not pending:
            break
        requests = [
            GenRequest(
                uid, jobs[uid].prompt.messages, jobs[uid].model, attempt.max_tokens, attempt.temperature, n
            )
            for uid in pending
        ]
        t = time.perf_counter()
        outputs = backend.generate(requests)
        result.engine_seconds += time.perf_counter() - t
        result.retries += len(requests) if n > 0 else 0
        still: list[str] = []
        for out in outputs:
            job = jobs[out.key]
            job.last = out
            result.prompt_tokens += out.prompt_tokens
            result.output_tokens += out.output_tokens
            result.cached_tokens += out.cached_tokens
            parsed = _parse(job, out)
            if isinstance(parsed, str):
                job.failures.append(parsed)
                still.append(out.key)
                continue
            provenance = _provenance(backend, renderer, job.prompt, n + 1, job.history)
            prompt_text = "\n".join(m["content"] for m in job.prompt.messages)
            try:
                if job.skeleton is not None:
                    profile = ground_skeleton(
                        parsed,
                        job.skeleton,
                        job.history,
                        signals[out.key],
                        catalog,
                        provenance=provenance.model_copy(update={"half_life_days": half_life_days}),
                        prompt_text=prompt_text,
                        half_life_days=half_life_days,
                        as_of=as_of,
                    )
                else:
                    profile = ground_profile(
                        parsed,
                        job.history,
                        signals[out.key],
                        catalog,
                        allowed_items=job.prompt.item_ids,
                        provenance=provenance,
                        prompt_text=prompt_text,
                    )
            except GroundingError as exc:
                job.stage = "ground"
                job.failures.append(str(exc))
                still.append(out.key)
                continue
            profiles.append(profile)
            result.valid_first_try += int(n == 0)
        pending = still
    for uid in pending:
        job = jobs[uid]
        records.append(
            ErrorRecord(
                user_id=uid,
                stage=job.stage,  # type: ignore[arg-type]
                reason="; ".join(dict.fromkeys(job.failures)),
                attempts=len(job.failures),
                raw_output=(job.last.text[:RAW_OUTPUT_CHARS] if job.last else None),
                created_at=now_iso(),
            )
        )
    return profiles, records


def _provenance(
    backend: Backend, renderer: PromptRenderer, prompt: Prompt, attempts: int, history: UserHistory
) -> Provenance:
    return Provenance(
        model=backend.model,
        backend=backend.name,
        server=backend.server,
        prompt_template=renderer.template_name,
        prompt_hash=renderer.template_hash,
        created_at=now_iso(),
        events_used=prompt.events_used,
        events_total=prompt.events_total,
        truncated=prompt.truncated,
        attempts=attempts,
        package_version=__version__,
        **history_stamp(history),
    )


def history_stamp(history: UserHistory) -> dict[str, Any]:
    """The provenance fields that tell ``interests update`` whether a history changed since, and
    which span of event time and from when in wall time this version holds (``profile --at``)."""
    stamps = [e.ts for e in history.events if e.ts is not None]
    return {
        "events_digest": history_digest(history.events),
        "last_event_at": iso(max(stamps)) if stamps else None,
        "data_from": iso(min(stamps)) if stamps else None,
        "data_to": iso(max(stamps)) if stamps else None,
        "valid_from": wall_now(),
        "valid_to": None,
    }


def wall_now() -> str:
    """The wall clock in UTC to the microsecond (versions written in one second stay ordered)."""
    return datetime.now(tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


__all__ = [
    "BatchRunner",
    "ExtractResult",
    "extract_profiles",
    "history_stamp",
    "job_histories",
    "own_backend",
    "plan_job",
    "run_groups",
    "sibling_path",
]
