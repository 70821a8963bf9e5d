"""Turn a decoded draft into an :class:`InterestProfile` that the data supports.

* Evidence is checked again: an ``item_id`` the user never touched (or that
  the prompt did not show) is dropped; a topic left without evidence is
  dropped; a domain left without topics is dropped; domains and topics with
  the same name are merged.
* Weights come from evidence counts, not from the model's say-so: a domain's
  weight is its share of the cited items, a topic's its share inside the
  domain.
* Attributes the model names are kept only when the value appears in the
  catalogue text of the topic's evidence; attribute values shared by most of
  the evidence items are added from the catalogue.
* Sentiment from ratings and all time patterns are computed from events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from itertools import pairwise
from typing import Any

from pydantic import BaseModel

from ..events import Catalog, Event, UserHistory
from ..schema import Attribute, Domain, InterestProfile, Provenance, Sentiment, Topic
from .signals import UserSignals, rating_sentiment, subset_trend

MAX_ATTRIBUTES = 4


class GroundingError(ValueError):
    """The draft cites nothing the user did; the profile cannot be grounded."""


def _norm(name: str) -> str:
    return " ".join(name.split()).strip(" .-").casefold()


def _clean_name(name: str) -> str:
    return " ".join(name.split()).strip(" .-")


def _item_text(catalog: Catalog, item_id: str) -> str:
    item = catalog.get_item(item_id)
    parts = [item.title, item.description, *item.categories, *item.attributes.values()]
    return " ".join(parts).casefold()


def _attributes(
    model_attrs: Sequence[Any], item_ids: Sequence[str], catalog: Catalog, user_items: set[str]
) -> list[Attribute]:
    """Model attributes whose value the evidence shows, plus values most evidence items share.

    An attribute named like an item id, or whose value is a whole title, is
    not an attribute (tiny models produce both) and is dropped.
    """
    evidence = [_item_text(catalog, i) for i in item_ids]
    titles = {catalog.get_item(i).title.casefold() for i in item_ids}
    out: dict[tuple[str, str], Attribute] = {}
    for a in model_attrs:
        name, value = _clean_name(a.name), _clean_name(a.value)
        if (
            name in user_items
            or value.casefold() in titles
            or value in user_items
            or _norm(name) == _norm(value)
        ):
            continue
        if value and any(value.casefold() in text for text in evidence):
            out.setdefault((name.casefold(), value.casefold()), Attribute(name=name, value=value))
    shared: Counter[tuple[str, str]] = Counter()
    for i in item_ids:
        for k, v in catalog.get_item(i).attributes.items():
            shared[(k, v)] += 1
    for (k, v), n in shared.most_common():
        if n * 2 >= len(item_ids) and n >= 1:
            out.setdefault((k.casefold(), v.casefold()), Attribute(name=k, value=v))
    return list(out.values())[:MAX_ATTRIBUTES]


def _text_sentiment(values: Sequence[str | None]) -> str | None:
    vals = [v for v in values if v]
    return Counter(vals).most_common(1)[0][0] if vals else None


def ground_profile(
    draft: BaseModel,
    history: UserHistory,
    signals: UserSignals,
    catalog: Catalog | None,
    *,
    allowed_items: Sequence[str],
    provenance: Provenance,
    prompt_text: str = "",
) -> InterestProfile:
    """Check a draft against the user's events and complete it (the ``grounding`` stage).

    ``prompt_text`` (the system prompt) lets the summary check reject a model
    that echoes its instructions.
    """
    cat = catalog or Catalog()
    allowed = set(allowed_items) & {e.item_id for e in history.events}
    events_by_item: dict[str, list[Event]] = {}
    for e in history.events:
        events_by_item.setdefault(e.item_id, []).append(e)
    scale = signals.stats.rating_scale

    renamed = 0
    merged: dict[str, dict[str, Any]] = {}  # domain key -> {"name", "topics": {topic key -> {...}}}
    for d in getattr(draft, "domains", []):
        for t in d.topics:
            ids = [i for i in dict.fromkeys(t.item_ids) if i in allowed]
            if not ids or not _norm(t.name):
                continue
            d_name = _home_domain(_clean_name(d.name), ids, cat)
            t_name = _topic_name(_clean_name(t.name), d_name, ids, cat, set(events_by_item))
            renamed += int(d_name != _clean_name(d.name)) + int(t_name != _clean_name(t.name))
            dom = merged.setdefault(_norm(d_name), {"name": d_name, "topics": {}})
            top = dom["topics"].setdefault(
                _norm(t_name), {"name": t_name, "ids": [], "attrs": [], "text": []}
            )
            top["ids"].extend(i for i in ids if i not in top["ids"])
            top["attrs"].extend(t.attributes)
            top["text"].append(getattr(t, "text_sentiment", None))

    domains_raw = [(d, [t for t in d["topics"].values() if t["ids"]]) for d in merged.values()]
    domains_raw = [(d, ts) for d, ts in domains_raw if ts and _norm(d["name"])]
    if not domains_raw:
        raise GroundingError("no domain in the model output cites any of the user's items")

    domain_items = [list(dict.fromkeys(i for t in ts for i in t["ids"])) for _, ts in domains_raw]
    total = sum(len(ids) for ids in domain_items)
    domains: list[Domain] = []
    for (d, ts), d_ids in zip(domains_raw, domain_items, strict=True):
        t_total = sum(len(t["ids"]) for t in ts)
        topics = [
            Topic(
                name=t["name"],
                weight=round(len(t["ids"]) / t_total, 4),
                sentiment=_sentiment(t["ids"], events_by_item, scale, _text_sentiment(t["text"])),
                item_ids=t["ids"],
                attributes=_attributes(t["attrs"], t["ids"], cat, set(events_by_item)),
            )
            for t in ts
        ]
        topics.sort(key=lambda t: -t.weight)
        texts = [t.sentiment.text for t in topics]
        domains.append(
            Domain(
                name=d["name"],
                weight=round(len(d_ids) / total, 4),
                sentiment=_sentiment(d_ids, events_by_item, scale, _text_sentiment(texts)),
                topics=topics,
            )
        )
    domains.sort(key=lambda d: -d.weight)

    cited = {i for ids in domain_items for i in ids}
    stats = signals.stats.model_copy(
        update={"evidence_coverage": round(len(cited) / max(signals.stats.n_items, 1), 4)}
    )
    tp = signals.time_patterns.model_copy(
        update={
            "by_domain": [
                subset_trend(d.name, history.events, [e.item_id in set(ids) for e in history.events])
                for d, ids in zip(domains, _ids_in_order(domains), strict=True)
            ]
        }
    )
    overall_text = _text_sentiment([d.sentiment.text for d in domains])
    summary = " ".join(str(getattr(draft, "summary", "")).split())
    titles = {cat.get_item(i).title.casefold() for i in cited}
    if not summary_is_sound(summary, titles, prompt_text, _vocabulary(domains, cited, cat)):
        summary = computed_summary(domains, tp.by_domain)
        provenance = provenance.model_copy(update={"summary_source": "computed"})
    provenance = provenance.model_copy(update={"names_replaced": renamed})
    return InterestProfile(
        user_id=history.user_id,
        summary=summary,
        domains=domains,
        sentiment=signals.sentiment.model_copy(update={"text": overall_text}),
        time_patterns=tp,
        stats=stats,
        provenance=provenance,
    )


def _categories(item_ids: Sequence[str], catalog: Catalog) -> Counter[str]:
    return Counter(c for i in item_ids for c in catalog.get_item(i).categories)


def _home_domain(name: str, item_ids: Sequence[str], catalog: Catalog) -> str:
    """The model's domain name if it covers at least half the evidence, else the main category.

    Only applies when the catalogue has categories; it keeps a topic about
    jazz records from landing under "Science fiction films".
    """
    cats = _categories(item_ids, catalog)
    if not cats:
        return name
    covered = sum(1 for i in item_ids if _norm(name) in {_norm(c) for c in catalog.get_item(i).categories})
    return name if covered * 2 >= len(item_ids) else cats.most_common(1)[0][0]


_CATEGORY_CACHE: dict[int, frozenset[str]] = {}


def _all_categories(catalog: Catalog) -> frozenset[str]:
    """Every category name in the catalogue (normalised), computed once per catalogue."""
    key = id(catalog)
    if key not in _CATEGORY_CACHE:
        _CATEGORY_CACHE.clear()
        _CATEGORY_CACHE[key] = frozenset(_norm(c) for item in catalog.values() for c in item.categories)
    return _CATEGORY_CACHE[key]


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in _norm(text).replace(":", " ").split() if not w.isdigit())


def name_is_sound(name: str) -> bool:
    """No markup debris and no looping fragments (``Bella's's's``)."""
    n = _norm(name)
    if not n or "&#" in n or "\\" in n:
        return False
    for size in (2, 3, 4):
        chunks = Counter(n[i : i + size] for i in range(0, len(n) - size + 1))
        if chunks and chunks.most_common(1)[0][1] >= 4 and size * 4 >= len(n) // 2:
            return False
    return True


def _topic_name(
    name: str, domain: str, item_ids: Sequence[str], catalog: Catalog, user_items: set[str] | None = None
) -> str:
    """Replace a topic "name" that is not a topic by a finer category of its evidence.

    Not a topic: an item title, an item id, the domain's own name, debris, or
    a catalogue category that none of the topic's evidence items carries.
    """
    title_words = {_words(catalog.get_item(i).title) for i in item_ids}
    evidence_cats = {_norm(c) for c in _categories(item_ids, catalog)}
    foreign_category = _norm(name) in _all_categories(catalog) and _norm(name) not in evidence_cats
    if (
        name_is_sound(name)
        and _norm(name) != _norm(domain)
        and _words(name) not in title_words
        and name not in (user_items or set())
        and not foreign_category
    ):
        return name
    finer = [c for c, _ in _categories(item_ids, catalog).most_common() if _norm(c) != _norm(domain)]
    return finer[0] if finer else name


def summary_is_sound(
    text: str, titles: set[str] | None = None, prompt: str = "", vocabulary: set[str] | None = None
) -> bool:
    """A summary a person can use and the data supports.

    A few words, no loops, not a bare title, not the instructions echoed,
    and (given ``vocabulary``, the words of the profile's names, categories
    and evidence titles) about something the user actually did.
    """
    words = text.casefold().replace(",", " ").replace(";", " ").split()
    if len(words) < 4 or text.casefold().strip(" .") in (titles or set()) or not name_is_sound(text):
        return False
    if len(set(words)) < 0.6 * len(words):
        return False
    pairs = Counter(pairwise(words))
    if pairs and pairs.most_common(1)[0][1] >= 3:
        return False
    if any(a == b and len(a) >= 3 for a, b in pairwise(words)):
        return False  # a stutter ("the filter filter guide") is the start of a decoding loop
    echo = prompt.casefold()
    if echo and any(" ".join(words[i : i + 5]) in echo for i in range(len(words) - 4)):
        return False
    if vocabulary is not None:
        content = {w.strip(".!?'\"()") for w in words}
        return any(w in vocabulary for w in content if len(w) >= 4)
    return True


def _vocabulary(domains: Sequence[Domain], item_ids: set[str], catalog: Catalog) -> set[str]:
    texts = [d.name for d in domains] + [t.name for d in domains for t in d.topics]
    for i in item_ids:
        item = catalog.get_item(i)
        texts += [item.title, *item.categories]
    return {w.strip(".,:;!?'\"()") for t in texts for w in t.casefold().split() if len(w) >= 4}


def computed_summary(domains: Sequence[Domain], trends: Sequence[Any]) -> str:
    """A plain summary made from the grounded hierarchy (used when the model's is not sound)."""
    parts = [f"{d.name} ({d.weight:.0%}: {', '.join(t.name for t in d.topics[:2])})" for d in domains[:3]]
    text = "Interested in " + "; ".join(parts) + "."
    rated = [d for d in domains if d.sentiment.rating is not None]
    if len(rated) >= 2:
        best = max(rated, key=lambda d: d.sentiment.rating or 0.0)
        worst = min(rated, key=lambda d: d.sentiment.rating or 0.0)
        if best is not worst and (best.sentiment.rating or 0.0) - (worst.sentiment.rating or 0.0) >= 0.2:
            text += f" Rates {best.name} highest and {worst.name} lowest."
    moving = [f"{t.domain} {t.trend}" for t in trends if t.trend != "steady"]
    if moving:
        text += " Trend: " + ", ".join(moving) + "."
    return text


def _ids_in_order(domains: Sequence[Domain]) -> list[list[str]]:
    return [[i for t in d.topics for i in t.item_ids] for d in domains]


def _sentiment(
    item_ids: Sequence[str],
    events_by_item: dict[str, list[Event]],
    scale: tuple[float, float] | None,
    text: str | None,
) -> Sentiment:
    events = [e for i in item_ids for e in events_by_item.get(i, [])]
    s = rating_sentiment(events, scale)
    return s.model_copy(update={"text": text})


def now_iso() -> str:
    return datetime.now(tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = [
    "GroundingError",
    "computed_summary",
    "ground_profile",
    "now_iso",
    "name_is_sound",
    "summary_is_sound",
]
