"""Turn what the caller has (paths or objects) into what the report needs.

Each ``load_*`` accepts either the in-memory object or a path to the file the
pipeline wrote, so the SDK and the CLI share one code path.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import ConfigError
from ..events import Catalog, UserHistory
from ..profile.privacy import hashed_profiles, match_ids
from ..profile.store import read_validated
from ..schema import ErrorRecord, InterestProfile, QuarantinedRow

if TYPE_CHECKING:  # pragma: no cover
    from ..taxonomy.model import Taxonomy

PathLike: TypeAlias = "str | Path"
ProfilesInput: TypeAlias = "str | Path | Iterable[InterestProfile]"
LogsInput: TypeAlias = "str | Path | Sequence[str | Path] | Mapping[str, UserHistory] | Any"


def _read_jsonl(path: PathLike, model: Any, what: str) -> list[Any]:
    return read_validated(path, model, what)


def load_profiles(profiles: ProfilesInput) -> list[InterestProfile]:
    """Profiles from a ``profiles.jsonl`` path, or the given profiles as a list."""
    if isinstance(profiles, (str, Path)):
        return _read_jsonl(profiles, InterestProfile, "profile")
    return list(profiles)


def load_errors(errors: PathLike | Sequence[ErrorRecord] | None) -> list[ErrorRecord]:
    if errors is None:
        return []
    if isinstance(errors, (str, Path)):
        return _read_jsonl(errors, ErrorRecord, "error")
    return list(errors)


def load_quarantine(rows: PathLike | Sequence[QuarantinedRow] | None) -> list[QuarantinedRow]:
    if rows is None:
        return []
    if isinstance(rows, (str, Path)):
        return _read_jsonl(rows, QuarantinedRow, "quarantine")
    return list(rows)


def load_catalog(catalog: PathLike | Catalog | None) -> Catalog | None:
    if catalog is None or isinstance(catalog, Catalog):
        return catalog
    from ..ingest import read_catalog

    return read_catalog(catalog)


def load_logs(
    logs: LogsInput | None, catalog: PathLike | Catalog | None, *, users: Collection[str] | None = None
) -> tuple[dict[str, UserHistory] | None, Catalog | None, list[QuarantinedRow] | None]:
    """``(histories by user, catalog, quarantined rows)`` from log paths, a ``Logs`` or histories by user.

    The quarantined rows are those ingestion set aside while reading (``None``
    when the logs came as histories). When log files are read, only ``users``
    are kept (all when ``None``).
    """
    if logs is None:
        return None, load_catalog(catalog), None
    if not hasattr(logs, "histories"):
        if isinstance(logs, Mapping):
            return dict(logs), load_catalog(catalog), None
        paths = [logs] if isinstance(logs, (str, Path)) else list(logs)
        from ..ingest import read_logs

        kwargs: dict[str, Any] = {}
        if catalog is not None:
            kwargs["catalog"] = catalog
        if users is not None and not hashed_profiles(users):  # pseudonyms are matched after hashing
            kwargs["users"] = set(users)
        logs = read_logs(paths, **kwargs)
    cat = catalog if isinstance(catalog, Catalog) else getattr(logs, "catalog", None)
    if cat is None:
        cat = load_catalog(catalog)
    q = getattr(logs, "quarantine", None)
    rows = list(getattr(q, "rows", []) or []) if q is not None else None
    histories: Mapping[str, UserHistory] = getattr(logs, "histories")  # noqa: B009
    if users is not None:
        histories = match_ids(histories, users)
        if hashed_profiles(users):
            wanted = set(users)
            histories = {u: h for u, h in histories.items() if u in wanted}
    return dict(histories), cat, rows


def load_taxonomy(taxonomy: PathLike | Taxonomy | None) -> Taxonomy | None:
    """A :class:`~interests.taxonomy.Taxonomy`, or one loaded from its folder."""
    if taxonomy is None or not isinstance(taxonomy, (str, Path)):
        return taxonomy
    if not Path(taxonomy).exists():
        raise ConfigError(f"taxonomy folder not found: {taxonomy}")
    from ..taxonomy.model import Taxonomy

    return Taxonomy.load(Path(taxonomy))


__all__ = [
    "LogsInput",
    "PathLike",
    "ProfilesInput",
    "load_catalog",
    "load_errors",
    "load_logs",
    "load_profiles",
    "load_quarantine",
    "load_taxonomy",
]
