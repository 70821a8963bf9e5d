"""Category levels that carry information, on the shapes real catalogues come in (issue 24)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from interests.events import Catalog, Event, Item, UserHistory
from interests.ingest import read_logs
from interests.llm.fake import FakeBackend
from interests.profile.category_levels import category_levels, is_category_name
from interests.profile.extract import extract_profiles
from interests.profile.group_names import attribute_label, distinctive_names, title_words
from interests.profile.item_groups import ItemGroups, group_items
from interests.profile.skeleton import build_skeleton
from interests.profile.skeleton_grounding import node_name_ok
from interests.profile.store import read_profiles
from interests.synthetic import CATALOGUE_SHAPES, generate_planted_b, planted_categories, write_logs
from interests.synthetic.score import score_file


def _catalog(cats: dict[str, list[str]]) -> Catalog:
    return Catalog({i: Item(i, f"Title {i}", c) for i, c in cats.items()})


@pytest.mark.parametrize(
    ("entry", "ok"),
    [
        ("Science fiction films", True),
        ("Misc.", True),
        ("AC/DC", True),
        ("</span></span></span>", False),
        ("No expiration, no fees.", False),
        ("Redeemable toward millions of items storewide on Amazon.com.", False),
        ("$25.00", False),
        ("https://example.com/cat", False),
        ("Great gift for any occasion!", False),
        ("12", False),
    ],
)
def test_entries_that_are_not_categories_are_dropped(entry: str, ok: bool) -> None:
    assert is_category_name(entry) is ok


def test_a_root_every_item_shares_is_not_a_level_and_junk_is_dropped() -> None:
    """Amazon dumps: ``["Gift Cards", "Gift Cards", "Restaurants", "No expiration, no fees."]``."""
    cats = {
        f"r{k}": ["Gift Cards", "Gift Cards", "Restaurants", "Pizza" if k % 2 else "Burgers"]
        for k in range(6)
    }
    cats |= {f"s{k}": ["Gift Cards", "Gift Cards", "Stores", "No expiration, no fees."] for k in range(4)}
    cats["h"] = ["Gift Cards", "Stores", "</span></span></span>"]
    levels = category_levels(list(cats), _catalog(cats))
    assert levels.shape == "path"
    assert levels.dropped_levels == ["Gift Cards"]
    assert levels.paths["r1"] == [["Restaurants", "Pizza"]] and levels.paths["s0"] == [["Stores"]]
    assert levels.paths["h"] == [["Stores"]]
    assert levels.junk_entries == 5


def test_one_value_for_almost_every_item_leaves_no_informative_level() -> None:
    cats = {f"i{k}": ["Gift Cards", "Gift Cards"] for k in range(30)} | {"acc": ["Gift Cards", "Accessories"]}
    levels = category_levels(list(cats), _catalog(cats))
    assert levels.coverage < 0.1  # the catalogue says nothing about a user: groups come from clusters


@pytest.mark.parametrize("sep", [" > ", " :: ", " » ", " / "])
def test_path_strings_are_several_levels(sep: str) -> None:
    cats = {
        "a": [f"Home cooking{sep}Baking"],
        "b": [f"Home cooking{sep}Grilling"],
        "c": [f"Outdoors{sep}Hiking"],
        "d": [f"Outdoors{sep}Hiking{sep}Boots"],
        "e": [f"Home cooking{sep}Baking|Outdoors{sep}Hiking".split("|")[0], f"Outdoors{sep}Hiking"],
    }
    levels = category_levels(list(cats), _catalog(cats))
    assert levels.shape == "path"
    assert levels.paths["a"] == [["Home cooking", "Baking"]]
    assert levels.paths["d"] == [["Outdoors", "Hiking", "Boots"]]
    assert levels.paths["e"] == [["Home cooking", "Baking"], ["Outdoors", "Hiking"]]


def test_a_bare_slash_separates_levels_only_where_the_catalogue_uses_it() -> None:
    shop = {"a": ["Home/Kitchen"], "b": ["Home/Garden"], "c": ["Music/Rock"]}
    assert category_levels(list(shop), _catalog(shop)).paths["a"] == [["Home", "Kitchen"]]
    bands = {"a": ["AC/DC"], "b": ["Metallica"], "c": ["Queen"], "d": ["Muse"]}
    assert category_levels(list(bands), _catalog(bands)).paths["a"] == [["AC/DC"]]


def test_a_flat_label_set_is_told_from_a_root_first_list() -> None:
    genres = {
        "m1": ["Action", "Adventure", "Sci-Fi"],
        "m2": ["Adventure", "Comedy"],
        "m3": ["Action", "Comedy", "Crime"],
        "m4": ["Comedy", "Drama", "Romance"],
        "m5": ["Crime", "Drama"],
        "m6": ["Action", "Drama", "War"],
    }
    flat = category_levels(list(genres), _catalog(genres))
    assert flat.shape == "flat" and flat.paths["m1"] == [["Action"], ["Adventure"], ["Sci-Fi"]]
    shop = {f"i{k}": ["Films", "Space opera" if k % 2 else "Noir"] for k in range(6)}
    shop |= {f"c{k}": ["Coffee", "Espresso"] for k in range(3)}
    assert category_levels(list(shop), _catalog(shop)).shape == "path"


def _history(user: str, items: list[str]) -> UserHistory:
    return UserHistory(user, [Event(user, i, 1.6e9 + k * 86400, 5.0) for k, i in enumerate(items)])


def test_flat_labels_get_a_level_of_label_groups_above_them_and_no_label_twice() -> None:
    """Many flat labels: L1 = labels that go together, L2 = the labels; an item sits in one node."""
    data = generate_planted_b(shape="flat")
    from interests.synthetic.profiles import planted_histories

    histories = planted_histories(data)
    groups = group_items(histories, data.catalog)
    assert groups.source == "category" and groups.metrics["flat_label_groups"] == 5  # the planted domains
    topic_of = {t: d for d, ts in __import__("interests.synthetic").synthetic.HIERARCHY_B.items() for t in ts}
    for key in {p[0] for ps in groups.paths.values() for p in ps}:
        labels = {p[1] for ps in groups.paths.values() for p in ps if p[0] == key}
        assert len({topic_of[lab] for lab in labels}) == 1, labels  # a group holds one planted domain
    for history in list(histories.values())[:10]:
        sk = build_skeleton(history, groups, data.catalog)
        d_labels = {d.label for d in sk.domains}
        t_labels = [t.label for _, t in sk.topics()]
        assert not d_labels & set(t_labels)  # no label at two levels of one profile
        placed = [i for _, t in sk.topics() for i in t.item_ids]
        assert len(placed) == len(set(placed))  # no item in two nodes


def test_saved_groups_of_the_old_format_still_load(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"source": "cluster", "paths": {"i1": ["c1", "c1.2"]}, "labels": {"c1": "A"}}))
    groups = ItemGroups.load(path)
    assert groups.candidates("i1") == [["c1", "c1.2"]] and groups.label("c1") == "A"


def test_computed_names_are_words_not_dumps_or_counters() -> None:
    assert attribute_label("brand", "Ridgeline") == "Ridgeline"
    assert attribute_label("year", "2011") == "Year 2011"
    assert "from" not in title_words("Coffee Band From Oakridge")
    words = [["espresso", "crema"], ["espresso", "crema"], ["grinder", "burr"], ["grinder", "burr"]]
    names = distinctive_names({"a": [0, 1], "b": [2, 3]}, words)
    assert names == {"a": "Crema & Espresso", "b": "Burr & Grinder"}
    assert len(set(names.values())) == len(names)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("Espresso gear", True),
        ("Main_cat: Gift Cards", False),  # an attribute dump
        ("Espresso (2)", False),  # a counter
        ("Five Stars", False),  # the user's review title
        ("Another great espresso", False),  # a fragment of the user's review
    ],
)
def test_model_names_that_are_dumps_counters_or_review_fragments_are_refused(name: str, ok: bool) -> None:
    vocab = {w[:4] for w in ["espresso", "gift", "cards", "five", "stars", "another", "great"]}
    reviews = ["five stars", "another great espresso machine for the price"]
    assert (
        node_name_ok(name, vocabulary=vocab, titles=set(), item_ids=set(), foreign=set(), reviews=reviews)
        is ok
    )


def test_the_planted_generator_writes_every_catalogue_shape() -> None:
    assert planted_categories("path", "Tea", "Teapots", ["Teapots", "Green tea"], 0) == ["Tea > Teapots"]
    rooted = planted_categories("rooted", "Tea", "Teapots", ["Teapots"], 0)
    assert rooted[:2] == ["All Departments", "All Departments"] and len(rooted) == 5  # and a junk entry
    assert planted_categories("flat", "Tea", "Teapots", ["Teapots", "Green tea"], 1) == [
        "Green tea",
        "Teapots",
    ]
    assert planted_categories("none", "Tea", "Teapots", [], 0) == []


@pytest.mark.parametrize("shape", CATALOGUE_SHAPES)
def test_every_catalogue_shape_read_from_files_meets_the_structure_floors(shape: str, tmp_path: Path) -> None:
    """The planted log written to files of each shape, read back and extracted (computed names)."""
    paths = write_logs(generate_planted_b(n_users=40, shape=shape), tmp_path)
    logs = read_logs(paths["events"], catalog=paths["catalog"])
    out = tmp_path / "profiles.jsonl"
    extract_profiles(logs, output=out, backend=FakeBackend())
    s = score_file(out, paths["truth"])
    assert s["split_domains"] <= 0.05 and s["domain_coherence"] >= 0.95 and s["topic_recall"] >= 0.9, s
    assert abs(s["domains_per_profile"] - s["planted_domains_per_user"]) <= 0.2, s
    assert s["trend_accuracy"] >= 0.9 and s["counter_names"] == 0 and s["dump_names"] == 0, s
    assert s["names_distinct"] == 1.0, s
    if shape in ("list", "rooted", "path"):  # the catalogue's own words name both levels
        assert s["domain_names_planted"] == 1.0 and s["topic_names_planted"] == 1.0, s
    names = Counter(d.name for p in read_profiles(out) for d in p.domains)
    assert "All Departments" not in names
