"""One call per command: the SDK as short as the CLI.

::

    import interests

    profiles = interests.extract("logs/", catalog="items.jsonl", output="out/profiles.jsonl")
    model = interests.train("logs/", catalog="items.jsonl", profiles=profiles)
    interests.recommend(model, ["u001"], k=10, explain=True)

The module also holds what joins stages for the evaluation harness (profiles
extracted per protocol split, a taxonomy per split), so the recommender does
not depend on the extraction stage.

Each call reads what it is given (paths or objects already read), runs the
stage's one public function (:func:`~interests.profile.extract.extract_profiles`,
:func:`~interests.recsys.select.fit_two_tower`, :meth:`TwoTower.recommend`)
with the same defaults as the command of the same name, and returns objects
instead of printing. Options beyond the shortcuts go through unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ingest import Logs, read_logs
from .schema import InterestProfile

if TYPE_CHECKING:  # pragma: no cover
    from .events import Catalog, UserHistory
    from .ingest.partition import PartitionedLogs
    from .llm.base import Backend
    from .llm.spec import BackendSpec
    from .profile.extract import BackendArg, ExtractResult
    from .profile.job import ExtractionJob
    from .recsys.evaluate import ProfileSource, TaxonomySource
    from .recsys.recommender import TwoTower
    from .scale.ray_connect import RayCluster
    from .scale.ray_train import RayTraining
    from .taxonomy import Taxonomy

LogsInput = Logs | str | Path | Sequence[str | Path]
log = logging.getLogger(__name__)


def _logs(logs: LogsInput, catalog: Catalog | str | Path | None, mapping: Any) -> Logs:
    if isinstance(logs, Logs):
        return logs
    return read_logs(logs, catalog=catalog, mapping=mapping)


def extract(
    logs: LogsInput | PartitionedLogs | Mapping[str, UserHistory],
    job: ExtractionJob | str | Path | None = None,
    backend: Backend | BackendSpec | None = None,
    *,
    partitions: int | None = None,
    ray: RayCluster | str | None = None,
    catalog: Catalog | str | Path | None = None,
    mapping: Any = None,
    model: str | None = None,
    server: str | None = None,
    on_batch: Callable[[ExtractResult, int], None] | None = None,
    **options: Any,
) -> list[InterestProfile]:
    """Profiles of every user in ``logs``, written to the job's ``output`` (resumable) and returned.

    ``job`` is an :class:`~interests.profile.job.ExtractionJob`, or just the output
    path; ``options`` set its fields (``output``, ``users``, ``batch_size``,
    ``structure``, ``taxonomy``, ...). ``backend`` is a
    :class:`~interests.llm.base.Backend` or a :class:`~interests.llm.spec.BackendSpec`;
    without one, ``model`` picks the in-process engine's model (the embedded default
    when ``None``) and ``server`` an OpenAI-compatible server instead.
    ``partitions=N`` spills log files larger than memory to N per-user partitions
    next to the output and extracts one at a time; ``ray`` (an address such as
    ``"local"`` or ``"auto"``, or a :class:`~interests.scale.ray_connect.RayCluster`)
    extracts on Ray actors, one engine each. Users that ended in an error record are
    in ``<output>.errors.jsonl`` (:func:`interests.read_errors`); the run's counts are
    what :func:`run_extraction` returns.
    """
    import shutil

    from .errors import ConfigError
    from .ingest import partition_logs
    from .ingest.partition import PartitionedLogs
    from .llm.spec import BackendSpec
    from .profile.extract import sibling_path
    from .profile.job import ExtractionJob
    from .profile.store import read_profiles

    if isinstance(job, str | Path):
        if "output" in options:
            raise ConfigError("give the output once: as the job or as output=")
        job, options = None, {**options, "output": job}
    job = ExtractionJob.of(job, **options)
    if backend is None:
        backend = BackendSpec.of(model=model, server=server)
    elif model is not None or server is not None:
        raise ConfigError("give a backend, or model/server to make one, not both")
    spilled: Path | None = None
    parsed: Logs | PartitionedLogs | Mapping[str, UserHistory]
    if partitions is not None:
        if isinstance(logs, Logs | PartitionedLogs | Mapping):
            raise ConfigError("partitions= spills log files: give their paths, not logs already read")
        spilled = sibling_path(job.output, "parts", "")
        parsed = partition_logs(logs, spilled, parts=partitions, catalog=catalog, mapping=mapping, tz=job.tz)
    elif isinstance(logs, PartitionedLogs | Mapping):
        parsed = logs
    else:
        parsed = _logs(logs, catalog, mapping)
    try:
        result = run_extraction(parsed, job, backend, ray=ray, on_batch=on_batch)
    finally:
        if spilled is not None:
            shutil.rmtree(spilled, ignore_errors=True)
    return read_profiles(result.output)


def run_extraction(
    logs: Logs | PartitionedLogs | Mapping[str, UserHistory],
    job: ExtractionJob,
    backend: BackendArg = None,
    *,
    ray: RayCluster | str | None = None,
    on_batch: Callable[[ExtractResult, int], None] | None = None,
) -> ExtractResult:
    """The one place that picks how an extraction runs, and its counts.

    Logs in memory run in this process
    (:func:`~interests.profile.extract.extract_profiles`), partitioned logs
    (:func:`~interests.ingest.partition_logs`) one partition at a time
    (:func:`~interests.profile.partitioned.extract_partitioned`); with ``ray`` either
    runs on Ray actors (:mod:`interests.scale.ray_extract`), which build their own
    backends from ``backend`` (a :class:`~interests.llm.spec.BackendSpec`). Each path
    takes ``(logs, job, backend)``; ``on_batch(result, users)`` sees the running
    counts. A spec given here is built (and closed) here; a backend is used as it is.
    """
    from .ingest.partition import PartitionedLogs

    partitioned = isinstance(logs, PartitionedLogs)
    if ray is not None:
        from .errors import ConfigError
        from .llm.base import Backend
        from .scale.ray_extract import extract_partitioned_ray, extract_profiles_ray

        if isinstance(backend, Backend):
            raise ConfigError("Ray actors build their own backends: give a BackendSpec, not a backend")
        if isinstance(logs, PartitionedLogs):
            return extract_partitioned_ray(logs, job, backend, cluster=ray, on_batch=on_batch)
        return extract_profiles_ray(logs, job, backend, cluster=ray, on_batch=on_batch)
    if partitioned:
        from .profile.partitioned import extract_partitioned

        assert isinstance(logs, PartitionedLogs)
        return extract_partitioned(logs, job, backend, on_batch=on_batch)
    from .profile.extract import extract_profiles

    assert not isinstance(logs, PartitionedLogs)
    return extract_profiles(logs, job, backend, on_batch=on_batch)


def train(
    logs: LogsInput,
    *,
    catalog: Catalog | str | Path | None = None,
    mapping: Any = None,
    profiles: Sequence[InterestProfile] | Mapping[str, InterestProfile] | str | Path | None = None,
    taxonomy: Taxonomy | str | Path | None = None,
    output: str | Path | None = None,
    holdout: bool = True,
    distributed: RayTraining | None = None,
    **config: Any,
) -> TwoTower:
    """A two-tower model trained as ``interests train`` does; saved to ``output`` when given.

    ``profiles`` and ``taxonomy`` may be paths (``profiles.jsonl``, a taxonomy
    folder) or objects; ``config`` sets :class:`~interests.recsys.model.TwoTowerConfig`
    fields (``epochs``, ``seed``, ``encoder``, ...). ``distributed``
    (:class:`~interests.scale.RayTraining`) trains on Ray Train workers.
    """
    from .recsys.recommender import fit_two_tower

    parsed = _logs(logs, catalog, mapping)
    if isinstance(profiles, str | Path):
        from .profile.store import read_profiles

        profiles = read_profiles(profiles)
    if profiles:
        from .profile.privacy import match_ids

        ids = list(profiles) if isinstance(profiles, Mapping) else [p.user_id for p in profiles]
        parsed.histories = dict(match_ids(parsed.histories, ids))  # profiles written with hashed ids
        check_profiles_match(ids, parsed.histories)
    if isinstance(taxonomy, str | Path):
        from .taxonomy import Taxonomy

        taxonomy = Taxonomy.load(taxonomy)
    model = fit_two_tower(
        parsed, profiles=profiles, taxonomy=taxonomy, holdout=holdout, distributed=distributed, **config
    )
    if output is not None:
        model.save(output)
    return model


def check_profiles_match(profile_ids: Sequence[str], histories: Mapping[str, Any]) -> int:
    """How many profiles name a user of the logs: an error when none does, a warning when some do not."""
    from .errors import ConfigError

    ids = list(dict.fromkeys(profile_ids))
    matched = [u for u in ids if u in histories]
    if not matched:
        raise ConfigError(
            f"0 of {len(ids)} profiles match users in the logs (profiles: {', '.join(ids[:3])}"
            f"{', ...' if len(ids) > 3 else ''}; logs: {', '.join(list(histories)[:3])}"
            f"{', ...' if len(histories) > 3 else ''}): give the profiles extracted from these logs"
        )
    if len(matched) < len(ids):
        log.warning(
            "%d of %d profiles match users in the logs; the other %d are not used (e.g. %s)",
            len(matched),
            len(ids),
            len(ids) - len(matched),
            next(u for u in ids if u not in histories),
        )
    return len(matched)


def recommend(
    model: TwoTower | str | Path,
    users: str | Sequence[str] = (),
    *,
    k: int = 10,
    explain: bool = False,
    diverse: float = 0.0,
    items: Sequence[str] | None = None,
    text: str | None = None,
    domains: str | Sequence[str] | None = None,
    topics: str | Sequence[str] | None = None,
    avoid: str | Sequence[str] | None = None,
    mix: str | Mapping[str, float] | None = None,
    explore: int = 0,
) -> list[dict[str, Any]]:
    """What ``interests recommend --json`` prints: one ``{user_id, items}`` object a user.

    ``model`` is a :class:`TwoTower` or a saved model folder. Each item is
    ``{item_id, title, score, node, source}``: ``node`` is the hierarchy node the
    item came from (``Domain > Topic`` of the taxonomy, the catalogue category, or the
    steered / explored node), ``source`` one of ``history``, ``profile``, ``steering``,
    ``exploration``. With ``explain`` the reasons of
    :func:`~interests.recsys.explain.explanation_json` are added (history items and
    interest nodes behind the score). ``domains``/``topics``/``avoid``/``mix`` steer the
    list, ``explore`` gives that many slots to domains the user has not touched
    (:meth:`TwoTower.recommend_items`). ``items``/``text`` describe a new user (cold
    start), returned last as ``"(new user)"``.
    """
    from .errors import ConfigError
    from .recsys.explain import explanation_json
    from .recsys.recommender import TwoTower
    from .recsys.steer import Steering

    if not isinstance(model, TwoTower):
        model = TwoTower.load(model)
    users = [users] if isinstance(users, str) else list(users)
    if not users and not items and not text:
        raise ConfigError("give users (known users) or items/text (a new user)")
    steer = Steering.of(domains, topics, avoid, mix)
    opts: dict[str, Any] = {"k": k, "diverse": diverse, "steer": steer, "explore": explore}
    targets = [(u, model.recommend_items(u, **opts)) for u in users]
    if items or text:
        targets.append(
            ("(new user)", model.recommend_new(list(items or []), text=text, as_items=True, **opts))
        )
    titles = dict(zip(model.known.item_ids, model.state.titles, strict=True))
    out: list[dict[str, Any]] = []
    for user, recs in targets:
        rows = []
        for r in recs:
            rec: dict[str, Any] = {
                "item_id": r.item_id,
                "title": r.title,
                "score": round(float(r.score), 4),
                "node": r.node,
                "source": r.source,
            }
            if explain and user != "(new user)":
                rec |= explanation_json(model.explain(user, r.item_id), titles)
            rows.append(rec)
        out.append({"user_id": user, "items": rows})
    return out


# ---- the evaluation harness: profiles per protocol split (interests evaluate --profiles-dir) ----

CACHE_SPLITS = {"valid": "train", "test": "train+valid", "valid-cold": "cold-valid", "test-cold": "cold-test"}
# the time protocol's cuts are other events: their profiles live apart (time/<split>/), never mixed up
CACHE_SPLITS |= {f"time-{k}": f"time/{v}" for k, v in list(CACHE_SPLITS.items())}


def cached_profiles(
    directory: str | Path,
    *,
    extract: bool = False,
    catalog: Catalog | None = None,
    limit: int | None = None,
    **extract_options: Any,
) -> ProfileSource:
    """A profile source over ``directory/<split>/profiles.jsonl`` (``train``, ``train+valid``,
    ``cold-valid``, ``cold-test``; the ``time`` protocol's under ``directory/time/<split>/``).

    With ``extract=True`` missing profiles are written first by
    :func:`interests.extract_profiles` from exactly the events the protocol
    allows (resumable: users already done are skipped); ``limit`` caps the
    users extracted per split. Without it only profiles already there are used.
    """
    root = Path(directory)

    def source(key: str, histories: Mapping[str, UserHistory]) -> Mapping[str, InterestProfile]:
        from .profile.store import read_profiles

        path = root / CACHE_SPLITS[key] / "profiles.jsonl"
        if extract:
            from .profile.extract import extract_profiles

            path.parent.mkdir(parents=True, exist_ok=True)
            users = sorted(histories)[:limit] if limit else None
            t = time.perf_counter()
            extract_profiles(
                dict(histories), catalog=catalog, output=str(path), users=users, **extract_options
            )
            log.info("profiles %s: %.0fs", key, time.perf_counter() - t)
        if not path.is_file():
            return {}
        return {p.user_id: p for p in read_profiles(path) if p.user_id in histories}

    return source


def hashing_taxonomy(catalog: Catalog | None) -> TaxonomySource:
    """A taxonomy source building :func:`interests.taxonomy.build_taxonomy` from each stage's profiles."""

    def build(key: str, profiles: Mapping[str, InterestProfile]) -> Any:
        from .taxonomy import build_taxonomy

        if catalog is None:
            return None
        return build_taxonomy(list(profiles.values()), catalog, encoder="hashing")

    return build


__all__ = [
    "CACHE_SPLITS",
    "cached_profiles",
    "extract",
    "hashing_taxonomy",
    "recommend",
    "run_extraction",
    "train",
]
