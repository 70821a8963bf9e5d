"""Synthetic interaction logs with planted ground truth.

Users draw interests from a known two-level hierarchy (domains > topics >
items with attributes), with planted sentiment (ratings), planted rhythms
(evening-only or weekend-only users) and planted trends (a fading and a
rising domain). Used for the example logs, for tests with known answers and
for benchmarks at scale (``synthetic_events`` streams millions of rows).
A fixture of the source tree: ``setup.py`` leaves this package out of the
wheel (docs/architecture.md, "Test fixtures stay in the source tree").

:data:`HIERARCHY` is the vocabulary of ``examples/logs``; :data:`HIERARCHY_B`
is a second one with no word in common with it, and
:func:`generate_planted_b` plants it in a catalogue that can have no
categories (titles and neutral descriptions only), so profiles cannot copy
the planted names from the catalogue (``bench/hierarchy.py``,
:mod:`interests.synthetic.score`).
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..events import Catalog, Event, Item

# domain -> topic -> (attribute name, attribute values, title words)
HIERARCHY: dict[str, dict[str, tuple[str, list[str], list[str]]]] = {
    "Science fiction films": {
        "Space opera": (
            "director",
            ["Vera Lund", "Omar Khaled"],
            ["Star", "Galaxy", "Orbit", "Nebula", "Fleet"],
        ),
        "Cyberpunk": ("director", ["Kenji Mori", "Ada Voss"], ["Neon", "Circuit", "Ghost", "Grid", "Chrome"]),
        "Time travel": (
            "director",
            ["Lena Hart", "Paul Ives"],
            ["Loop", "Paradox", "Yesterday", "Clock", "Return"],
        ),
    },
    "Home coffee": {
        "Espresso machines": (
            "brand",
            ["Caffora", "Bellagio"],
            ["Espresso", "Barista", "Crema", "Portafilter"],
        ),
        "Pour-over gear": (
            "brand",
            ["Kalita Works", "Drip Lab"],
            ["Dripper", "Gooseneck", "Filter", "Carafe"],
        ),
        "Single-origin beans": (
            "origin",
            ["Ethiopia", "Colombia"],
            ["Yirgacheffe", "Huila", "Natural", "Washed"],
        ),
    },
    "Trail running": {
        "Trail shoes": ("brand", ["Ridgeline", "Summit Co"], ["Trail", "Grip", "Lugged", "Runner"]),
        "Hydration packs": ("brand", ["AquaTrek", "Ridgeline"], ["Vest", "Flask", "Pack", "Bladder"]),
        "Ultra race guides": ("format", ["book", "ebook"], ["Ultra", "Mountain", "Hundred-Mile", "Vertical"]),
    },
    "Jazz records": {
        "Bebop": ("artist", ["Miles Okafor", "Dizzy Hale"], ["Bop", "Blue", "Tempo", "Riff"]),
        "Modal jazz": ("artist", ["Coltrane Reyes", "Bill Sato"], ["Mode", "Dorian", "Kind", "Sketches"]),
        "Jazz vocals": (
            "artist",
            ["Ella Brooks", "Nina Vale"],
            ["Ballad", "Moonlight", "Velvet", "Songbook"],
        ),
    },
    "Board games": {
        "Strategy games": (
            "designer",
            ["Uwe Rosen", "Klaus Teu"],
            ["Empire", "Settlers", "Dominion", "Conquest"],
        ),
        "Cooperative games": (
            "designer",
            ["Matt Lea", "Rob Dav"],
            ["Pandemic", "Island", "Spirit", "Rescue"],
        ),
        "Party games": (
            "designer",
            ["Vlaada Chv", "Lin Mo"],
            ["Codename", "Charades", "Wavelength", "Trivia"],
        ),
    },
    "Baking": {
        "Sourdough": ("price band", ["under $20", "$20-50"], ["Starter", "Levain", "Crumb", "Banneton"]),
        "Pastry": ("price band", ["under $20", "$20-50"], ["Croissant", "Laminated", "Puff", "Danish"]),
        "Cake decorating": (
            "price band",
            ["$20-50", "over $50"],
            ["Fondant", "Piping", "Buttercream", "Tier"],
        ),
    },
}

# A second vocabulary (nothing shared with HIERARCHY): same shape, 5 domains x 3 topics.
HIERARCHY_B: dict[str, dict[str, tuple[str, list[str], list[str]]]] = {
    "Gardening": {
        "Roses": (
            "variety",
            ["Damask", "Floribunda", "Rambler"],
            ["Rose", "Bloom", "Petal", "Thorn", "Climber"],
        ),
        "Vegetable beds": ("soil", ["loam", "peat"], ["Raised", "Tomato", "Compost", "Seedling", "Trellis"]),
        "Houseplants": (
            "light",
            ["bright", "shade"],
            ["Monstera", "Fern", "Pothos", "Succulent", "Calathea"],
        ),
    },
    "Cycling": {
        "Road bikes": ("frame", ["carbon", "aluminium", "steel"], ["Aero", "Sprint", "Peloton", "Gravel"]),
        "Bike lights": ("lumens", ["400", "800", "1200"], ["Beam", "Headlight", "Taillight", "Flash"]),
        "Cycling apparel": ("cut", ["race", "relaxed"], ["Jersey", "Bib", "Gilet", "Chamois"]),
    },
    "Photography": {
        "Analog cameras": (
            "format",
            ["35mm", "medium format"],
            ["Rangefinder", "Shutter", "Reflex", "Viewfinder"],
        ),
        "Lenses": ("focal length", ["24mm", "50mm", "85mm"], ["Prime", "Aperture", "Bokeh", "Telephoto"]),
        "Tripods": ("material", ["carbon fibre", "magnesium"], ["Tripod", "Ballhead", "Monopod", "Gimbal"]),
    },
    "Tea": {
        "Green tea": ("origin", ["Shizuoka", "Hangzhou"], ["Sencha", "Matcha", "Gyokuro", "Longjing"]),
        "Teapots": (
            "material",
            ["clay", "porcelain", "cast iron"],
            ["Kyusu", "Yixing", "Gaiwan", "Tetsubin"],
        ),
        "Herbal infusions": (
            "ingredient",
            ["chamomile", "rooibos", "peppermint"],
            ["Calm", "Sleepy", "Meadow", "Hibiscus"],
        ),
    },
    "Knitting": {
        "Yarn": ("fibre", ["merino", "alpaca", "cotton"], ["Skein", "Worsted", "Chunky", "Aran"]),
        "Knitting needles": (
            "needle size",
            ["4mm", "6mm"],
            ["Circular", "Bamboo", "Interchangeable", "Cable"],
        ),
        "Patterns": (
            "skill",
            ["beginner", "advanced"],
            ["Sweater", "Shawl", "Beanie", "Mittens", "Cardigan"],
        ),
    },
}

# Descriptions of catalogues without categories: nothing in them names a domain or a topic.
BLURBS = [
    "A customer favourite.",
    "Ships within two days.",
    "Limited stock.",
    "Back by popular demand.",
    "Great as a gift.",
    "New this season.",
    "Made to last.",
    "Small-batch production.",
    "Rated highly by our staff.",
    "Available while supplies last.",
]
SELLERS = ["Northwind", "Bluebird Goods", "Oakridge", "Mapleton & Co", "Harbor Street", "Fennel Brothers"]

NOUNS = ["Kit", "Set", "Edition", "Collection", "Classic", "Deluxe", "Guide", "Pro", "Mini", "Series"]
GOOD = ["Loved it", "Excellent quality", "Exactly what I wanted", "Great value", "Would buy again"]
BAD = ["Disappointing", "Broke after a week", "Not worth the price", "Boring", "Would not recommend"]
START = datetime(2022, 1, 3, tzinfo=timezone.utc)  # a Monday
SPAN_DAYS = 720


@dataclass
class PlantedUser:
    user_id: str
    domains: list[str]
    topics: dict[str, list[str]]  # domain -> topics
    rhythm: str  # "evening" | "weekend" | "any"
    fading: str | None = None
    rising: str | None = None
    disliked_topic: str | None = None


@dataclass
class SyntheticData:
    events: list[Event]
    catalog: Catalog
    users: list[PlantedUser]
    item_domain: dict[str, str] = field(default_factory=dict)
    item_topic: dict[str, str] = field(default_factory=dict)


#: the shapes real catalogues hand their categories over in (:func:`planted_categories`)
CATALOGUE_SHAPES = ("list", "rooted", "path", "flat", "none")
#: entries real category lists carry that are not categories
JUNK_CATEGORIES = [
    "</span></span></span>",
    "No expiration, no fees.",
    "$25.00",
    "Great gift for any occasion!",
]


def planted_categories(shape: str, domain: str, topic: str, siblings: list[str], k: int) -> list[str]:
    """The categories of the ``k``-th item of ``topic`` in a catalogue of the given shape.

    ``list``: ``[domain, topic]`` (the example shop); ``rooted``: an Amazon-style
    list whose root every item shares, with the root repeated and a junk entry
    on every third item; ``path``: one ``"domain > topic"`` string; ``flat``: a
    label set, the topic alone or with a sibling topic of the same domain on
    every third item, sorted like MovieLens genres; ``none``: no categories.
    """
    if shape == "list":
        return [domain, topic]
    if shape == "rooted":
        return ["All Departments", "All Departments", domain, topic] + (
            [JUNK_CATEGORIES[k % len(JUNK_CATEGORIES)]] if k % 3 == 0 else []
        )
    if shape == "path":
        return [f"{domain} > {topic}"]
    if shape == "flat":
        other = [t for t in siblings if t != topic]
        return sorted([topic, other[k % len(other)]] if other and k % 3 == 1 else [topic])
    if shape == "none":
        return []
    raise ValueError(f"unknown catalogue shape {shape!r}: one of {', '.join(CATALOGUE_SHAPES)}")


def make_catalog(
    items_per_topic: int = 15,
    seed: int = 0,
    *,
    hierarchy: Mapping[str, Mapping[str, tuple[str, list[str], list[str]]]] = HIERARCHY,
    categories: bool = True,
    shape: str | None = None,
) -> tuple[Catalog, dict[str, str], dict[str, str]]:
    """A catalogue over ``hierarchy``; returns it with item -> domain/topic truth.

    ``shape`` is how categories are written (:data:`CATALOGUE_SHAPES`,
    :func:`planted_categories`); ``categories=False`` is ``shape="none"``: items
    have no categories, their descriptions are neutral sentences that name no
    domain or topic (attributes stay), and item ids are shuffled so that
    neither the ids nor the order of the catalogue give the topics away.
    Titles are the same whatever the shape.
    """
    shape = shape or ("list" if categories else "none")
    categories = shape != "none"
    rng = random.Random(seed)
    blurb_rng = random.Random(seed + 7919)  # separate, so titles do not depend on ``categories``
    items: list[tuple[Item, str, str]] = []
    n = 0
    for domain, topics in hierarchy.items():
        for topic, (attr, values, words) in topics.items():
            for k in range(items_per_topic):
                n += 1
                iid = f"i{n:04d}"
                title = f"{rng.choice(words)} {rng.choice(words)} {rng.choice(NOUNS)} {k + 1}"
                value = values[k % len(values)]
                if categories:
                    cats = planted_categories(shape, domain, topic, list(topics), k)
                    desc = f"{topic} ({domain.lower()}); {attr}: {value}."
                else:
                    cats, desc = [], f"{blurb_rng.choice(BLURBS)} Sold by {blurb_rng.choice(SELLERS)}."
                item = Item(
                    item_id=iid, title=title, categories=cats, description=desc, attributes={attr: value}
                )
                items.append((item, domain, topic))
    if not categories:
        ids = [item.item_id for item, _, _ in items]
        blurb_rng.shuffle(ids)
        for (item, _, _), iid in zip(items, ids, strict=True):
            item.item_id = iid
        items.sort(key=lambda x: x[0].item_id)
    catalog = Catalog(source="synthetic")
    item_domain: dict[str, str] = {}
    item_topic: dict[str, str] = {}
    for item, domain, topic in items:
        catalog.add(item)
        item_domain[item.item_id] = domain
        item_topic[item.item_id] = topic
    return catalog, item_domain, item_topic


def _planted_time(rng: random.Random, rhythm: str, lo: float, hi: float) -> datetime:
    day = START + timedelta(days=int(rng.uniform(lo, hi) * SPAN_DAYS))
    if rhythm == "weekend":
        day += timedelta(days=(5 + rng.randrange(2) - day.weekday()) % 7)
        hour = rng.randrange(9, 22)
    elif rhythm == "evening":
        hour = rng.randrange(19, 23)
    else:
        hour = rng.randrange(7, 23)
    return day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))


def generate(
    n_users: int = 30,
    items_per_topic: int = 15,
    events_per_user: tuple[int, int] = (25, 60),
    seed: int = 0,
    *,
    hierarchy: Mapping[str, Mapping[str, tuple[str, list[str], list[str]]]] = HIERARCHY,
    categories: bool = True,
    shape: str | None = None,
) -> SyntheticData:
    """Users with planted interests, sentiment, rhythms and trends (``shape``: :func:`make_catalog`).

    Each user has 2 or 3 domains (1-2 topics each); every second user has a
    fading and a rising domain, every fourth a disliked topic.
    """
    return _generate(
        n_users,
        items_per_topic,
        events_per_user,
        seed,
        hierarchy,
        categories,
        n_domains=[2, 2, 3],
        trend_every=2,
        shape=shape,
    )


def generate_planted_b(
    n_users: int = 40,
    seed: int = 1,
    categories: bool = False,
    *,
    items_per_topic: int = 15,
    events_per_user: tuple[int, int] = (25, 60),
    shape: str | None = None,
) -> SyntheticData:
    """Planted logs over :data:`HIERARCHY_B`, by default with no categories (``shape``: :func:`make_catalog`).

    Every user has exactly two domains, the first fading (its events in the
    first 40% of the time span) and the second rising (the last 40%), 1-2
    topics per domain, rhythms evening/weekend/any in turn, and every fourth
    user a disliked topic (rated 1-2; liked ones 4-5).
    """
    return _generate(
        n_users,
        items_per_topic,
        events_per_user,
        seed,
        HIERARCHY_B,
        categories,
        n_domains=[2],
        trend_every=1,
        shape=shape,
    )


def _generate(
    n_users: int,
    items_per_topic: int,
    events_per_user: tuple[int, int],
    seed: int,
    hierarchy: Mapping[str, Mapping[str, tuple[str, list[str], list[str]]]],
    categories: bool,
    *,
    n_domains: list[int],
    trend_every: int,
    shape: str | None = None,
) -> SyntheticData:
    rng = random.Random(seed)
    catalog, item_domain, item_topic = make_catalog(
        items_per_topic, seed, hierarchy=hierarchy, categories=categories, shape=shape
    )
    by_topic: dict[str, list[str]] = {}
    for iid, topic in item_topic.items():
        by_topic.setdefault(topic, []).append(iid)
    domains = list(hierarchy)
    users: list[PlantedUser] = []
    events: list[Event] = []
    for u in range(n_users):
        uid = f"u{u + 1:03d}"
        chosen = rng.sample(domains, rng.choice(n_domains))
        topics = {d: rng.sample(list(hierarchy[d]), rng.choice([1, 2])) for d in chosen}
        rhythm = ["evening", "weekend", "any"][u % 3]
        user = PlantedUser(uid, chosen, topics, rhythm)
        if len(chosen) >= 2 and u % trend_every == 0:
            user.fading, user.rising = chosen[0], chosen[1]
        all_topics = [t for d in chosen for t in topics[d]]
        if len(all_topics) >= 2 and u % 4 == 1:
            user.disliked_topic = all_topics[-1]
        users.append(user)
        n_events = rng.randint(*events_per_user)
        for _ in range(n_events):
            domain = rng.choice(chosen)
            if domain == user.fading:
                lo, hi = 0.0, 0.4
            elif domain == user.rising:
                lo, hi = 0.6, 1.0
            else:
                lo, hi = 0.0, 1.0
            topic = rng.choice(topics[domain])
            iid = rng.choice(by_topic[topic])
            when = _planted_time(rng, rhythm, lo, hi)
            liked = topic != user.disliked_topic
            rating = float(rng.choice([4, 5, 5]) if liked else rng.choice([1, 2]))
            text = rng.choice(GOOD if liked else BAD) if rng.random() < 0.3 else None
            events.append(Event(uid, iid, when.timestamp(), rating, text, "review" if text else "rating"))
    events.sort(key=lambda e: (e.user_id, e.ts or 0.0))
    return SyntheticData(events, catalog, users, item_domain, item_topic)


def write_logs(data: SyntheticData, directory: str | Path) -> dict[str, Path]:
    """Write ``events.csv`` (user,item,rating,timestamp ISO,review,type) and ``catalog.jsonl``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    events_path, catalog_path, truth_path = out / "events.csv", out / "catalog.jsonl", out / "truth.json"
    with events_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user", "item", "rating", "timestamp", "review", "type"])
        for e in data.events:
            iso = datetime.fromtimestamp(e.ts or 0.0, tz=timezone.utc).isoformat()
            w.writerow([e.user_id, e.item_id, int(e.rating or 0), iso, e.text or "", e.event or ""])
    with catalog_path.open("w", encoding="utf-8") as f:
        for item in data.catalog.values():
            f.write(
                json.dumps(
                    {
                        "item_id": item.item_id,
                        "title": item.title,
                        "categories": item.categories,
                        "description": item.description,
                        **item.attributes,
                    }
                )
                + "\n"
            )
    truth = {
        "users": [u.__dict__ for u in data.users],
        "item_domain": data.item_domain,
        "item_topic": data.item_topic,
    }
    truth_path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return {"events": events_path, "catalog": catalog_path, "truth": truth_path}


def synthetic_events(n_events: int, n_users: int, n_items: int, seed: int = 0) -> Iterator[Event]:
    """Stream ``n_events`` random events (for memory and speed benchmarks).

    One every 37 seconds from :data:`START`, closer together for more than
    3 million events so that none is in the future (the reader quarantines those).
    """
    rng = random.Random(seed)
    t0 = START.timestamp()
    step = min(37.0, 1.2e8 / max(n_events, 1))
    for k in range(n_events):
        yield Event(
            f"u{rng.randrange(n_users)}",
            f"i{rng.randrange(n_items)}",
            t0 + k * step,
            float(rng.randint(1, 5)),
            None,
            "rating",
        )


__all__ = [
    "CATALOGUE_SHAPES",
    "HIERARCHY",
    "HIERARCHY_B",
    "PlantedUser",
    "SyntheticData",
    "generate",
    "generate_planted_b",
    "make_catalog",
    "planted_categories",
    "synthetic_events",
    "write_logs",
]
