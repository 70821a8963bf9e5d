"""A synthetic matrix whose right answer is known, shared by the recommender and API tests.

Four interest groups of eight items; every user interacts with all items of
one group, except the probe users ``p<g>``, who miss exactly one item of
their group (``WITHHELD[g]``, the last one). Every model variant must rank
that withheld item first.
"""

from __future__ import annotations

import random

from conftest import make_provenance

from interests.events import Catalog, Event, Item, UserHistory
from interests.schema import Domain, InterestProfile, Sentiment, Stats, TimePatterns, Topic

GROUPS = ["coffee espresso", "jazz records", "trail running", "sourdough baking"]
N_ITEMS, USERS_PER_GROUP = 8, 10
WITHHELD = {g: f"g{g}_{N_ITEMS - 1}" for g in range(len(GROUPS))}


def make_profile(user_id: str, group: int, items: list[str], summary: str | None = None) -> InterestProfile:
    name = GROUPS[group]
    return InterestProfile(
        user_id=user_id,
        summary=summary or f"Loves {name}.",
        domains=[
            Domain(name=name.title(), weight=1.0, topics=[Topic(name=name, weight=1.0, item_ids=items)])
        ],
        sentiment=Sentiment(),
        time_patterns=TimePatterns(hour_of_day=[1 / 24] * 24, weekday=[1 / 7] * 7),
        stats=Stats(n_events=len(items), n_items=len(items)),
        provenance=make_provenance(events_used=len(items), events_total=len(items)),
    )


def grouped_world() -> tuple[dict[str, UserHistory], Catalog, dict[str, InterestProfile]]:
    """Histories, catalogue and one profile a user of the four-group matrix (seeded: always the same)."""
    rng = random.Random(0)
    catalog = Catalog(
        {
            f"g{g}_{k}": Item(f"g{g}_{k}", f"{GROUPS[g]} item {k}", [GROUPS[g]])
            for g in range(len(GROUPS))
            for k in range(N_ITEMS)
        }
    )
    histories: dict[str, UserHistory] = {}
    profiles: dict[str, InterestProfile] = {}
    t = 1.6e9
    for g in range(len(GROUPS)):
        for n in range(USERS_PER_GROUP):
            uid = f"p{g}" if n == 0 else f"u{g}_{n}"
            items = [f"g{g}_{k}" for k in range(N_ITEMS) if not (n == 0 and f"g{g}_{k}" == WITHHELD[g])]
            rng.shuffle(items)
            events = []
            for i in items:
                t += 3600
                events.append(Event(uid, i, t, 5.0))
            histories[uid] = UserHistory(uid, events)
            profiles[uid] = make_profile(uid, g, items)
    return histories, catalog, profiles
