"""Keep profiles current: recompute what the data decides, ask the model only for new words.

A profile records (in its provenance) a digest and the last event time of the
events it was built from. :func:`update_profiles` reads the logs again (or new
ones), and for every user

* **unchanged** (same digest): nothing happens;
* **exact**: the history changed but its hierarchy did not (the same domain
  and topic keys, no domain weight moved by ``weight_shift`` or more): the
  skeleton is rebuilt over all events and every statistic recomputed (items,
  weights, sentiment, trends, time patterns, stats) while the words of the
  previous profile (names, attributes, text sentiment, summary) are kept;
  **no LLM call**;
* **llm**: a group appeared or went, or a weight moved a lot, or the profile
  was grouped by the model (``--structure model``), or ``refresh=True``: the
  user is extracted again;
* **new**: no profile yet: extracted.

Files (next to ``profiles.jsonl``): ``profiles.jsonl`` keeps one current
profile per user; ``profiles.history.jsonl`` appends every replaced version
as ``{"user_id", "valid_from", "valid_to", "profile"}``, the profile closed
(its ``provenance.valid_to`` set to when the next version was written); new versions of a run
are first appended to ``profiles.update.jsonl`` batch by batch and merged at
the end (or at the start of the next run, after a kill), so a killed update
loses at most the batch in flight and a re-run finishes it without duplicates.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

from .. import __version__
from ..events import Catalog, UserHistory, history_digest
from ..llm.base import Backend
from ..schema import ErrorRecord, InterestProfile, Provenance
from .extract import BatchRunner, ExtractResult, _run_batch, history_stamp, run_groups, sibling_path
from .grounding import now_iso
from .item_groups import ItemGroups, group_items
from .job import ExtractionJob, job_of
from .signals import compute_signals, dataset_reference
from .skeleton import OTHER, Skeleton, SkeletonRules, build_skeleton
from .skeleton_grounding import event_mass, ground_skeleton
from .store import append_lines, done_users, iter_jsonl, read_profiles, repair, replace_lines

if TYPE_CHECKING:
    from ..ingest.logs import Logs
    from ..taxonomy.model import Taxonomy

#: a domain whose weight moves by this much (absolute share of events) needs new words
WEIGHT_SHIFT = 0.2

Kind = Literal["unchanged", "exact", "llm", "new"]
BackendLike = Backend | Callable[[], Backend]


@dataclass
class Change:
    """What an update does for one user, and why."""

    kind: Kind
    reason: str = ""


def words_needed(
    old: InterestProfile,
    skeleton: Skeleton,
    weight_shift: float = WEIGHT_SHIFT,
    mass: Mapping[str, float] | None = None,
) -> str | None:
    """Why the previous words no longer fit the new skeleton, or ``None`` when they do.

    "<domain>/other" topics are left out: they are named by the data anyway.
    ``mass`` (item -> decayed event count) weighs the new domains as grounding will.
    """
    if old.provenance.structure != "data":
        return "the profile was grouped by the model"
    if any(d.key is None for d in old.domains):
        return "the profile has no group keys (schema 1.0)"
    old_d = {str(d.key): d.weight for d in old.domains}
    if mass is None:
        total = max(skeleton.n_events, 1)
        new_d = {d.key: d.n_events / total for d in skeleton.domains}
    else:
        every = max(sum(mass[i] for d in skeleton.domains for i in d.item_ids), 1e-12)
        new_d = {d.key: sum(mass[i] for i in d.item_ids) / every for d in skeleton.domains}
    if added := sorted(set(new_d) - set(old_d)):
        return f"new domain {added[0]!r}"
    if gone := sorted(set(old_d) - set(new_d)):
        return f"domain {gone[0]!r} gone"

    def topics(keys: Sequence[str | None]) -> set[str]:
        return {k for k in keys if k and not k.endswith("/" + OTHER)}

    old_t = topics([t.key for d in old.domains for t in d.topics])
    new_t = topics([t.key for _, t in skeleton.topics()])
    if more := sorted(new_t - old_t):
        return f"new topic {more[0]!r}"
    if less := sorted(old_t - new_t):
        return f"topic {less[0]!r} gone"
    key, shift = max(((k, abs(new_d[k] - w)) for k, w in old_d.items()), key=lambda kv: kv[1])
    if shift >= weight_shift:
        return f"domain {key!r} moved by {shift:.2f} of the events"
    return None


def words_of(old: InterestProfile, skeleton: Skeleton) -> SimpleNamespace:
    """The previous profile's words laid on the new skeleton by group key (a draft for grounding).

    Only names the model wrote are carried (computed labels are recomputed);
    grounding checks every name again, so a name that no longer fits falls
    back to the computed label.
    """
    domains = {d.key: d for d in old.domains if d.key}
    topics = {t.key: t for d in old.domains for t in d.topics if t.key}
    summary = old.summary if old.provenance.summary_source == "model" else ""
    draft = SimpleNamespace(summary=summary)
    for d_i, d in enumerate(skeleton.domains, start=1):
        od = domains.get(d.key)
        group = SimpleNamespace(name=od.name if od is not None and od.name_source == "model" else None)
        for t_i, t in enumerate(d.topics, start=1):
            ot = topics.get(t.key)
            mine = set(t.item_ids)
            slot = SimpleNamespace(
                name=ot.name if ot is not None and ot.name_source == "model" else None,
                items=[i for i in (ot.item_ids if ot else []) if i in mine],
                attributes=[f"{a.name}: {a.value}" for a in (ot.attributes if ot else [])],
                text_sentiment=ot.sentiment.text if ot else None,
            )
            setattr(group, f"t{t_i}", slot)
        setattr(draft, f"d{d_i}", group)
    return draft


@dataclass
class RefreshResult:
    """New profiles and error records of :func:`refresh_profiles` (nothing written)."""

    profiles: dict[str, InterestProfile] = field(default_factory=dict)
    errors: list[ErrorRecord] = field(default_factory=list)
    changes: dict[str, Change] = field(default_factory=dict)
    extract: ExtractResult | None = None

    def counts(self) -> dict[str, int]:
        return dict(Counter(c.kind for c in self.changes.values()))


def plan_changes(
    histories: Mapping[str, UserHistory],
    old: Mapping[str, InterestProfile],
    groups: ItemGroups,
    catalog: Catalog | None = None,
    *,
    rules: SkeletonRules | None = None,
    weight_shift: float = WEIGHT_SHIFT,
    refresh: bool = False,
    half_life_days: float | None = None,
    as_of: float | None = None,
) -> tuple[dict[str, Change], dict[str, Skeleton]]:
    """The :class:`Change` of every user in ``histories`` (and the skeletons built on the way)."""
    changes: dict[str, Change] = {}
    skeletons: dict[str, Skeleton] = {}
    for uid, h in histories.items():
        prev = old.get(uid)
        if prev is None:
            changes[uid] = Change("new", "no profile yet")
            continue
        if not refresh and prev.provenance.events_digest == history_digest(h.events):
            changes[uid] = Change("unchanged")
            continue
        skeletons[uid] = build_skeleton(h, groups, catalog, rules)
        mass = event_mass(h.events, half_life_days, as_of) if half_life_days else None
        why = "refresh requested" if refresh else words_needed(prev, skeletons[uid], weight_shift, mass)
        changes[uid] = Change("llm", why) if why else Change("exact", "same groups")
    return changes, skeletons


def refresh_profiles(
    histories: Mapping[str, UserHistory],
    old: Mapping[str, InterestProfile],
    job: ExtractionJob | None = None,
    backend: BackendLike | None = None,
    *,
    catalog: Catalog | None = None,
    changes: Mapping[str, Change] | None = None,
    skeletons: Mapping[str, Skeleton] | None = None,
    refresh: bool = False,
    weight_shift: float = WEIGHT_SHIFT,
    **options: Any,
) -> RefreshResult:
    """New profiles for the users of ``histories`` whose events changed since ``old`` (in memory).

    ``job`` (an :class:`~interests.profile.job.ExtractionJob`, or its fields as
    ``options``) gives the prompts and decoding of ``interests extract`` (``tz``,
    ``batch_size``, ``max_new_tokens``, ``max_attempts``, ``max_items``,
    ``prompt_dir``, ``redact``, ``skeleton_rules``, ``half_life_days``, ``as_of``,
    ``rating_scale``); its files are not used. ``backend`` (a
    :class:`~interests.llm.base.Backend` or a function making one, called only when
    some user needs new words) writes the words of ``new`` and ``llm`` users.
    Without one, those users get the data's own labels and a computed summary
    (``name_source: computed``), so a service can keep profiles exact without any
    model. ``job.groups`` default to a fresh
    :func:`~interests.profile.item_groups.group_items` over ``histories``.
    ``changes`` and ``skeletons`` are what :func:`plan_changes` gave, when it ran
    already (otherwise it runs with ``refresh`` and ``weight_shift``).
    """
    job = job_of(job, options)
    rules, half_life_days, tz = job.skeleton_rules, job.half_life_days, job.tz
    groups = job.groups if job.groups is not None else group_items(histories, catalog, taxonomy=job.taxonomy)
    as_of = job.as_of if job.as_of is not None else dataset_reference(histories.values())[1]
    if changes is None:
        changes, skeletons = plan_changes(
            histories,
            old,
            groups,
            catalog,
            rules=rules,
            weight_shift=weight_shift,
            refresh=refresh,
            half_life_days=half_life_days,
            as_of=as_of,
        )
    out = RefreshResult(changes=dict(changes))
    skeletons = skeletons or {}
    rating_scale = job.rating_scale
    if rating_scale is None:
        scales = [p.stats.rating_scale for p in old.values() if p.stats.rating_scale]
        rating_scale = scales[0] if scales else dataset_reference(histories.values())[0]
    words = [u for u, c in changes.items() if c.kind in ("new", "llm") and u in histories]
    exact = [u for u, c in changes.items() if c.kind == "exact" and u in histories]
    if words and backend is None:
        exact, words = exact + words, []
    for uid in exact:
        h = histories[uid]
        sk = skeletons.get(uid) or build_skeleton(h, groups, catalog, rules)
        prev = old.get(uid)
        try:
            out.profiles[uid] = _regrounded(prev, sk, h, catalog, tz, as_of, rating_scale, half_life_days)
        except Exception as exc:  # one bad user must not stop the others
            out.errors.append(ErrorRecord(user_id=uid, stage="ground", reason=str(exc), created_at=now_iso()))
    if words:
        assert backend is not None
        engine = backend if isinstance(backend, Backend) else backend()
        out.extract = ExtractResult(Path(""), Path(""), engine.name, engine.model)
        runner = BatchRunner.of(
            job, histories, catalog, engine, out.extract, groups=groups, as_of=as_of, scale=rating_scale
        )
        for k in range(0, len(words), job.batch_size):
            batch = words[k : k + job.batch_size]
            profiles, records = _run_batch(batch, runner)
            for p in profiles:
                made_by = "update-llm" if changes[p.user_id].kind == "llm" else "extract"
                out.profiles[p.user_id] = p.model_copy(
                    update={"provenance": p.provenance.model_copy(update={"made_by": made_by})}
                )
            out.errors.extend(records)
    return out


def _regrounded(
    prev: InterestProfile | None,
    skeleton: Skeleton,
    history: UserHistory,
    catalog: Catalog | None,
    tz: str,
    as_of: float | None,
    scale: tuple[float, float] | None,
    half_life_days: float | None = None,
) -> InterestProfile:
    """The skeleton grounded with the previous profile's words (or none: computed labels)."""
    signals = compute_signals(history, catalog, tz=tz, as_of=as_of, rating_scale=scale)
    stamp = {
        "created_at": now_iso(),
        "made_by": "update-exact",
        "events_total": len(history.events),
        "package_version": __version__,
        "half_life_days": half_life_days,
        **history_stamp(history),
    }
    if prev is not None:
        draft: Any = words_of(prev, skeleton)
        provenance = prev.provenance.model_copy(update=stamp)
    else:
        draft = SimpleNamespace(summary="")
        provenance = Provenance(
            model="",
            backend="none",
            prompt_template="",
            prompt_hash="",
            events_used=0,
            truncated=False,
            structure="data",
            **stamp,
        )
    return ground_skeleton(
        draft,
        skeleton,
        history,
        signals,
        catalog,
        provenance=provenance,
        half_life_days=half_life_days,
        as_of=as_of,
    )


