"""Item catalogues: CSV/TSV/JSON Lines/Parquet (plain or compressed) -> :class:`Catalog`.

Columns are found by :class:`CatalogMapping` (id, title, categories,
description, each with common aliases). Categories may be a list or a string
``"a|b|c"``; ``(no genres listed)`` is dropped. A description list is joined.
Every other scalar column becomes an attribute (string, at most 100
characters; empty values and HTML fragments are skipped). A trailing
``(1995)`` in a title also gives ``attributes["year"]``. When an id appears
twice the first row wins and later rows only fill its empty fields.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..events import Catalog, Item
from .mapping import CatalogMapping, ColumnMapping
from .quarantine import REASON_ITEM, REASON_NOT_OBJECT, IngestError, Quarantine
from .readers import Source, expand_paths
from .values import MAX_TEXT_CHARS, clean_id, clean_text

MAX_ATTRIBUTE_CHARS = 100
NO_CATEGORY = {"(no genres listed)", "(no genre)", "none", ""}
SKIP_ATTRIBUTES = {
    "rank",
    "image",
    "imageURL",
    "imageURLHighRes",
    "imUrl",
    "also_buy",
    "also_view",
    "similar_item",
    "tech1",
    "tech2",
    "fit",
    "details",
    "feature",
    "salesRank",
    "related",
}
_YEAR = re.compile(r"\((\d{4})\)\s*$")
_HTML_TAG = re.compile(r"<[^>]{0,500}>")
_LOOKS_HTML = re.compile(r"<[a-zA-Z/!]|class=\"|&nbsp;")


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value if v is not None and not isinstance(v, (dict, list)))
    text = html.unescape(str(value))
    if "<" in text:
        text = _HTML_TAG.sub(" ", text)
    return clean_text(text, limit)


def categories_of(value: Any) -> list[str]:
    """``"a|b|c"``, ``["a", "b"]`` or ``[["a", "b"]]`` -> distinct clean names."""
    if value is None:
        return []
    parts: list[Any]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                loaded = json.loads(text)
            except ValueError:
                loaded = None
            if isinstance(loaded, list):
                return categories_of(loaded)
        parts = text.split("|")
    elif isinstance(value, (list, tuple)):
        parts = [p for v in value for p in (v if isinstance(v, (list, tuple)) else [v])]
    else:
        parts = [value]
    out: list[str] = []
    for p in parts:
        name = _text(p, 200)
        if name and name.lower() not in NO_CATEGORY and name not in out:
            out.append(name)
    return out


def _item(rec: Mapping[str, Any], cols: Mapping[str, str | None]) -> Item | None:
    iid = clean_id(rec.get(cols["item"])) if cols["item"] else None
    if iid is None:
        return None
    title = (_text(rec.get(cols["title"]), 500) if cols["title"] else None) or ""
    cats = categories_of(rec.get(cols["categories"])) if cols["categories"] else []
    desc = (_text(rec.get(cols["description"]), MAX_TEXT_CHARS) if cols["description"] else None) or ""
    used = set(cols.values())
    attrs: dict[str, str] = {}
    for key, value in rec.items():
        if key in used or key in SKIP_ATTRIBUTES or value is None or isinstance(value, (dict, list, tuple)):
            continue
        raw = str(value)
        if _LOOKS_HTML.search(raw):
            continue
        text = clean_text(html.unescape(raw), MAX_ATTRIBUTE_CHARS)
        if text:
            attrs[str(key).strip()] = text
    m = _YEAR.search(title)
    if m and "year" not in attrs:
        attrs["year"] = m.group(1)
    return Item(item_id=iid, title=title, categories=cats, description=desc, attributes=attrs)


def _merge(old: Item, new: Item) -> None:
    old.title = old.title or new.title
    old.categories = old.categories or new.categories
    old.description = old.description or new.description
    for k, v in new.attributes.items():
        old.attributes.setdefault(k, v)


def read_catalog(
    path: str | Path,
    *,
    mapping: CatalogMapping | ColumnMapping | str | Mapping[str, Any] | None = None,
    quarantine: Quarantine | None = None,
    strict: bool = False,
) -> Catalog:
    """Read an item catalogue (a file or a directory of files; ``-`` for stdin).

    ``mapping`` names the columns (``"item=movieId,title=title,categories=genres"``);
    by default they are found by name. Rows without an id go to ``quarantine``
    with reason ``missing item`` (``strict=True`` raises instead).
    """
    cmap = CatalogMapping.parse(mapping)
    q = quarantine if quarantine is not None else Quarantine(strict=strict)
    files, _ = expand_paths(path)
    catalog = Catalog(source=str(path))
    for f in files:
        with Source(f) as src:
            fixed: dict[str, str | None] | None = None
            if src.columns is not None:
                fixed = cmap.resolve(src.columns)
                if fixed["item"] is None:
                    raise _no_item_column(f.name, cmap, src.columns)
            cache: dict[tuple[str, ...], dict[str, str | None]] = {}
            # rows without an id wait here until some row has the id column: a catalogue in which
            # none has it is an error naming the column, not every row quarantined
            waiting: list[tuple[int, str]] | None = [] if fixed is None else None
            keys_seen: dict[str, None] = {}
            for line, values, raw, error in src.records():
                if error is not None:
                    q.add(f.name, line, error, raw or "")
                    continue
                if isinstance(values, list) and src.columns is not None and src.format != "json":
                    rec: Mapping[str, Any] = dict(zip(src.columns, values, strict=False))
                elif isinstance(values, dict):
                    rec = values
                else:
                    q.add(f.name, line, REASON_NOT_OBJECT, raw or "")
                    continue
                cols = fixed
                if cols is None:
                    keys = tuple(rec)
                    cols = cache.get(keys)
                    if cols is None:
                        cols = cache[keys] = cmap.resolve(keys)
                item = _item(rec, cols)
                if waiting is not None:
                    if cols["item"] is None:
                        keys_seen.update(dict.fromkeys(map(str, rec)))
                        waiting.append((line, raw if raw is not None else json.dumps(rec, default=str)))
                        continue
                    for old_line, old_raw in waiting:
                        q.add(f.name, old_line, REASON_ITEM, old_raw)
                    waiting = None
                if item is None:
                    q.add(f.name, line, REASON_ITEM, raw if raw is not None else json.dumps(rec, default=str))
                elif item.item_id in catalog:
                    _merge(catalog[item.item_id], item)
                else:
                    catalog.add(item)
            if waiting:
                raise _no_item_column(f.name, cmap, list(keys_seen))
    return catalog


def _no_item_column(name: str, cmap: CatalogMapping, columns: list[str]) -> IngestError:
    cols = ", ".join(columns) or "(none)"
    if not cmap.is_default("item") and cmap.item is not None:
        return IngestError(
            f"{name}: no column {cmap.item!r} in the catalogue (--catalog-map item={cmap.item}); "
            f"its columns are: {cols}"
        )
    return IngestError(
        f"{name}: no item id column in the catalogue (columns: {cols}); "
        "name it, e.g. --catalog-map item=movieId"
    )


__all__ = ["categories_of", "read_catalog"]
