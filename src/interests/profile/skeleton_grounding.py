"""Structure "data": a skeleton plus the model's words -> an :class:`InterestProfile`.

The skeleton (:mod:`interests.profile.skeleton`) fixed which items form each domain
and topic; here every node gets

* its **items**: all of the group's items, the model's chosen examples first;
* its **weight**, **rating sentiment** and (for domains) **trend**, computed
  over all the user's events on the group's items, never over what the model
  cited;
* its **name**: the model's, when it passes :func:`node_name_ok`, else the
  group's computed label (category name, taxonomy label, or the cluster's
  most distinctive words); ``name_source`` records which;
* its **attributes**: those the model chose (from the values the items
  carry) plus values most of the items share;
* **text sentiment** only where the user wrote text about the group.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from pydantic import BaseModel

from ..events import Catalog, Event, UserHistory
from ..schema import Attribute, Domain, InterestProfile, NameSource, Provenance, Topic
from .grounding import (
    _all_categories,
    _attributes,
    _sentiment,
    computed_summary,
    name_is_sound,
    summary_is_sound,
)
from .group_names import distinctive_words
from .signals import UserSignals, subset_trend
from .skeleton import Skeleton, SkeletonDomain, SkeletonTopic

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_COUNTER = re.compile(r"\(\s*\d+\s*\)|#\s*\d+$|^group \d+$")
#: words of a node's catalogue text a name must share (by this prefix length) to be about the node
PREFIX = 4


def _norm(text: str) -> str:
    return " ".join(text.split()).strip(" .-:").casefold()


def _content_words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text) if len(w) >= 3]


def node_vocabulary(item_ids: Sequence[str], catalog: Catalog, label: str = "") -> set[str]:
    """Word prefixes of the node's catalogue text (titles, descriptions, categories, attributes, label)."""
    texts = [label]
    for i in item_ids:
        item = catalog.get_item(i)
        texts += [item.title, item.description, *item.categories, *item.attributes.values()]
    return {w[:PREFIX] for t in texts for w in _content_words(t)}


def node_name_ok(
    name: str,
    *,
    vocabulary: set[str],
    titles: set[str],
    item_ids: set[str],
    foreign: set[str],
    attribute_values: set[str] = frozenset(),  # type: ignore[assignment]
    reviews: Sequence[str] = (),
) -> bool:
    """Whether a model's name can stand for a node.

    Rejected: debris or loops (``A: A: A:``, ``Bop Bop``), fewer than three
    letters, an attribute dump (``main_cat: Gift Cards``: any colon), a
    counter (``Drama (2)``), an item id or title, a fragment of the user's own
    reviews (``Five Stars``), a bare attribute value (a brand is not an
    interest), the name of a group the node's items do not belong to
    (``foreign``), and a name with no word from the node's own catalogue text.
    """
    n = _norm(name)
    words = _content_words(name)
    if not n or not words or not name_is_sound(name) or sum(c.isalpha() for c in n) < 3:
        return False
    if ":" in n or _COUNTER.search(n):
        return False
    if (len(n.split()) >= 2 and any(n in r for r in reviews)) or any(r == n for r in reviews):
        return False
    raw = n.replace(":", " ").split()
    if any(a == b for a, b in pairwise(raw)) or max(Counter(raw).values()) >= 3:
        return False
    if n in item_ids or n in titles or any(len(t) > 8 and t in n for t in titles):
        return False
    if n in attribute_values or n in foreign:
        return False
    return any(w[:PREFIX] in vocabulary for w in words)


@dataclass
class _Naming:
    """What every name check of one profile compares against."""

    catalog: Catalog
    titles: set[str]  # every title of the user's items: a copied title is not a name, whichever group
    item_ids: set[str]
    domain_vocabulary: dict[str, set[str]]  # domain key -> word prefixes of its items' catalogue text
    reviews: list[str] = field(default_factory=list)  # the user's own texts, normalised
    used: set[str] = field(default_factory=set)

    def vocabulary(self, node: SkeletonDomain | SkeletonTopic) -> set[str]:
        """The node's word prefixes; a domain's were computed once already."""
        if isinstance(node, SkeletonDomain):
            return self.domain_vocabulary[node.key]
        return node_vocabulary(node.item_ids, self.catalog, node.label)

    def elsewhere(self, domain_key: str) -> set[str]:
        """Words of the user's other domains: a word they share says nothing about this one."""
        return set().union(*(v for k, v in self.domain_vocabulary.items() if k != domain_key))


