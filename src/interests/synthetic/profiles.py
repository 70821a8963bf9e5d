"""Profiles written from the planted truth of :func:`interests.synthetic.generate`.

They stand in for LLM-written profiles where the answer must be known (tests,
docs, benchmarks of the taxonomy alone): each user's planted domains and
topics become nodes named the way different people would name them
(synonyms, case, extra words), citing the user's own items, with weights,
rating sentiment and time patterns computed exactly like the grounding stage.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from ..events import Catalog, Event, UserHistory
from ..profile.signals import compute_signals, rating_sentiment, subset_trend
from ..schema import Domain, InterestProfile, Provenance, Topic
from ..stats import rating_scale
from . import SyntheticData

SYNONYMS: dict[str, list[str]] = {
    "Science fiction films": ["Sci-fi movies", "science fiction", "SF cinema", "Futuristic films"],
    "Home coffee": ["Coffee at home", "coffee gear", "Home brewing coffee", "Coffee"],
    "Trail running": ["Running on trails", "trail runs", "Off-road running", "Ultra and trail"],
    "Jazz records": ["Jazz", "jazz vinyl", "Jazz music", "Records: jazz"],
    "Board games": ["Tabletop games", "board gaming", "Games night", "Boardgames"],
    "Baking": ["Home baking", "baking supplies", "Bread and pastry", "Baker's kit"],
    "Space opera": ["Space epics", "space opera films", "Galactic adventures"],
    "Cyberpunk": ["Cyberpunk films", "neon noir", "Hacker sci-fi"],
    "Time travel": ["Time-travel stories", "time loops", "Paradox films"],
    "Espresso machines": ["Espresso", "espresso makers", "Home espresso"],
    "Pour-over gear": ["Pour over", "drip brewing", "Pour-over coffee"],
    "Single-origin beans": ["Coffee beans", "single origin", "Specialty beans"],
    "Trail shoes": ["Running shoes", "trail footwear", "Shoes for trails"],
    "Hydration packs": ["Hydration", "running vests", "Water packs"],
    "Ultra race guides": ["Ultramarathon books", "race guides", "Ultra running reading"],
    "Bebop": ["Bebop jazz", "bop", "Fast jazz"],
    "Modal jazz": ["Modal", "modal records", "Cool modal jazz"],
    "Jazz vocals": ["Vocal jazz", "jazz singers", "Jazz ballads"],
    "Strategy games": ["Strategy", "strategy board games", "Heavy euros"],
    "Cooperative games": ["Co-op games", "cooperative", "Team games"],
    "Party games": ["Party", "party games", "Games for groups"],
    "Sourdough": ["Sourdough bread", "bread baking", "Levain"],
    "Pastry": ["Pastries", "viennoiserie", "Pastry making"],
    "Cake decorating": ["Cakes", "cake design", "Decorating cakes"],
}


def _name(truth: str, rng: random.Random, noise: float) -> str:
    if rng.random() >= noise:
        return truth
    return rng.choice(SYNONYMS.get(truth, [truth.lower()]))


def planted_histories(data: SyntheticData) -> dict[str, UserHistory]:
    """The synthetic events as per-user histories, sorted by time (what ingestion would give)."""
    grouped: dict[str, list[Event]] = {}
    for e in data.events:
        grouped.setdefault(e.user_id, []).append(e)
    return {u: UserHistory(u, sorted(ev, key=lambda e: e.ts or 0.0)) for u, ev in grouped.items()}


def planted_profiles(
    data: SyntheticData,
    histories: Mapping[str, UserHistory] | None = None,
    *,
    name_noise: float = 0.7,
    lump: float = 0.0,
    seed: int = 0,
) -> list[InterestProfile]:
    """One profile per planted user: planted nodes, noisy names, exact L3 fields.

    ``name_noise``: chance that a node gets a synonym instead of its planted
    name. ``lump``: chance that a user's whole profile is one domain node
    named after their first domain, holding all their topics (the mistake
    small LLMs make most), to measure how the taxonomy copes.
    """
    rng = random.Random(seed)
    catalog: Catalog = data.catalog
    if histories is None:
        histories = planted_histories(data)
    scale = rating_scale(e.rating for e in data.events)
    out: list[InterestProfile] = []
    for user in data.users:
        history = histories.get(user.user_id)
        if history is None or not history.events:
            continue
        signals = compute_signals(history, catalog, rating_scale=scale)
        mine = history.item_ids()
        domains: list[Domain] = []
        cited_total = sum(1 for i in mine if data.item_domain.get(i) in user.domains)
        for dname in user.domains:
            d_items = [i for i in mine if data.item_domain.get(i) == dname]
            if not d_items:
                continue
            topics = []
            for tname in user.topics[dname]:
                t_items = [i for i in d_items if data.item_topic.get(i) == tname]
                if not t_items:
                    continue
                evs = [e for e in history.events if e.item_id in set(t_items)]
                topics.append(
                    Topic(
                        name=_name(tname, rng, name_noise),
                        weight=round(len(t_items) / len(d_items), 4),
                        sentiment=rating_sentiment(evs, scale),
                        item_ids=t_items,
                    )
                )
            d_events = [e for e in history.events if e.item_id in set(d_items)]
            domains.append(
                Domain(
                    name=_name(dname, rng, name_noise),
                    weight=round(len(d_items) / max(cited_total, 1), 4),
                    sentiment=rating_sentiment(d_events, scale),
                    topics=sorted(topics, key=lambda t: -t.weight),
                )
            )
        if len(domains) > 1 and rng.random() < lump:
            merged = [t for d in domains for t in d.topics]
            total = sum(len(t.item_ids) for t in merged)
            merged = [t.model_copy(update={"weight": round(len(t.item_ids) / total, 4)}) for t in merged]
            all_ids = [i for t in merged for i in t.item_ids]
            domains = [
                Domain(
                    name=domains[0].name,
                    weight=1.0,
                    sentiment=rating_sentiment(
                        [e for e in history.events if e.item_id in set(all_ids)], scale
                    ),
                    topics=sorted(merged, key=lambda t: -t.weight),
                )
            ]
        by_domain = [
            subset_trend(
                d.name,
                history.events,
                [e.item_id in {i for t in d.topics for i in t.item_ids} for e in history.events],
            )
            for d in domains
        ]
        cited = {i for d in domains for t in d.topics for i in t.item_ids}
        out.append(
            InterestProfile(
                user_id=user.user_id,
                summary="Planted interests: " + ", ".join(user.domains) + ".",
                domains=sorted(domains, key=lambda d: -d.weight),
                sentiment=signals.sentiment,
                time_patterns=signals.time_patterns.model_copy(update={"by_domain": by_domain}),
                stats=signals.stats.model_copy(
                    update={"evidence_coverage": round(len(cited) / max(signals.stats.n_items, 1), 4)}
                ),
                provenance=Provenance(
                    model="planted",
                    backend="planted",
                    prompt_template="none",
                    prompt_hash="",
                    created_at="2024-01-01T00:00:00Z",
                    events_used=len(history.events),
                    events_total=len(history.events),
                    truncated=False,
                ),
            )
        )
    return out


__all__ = ["SYNONYMS", "planted_histories", "planted_profiles"]
