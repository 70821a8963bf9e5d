"""One extraction job: every option of a run, validated once, frozen.

:class:`ExtractionJob` is what every extraction path takes with the logs and the
backend -- in one process (:func:`~interests.profile.extract.extract_profiles`),
partition by partition (:func:`~interests.profile.partitioned.extract_partitioned`),
on Ray (:mod:`interests.scale.ray_extract`), and the service's refresh
(:func:`~interests.profile.update.refresh_profiles`) -- and what the one dispatcher
(:func:`interests.extract`) routes. A new option is a new field here, not a new
parameter in each of them. The job holds no engine and no callback, so it travels to
Ray actors as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from ..ingest.timeparse import zone
from .prompting import DEFAULT_MAX_ITEMS

if TYPE_CHECKING:  # pragma: no cover
    from ..taxonomy.model import Taxonomy
    from .item_groups import ItemGroups
    from .skeleton import SkeletonRules

Structure = Literal["data", "model"]


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


@dataclass(frozen=True)
class ExtractionJob:
    """What to extract and how (the options of ``interests extract``), checked when made.

    ``output`` is the profiles file (JSON Lines; a re-run with the same file
    resumes), ``errors`` the error records (default ``<output>.errors.jsonl``:
    :attr:`errors_path`). ``users`` (raw ids) and ``limit`` select users;
    ``retry_errors`` drops their error records first. ``batch_size`` users go to
    the engine at once, each with at most ``max_attempts`` tries starting at
    ``max_new_tokens`` output tokens; prompts show the ``max_items`` most recent
    items, rendered from ``prompt_dir`` (``system.j2``/``user.j2``) when given,
    with e-mails, phones and card numbers removed when ``redact``.
    ``structure="data"`` computes each user's domains and topics from the data
    (catalogue categories, ``taxonomy`` when given, item clusters otherwise;
    ``skeleton_rules`` tunes them), ``"model"`` lets the model group the items.
    ``hash_key`` writes keyed pseudonyms instead of user ids. ``tz`` is the time
    zone of hour/weekday rhythms, ``as_of`` the reference time (default: the
    latest event), ``half_life_days`` decays older events in node weights.
    ``groups`` and ``rating_scale`` are those of a larger data set that the logs
    are a slice of (partitions, Ray batches) instead of the logs' own.
    """

    output: Path = Path("out/profiles.jsonl")
    errors: Path | None = None
    batch_size: int = 32
    limit: int | None = None
    users: tuple[str, ...] | None = None
    retry_errors: bool = False
    max_attempts: int = 3
    max_new_tokens: int = 768
    max_items: int = DEFAULT_MAX_ITEMS
    prompt_dir: Path | None = None
    redact: bool = True
    structure: Structure = "data"
    taxonomy: Taxonomy | None = field(default=None, compare=False)
    skeleton_rules: SkeletonRules | None = None
    hash_key: bytes | None = field(default=None, repr=False)
    tz: str = "UTC"
    as_of: float | None = None
    half_life_days: float | None = None
    groups: ItemGroups | None = field(default=None, compare=False, repr=False)
    rating_scale: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "output", Path(self.output))
        setattr_(self, "errors", _path(self.errors))
        setattr_(self, "prompt_dir", _path(self.prompt_dir))
        if isinstance(self.users, str):
            raise ConfigError(f"users is a list of user ids, not the string {self.users!r}")
        if self.users is not None:
            setattr_(self, "users", tuple(str(u) for u in self.users))
        for name, low in (("batch_size", 1), ("max_attempts", 1), ("max_new_tokens", 1), ("max_items", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be a whole number of at least {low}, not {value!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 0):
            raise ConfigError(f"limit must be a whole number of at least 0, not {self.limit!r}")
        if self.structure not in ("data", "model"):
            raise ConfigError(f"structure must be 'data' or 'model', not {self.structure!r}")
        if self.taxonomy is not None and self.structure != "data":
            raise ConfigError("a taxonomy groups items for structure 'data' only")
        if self.hash_key is not None and (not isinstance(self.hash_key, bytes) or not self.hash_key):
            raise ConfigError("hash_key must be non-empty bytes (see interests.profile.privacy.key_from_env)")
        try:
            zone(self.tz)  # an unknown time zone fails here, not in the first batch
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(str(exc) if str(exc) else f"unknown time zone {self.tz!r}") from exc
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise ConfigError(f"half_life_days must be above 0, not {self.half_life_days!r}")
        if self.rating_scale is not None:
            lo, hi = self.rating_scale
            if not lo <= hi:
                raise ConfigError(f"rating_scale must be (low, high), low <= high, not {self.rating_scale!r}")
            setattr_(self, "rating_scale", (float(lo), float(hi)))

    @classmethod
    def of(cls, job: ExtractionJob | None = None, /, **options: Any) -> ExtractionJob:
        """``job`` (or a default job) with ``options`` set; an unknown option is a :class:`TypeError`
        that names the known ones."""
        unknown = sorted(set(options) - FIELDS)
        if unknown:
            raise TypeError(
                f"unexpected extraction option(s): {', '.join(unknown)} (known: {', '.join(sorted(FIELDS))})"
            )
        if job is None:
            return cls(**options)
        return dataclasses.replace(job, **options) if options else job

    @property
    def errors_path(self) -> Path:
        """Where error records go: ``errors``, or ``<output>.errors.jsonl``."""
        from .extract import sibling_path

        return self.errors if self.errors is not None else sibling_path(self.output, "errors")

    def replace(self, **changes: Any) -> ExtractionJob:
        """A copy with ``changes`` (validated again)."""
        return ExtractionJob.of(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings a person can read (paths as text; no key, no groups or taxonomy objects)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("hash_key", "groups", "taxonomy"):
                value = value is not None
            elif isinstance(value, Path):
                value = str(value)
            elif f.name == "skeleton_rules" and value is not None:
                value = dataclasses.asdict(value)
            out[f.name] = value
        return out


FIELDS = frozenset(f.name for f in dataclasses.fields(ExtractionJob))


def job_of(job: ExtractionJob | None, options: Mapping[str, Any]) -> ExtractionJob:
    """The job of a call that takes a job and/or options: ``job`` with ``options`` set."""
    return ExtractionJob.of(job, **options)


__all__ = ["FIELDS", "ExtractionJob", "Structure", "job_of"]
