"""Extraction over logs larger than memory: one partition of users in memory at a time.

:func:`extract_partitioned` runs :func:`~interests.profile.extract.extract_profiles`
on each partition of a :class:`~interests.ingest.partition.PartitionedLogs`
with one engine, into one profiles file. What a run shares across users is
computed over the whole data set first, in a pass that holds only which items
each user touched (:class:`~interests.profile.item_groups.UserItems`): the item
groups (saved next to the profiles, as a one-pass run does), the rating scale
and the latest time. So every profile is the one a run over the whole log in
memory would write; a re-run resumes like one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .extract import ENGINE_COUNTERS, ExtractResult, extract_profiles, sibling_path
from .item_groups import ItemGroups, UserItems, extend_groups, group_items
from .signals import dataset_reference

if TYPE_CHECKING:  # pragma: no cover
    from ..ingest.partition import PartitionedLogs
    from ..llm.base import Backend
    from ..taxonomy.model import Taxonomy

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
    out = dataclasses.replace(total, redactions=dict(total.redactions))
    for name in _SUMMED:
        setattr(out, name, getattr(total, name) + getattr(part, name))
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
    *,
    output: str | Path = "out/profiles.jsonl",
    backend: Backend | None = None,
    model: str | None = None,
    structure: str = "data",
    taxonomy: Taxonomy | None = None,
    limit: int | None = None,
    as_of: float | None = None,
    on_batch: Callable[[ExtractResult, int], None] | None = None,
    **options: Any,
) -> ExtractResult:
    """:func:`~interests.profile.extract.extract_profiles` over ``split``, one partition at a time.

    Same arguments and result as ``extract_profiles`` (the counts summed over
    partitions); ``limit`` counts users in partition order. ``on_batch`` sees
    the running totals. One engine (``backend``, or the in-process one on
    ``model``) serves every partition.
    """
    if "groups" in options or "rating_scale" in options:
        raise ConfigError("extract_partitioned computes groups and rating_scale over every partition")
    output = Path(output)
    groups_path = sibling_path(output, "groups", ".json")
    data = structure == "data"
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
    own = backend is None
    if backend is None:
        from ..llm.vllm_local import VLLMBackend

        backend = VLLMBackend(model)
    total: ExtractResult | None = None
    try:
        for k, part in enumerate(split):
            left = None if limit is None else limit - (total.users_selected if total else 0)
            if left is not None and left <= 0:
                break
            done = total

            def progress(res: ExtractResult, n: int, done: ExtractResult | None = done) -> None:
                if on_batch is not None:
                    on_batch(res if done is None else _merge(done, res), n)

            res = extract_profiles(
                part,
                output=output,
                backend=backend,
                structure=structure,  # type: ignore[arg-type]
                taxonomy=taxonomy,
                limit=left,
                as_of=as_of if as_of is not None else latest,
                on_batch=progress,
                groups=groups,
                rating_scale=scale,
                **options,
            )
            total = res if total is None else _merge(total, res)
            log.info("partition %d/%d: %d profiles, %d errors", k + 1, len(split), res.profiles, res.errors)
    finally:
        if own:
            backend.close()
    if total is None:  # no partition (limit=0)
        path = Path(options.get("errors") or sibling_path(output, "errors"))
        total = ExtractResult(output, path, backend.name, backend.model)
    return total


__all__ = ["extract_partitioned"]
