"""Extraction over logs larger than memory: one partition of users in memory at a time.

:func:`extract_partitioned` runs :func:`~interests.profile.extract.extract_profiles`
on each partition of a :class:`~interests.ingest.partition.PartitionedLogs`
with one engine, into one profiles file. What a run shares across users is
computed over the whole data set first, in a pass that holds only which items
each user touched (:class:`~interests.profile.item_groups.UserItems`): the item
groups (saved next to the profiles, as a one-pass run does), the rating scale
and the latest time. So every profile is the one a run over the whole log in
memory would write; a re-run resumes like one.

The function run on each partition is ``extract_profiles`` by default;
``extract=`` takes another with its arguments, such as the ``extract`` of a
:class:`~interests.scale.ray_extract.RayExtractors` pool, so that partitions
go one after another to the same Ray actors
(:func:`~interests.scale.ray_extract.extract_partitioned_ray`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .extract import (
    ENGINE_COUNTERS,
    BackendArg,
    ExtractResult,
    extract_profiles,
    own_backend,
    plan_job,
    sibling_path,
)
from .item_groups import ItemGroups, UserItems, extend_groups, group_items
from .job import ExtractionJob, job_of
from .signals import dataset_reference

if TYPE_CHECKING:  # pragma: no cover
    from ..ingest.partition import PartitionedLogs

log = logging.getLogger(__name__)

_SUMMED = (
    "users_selected",
    "users_skipped",
    "profiles",
    "errors",
    "errors_before",
    "seconds",
    *ENGINE_COUNTERS,
)


def _merge(total: ExtractResult, part: ExtractResult) -> ExtractResult:
    """The counts of both summed (and a result's own ``SUMMED`` fields); the rest from the last that ran."""
    base = part if part.attempted or not total.attempted else total  # e.g. the actors of a Ray run
    out = dataclasses.replace(base, redactions=dict(total.redactions))
    for name in (*_SUMMED, *getattr(base, "SUMMED", ())):
        a, b = getattr(total, name), getattr(part, name)
        setattr(
            out, name, [x + y for x, y in zip_longest(a, b, fillvalue=0)] if isinstance(a, list) else a + b
        )
    for k, v in part.redactions.items():
        out.redactions[k] = out.redactions.get(k, 0) + v
    return out


def _reference(
    split: PartitionedLogs, need_items: bool, extend: Callable[[Any], Any] | None = None
) -> tuple[UserItems | None, tuple[float, float] | None, float | None]:
    """One pass over the partitions: who touched what, the rating scale and the latest time."""
    touched = UserItems() if need_items else None
    lo = hi = latest = None
    for part in split:
        if touched is not None:
            touched.add(part.histories)
        if extend is not None:
            extend(part.histories)
        scale, last = dataset_reference(part.histories.values())
        if scale is not None:
            lo = scale[0] if lo is None else min(lo, scale[0])
            hi = scale[1] if hi is None else max(hi, scale[1])
        if last is not None:
            latest = last if latest is None else max(latest, last)
    return touched, ((lo, hi) if lo is not None and hi is not None else None), latest


def extract_partitioned(
    split: PartitionedLogs,
    job: ExtractionJob | None = None,
    backend: BackendArg = None,
    *,
    on_batch: Callable[[ExtractResult, int], None] | None = None,
    extract: Callable[..., ExtractResult] | None = None,
    **options: Any,
) -> ExtractResult:
    """:func:`~interests.profile.extract.extract_profiles` over ``split``, one partition at a time.

    Same ``job`` (or its fields as ``options``), backend and result as
    ``extract_profiles`` (the counts summed over partitions); ``limit`` counts
    users in partition order. ``on_batch`` sees the running totals. One engine
    (``backend``: a :class:`~interests.llm.base.Backend`, or a spec built once here)
    serves every partition.

    ``extract`` replaces ``extract_profiles`` for each partition: it is called as
    ``extract(logs, job, on_batch=...)`` with the partition's
    :class:`~interests.ingest.Logs` and the partition's job, and brings its own
    engines, e.g. ``RayExtractors(...).extract``.
    """
    job = job_of(job, options)
    if job.groups is not None or job.rating_scale is not None:
        raise ConfigError("extract_partitioned computes groups and rating_scale over every partition")
    if extract is not None and backend is not None:
        raise ConfigError("extract_partitioned: give a backend or extract, not both")
    output, taxonomy = job.output, job.taxonomy
    if job.retry_errors:
        # the error records are dropped once, here: dropped again before each partition, those
        # written for the partitions before would be lost (their users are not run again)
        plan_job({}, job)
        job = job.replace(retry_errors=False)
    groups_path = sibling_path(output, "groups", ".json")
    data = job.structure == "data"
    # groups are made once over every user and saved, like a one-pass run (run_groups); a re-run
    # reuses them, placing items logged since as run_groups does
    groups = ItemGroups.load(groups_path) if data and groups_path.exists() else None
    new: list[str] = []

    def extend(histories: Any) -> None:
        assert groups is not None
        new.extend(extend_groups(groups, histories, split.catalog, taxonomy=taxonomy))

    touched, scale, latest = _reference(split, data and groups is None, extend if groups else None)
    if data:
        if groups is None:
            assert touched is not None
            groups = group_items(touched, split.catalog, taxonomy=taxonomy)
            groups.save(groups_path)
        elif new and groups.source != "cluster":
            groups.save(groups_path)
        log.info("item groups (%s) over %d users", groups.source, split.report.users)
    shared = job.replace(
        groups=groups, rating_scale=scale, as_of=job.as_of if job.as_of is not None else latest
    )
    engine, own = (None, False) if extract is not None else own_backend(backend)
    run = extract if extract is not None else functools.partial(extract_profiles, backend=engine)
    total: ExtractResult | None = None
    try:
        for k, part in enumerate(split):
            left = None if job.limit is None else job.limit - (total.users_selected if total else 0)
            if left is not None and left <= 0:
                break
            done = total

            def progress(res: ExtractResult, n: int, done: ExtractResult | None = done) -> None:
                if on_batch is not None:
                    on_batch(res if done is None else _merge(done, res), n)

            res = run(part, shared.replace(limit=left), on_batch=progress)
            total = res if total is None else _merge(total, res)
            log.info("partition %d/%d: %d profiles, %d errors", k + 1, len(split), res.profiles, res.errors)
        if total is None:  # no partition (limit=0): the files and the result of a run with nothing to do
            total = run({}, shared.replace(limit=0))
    finally:
        if own and engine is not None:
            engine.close()
    return total


__all__ = ["extract_partitioned"]
