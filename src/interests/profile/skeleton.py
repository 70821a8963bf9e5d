"""A user's L1/L2 groups of items, computed from the data before any prompt.

"Structure from the data, words from the model": the skeleton decides which
items form an interest; the model only names the groups (see
:func:`interests.profile.draft.skeleton_model`). Every group is built over **all** the
user's events, so weights, sentiment and trends describe the user, whatever
the model later cites.

Rules (documented in docs/schema.md, "How the hierarchy is built"):

1. Each item has candidate paths ``[L1, L2]`` from :class:`~interests.profile.item_groups.ItemGroups`
   (its informative category levels, a label group and its label, a taxonomy
   path or cluster keys). A key's **support** is the number of the user's
   events on items carrying it.
2. **L1**: each item goes to the L1 key of its paths with the most support
   (ties: the earlier path). A domain needs at least ``min_domain_events`` events and
   ``min_domain_share`` of the user's events; the items of a domain without
   support move to their next supported candidate, or stay out of the
   hierarchy ("below support"). At most ``max_domains`` domains, strongest
   first; the items of the others stay out too.
3. **L2** inside each domain, by the same rule over the L2 keys of the
   item's paths under that domain, then their attribute values (``brand:
   Ridgeline``, named ``Ridgeline``; values most of the catalogue shares never
   count). A topic needs ``min_topic_events`` events and
   ``min_topic_share`` of its domain. Items without a supported topic form
   one more topic ("other"), or join the domain's single topic. At most
   ``max_topics`` topics a domain; the smallest are folded into "other".
4. Nothing appears twice: every item sits in exactly one topic of one domain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..events import Catalog, Event, UserHistory
from .group_names import attribute_label

if TYPE_CHECKING:
    from .item_groups import ItemGroups

OTHER = "other"
ALL, ALL_LABEL = "all", "All activity"


@dataclass(frozen=True)
class SkeletonRules:
    """The support rule and the caps (defaults documented in docs/schema.md)."""

    min_domain_events: int = 3
    min_domain_share: float = 0.05
    max_domains: int = 6
    min_topic_events: int = 2
    min_topic_share: float = 0.1
    max_topics: int = 4


#: the rule for a history too short for any group to reach the default support
TINY = SkeletonRules(min_domain_events=1, min_domain_share=0.0, min_topic_events=1, min_topic_share=0.0)


@dataclass
class SkeletonTopic:
    key: str  # data key (a category, "name: value", a cluster key, or "<domain>/other")
    label: str  # computed label: the fallback name
    source: str  # "category" | "taxonomy" | "cluster" | "attribute" | "other" | "domain"
    item_ids: list[str]  # ordered by the user's last interaction, oldest first
    n_events: int


@dataclass
class SkeletonDomain:
    key: str
    label: str
    source: str
    topics: list[SkeletonTopic]
    n_events: int

    @property
    def item_ids(self) -> list[str]:
        return [i for t in self.topics for i in t.item_ids]


@dataclass
class Skeleton:
    """The user's groups. ``left_out`` holds items below the support rule or past the caps."""

    user_id: str
    source: str
    domains: list[SkeletonDomain]
    left_out: list[str] = field(default_factory=list)

    @property
    def n_events(self) -> int:
        return sum(d.n_events for d in self.domains)

    def topics(self) -> list[tuple[SkeletonDomain, SkeletonTopic]]:
        return [(d, t) for d in self.domains for t in d.topics]


def _assign(
    items: Sequence[str],
    candidates: dict[str, list[str]],
    events: Counter[str],
    min_events: int,
    min_share: float,
    total: int,
    cap: int,
) -> tuple[dict[str, list[str]], list[str]]:
    """Greedy grouping of ``items`` by their best supported candidate key (rules 2 and 3)."""
    support: Counter[str] = Counter()
    for i in items:
        for k in candidates.get(i, []):
            support[k] += events[i]
    alive = {k for k, n in support.items() if n >= min_events and n >= min_share * total}
    while True:
        groups: dict[str, list[str]] = {}
        loose: list[str] = []
        for i in items:
            opts = [k for k in candidates.get(i, []) if k in alive]
            if not opts:
                loose.append(i)
                continue
            # most support first; ties: earlier (more general) candidate
            best = min(opts, key=lambda k: (-support[k], candidates[i].index(k)))
            groups.setdefault(best, []).append(i)
        weak = {
            k for k, ids in groups.items() if sum(events[i] for i in ids) < max(min_events, min_share * total)
        }
        if not weak:
            break
        alive -= weak
        # support now counts only what a group would really hold
        support = Counter({k: sum(events[i] for i in ids) for k, ids in groups.items() if k in alive})
    ranked = sorted(groups, key=lambda k: (-sum(events[i] for i in groups[k]), k))
    kept = {k: groups[k] for k in ranked[:cap]}
    loose += [i for k in ranked[cap:] for i in groups[k]]
    return kept, loose