def _name(
    model_name: str | None,
    node: SkeletonDomain | SkeletonTopic,
    domain_key: str,
    naming: _Naming,
    used: set[str],
    foreign: set[str],
    check_attributes: bool,
    parent: str | None = None,
) -> tuple[str, NameSource]:
    items = [naming.catalog.get_item(i) for i in node.item_ids]
    clean = " ".join((model_name or "").split()).strip(" .-:")
    ok = node_name_ok(
        clean,
        vocabulary=naming.vocabulary(node) - naming.elsewhere(domain_key),
        titles=naming.titles,
        item_ids=naming.item_ids,
        foreign=foreign,
        attribute_values={_norm(v) for it in items for v in it.attributes.values()}
        if check_attributes
        else set(),
        reviews=naming.reviews,
    )
    if ok and _norm(clean) not in used:
        used.add(_norm(clean))
        return clean, "model"
    label = _unique_label(node, parent, naming, used)
    used.add(_norm(label))
    return label, "computed"


def _unique_label(
    node: SkeletonDomain | SkeletonTopic, parent: str | None, naming: _Naming, used: set[str]
) -> str:
    """The node's computed label, made unique in the profile with words, never with a counter.

    Tried in turn: the label; for a topic, the label with its domain's name
    (``Books (Kids)``); the words most distinctive of the node's titles
    against the catalogue, without the label's own words (``Starbucks &
    Coffee``); the label with those words.
    """
    label = node.label
    if _norm(label) not in used:
        return label
    options = [f"{label} ({parent})"] if parent and _norm(parent) != _norm(label) else []
    taken = {w[:PREFIX] for w in _content_words(label)}
    words = " & ".join(
        w
        for w in distinctive_words(node.item_ids, naming.catalog, n_words=3).split(" & ")
        if w and w.casefold()[:PREFIX] not in taken
    )
    if words:
        options += [words, f"{label} ({words})"]
    for option in options:
        if _norm(option) not in used:
            return option
    extra = distinctive_words(node.item_ids, naming.catalog, n_words=4) or "more"
    option = f"{label} ({extra})"
    while _norm(option) in used:
        option += " +"
    return option


