"""Which category levels of a catalogue carry information, read the way real catalogues write them.

Catalogues hand over categories in several shapes; every one becomes, per
item, a list of **category paths** (most general level first):

* a **list, root first** (Amazon dumps: ``["Gift Cards", "Gift Cards",
  "Restaurants"]``, the example shop: ``["Science fiction films", "Space opera"]``);
* a **path string** with ``>``, ``::``, ``»`` or `` / `` between levels
  (``Home cooking > Baking``; a bare ``/`` as in ``Home/Kitchen`` when most of
  the catalogue's categorised items use it, so ``AC/DC`` alone stays a name);
  several paths of one item are separated by ``|`` (multi-label);
* a **flat label set** (MovieLens genres ``Action|Adventure|Sci-Fi``): each
  label is a path of one level.

A list of plain names is a path or a label set by measurement: in a path each
name below the root has one parent (the name before it) for at least
:data:`PATH_PARENT_CONSISTENCY` of its occurrences; in a label set the same
label follows many different labels.

Then, over the items in the logs:

* entries that are not categories are dropped (HTML, sentences, prices,
  urls, more than :data:`MAX_CATEGORY_WORDS` words);
* a level that does not discriminate is dropped: a node that holds at least
  :data:`DOMINANT_SHARE` of the items at its level (an Amazon department root
  that every item shares, ``Gift Cards > Gift Cards``) says nothing about a
  user, so its items move up to the level below it. Shares are of the
  items that reach that level.

What is left are the **informative levels**: L1 is the first, L2 the next
(:mod:`interests.profile.item_groups` decides what to do where there is
only one, or none).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..events import Catalog

Shape = Literal["path", "flat", "none"]

#: a node holding at least this share of its parent's items is not a level (dropped)
DOMINANT_SHARE = 0.9
#: in a path, a name below the root follows one parent in at least this share of its occurrences
PATH_PARENT_CONSISTENCY = 0.8
#: a category name has at most this many words (longer entries are sentences)
MAX_CATEGORY_WORDS = 6
#: and at most this many characters
MAX_CATEGORY_CHARS = 60
#: a bare "/" separates levels when at least this share of the categorised items use it
SLASH_SHARE = 0.5

_SEPARATORS = re.compile(r"\s*(?:>|::|»|\s/\s)\s*")
_SLASH = re.compile(r"\s*/\s*")
_HTML = re.compile(r"<[^>]*>|</|&[a-z]+;|&#\d+;", re.IGNORECASE)
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_PRICE = re.compile(r"[$€£¥]\s?\d|\d+(?:[.,]\d+)?\s?(?:usd|eur|gbp)\b", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def is_category_name(entry: str) -> bool:
    """Whether a catalogue entry can name a category (not HTML, a sentence, a price or a url)."""
    text = entry.strip()
    if not text or len(text) > MAX_CATEGORY_CHARS or _HTML.search(text) or _URL.search(text):
        return False
    if _PRICE.search(text) or len(_LETTER.findall(text)) < 2:
        return False
    if len(text.split()) > MAX_CATEGORY_WORDS:
        return False
    # a sentence: ends with . ! ? (an abbreviation such as "Misc." has no space before its dot)
    return not (text[-1] in ".!?" and " " in text)


def split_levels(entry: str, slash: bool = False) -> list[str]:
    """The level names of one category entry (``A > B`` gives two; ``slash``: a bare ``/`` too)."""
    parts = _SEPARATORS.split(entry)
    if slash:
        parts = [q for p in parts for q in _SLASH.split(p)]
    return [p.strip() for p in parts if p.strip()]


@dataclass
class CategoryLevels:
    """Informative category paths per item and what was found on the way."""

    shape: Shape
    paths: dict[str, list[list[str]]] = field(default_factory=dict)
    dropped_levels: list[str] = field(default_factory=list)  # "A" or "A > B": nodes that said nothing
    junk_entries: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Share of the items with at least one informative level."""
        return sum(1 for p in self.paths.values() if p) / max(len(self.paths), 1)

    def depth(self) -> int:
        return max((len(q) for p in self.paths.values() for q in p), default=0)


def _raw_paths(entries: Sequence[str], slash: bool) -> tuple[list[list[str]], bool, int]:
    """(paths, whether an entry was a path string, entries dropped as junk) for one item."""
    names: list[list[str]] = []
    junk = 0
    had_path = False
    for e in entries:
        if _HTML.search(e) or _URL.search(e):  # markup or a link: no level in it is a category
            junk += 1
            continue
        parts = split_levels(e, slash)
        kept = [p for p in parts if is_category_name(p)]
        junk += len(parts) - len(kept)
        if len(parts) > 1:
            had_path = True
        if kept:
            names.append(kept)
    return names, had_path, junk


