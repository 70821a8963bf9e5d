"""Steering, exploration and hierarchy-naming explanations (issue #15).

Two kinds of tests: the list-building logic on hand-made score rows and
transition statistics whose right answer is known, and a small two-tower
trained on a synthetic world with a planted domain transition: users who
start in ``jazz`` move on to ``blues``, users who start in ``coffee`` move on
to ``tea``; the probe user ``probe`` has only jazz, so the domain to explore
is blues.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fastapi.testclient import TestClient
from interests.cli import cli
from safetensors.numpy import load_file, save_file
from worlds import make_profile

from interests.api import create_app
from interests.errors import ConfigError
from interests.events import Catalog, Event, Item, UserHistory
from interests.recsys import TwoTower
from interests.recsys.explore import DomainBandit, Transitions, explore_order
from interests.recsys.features import ItemNodes
from interests.recsys.steer import (
    ItemCategories,
    NodeIndex,
    Resolved,
    Steering,
    mix_slots,
    parse_mix,
    pick,
)
from interests.report import render_report
from interests.report.recommendations import recommendations_from_model

FAST = {"epochs": 8, "batch_size": 64, "dim": 16, "seed": 0, "fusion": 0.5}
GENRES = ["jazz", "blues", "coffee", "tea", "sci-fi"]
PER_GENRE = 8


# ---- list building on a known score row ---------------------------------------------------------


def _index() -> tuple[NodeIndex, np.ndarray]:
    """30 items: taxonomy domains d0 (items 0-14) and d1 (15-29), topics of 5 items each;
    categories: "Even" (even items) and "Small" (items < 10), several per item."""
    n = 30
    domain = np.array([0] * 15 + [1] * 15)
    topic = np.arange(n) // 5
    nodes = ItemNodes(
        domain,
        topic,
        ["d0", "d1"],
        [f"t{k}" for k in range(6)],
        np.array([0, 0, 0, 1, 1, 1]),
        {"d0": "Music", "d1": "Films", "t0": "Jazz", "t3": "Sci-Fi"},
    )
    indptr, indices = [0], []
    for i in range(n):
        cats = ([0] if i % 2 == 0 else []) + ([1] if i < 10 else [])
        indices += cats
        indptr.append(len(indices))
    cats = ItemCategories(np.array(indptr), np.array(indices), ["Even", "Small"])
    return NodeIndex(nodes, cats, n), domain


def _row(n: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=n).astype(np.float32)


def test_names_resolve_by_id_label_or_path_case_insensitively() -> None:
    index, _ = _index()
    assert index.resolve("d0").members[:15].all() and not index.resolve("d0").members[15:].any()
    assert index.resolve("MUSIC").id == "d0"
    assert index.resolve("music > jazz").kind == "topic"
    assert index.resolve("sci-fi", ("topic",)).members.nonzero()[0].tolist() == [15, 16, 17, 18, 19]
    assert index.resolve("even").members.nonzero()[0].tolist() == list(range(0, 30, 2))
    with pytest.raises(ConfigError, match="close names: Music"):
        index.resolve("musik", ("domain", "category"), "domain")
    with pytest.raises(ConfigError, match="unknown topic"):
        index.resolve("Even", ("topic",), "topic")


def test_steered_list_comes_from_the_node_ranked_by_the_model() -> None:
    index, domains = _index()
    s = _row()
    s[[2, 4]] = -np.inf  # seen
    steer = Resolved.of(Steering.of(domains="Films"), index)
    picks = pick(s, 8, index=index, steer=steer, domains=domains)
    items = [p.item for p in picks]
    films = np.arange(15, 30)
    assert set(items) <= set(films.tolist()) and len(items) == 8
    assert items == films[np.argsort(-s[films], kind="stable")][:8].tolist()  # the model's order
    assert {p.source for p in picks} == {"steering"} and {p.node for p in picks} == {"Films"}
    # two nodes: their union; a category steers as well
    steer = Resolved.of(Steering.of(topics=["Jazz", "t5"]), index)
    items = [p.item for p in pick(s, 30, index=index, steer=steer, domains=domains)]
    assert set(items) == ({0, 1, 3} | set(range(25, 30)))


def test_avoided_nodes_are_absent_and_the_rest_keeps_its_order() -> None:
    index, domains = _index()
    s = _row(seed=1)
    steer = Resolved.of(Steering.of(avoid=["music > jazz", "Even"]), index)
    picks = pick(s, 12, index=index, steer=steer, domains=domains)
    banned = set(range(5)) | set(range(0, 30, 2))
    left = np.array([i for i in range(30) if i not in banned])
    assert [p.item for p in picks] == left[np.argsort(-s[left], kind="stable")][:12].tolist()
    assert all(p.source == "model" for p in picks)  # not steered toward anything: the model's own


@pytest.mark.parametrize(("shares", "k"), [((0.6, 0.4), 10), ((0.5, 0.3, 0.2), 7), ((1, 1, 1), 20)])
def test_mix_shares_are_respected_within_rounding(shares: tuple[float, ...], k: int) -> None:
    slots = mix_slots(shares, k)
    assert sum(slots) == k
    w = np.array(shares) / sum(shares)
    assert all(abs(n - x * k) < 1 for n, x in zip(slots, w, strict=True))
    index, domains = _index()
    names = ["Music > Jazz", "Sci-Fi", "t5"][: len(shares)]
    mix = ",".join(f"{n}={x}" for n, x in zip(names, shares, strict=True))
    picks = pick(_row(), k, index=index, steer=Resolved.of(Steering.of(mix=mix), index), domains=domains)
    got = {n: sum(p.node == index.resolve(n).label for p in picks) for n in names}
    want = dict(zip(names, [min(x, 5) for x in slots], strict=True))  # a topic has 5 items
    spare = sum(x - 5 for x in slots if x > 5)  # a node that runs out gives its slots to the others
    assert sum(got.values()) == min(k, 5 * len(names))
    assert all(got[n] >= want[n] for n in names) and sum(got.values()) - sum(want.values()) <= spare
    scores = [p.score for p in picks]
    assert scores == sorted(scores, reverse=True)


def test_mix_parsing_and_its_errors() -> None:
    assert parse_mix("jazz=0.6, sci-fi=40%") == (("jazz", 0.6), ("sci-fi", 0.4))
    assert parse_mix({"a": 1}) == (("a", 1.0),)
    for bad, msg in [
        ("jazz", "NAME=SHARE"),
        ("jazz=x", "not a number"),
        ("jazz=-1", "positive"),
        ("a=1,A=2", "twice"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            parse_mix(bad)
    with pytest.raises(ConfigError, match="not both"):
        Steering.of(domains="jazz", mix="jazz=1")


# ---- exploration on synthetic transitions -------------------------------------------------------


def test_the_planted_next_domain_ranks_first() -> None:
    # 5 domains, one item each; 30 users go 0 -> 1, 30 go 2 -> 3, 5 go 0 -> 4
    seqs = [[0, 0, 1]] * 30 + [[2, 3, 3]] * 30 + [[0, 4]] * 5
    dom = np.arange(5)
    tr = Transitions.fit([np.array(s) for s in seqs], dom, 5)
    assert tr.counts[0, 1] == 30 and tr.counts[2, 3] == 30 and tr.counts[0, 4] == 5
    order, p = explore_order(tr, dom, 5, np.array([0, 0]))
    assert order[0] == 1 and order[1] == 4 and 0 not in order  # touched domains are never offered
    assert p.sum() == pytest.approx(1.0)
    assert explore_order(tr, dom, 5, np.array([2]))[0][0] == 3
    # several touched domains: the mix of the user's history weighs their rows
    order, _ = explore_order(tr, dom, 5, np.array([2, 0, 0, 0]))
    assert order[0] == 1
    blocked = np.zeros(5, dtype=bool)
    blocked[1] = True
    assert explore_order(tr, dom, 5, np.array([0]), blocked=blocked)[0][0] == 4
    # no history at all: the most popular domains
    assert explore_order(tr, dom, 5, np.zeros(0, dtype=np.int64))[0][0] in (0, 2)


def test_the_bandit_moves_off_a_domain_the_user_keeps_ignoring() -> None:
    prior = np.array([0.0, 0.6, 0.0, 0.3, 0.1])
    cand = np.array([1, 3, 4])
    bandit = DomainBandit(seed=0)
    firsts = [int(bandit.order("u", prior, cand)[0]) for _ in range(200)]
    assert firsts.count(1) > firsts.count(3) > 0  # the prior leads, the others still get turns
    assert not bandit.clicked("u", 1)  # an event without an explore slot shown is no evidence
    for _ in range(60):
        bandit.shown("u", [1])
    a, b = bandit.posterior("u", prior)
    assert a[1] / (a[1] + b[1]) < a[3] / (a[3] + b[3])
    firsts = [int(bandit.order("u", prior, cand)[0]) for _ in range(200)]
    assert firsts.count(3) > firsts.count(1)
    assert bandit.clicked("u", 1) and bandit.counts("u", 1) == (60, 1)
    small = DomainBandit(max_entries=3)
    small.shown("u", [0, 1, 2, 3])
    assert len(small) == 3  # bounded state


# ---- the model, the CLI, the API and the reports ------------------------------------------------


def planted_world() -> tuple[dict[str, UserHistory], Catalog]:
    """Users who start in jazz then take blues; coffee then tea; everyone sometimes sci-fi."""
    catalog = Catalog(
        {
            f"{g}{k}": Item(f"{g}{k}", f"{g} item {k}", [g] + (["vinyl"] if g in ("jazz", "blues") else []))
            for g in GENRES
            for k in range(PER_GENRE)
        }
    )
    rng = np.random.default_rng(0)
    histories: dict[str, UserHistory] = {}
    t = 1.6e9
    for n in range(24):
        first, then = ("jazz", "blues") if n % 2 == 0 else ("coffee", "tea")
        items = [f"{first}{k}" for k in rng.permutation(PER_GENRE)[:5]]
        items += [f"{then}{k}" for k in rng.permutation(PER_GENRE)[:4]]
        if n % 3 == 0:
            items.append(f"sci-fi{n % PER_GENRE}")
        events = []
        for i in items:
            t += 60
            events.append(Event(f"u{n}", i, t, 4.0))
        histories[f"u{n}"] = UserHistory(f"u{n}", events)
    histories["probe"] = UserHistory("probe", [Event("probe", f"jazz{k}", 1.7e9 + k, 5.0) for k in range(4)])
    return histories, catalog


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    histories, catalog = planted_world()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = TwoTower(**FAST).fit(histories, catalog=catalog)
    finally:
        torch.set_num_threads(threads)
    folder = tmp_path_factory.mktemp("steer-model")
    model.save(folder)
    return {"model": model, "folder": folder, "catalog": catalog, "histories": histories}


def test_model_steers_avoids_mixes_and_explores(planted: dict[str, Any]) -> None:
    model: TwoTower = planted["model"]
    seen = {e.item_id for e in planted["histories"]["probe"].events}
    recs = model.recommend_items("probe", k=5, domains="Coffee")
    assert [r.item_id[:6] for r in recs] == ["coffee"] * 5 and {r.source for r in recs} == {"steering"}
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True)
    items, _ = model.recommend("probe", k=20, avoid=["jazz", "blues"])
    assert len(items) == 20 and not any(i.startswith(("jazz", "blues")) for i in items)
    items, _ = model.recommend("probe", k=10, mix="tea=0.7,sci-fi=30%")
    assert sum(i.startswith("tea") for i in items) == 7 and sum(i.startswith("sci-fi") for i in items) == 3
    items, _ = model.recommend("probe", k=6, domains="vinyl")  # a second category of the catalogue
    assert all(i.startswith(("jazz", "blues")) for i in items) and not set(items) & seen
    many, _ = model.recommend(["probe", "u1"], k=3, topics=["tea"])
    assert many.shape == (2, 3) and all(i.startswith("tea") for i in many.ravel())
    # explore: the planted next domain of a jazz listener is blues
    recs = model.recommend_items("probe", k=5, explore=1)
    assert (
        recs[-1].source == "exploration" and recs[-1].node == "blues" and recs[-1].item_id.startswith("blues")
    )
    assert all(r.source in ("history", "profile") for r in recs[:-1])
    assert all(r.node and r.item_id.startswith(r.node) for r in recs)  # every item names its node
    recs = model.recommend_items("probe", k=5, explore=2, avoid="blues")
    assert next(r.node for r in recs if r.source == "exploration") != "blues"
    assert not any(r.item_id.startswith("blues") for r in recs)
    new = model.recommend_new(["coffee0", "coffee1"], k=4, explore=1, as_items=True)
    assert new[-1].source == "exploration" and new[-1].node == "tea"
    with pytest.raises(ConfigError, match="close names: coffee"):
        model.recommend("probe", domains="cofee")


def test_saved_models_keep_steering_and_old_ones_still_load(planted: dict[str, Any], tmp_path: Path) -> None:
    again = TwoTower.load(planted["folder"])
    a = [r.to_dict() for r in again.recommend_items("probe", k=5, explore=1, domains="tea")]
    b = [r.to_dict() for r in planted["model"].recommend_items("probe", k=5, explore=1, domains="tea")]
    assert a == b
    assert np.array_equal(again.state.transitions.counts, planted["model"].state.transitions.counts)
    # a format-1 folder: no categories, no transitions
    old = tmp_path / "old"
    old.mkdir()
    meta = json.loads((planted["folder"] / "config.json").read_text())
    meta["format_version"] = 1
    meta.pop("category_names")
    (old / "config.json").write_text(json.dumps(meta))
    t = load_file(str(planted["folder"] / "model.safetensors"))
    save_file(
        {k: v for k, v in t.items() if not k.startswith(("explore.", "categories."))},
        str(old / "model.safetensors"),
    )
    legacy = TwoTower.load(old)
    assert legacy.state.transitions is None and legacy.state.categories is None
    assert list(legacy.recommend("probe", k=5)[0]) == list(again.recommend("probe", k=5)[0])
    recs = legacy.recommend_items("probe", k=5, explore=1)  # transitions rebuilt from the saved histories
    assert recs[-1].source == "exploration" and recs[-1].item_id.startswith("blues")
    with pytest.raises(ConfigError, match="no domain or category names"):
        legacy.recommend("probe", domains="tea")
    meta["format_version"] = 99
    (old / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="retrain"):
        TwoTower.load(old)


def test_cli_recommend_steers_and_explores(planted: dict[str, Any]) -> None:
    runner = CliRunner()
    folder = str(planted["folder"])
    res = runner.invoke(
        cli,
        [
            "recommend",
            folder,
            "--user",
            "probe",
            "-k",
            "4",
            "--domain",
            "tea",
            "--domain",
            "coffee",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    [out] = json.loads(res.output)
    assert all(r["item_id"].startswith(("tea", "coffee")) and r["source"] == "steering" for r in out["items"])
    args = [
        "recommend",
        folder,
        "--user",
        "probe",
        "-k",
        "5",
        "--avoid",
        "sci-fi",
        "--explore",
        "1",
        "--json",
    ]
    res = runner.invoke(cli, args)
    [out] = json.loads(res.output)
    assert out["items"][-1]["source"] == "exploration" and out["items"][-1]["node"] == "blues"
    assert not any(r["item_id"].startswith("sci-fi") for r in out["items"])
    res = runner.invoke(
        cli, ["recommend", folder, "--user", "probe", "-k", "10", "--mix", "tea=0.5,coffee=0.5"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.count("(steering: tea)") == 5 and res.output.count("(steering: coffee)") == 5
    res = runner.invoke(
        cli, ["recommend", folder, "--user", "probe", "-k", "3", "--explain", "--explore", "1"]
    )
    assert res.exit_code == 0 and "from: blues (exploration)" in res.output, res.output
    res = runner.invoke(cli, ["recommend", folder, "--user", "probe", "--topic", "jaz"])
    assert res.exit_code != 0 and "unknown topic 'jaz'" in res.output and "jazz" in res.output


def test_api_steers_explores_and_learns_from_events(planted: dict[str, Any]) -> None:
    model = TwoTower.load(planted["folder"])
    app = create_app(model)
    with TestClient(app) as c:
        r = c.get("/users/probe/recommendations", params={"k": 3, "domain": ["tea"]})
        assert r.status_code == 200, r.text
        assert all(i["item_id"].startswith("tea") and i["source"] == "steering" for i in r.json()["items"])
        r = c.get(
            "/users/probe/recommendations", params={"k": 6, "mix": "tea=0.5,coffee=0.5", "avoid": "coffee0"}
        )
        assert r.status_code == 400 and "unknown node to avoid 'coffee0'" in r.json()["detail"]
        r = c.get("/users/probe/recommendations", params={"k": 4})
        assert all(i["source"] in ("history", "profile") and i["node"] for i in r.json()["items"])
        bandit = app.state.interests.bandit
        r = c.get("/users/probe/recommendations", params={"k": 4, "explore": 1, "explain": "true"})
        last = r.json()["items"][-1]
        assert (
            last["source"] == "exploration" and last["reasons"][-1] == f"from: {last['node']} (exploration)"
        )
        _dom, names = model.state.explore_domains()
        d = names.index(last["node"])
        assert bandit.counts("probe", d) == (1, 0)
        c.post("/events", json={"events": [{"user_id": "probe", "item_id": last["item_id"]}]})
        assert bandit.counts("probe", d) == (1, 1)  # the explore slot was taken: a success
        r = c.get("/users/probe/recommendations", params={"k": 4, "explore": 1})
        assert r.json()["items"][-1]["node"] != last["node"]  # touched now: no longer a domain to explore


def test_reports_name_the_node_and_source(planted: dict[str, Any]) -> None:
    recs = recommendations_from_model(planted["model"], ["probe"], k=4, catalog=planted["catalog"], explore=1)
    assert recs["probe"][-1].source == "exploration" and recs["probe"][-1].node == "blues"
    assert all(r.node and r.source for r in recs["probe"])
    profile = make_profile("probe", 1, ["jazz0", "jazz1"])
    md = render_report([profile], catalog=planted["catalog"], recommendations=recs, format="md")
    assert "· blues (exploration)" in md
    html = render_report([profile], catalog=planted["catalog"], recommendations=recs)
    assert 'title="history, profile, steering or exploration">exploration</span>' in html
    assert 'data-role="node"' in html
