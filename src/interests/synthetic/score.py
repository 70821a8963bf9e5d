"""Score interest profiles against the planted truth of synthetic logs.

``truth`` is the parsed ``truth.json`` written by
:func:`interests.synthetic.write_logs`: ``users`` (planted domains, topics per
domain, rhythm, fading/rising domain, disliked topic), ``item_domain`` and
``item_topic``. A node is judged by the planted truth of the items it cites,
never by its name, so profiles named in any words (or any language) score
alike.

Definitions (a node's items are the distinct item ids it cites; a domain
node cites every item under its topics):

* **majority**: the planted domain (topic) held by most of a node's items,
  ties broken alphabetically; items missing from the truth vote for nothing.
  **coherence** of a node: the share of its items in its majority (items
  missing from the truth count against it; a node with none known has
  coherence 0 and no majority).
* ``domains_per_profile`` / ``planted_domains_per_user``: mean number of
  domain nodes per profile / planted domains per profiled user;
  ``domain_ratio`` is the first over the second (1 = as many nodes as
  planted domains). ``topics_per_profile``, ``planted_topics_per_user`` and
  ``topic_ratio`` likewise.
* ``domain_recall``: mean over profiled users of the share of their planted
  domains that are the majority of at least one of their domain nodes.
  ``topic_recall``: the same for planted topics and topic nodes.
* ``domain_coherence``: mean coherence of all domain nodes weighted by their
  item count; ``domain_coherence_nodes``: unweighted. ``topic_coherence``
  and ``topic_coherence_nodes`` likewise for topic nodes.
* ``duplicate_topics``: pairs of topic nodes within one profile (across its
  domains) that share an item or whose normalised names (lower case,
  letters and digits only) are equal, summed over profiles.
  ``duplicate_domains``: the same for pairs of domain nodes.
* ``sentiment_order``: over users with a disliked topic whose profile has a
  topic node with the disliked topic as majority and one with a liked
  (other planted) topic as majority, both with a rating sentiment: the share
  where every such liked node's ``sentiment.rating`` is above every such
  disliked node's; ``sentiment_n`` is the number of those users.
* ``rhythm_accuracy``: over users with a planted rhythm other than ``any``:
  the share where ``time_patterns`` shows it, i.e. at least 0.99 of the
  ``hour_of_day`` mass in hours 19-22 (evening) or of the ``weekday`` mass
  on Saturday and Sunday (weekend); ``rhythm_n`` users.
* ``trend_accuracy``: each planted rising or fading domain of a user is a
  case; its nodes are the domain nodes whose majority it is, and its entries
  the ``time_patterns.by_domain`` entries whose ``domain`` equals one of
  those nodes' names. A case without a node counts in ``trend_missing``;
  a case with nodes (``trend_cases``) is correct when it has at least one
  entry and every entry carries the planted label. ``trend_rising`` and
  ``trend_fading`` are the accuracies of each kind.
* ``names_distinct``: share of node names (domains and topics together)
  whose normalised form no other node of the same profile shares;
  ``mean_name_words``: mean number of words in a node name.
* ``split_domains``: over (profiled user, planted domain) pairs with an
  item in the profile, the share whose items sit in more than one domain node.
* ``domain_names_planted`` / ``topic_names_planted``: share of domain (topic)
  nodes with a majority whose name shares a word with the planted name of
  that majority (words of three letters or more, compared by their first
  four letters, so ``Rose`` matches ``Roses``).
* ``counter_names``: node names with a counter (``Drama (2)``);
  ``dump_names``: names with a colon (``main_cat: Gift Cards``).
* ``users``: users in the truth; ``profiles``: profiles scored (one per
  user id, the last one wins); ``missing_profiles``: truth users without a
  profile; ``unknown_profiles``: profiles of users not in the truth (their
  nodes count in coherence, duplicates and names, not in per-user scores).

Per-user scores are over users that have a profile. Ratios are rounded to 4
decimals; a score with nothing to average is ``None``.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from ..profile.store import read_profiles
from ..schema import InterestProfile

RHYTHM_HOURS = range(19, 23)
RHYTHM_SHARE = 0.99


_COUNTER = re.compile(r"\(\s*\d+\s*\)")
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.lower())


def _shares_word(name: str, planted: str) -> bool:
    """Whether ``name`` and ``planted`` share a word (three letters or more, first four letters)."""
    stems = {w.casefold()[:4] for w in _WORD.findall(planted)}
    return any(w.casefold()[:4] in stems for w in _WORD.findall(name))


def _majority(items: Iterable[str], truth: Mapping[str, str]) -> tuple[str | None, int, int]:
    """(majority label, items in it, items) of a node's distinct items."""
    distinct = set(items)
    votes = Counter(truth[i] for i in distinct if i in truth)
    if not votes:
        return None, 0, len(distinct)
    label, count = min(votes.items(), key=lambda kv: (-kv[1], kv[0]))
    return label, count, len(distinct)


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def _mean(xs: Sequence[float]) -> float | None:
    return _r(statistics.fmean(xs)) if xs else None