def _parent_consistency(lists: Sequence[Sequence[str]]) -> float | None:
    """Over names below the first of multi-name lists: share of occurrences after their usual parent."""
    parents: dict[str, Counter[str]] = defaultdict(Counter)
    for names in lists:
        for a, b in itertools.pairwise(names):
            if a != b:
                parents[b][a] += 1
    total = sum(sum(c.values()) for c in parents.values())
    if total == 0:
        return None
    return sum(c.most_common(1)[0][1] for c in parents.values()) / total


def _drop_dominant(paths: dict[str, list[list[str]]], share: float) -> list[str]:
    """Remove, in place, every node holding ``share`` or more of the items at its level; returns them.

    Levels are read top down; when a node goes, the level below it moves up
    and is read again (``Gift Cards > Gift Cards > Restaurants``).
    """
    dropped: list[str] = []
    depth = 0
    while True:
        at_level: set[str] = set()
        under_node: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for item, ps in paths.items():
            for p in ps:
                if len(p) > depth:
                    at_level.add(item)
                    under_node[tuple(p[: depth + 1])].add(item)
        if not under_node:
            return dropped
        dominant = {
            node
            for node, items in under_node.items()
            if len(items) >= share * len(at_level) and len(at_level) > 1
        }
        if not dominant:
            depth += 1
            continue
        dropped += [" > ".join(node) for node in sorted(dominant)]
        for item, ps in paths.items():
            new = []
            for p in ps:
                if tuple(p[: depth + 1]) in dominant:
                    p = p[:depth] + p[depth + 1 :]
                if p and p not in new:
                    new.append(p)
            paths[item] = new


def category_levels(
    items: Sequence[str], catalog: Catalog, *, dominant_share: float = DOMINANT_SHARE
) -> CategoryLevels:
    """The informative category paths of ``items`` (the logged items) in ``catalog``."""
    entries = {i: [c for c in catalog.get_item(i).categories if c.strip()] for i in items}
    with_cats = [i for i in items if entries[i]]
    slash = bool(with_cats) and sum(
        1 for i in with_cats if any("/" in e for e in entries[i])
    ) >= SLASH_SHARE * len(with_cats)
    raw: dict[str, list[list[str]]] = {}
    junk = 0
    path_strings = 0
    for i in items:
        names, had_path, j = _raw_paths(entries[i], slash)
        raw[i] = names
        junk += j
        path_strings += had_path
    plain_lists = [[n[0] for n in names] for names in raw.values() if all(len(n) == 1 for n in names)]
    multi = [lst for lst in plain_lists if len(lst) > 1]
    consistency = _parent_consistency(multi)
    if not any(raw.values()):
        shape: Shape = "none"
    elif (
        path_strings >= max(1, len(with_cats) // 2)
        or consistency is None
        or consistency >= PATH_PARENT_CONSISTENCY
    ):
        shape = "path"
    else:
        shape = "flat"
    paths: dict[str, list[list[str]]] = {}
    for i, names in raw.items():
        if shape == "path" and names and all(len(n) == 1 for n in names):
            # a list of plain names, root first: one path (repeats of a level collapse)
            path = [n[0] for n in names]
            paths[i] = [[a for k, a in enumerate(path) if k == 0 or a != path[k - 1]]]
        elif shape == "flat":
            paths[i] = [[n[0]] for n in names]
        else:
            paths[i] = [n for n in names]
    dropped = _drop_dominant(paths, dominant_share)
    levels = CategoryLevels(shape, paths, dropped, junk)
    levels.metrics = {
        "items": float(len(items)),
        "items_with_categories": float(len(with_cats)),
        "informative_coverage": round(levels.coverage, 4),
        "depth": float(levels.depth()),
        "junk_entries": float(junk),
        "parent_consistency": round(consistency, 4) if consistency is not None else -1.0,
    }
    return levels


def label_counts(levels: Mapping[str, Sequence[Sequence[str]]]) -> Counter[str]:
    """How many items carry each first-level name."""
    return Counter(n for ps in levels.values() for n in {p[0] for p in ps if p})


__all__ = [
    "DOMINANT_SHARE",
    "CategoryLevels",
    "category_levels",
    "is_category_name",
    "label_counts",
    "split_levels",
]