def build_skeleton(
    history: UserHistory,
    groups: ItemGroups,
    catalog: Catalog | None = None,
    rules: SkeletonRules | None = None,
) -> Skeleton:
    """The user's L1/L2 groups of items (the per-user half of the ``skeleton`` stage)."""
    r = rules or SkeletonRules()
    cat = catalog or Catalog()
    events: Counter[str] = Counter(e.item_id for e in history.events)
    last: dict[str, int] = {e.item_id: k for k, e in enumerate(history.events)}
    items = sorted(events, key=lambda i: last[i])  # oldest last interaction first
    total = sum(events.values())
    paths = {i: groups.candidates(i) for i in items}
    l1 = {i: list(dict.fromkeys(p[0] for p in paths[i])) for i in items}
    domains_map, left = _assign(
        items, l1, events, r.min_domain_events, r.min_domain_share, total, r.max_domains
    )
    common = set(groups.common_attributes)
    domains: list[SkeletonDomain] = []
    for dkey, d_items in domains_map.items():
        d_events = sum(events[i] for i in d_items)
        # the next level under this domain first; attribute values only for items left without one
        t_map, t_loose = _assign(
            d_items,
            {i: list(dict.fromkeys(p[1] for p in paths[i] if p[0] == dkey and len(p) > 1)) for i in d_items},
            events,
            r.min_topic_events,
            r.min_topic_share,
            d_events,
            r.max_topics if len(d_items) > 1 else 1,
        )
        attr_labels: dict[str, str] = {}
        if t_loose and r.max_topics > len(t_map):
            attr_cands: dict[str, list[str]] = {}
            for i in t_loose:
                attr_cands[i] = []
                for a, v in cat.get_item(i).attributes.items():
                    key = f"{a}: {v}"
                    if v and key not in common:
                        attr_cands[i].append(key)
                        attr_labels[key] = attribute_label(a, v)
            by_attr, t_loose = _assign(
                t_loose,
                attr_cands,
                events,
                r.min_topic_events,
                r.min_topic_share,
                d_events,
                r.max_topics - len(t_map),
            )
            t_map.update(by_attr)
        topics = [
            SkeletonTopic(
                key=tkey,
                label=attr_labels[tkey] if tkey in attr_labels else groups.label(tkey),
                source="attribute" if tkey in attr_labels else groups.kind(tkey),
                item_ids=ids,
                n_events=sum(events[i] for i in ids),
            )
            for tkey, ids in t_map.items()
        ]
        if t_loose:
            if topics:
                topics.append(
                    SkeletonTopic(
                        key=f"{dkey}/{OTHER}",
                        label=f"Other {groups.label(dkey)}",
                        source=OTHER,
                        item_ids=t_loose,
                        n_events=sum(events[i] for i in t_loose),
                    )
                )
            else:
                topics = [
                    SkeletonTopic(
                        key=dkey,
                        label=groups.label(dkey),
                        source="domain",
                        item_ids=t_loose,
                        n_events=sum(events[i] for i in t_loose),
                    )
                ]
        order = {i: k for k, i in enumerate(items)}
        for t in topics:
            t.item_ids.sort(key=lambda i: order[i])
        topics.sort(key=lambda t: (t.source == OTHER, -t.n_events, t.key))
        domains.append(SkeletonDomain(dkey, groups.label(dkey), groups.kind(dkey), topics, d_events))
    domains.sort(key=lambda d: (-d.n_events, d.key))
    if not domains and items:
        if r != TINY:  # a short history: every group it has counts
            return build_skeleton(history, groups, catalog, TINY)
        # no item has a candidate group (no categories and no cluster): one group of everything
        topic = SkeletonTopic(ALL, ALL_LABEL, OTHER, items, total)
        domains = [SkeletonDomain(ALL, ALL_LABEL, OTHER, [topic], total)]
        left = []
    return Skeleton(history.user_id, groups.source, domains, left_out=left)


def node_events(history: UserHistory, item_ids: Sequence[str]) -> list[Event]:
    """Every event of the user on ``item_ids``."""
    wanted = set(item_ids)
    return [e for e in history.events if e.item_id in wanted]


__all__ = [
    "Skeleton",
    "SkeletonDomain",
    "SkeletonRules",
    "SkeletonTopic",
    "build_skeleton",
    "node_events",
]
