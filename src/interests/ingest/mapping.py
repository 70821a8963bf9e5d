"""Which source column holds which canonical field.

A :class:`ColumnMapping` maps the canonical fields ``user``, ``item``, ``time``,
``rating``, ``text`` and ``event`` onto column names (CSV header, JSON keys,
Parquet columns) or, for CSV files without a header, 0-based positions.

A field left at its default name (``user="user"``, ``time="timestamp"``, ...)
also matches common aliases (``userId``, ``reviewerID``, ``unixReviewTime``,
...), case-insensitively, so most logs need no mapping at all. A field set to
another name matches exactly that column; a field set to ``None`` is ignored.
A mapped column that a file lacks is simply ``None`` for that file's rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from .quarantine import IngestError

K = TypeVar("K", int, str)

NULL_SPEC = {"", "-", "none", "null"}

# fmt: off
LOG_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userId", "uid", "reviewerID", "reviewer_id", "customer_id",
             "visitor_id", "visitorid", "member_id", "account_id"),
    "item": ("item", "item_id", "itemId", "iid", "movieId", "movie_id", "asin", "parent_asin",
             "product_id", "productId", "sku", "book_id", "track_id", "video_id"),
    "time": ("timestamp", "unixReviewTime", "time", "ts", "datetime", "date", "event_time",
             "created_at", "reviewTime"),
    "rating": ("rating", "overall", "stars", "star_rating", "score"),
    "text": ("text", "review", "reviewText", "review_text", "review_body", "tag", "tags",
             "comment", "body", "content"),
    "event": ("event", "type", "event_type", "eventType", "action", "behavior", "interaction"),
}

# names accepted on the left of '=' in a mapping spec
LOG_KEYS = {"timestamp": "time", "ts": "time", "date": "time", "review": "text", "tag": "text",
            "type": "event", "event_type": "event", "user_id": "user", "item_id": "item"}

CATALOG_ALIASES: dict[str, tuple[str, ...]] = {
    "item": ("item_id", "item", "itemId", "movieId", "movie_id", "asin", "parent_asin",
             "product_id", "productId", "id", "sku", "book_id"),
    "title": ("title", "name", "product_name", "item_name", "movie_title"),
    "categories": ("categories", "category", "genres", "genre"),
    "description": ("description", "desc", "overview", "plot", "summary"),
}
CATALOG_KEYS = {"id": "item", "item_id": "item", "genres": "categories", "category": "categories",
                "name": "title"}
# fmt: on


def _parse_spec(
    spec: str | Mapping[str, Any], names: Sequence[str], keys: Mapping[str, str]
) -> dict[str, Any]:
    """``"user=userId,item=movieId"`` or a dict -> {field: column or None}."""
    if isinstance(spec, str):
        pairs: list[tuple[str, Any]] = []
        for part in spec.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise IngestError(f"bad mapping {part.strip()!r}: write FIELD=COLUMN, e.g. user=userId")
            pairs.append((key, value))
    else:
        pairs = list(spec.items())
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in pairs:
        name = str(key).strip()
        name = keys.get(name, name)
        if name not in names:
            raise IngestError(f"unknown field {key!r} in mapping; fields are: {', '.join(names)}")
        if name in given:
            raise IngestError(
                f"field {name!r} is mapped twice ({given[name]}, {str(key).strip()}={value}): "
                "give each field once"
            )
        given[name] = f"{str(key).strip()}={value}"
        if value is None or str(value).strip().lower() in NULL_SPEC:
            out[name] = None
        else:
            out[name] = str(value).strip()
    return out


def _find(columns: Sequence[str], candidates: Sequence[str]) -> int | None:
    """Index of the first candidate present in ``columns`` (exact, then case-insensitive)."""
    for cand in candidates:
        if cand in columns:
            return list(columns).index(cand)
    lowered = [c.lower() for c in columns]
    for cand in candidates:
        if cand.lower() in lowered:
            return lowered.index(cand.lower())
    return None


@dataclass(frozen=True)
class Resolved(Generic[K]):
    """A mapping resolved against one file: field -> column index (or JSON key)."""

    user: K | None
    item: K | None
    time: K | None
    rating: K | None
    text: tuple[K, ...]
    event: K | None
    text_is_tag: bool = False  # the text column is a tag column (MovieLens tags.csv)

    def named(self, columns: Sequence[str]) -> Resolved[str]:
        """The same resolution with column names instead of indices."""

        def name(i: Any) -> str | None:
            return None if i is None else columns[i]

        text = tuple(columns[int(i)] for i in self.text)
        return Resolved(
            name(self.user),
            name(self.item),
            name(self.time),
            name(self.rating),
            text,
            name(self.event),
            self.text_is_tag,
        )


class _MappingBase:
    FIELDS: ClassVar[tuple[str, ...]]
    ALIASES: ClassVar[dict[str, tuple[str, ...]]]

    def is_default(self, field: str) -> bool:
        return bool(getattr(self, field) == self.ALIASES[field][0])

    def candidates(self, field: str) -> tuple[str, ...]:
        value = getattr(self, field)
        if value is None:
            return ()
        return self.ALIASES[field] if self.is_default(field) else (value,)


@dataclass
class ColumnMapping(_MappingBase):
    """Canonical field -> source column name (or 0-based position, or ``None``)."""

    user: str | None = "user"
    item: str | None = "item"
    time: str | None = "timestamp"
    rating: str | None = "rating"
    text: str | None = "text"  # several columns joined with '+': "summary+reviewText"
    event: str | None = "event"

    FIELDS: ClassVar[tuple[str, ...]] = ("user", "item", "time", "rating", "text", "event")
    ALIASES: ClassVar[dict[str, tuple[str, ...]]] = LOG_ALIASES

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any] | ColumnMapping | None) -> ColumnMapping:
        """From ``"user=userId,item=movieId,time=timestamp,text=tag"``, a dict, or ``None`` (auto)."""
        if spec is None:
            return cls()
        if isinstance(spec, ColumnMapping):
            return spec
        mapping = cls(**_parse_spec(spec, cls.FIELDS, LOG_KEYS))
        mapping.positional  # noqa: B018 - validates mixed names/positions early
        return mapping

    def text_columns(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.text.split("+") if p.strip()) if self.text else ()

    @property
    def positional(self) -> bool:
        """True when columns are addressed by position (headerless CSV)."""
        explicit = [v for f in self.FIELDS for v in self._field_values(f) if not self.is_default(f)]
        digits = [v.isdigit() for v in explicit]
        if any(digits) and not all(digits):
            raise IngestError(
                f"mapping {self.spec()!r} mixes column names and positions; use one or the other"
            )
        if any(digits):
            for f in ("user", "item"):
                if self.is_default(f):
                    raise IngestError(f"a positional mapping must give the {f} column, e.g. {f}=0")
        return any(digits)

    def _field_values(self, field: str) -> list[str]:
        if field == "text":
            return list(self.text_columns())
        value = getattr(self, field)
        return [] if value is None else [value]

    def resolve(self, columns: Sequence[str]) -> Resolved[int]:
        """Resolve against a header (list of column names)."""
        cols = [c.strip().lstrip("\ufeff") for c in columns]

        def one(field: str) -> int | None:
            return _find(cols, self.candidates(field))

        if self.text is not None and self.is_default("text"):
            found = _find(cols, self.ALIASES["text"])
            text: tuple[int, ...] = () if found is None else (found,)
        else:
            text = tuple(i for c in self.text_columns() if (i := _find(cols, (c,))) is not None)
        tag = bool(text) and all(cols[i].lower() in ("tag", "tags") for i in text)
        return Resolved(one("user"), one("item"), one("time"), one("rating"), text, one("event"), tag)

    def resolve_positions(self) -> Resolved[int]:
        """Resolve a positional mapping (fields left at their defaults are absent)."""

        def pos(field: str) -> int | None:
            value = getattr(self, field)
            return None if value is None or self.is_default(field) else int(value)

        text = () if self.is_default("text") else tuple(int(c) for c in self.text_columns())
        return Resolved(pos("user"), pos("item"), pos("time"), pos("rating"), text, pos("event"))

    def spec(self) -> str:
        """The mapping as a ``--map`` string."""
        return ",".join(
            f"{f}={getattr(self, f) if getattr(self, f) is not None else '-'}" for f in self.FIELDS
        )


@dataclass
class CatalogMapping(_MappingBase):
    """Catalogue field -> column: ``item`` id, ``title``, ``categories``, ``description``.

    Every other scalar column becomes an :attr:`~interests.events.Item.attributes` entry.
    """

    item: str | None = "item_id"
    title: str | None = "title"
    categories: str | None = "categories"
    description: str | None = "description"

    FIELDS: ClassVar[tuple[str, ...]] = ("item", "title", "categories", "description")
    ALIASES: ClassVar[dict[str, tuple[str, ...]]] = CATALOG_ALIASES

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any] | CatalogMapping | ColumnMapping | None) -> CatalogMapping:
        """From ``"item=movieId,title=title,categories=genres"``, a dict, or ``None`` (auto).

        A :class:`ColumnMapping` contributes its ``item`` column, when one was given.
        """
        if spec is None:
            return cls()
        if isinstance(spec, CatalogMapping):
            return spec
        if isinstance(spec, ColumnMapping):
            return cls() if spec.is_default("item") or spec.item is None else cls(item=spec.item)
        return cls(**_parse_spec(spec, cls.FIELDS, CATALOG_KEYS))

    def resolve(self, columns: Sequence[str]) -> dict[str, str | None]:
        """field -> column name present in ``columns`` (or ``None``)."""
        cols = list(columns)
        out: dict[str, str | None] = {}
        for f in self.FIELDS:
            i = _find(cols, self.candidates(f))
            out[f] = None if i is None else cols[i]
        return out


__all__ = ["CatalogMapping", "ColumnMapping", "Resolved"]