# ---- files -------------------------------------------------------------------------------------------


@dataclass
class UpdateResult:
    """What an update run did (what the CLI summary prints)."""

    output: Path
    history_path: Path
    errors_path: Path
    users_seen: int = 0
    unchanged: int = 0
    exact: int = 0
    llm: int = 0
    new: int = 0
    skipped_errors: int = 0
    profiles: int = 0
    errors: int = 0
    merged: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def users_with_errors(self) -> int:
        """Users whose record is an error (this run's, and earlier ones' not retried): exit 1 if any."""
        return self.errors + self.skipped_errors

    @property
    def llm_calls_avoided(self) -> int:
        """Changed users whose profile was updated without the model."""
        return self.exact

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("output", "history_path", "errors_path"):
            d[k] = str(d[k])
        d["llm_calls_avoided"] = self.llm_calls_avoided
        d["users_with_errors"] = self.users_with_errors
        return d


def merge_staged(output: str | Path, staged: str | Path, history: str | Path) -> int:
    """Fold the staged new versions into ``output``; replaced versions go to ``history``.

    Idempotent, so a run killed anywhere in here finishes on the next call:
    a replaced version already in the history (same user, time and events
    digest) is not written again, and a staged version already current is not
    "replaced" by itself.
    """
    out, stage, hist = Path(output), Path(staged), Path(history)
    repair(stage)
    new: dict[str, dict[str, Any]] = {}
    for d in iter_jsonl(stage):
        new[str(d["user_id"])] = d
    if not new:
        stage.unlink(missing_ok=True)
        return 0
    current = list(iter_jsonl(out))

    def version(uid: str, d: dict[str, Any]) -> tuple[str, str, str]:
        return uid, d["provenance"]["created_at"], str(d["provenance"].get("events_digest"))

    seen = {version(h["user_id"], h["profile"]) for h in iter_jsonl(hist)}
    replaced = []
    for d in current:
        uid = str(d["user_id"])
        if uid in new and d != new[uid] and version(uid, d) not in seen:
            was, now = written(d), written(new[uid])
            closed = {**d, "provenance": {**d["provenance"], "valid_to": now}}  # closed, not deleted
            replaced.append({"user_id": uid, "valid_from": was, "valid_to": now, "profile": closed})
    repair(hist)
    append_lines(hist, replaced)
    index = {str(d["user_id"]): k for k, d in enumerate(current)}
    for uid, d in new.items():
        if uid in index:
            current[index[uid]] = d
        else:
            current.append(d)
    replace_lines(out, current)
    stage.unlink()
    return len(new)