def ground_skeleton(
    draft: BaseModel,
    skeleton: Skeleton,
    history: UserHistory,
    signals: UserSignals,
    catalog: Catalog | None,
    *,
    provenance: Provenance,
    prompt_text: str = "",
    half_life_days: float | None = None,
    as_of: float | None = None,
) -> InterestProfile:
    """Fill the skeleton with the draft's words (the grounding stage of structure "data").

    With ``half_life_days``, an event ``age`` days older than ``as_of`` (default:
    the user's last event) counts ``0.5 ** (age / half_life_days)`` in the node
    weights; the skeleton itself (which groups exist) still counts every event once.
    """
    cat = catalog or Catalog()
    by_item: dict[str, list[Event]] = {}
    for e in history.events:
        by_item.setdefault(e.item_id, []).append(e)
    scale = signals.stats.rating_scale
    labels = {_norm(d.label) for d in skeleton.domains} | {_norm(t.label) for _, t in skeleton.topics()}
    naming = _Naming(
        cat,
        titles={_norm(cat.get_item(i).title) for i in by_item if cat.get_item(i).title},
        item_ids={i.casefold() for i in by_item},
        domain_vocabulary={d.key: node_vocabulary(d.item_ids, cat, d.label) for d in skeleton.domains},
        reviews=[_norm(e.text) for e in history.events if e.text],
    )
    used = naming.used
    mass = event_mass(history.events, half_life_days, as_of)

    def weight(ids: Sequence[str], of: Sequence[str]) -> float:
        return round(sum(mass[i] for i in ids) / max(sum(mass[i] for i in of), 1e-12), 4)

    every = [i for d in skeleton.domains for i in d.item_ids]
    domains: list[Domain] = []
    from_model = 0
    for d_i, d in enumerate(skeleton.domains, start=1):
        d_draft: Any = getattr(draft, f"d{d_i}", None)
        d_items = d.item_ids
        own = {_norm(c) for i in d_items for c in cat.get_item(i).categories} | {_norm(d.label)}
        # a domain of several topics is not named after one of them (too narrow)
        narrow = {_norm(t.label) for t in d.topics} - {_norm(d.label)} if len(d.topics) > 1 else set()
        foreign = ((labels | _all_categories(cat)) - own) | narrow
        d_name, d_src = _name(getattr(d_draft, "name", None), d, d.key, naming, used, foreign, True)
        topics: list[Topic] = []
        for t_i, t in enumerate(d.topics, start=1):
            t_draft: Any = getattr(d_draft, f"t{t_i}", None)
            t_own = {_norm(c) for i in t.item_ids for c in cat.get_item(i).categories} | {_norm(t.label)}
            t_name, t_src = _name(
                getattr(t_draft, "name", None),
                t,
                d.key,
                naming,
                used,
                (labels | _all_categories(cat)) - t_own,
                False,
                parent=d_name,
            )
            used.add(_norm(t_name))
            from_model += t_src == "model"
            chosen = [i for i in getattr(t_draft, "items", []) if i in set(t.item_ids)]
            ids = list(dict.fromkeys([*chosen, *sorted(t.item_ids, key=lambda i: -len(by_item[i]))]))
            model_attrs = [_attr(a) for a in getattr(t_draft, "attributes", [])]
            has_text = any(e.text for i in t.item_ids for e in by_item[i])
            text = getattr(t_draft, "text_sentiment", None) if has_text else None
            topics.append(
                Topic(
                    name=t_name,
                    weight=weight(t.item_ids, d_items),
                    sentiment=_sentiment(t.item_ids, by_item, scale, text),
                    item_ids=ids,
                    attributes=_attributes(model_attrs, ids, cat, set(by_item)),
                    key=t.key,
                    name_source=t_src,
                )
            )
        from_model += d_src == "model"
        texts = [t.sentiment.text for t in topics if t.sentiment.text]
        domains.append(
            Domain(
                name=d_name,
                weight=weight(d_items, every),
                sentiment=_sentiment(
                    d_items, by_item, scale, Counter(texts).most_common(1)[0][0] if texts else None
                ),
                topics=topics,
                key=d.key,
                name_source=d_src,
            )
        )
    cited = {i for d in skeleton.domains for i in d.item_ids}
    stats = signals.stats.model_copy(
        update={"evidence_coverage": round(len(cited) / max(signals.stats.n_items, 1), 4)}
    )
    tp = signals.time_patterns.model_copy(
        update={
            "by_domain": [
                subset_trend(dom.name, history.events, [e.item_id in set(d.item_ids) for e in history.events])
                for dom, d in zip(domains, skeleton.domains, strict=True)
            ]
        }
    )
    summary = " ".join(str(getattr(draft, "summary", "")).split())
    titles = {cat.get_item(i).title.casefold() for i in cited}
    vocab = {w for d in domains for w in _content_words(d.name + " " + " ".join(t.name for t in d.topics))}
    vocab |= {w for i in cited for w in _content_words(cat.get_item(i).title)}
    n_nodes = len(domains) + sum(len(d.topics) for d in domains)
    update: dict[str, Any] = {"structure": "data", "names_replaced": n_nodes - from_model}
    if not summary_is_sound(summary, titles, prompt_text, vocab):
        summary = computed_summary(domains, tp.by_domain)
        update["summary_source"] = "computed"
    texts = [d.sentiment.text for d in domains if d.sentiment.text]
    return InterestProfile(
        user_id=history.user_id,
        summary=summary,
        domains=domains,
        sentiment=signals.sentiment.model_copy(
            update={"text": Counter(texts).most_common(1)[0][0] if texts else None}
        ),
        time_patterns=tp,
        stats=stats,
        provenance=provenance.model_copy(update=update),
    )


def event_mass(
    events: Sequence[Event], half_life_days: float | None = None, as_of: float | None = None
) -> dict[str, float]:
    """Each item's events counted (``half_life_days=None``) or decayed by age (an undated event counts 1)."""
    mass: dict[str, float] = {}
    if half_life_days is None or half_life_days <= 0:
        for e in events:
            mass[e.item_id] = mass.get(e.item_id, 0.0) + 1.0
        return mass
    stamps = [e.ts for e in events if e.ts is not None]
    ref = as_of if as_of is not None else (max(stamps) if stamps else 0.0)
    for e in events:
        age = max(0.0, ref - e.ts) / 86400.0 if e.ts is not None else 0.0
        mass[e.item_id] = mass.get(e.item_id, 0.0) + 0.5 ** (age / half_life_days)
    return mass


def _attr(value: str) -> Attribute:
    name, _, val = value.partition(": ")
    return Attribute(name=name, value=val)


__all__ = ["event_mass", "ground_skeleton", "node_name_ok", "node_vocabulary"]