def _share(hits: Sequence[bool]) -> float | None:
    return _r(sum(hits) / len(hits)) if hits else None


def _pairs(nodes: Sequence[tuple[str, set[str]]]) -> int:
    return sum(
        1
        for (na, ia), (nb, ib) in combinations(nodes, 2)
        if (ia & ib) or (_norm(na) and _norm(na) == _norm(nb))
    )


def score_profiles(profiles: Sequence[InterestProfile], truth: Mapping[str, Any]) -> dict[str, Any]:
    """Scores of ``profiles`` against a parsed ``truth.json`` (see the module docstring)."""
    item_domain: Mapping[str, str] = truth.get("item_domain", {})
    item_topic: Mapping[str, str] = truth.get("item_topic", {})
    planted: dict[str, Mapping[str, Any]] = {str(u["user_id"]): u for u in truth.get("users", [])}
    by_user = {p.user_id: p for p in profiles}

    d_weighted: list[tuple[int, int]] = []  # (in majority, items) per domain node
    t_weighted: list[tuple[int, int]] = []
    d_recall: list[float] = []
    t_recall: list[float] = []
    n_domains: list[int] = []
    n_topics: list[int] = []
    p_domains: list[int] = []
    p_topics: list[int] = []
    dup_topics = dup_domains = 0
    names_distinct: list[bool] = []
    name_words: list[int] = []
    sentiment_hits: list[bool] = []
    rhythm_hits: list[bool] = []
    trend_hits: dict[str, list[bool]] = {"rising": [], "fading": []}
    trend_missing = 0
    split_cases: list[bool] = []
    name_hits: dict[str, list[bool]] = {"domain": [], "topic": []}
    counters = dumps = 0

    for uid, profile in by_user.items():
        where: dict[str, set[int]] = {}
        for k, d in enumerate(profile.domains):
            for t in d.topics:
                for i in t.item_ids:
                    if i in item_domain:
                        where.setdefault(item_domain[i], set()).add(k)
            label = _majority({i for t in d.topics for i in t.item_ids}, item_domain)[0]
            if label is not None:
                name_hits["domain"].append(_shares_word(d.name, label))
            for t in d.topics:
                t_label = _majority(t.item_ids, item_topic)[0]
                if t_label is not None:
                    name_hits["topic"].append(_shares_word(t.name, t_label))
            for name in [d.name, *(t.name for t in d.topics)]:
                counters += bool(_COUNTER.search(name))
                dumps += ":" in name
        if uid in planted:
            split_cases += [len(nodes) > 1 for nodes in where.values()]
        d_nodes: list[tuple[str, set[str], str | None]] = []
        t_nodes: list[tuple[str, set[str], str | None, float | None]] = []
        for d in profile.domains:
            d_items = {i for t in d.topics for i in t.item_ids}
            label, hit, n = _majority(d_items, item_domain)
            d_weighted.append((hit, n))
            d_nodes.append((d.name, d_items, label))
            for t in d.topics:
                t_label, t_hit, t_n = _majority(t.item_ids, item_topic)
                t_weighted.append((t_hit, t_n))
                t_nodes.append((t.name, set(t.item_ids), t_label, t.sentiment.rating))
        n_domains.append(len(d_nodes))
        n_topics.append(len(t_nodes))
        dup_domains += _pairs([(name, items) for name, items, _ in d_nodes])
        dup_topics += _pairs([(name, items) for name, items, _, _ in t_nodes])
        names = Counter(_norm(n) for n in [x[0] for x in d_nodes] + [x[0] for x in t_nodes])
        for name in [x[0] for x in d_nodes] + [x[0] for x in t_nodes]:
            names_distinct.append(names[_norm(name)] == 1)
            name_words.append(len(name.split()))

        user = planted.get(uid)
        if user is None:
            continue
        domains: list[str] = list(user["domains"])
        topics = [t for d in domains for t in user["topics"].get(d, [])]
        p_domains.append(len(domains))
        p_topics.append(len(topics))
        d_found = {label for _, _, label in d_nodes}
        t_found = {label for _, _, label, _ in t_nodes}
        if domains:
            d_recall.append(sum(d in d_found for d in domains) / len(domains))
        if topics:
            t_recall.append(sum(t in t_found for t in topics) / len(topics))

        disliked = user.get("disliked_topic")
        if disliked:
            bad = [r for _, _, label, r in t_nodes if label == disliked and r is not None]
            good = [
                r for _, _, label, r in t_nodes if label in topics and label != disliked and r is not None
            ]
            if bad and good:
                sentiment_hits.append(min(good) > max(bad))

        rhythm = user.get("rhythm")
        tp = profile.time_patterns
        if rhythm == "evening":
            rhythm_hits.append(sum(tp.hour_of_day[h] for h in RHYTHM_HOURS) >= RHYTHM_SHARE)
        elif rhythm == "weekend":
            rhythm_hits.append(tp.weekday[5] + tp.weekday[6] >= RHYTHM_SHARE)

        for kind in ("rising", "fading"):
            domain = user.get(kind)
            if not domain:
                continue
            node_names = {name for name, _, label in d_nodes if label == domain}
            if not node_names:
                trend_missing += 1
                continue
            entries = [e.trend for e in tp.by_domain if e.domain in node_names]
            trend_hits[kind].append(bool(entries) and all(label == kind for label in entries))

    def weighted(pairs: list[tuple[int, int]]) -> float | None:
        total = sum(n for _, n in pairs)
        return _r(sum(h for h, _ in pairs) / total) if total else None

    def unweighted(pairs: list[tuple[int, int]]) -> float | None:
        return _mean([h / n if n else 0.0 for h, n in pairs])

    def ratio(a: float | None, b: float | None) -> float | None:
        return _r(a / b) if a is not None and b else None

    dpp, pdu = _mean(n_domains), _mean(p_domains)
    tpp, ptu = _mean(n_topics), _mean(p_topics)
    all_trends = trend_hits["rising"] + trend_hits["fading"]
    return {
        "users": len(planted),
        "profiles": len(by_user),
        "missing_profiles": sum(1 for u in planted if u not in by_user),
        "unknown_profiles": sum(1 for u in by_user if u not in planted),
        "domains_per_profile": dpp,
        "planted_domains_per_user": pdu,
        "domain_ratio": ratio(dpp, pdu),
        "topics_per_profile": tpp,
        "planted_topics_per_user": ptu,
        "topic_ratio": ratio(tpp, ptu),
        "domain_recall": _mean(d_recall),
        "domain_coherence": weighted(d_weighted),
        "domain_coherence_nodes": unweighted(d_weighted),
        "topic_recall": _mean(t_recall),
        "topic_coherence": weighted(t_weighted),
        "topic_coherence_nodes": unweighted(t_weighted),
        "duplicate_domains": dup_domains,
        "duplicate_topics": dup_topics,
        "sentiment_order": _share(sentiment_hits),
        "sentiment_n": len(sentiment_hits),
        "rhythm_accuracy": _share(rhythm_hits),
        "rhythm_n": len(rhythm_hits),
        "trend_accuracy": _share(all_trends),
        "trend_cases": len(all_trends),
        "trend_missing": trend_missing,
        "trend_rising": _share(trend_hits["rising"]),
        "trend_fading": _share(trend_hits["fading"]),
        "split_domains": _share(split_cases),
        "domain_names_planted": _share(name_hits["domain"]),
        "topic_names_planted": _share(name_hits["topic"]),
        "counter_names": counters,
        "dump_names": dumps,
        "names_distinct": _share(names_distinct),
        "mean_name_words": _mean(name_words),
    }


def score_file(profiles_path: str | Path, truth_path: str | Path) -> dict[str, Any]:
    """:func:`score_profiles` of a ``profiles.jsonl`` file against a ``truth.json`` file."""
    truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    return score_profiles(read_profiles(profiles_path), truth)


__all__ = ["score_file", "score_profiles"]