def written(profile: Mapping[str, Any]) -> str:
    """When a version was written (wall time): ``valid_from``, or ``created_at`` before schema 1.3."""
    prov = profile["provenance"]
    return str(prov.get("valid_from") or prov["created_at"])


def read_history(path: str | Path, user_id: str | None = None) -> list[dict[str, Any]]:
    """Replaced profile versions (oldest first), for one user or all."""
    return [h for h in iter_jsonl(path) if user_id is None or h["user_id"] == user_id]


def update_profiles(
    logs: Logs | Mapping[str, UserHistory],
    *,
    profiles: str | Path = "out/profiles.jsonl",
    catalog: Catalog | None = None,
    errors: str | Path | None = None,
    backend: BackendLike | None = None,
    model: str | None = None,
    llm: bool = True,
    users: Collection[str] | None = None,
    refresh: bool = False,
    weight_shift: float = WEIGHT_SHIFT,
    retry_errors: bool = False,
    taxonomy: Taxonomy | None = None,
    rules: SkeletonRules | None = None,
    batch_size: int = 32,
    tz: str = "UTC",
    as_of: float | None = None,
    half_life_days: float | None = None,
    on_batch: Callable[[UpdateResult, int], None] | None = None,
    **extract_options: Any,
) -> UpdateResult:
    """Bring ``profiles`` up to date with ``logs`` (the whole log again, or only new files).

    Only users whose events changed are touched (see the module docstring for
    the rule); ``backend`` (default: the in-process engine on ``model``,
    started only when some user needs new words) writes the words of new users
    and of users whose hierarchy changed; ``llm=False`` never calls a model.
    ``users`` limits the run to those ids. Users with an error record and no
    profile are retried only with ``retry_errors``.
    """
    histories: Mapping[str, UserHistory] = logs if isinstance(logs, Mapping) else logs.histories
    catalog = catalog if catalog is not None else getattr(logs, "catalog", None)
    output = Path(profiles)
    staged, hist = sibling_path(output, "update"), sibling_path(output, "history")
    errors_path = Path(errors) if errors is not None else sibling_path(output, "errors")
    result = UpdateResult(output, hist, errors_path)
    t0 = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    repair(output)
    output.touch()
    result.merged = merge_staged(output, staged, hist)  # a killed run's finished batches
    old = {p.user_id: p for p in read_profiles(output)}
    failed = set() if retry_errors else done_users(errors_path) - set(old)
    wanted = None if users is None else set(users)
    todo = {
        u: h for u, h in histories.items() if h.events and (wanted is None or u in wanted) and u not in failed
    }
    result.skipped_errors = sum(1 for u in histories if u in failed and (wanted is None or u in wanted))
    result.users_seen = len(todo)
    scale, latest = dataset_reference(histories.values())
    groups = run_groups(output, histories, catalog, taxonomy)
    changes, skeletons = plan_changes(
        todo,
        old,
        groups,
        catalog,
        rules=rules,
        weight_shift=weight_shift,
        refresh=refresh,
        half_life_days=half_life_days,
        as_of=as_of if as_of is not None else latest,
    )
    kinds = Counter(c.kind for c in changes.values())
    result.unchanged, result.exact, result.llm, result.new = (
        kinds["unchanged"], kinds["exact"], kinds["llm"], kinds["new"]
    )  # fmt: skip
    result.reasons = dict(Counter(c.reason for c in changes.values() if c.kind == "llm"))
    engine: Backend | None = None

    def make_backend() -> Backend:
        nonlocal engine
        if engine is None:
            if isinstance(backend, Backend):
                engine = backend
            elif backend is not None:
                engine = backend()
            else:
                from ..llm.spec import BackendSpec

                engine = BackendSpec(model=model).build()
        return engine

    job = ExtractionJob.of(
        skeleton_rules=rules,
        tz=tz,
        as_of=as_of if as_of is not None else latest,
        rating_scale=scale,
        batch_size=batch_size,
        half_life_days=half_life_days,
        groups=groups,
        taxonomy=taxonomy,
        **extract_options,
    )
    exact = [u for u, c in changes.items() if c.kind == "exact"]
    words = [u for u, c in changes.items() if c.kind in ("new", "llm")]
    if not llm:
        exact, words = exact + words, []
    try:
        for chunk, size in ((exact, max(batch_size, 256)), (words, batch_size)):
            for k in range(0, len(chunk), size):
                batch = chunk[k : k + size]
                res = refresh_profiles(
                    {u: todo[u] for u in batch},
                    old,
                    job,
                    make_backend if chunk is words else None,
                    catalog=catalog,
                    changes={u: changes[u] for u in batch},
                    skeletons={u: skeletons[u] for u in batch if u in skeletons},
                )
                append_lines(staged, res.profiles.values())
                append_lines(errors_path, res.errors)
                result.profiles += len(res.profiles)
                result.errors += len(res.errors)
                result.seconds = time.perf_counter() - t0
                if on_batch is not None:
                    on_batch(result, len(batch))
    finally:
        if engine is not None and not isinstance(backend, Backend):
            engine.close()
    merge_staged(output, staged, hist)
    result.seconds = time.perf_counter() - t0
    return result


__all__ = [
    "WEIGHT_SHIFT",
    "Change",
    "RefreshResult",
    "UpdateResult",
    "merge_staged",
    "plan_changes",
    "read_history",
    "refresh_profiles",
    "update_profiles",
    "words_needed",
    "words_of",
]
