"""Computed names for groups of items: words a person would use, never a dump or a counter.

These are the fallbacks the profile shows when the model's name is refused,
and the names of cluster nodes the model sees as a hint:

* a **cluster** is named by the words most distinctive of its items' titles:
  at least twice as frequent inside the group as in the background (the
  catalogue, or the sibling groups), ranked by c-TF-IDF. Words that every
  group shares (``gift``, ``card``), boilerplate (``from``, price bands) and
  English stop words never name a group;
* an **attribute value** is named by the value (``Ridgeline``), a number by
  its attribute and value (``Year 2011``), never ``brand: Ridgeline``;
* a **flat-label group** by its largest labels (``Action & Adventure``).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from ..events import Catalog

_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)
#: a word must be on at least this share of a group's titles to name it
MIN_WORD_SHARE = 0.2
_EXTRA_STOP = {
    "band",
    "from",
    "price",
    "new",
    "set",
    "pack",
    "edition",
    "series",
    "item",
    "items",
    "product",
    "products",
    "one",
    "two",
    "three",
    "four",
    "five",
    "mid-range",
    "budget",
    "premium",
    "vol",
    "the",
    "com",
    "www",
    "inc",
    "llc",
}


@functools.cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _EXTRA_STOP


def title_words(text: str) -> list[str]:
    """Distinct content words of a title, case-folded, in order."""
    stop = _stop_words()
    words = [w.casefold().strip("'-") for w in _WORD.findall(text)]
    return list(dict.fromkeys(w for w in words if len(w) >= 3 and w not in stop))


def item_title_words(catalog: Catalog, item_ids: Sequence[str]) -> list[list[str]]:
    return [title_words(catalog.get_item(i).title) for i in item_ids]


def distinctive_names(
    members: Mapping[str, Sequence[int]],
    words: Sequence[Sequence[str]],
    *,
    background: Sequence[Sequence[str]] | None = None,
    n_words: int = 2,
) -> dict[str, str]:
    """A name per group from the words most distinctive of its members' titles, unique among the names.

    ``words[k]`` are the title words of item ``k``; ``background`` (default:
    ``words``) is what "rare elsewhere" is measured against.
    """
    bg = background if background is not None else words
    n = max(len(bg), 1)
    df: Counter[str] = Counter(w for ws in bg for w in set(ws))
    names: dict[str, str] = {}
    used: set[str] = set()
    for key, idx in sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        tf: Counter[str] = Counter(w for k in idx for w in set(words[k]))
        size = max(len(idx), 1)

        def score(w: str, tf: Counter[str] = tf, size: int = size) -> float:
            return (tf[w] / size) * float(np.log(1 + n / max(df[w], 1)))

        # a word names a group where it is concentrated: at least twice as frequent as in the background
        ok = [w for w in tf if tf[w] / size >= 2 * df[w] / n]
        ranked = sorted(
            (w for w in ok if tf[w] >= min(2, size)),
            key=lambda w: (tf[w] / size < MIN_WORD_SHARE, -score(w), w),
        )
        # no concentrated word (a group of many brands): its most frequent words that not every group has
        ranked += sorted(
            (w for w in tf if w not in ok and tf[w] >= min(2, size) and df[w] / n <= 0.5),
            key=lambda w: (-tf[w], w),
        )
        name = ""
        for k in range(n_words, 0, -1):
            for start in range(len(ranked)):
                cand = " & ".join(w.capitalize() for w in ranked[start : start + k])
                if cand and cand.casefold() not in used and len(ranked[start : start + k]) == k:
                    name = cand
                    break
            if name:
                break
        if not name:
            name = f"Group {len(used) + 1}"
            while name.casefold() in used:
                name += "+"
        used.add(name.casefold())
        names[key] = name
    return names


_TITLE_DF: dict[int, tuple[int, Counter[str]]] = {}


def _catalog_title_df(catalog: Catalog) -> tuple[int, Counter[str]]:
    """(number of titles, document frequency of each title word) over the whole catalogue, cached."""
    key = id(catalog)
    hit = _TITLE_DF.get(key)
    if hit is None or hit[0] != len(catalog):
        df: Counter[str] = Counter(w for item in catalog.values() for w in title_words(item.title))
        hit = _TITLE_DF[key] = (len(catalog), df)
        if len(_TITLE_DF) > 8:  # a long-lived process sees few catalogues
            _TITLE_DF.pop(next(iter(_TITLE_DF)))
    return hit


def distinctive_words(item_ids: Sequence[str], catalog: Catalog, n_words: int = 2) -> str:
    """``A & B``: the title words most distinctive of ``item_ids`` against the catalogue ('' if none)."""
    n, df = _catalog_title_df(catalog)
    words = item_title_words(catalog, item_ids)
    tf: Counter[str] = Counter(w for ws in words for w in set(ws))
    size = max(len(item_ids), 1)
    ranked = sorted(
        (w for w in tf if tf[w] >= min(2, size) and tf[w] / size >= 2 * df[w] / max(n, 1)),
        key=lambda w: (-(tf[w] / size) * float(np.log(1 + max(n, 1) / max(df[w], 1))), w),
    )
    return " & ".join(w.capitalize() for w in ranked[:n_words])


def attribute_label(key: str, value: str) -> str:
    """``Ridgeline`` for ``brand: Ridgeline``; ``Year 2011`` for a number (never ``year: 2011``)."""
    v = " ".join(value.split())
    if not any(c.isalpha() for c in v):
        return f"{key.replace('_', ' ').strip().capitalize()} {v}"
    return v


def label_group_name(labels: Sequence[str], counts: Mapping[str, int]) -> str:
    """``A & B`` from the two largest labels of a group of flat labels (``A`` alone for one)."""
    top = sorted(labels, key=lambda x: (-counts.get(x, 0), x))[:2]
    return " & ".join(top)


__all__ = [
    "attribute_label",
    "distinctive_names",
    "distinctive_words",
    "item_title_words",
    "label_group_name",
    "title_words",
]
