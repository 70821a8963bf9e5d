"""The item-item backbone is chosen on valid (EASE or ItemKNN, parameter, decay), kept by refit and save."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from worlds import WITHHELD, grouped_world

from interests.recsys import TwoTower, from_user_histories
from interests.recsys.backbone import ItemItemBackbone, ItemWeights, SequenceBackbone, choose_backbone
from interests.recsys.baselines import mean_ndcg, rank
from interests.recsys.data import Histories
from interests.recsys.select import fit_two_tower

N = 30  # items on the cycle


def cycle_world(n_users: int = 120, length: int = 8, seed: int = 0) -> tuple[Histories, Histories, list]:
    """Users walk a cycle of items from random starts; the valid target is the next item on the cycle.

    The order of a history says everything: only a backbone that weighs the last items most
    (decay < 1) can tell which neighbour comes next.
    """
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, N, n_users)
    walks = [np.array([(s + k) % N for k in range(length)]) for s in starts]
    items = [str(i) for i in range(N)]

    def hist(ws: list[np.ndarray]) -> Histories:
        return Histories(
            [f"u{k}" for k in range(len(ws))],
            items,
            ws,
            [np.arange(len(w), dtype=np.float64) for w in ws],
            [np.full(len(w), np.nan) for w in ws],
        )

    fit = hist([w[:-1] for w in walks])
    return fit, fit, [w[-1:] for w in walks]


def test_the_choice_weighs_recent_items_when_order_decides() -> None:
    fit, query, targets = cycle_world()
    weights = ItemWeights(fit)
    chosen, record = choose_backbone(weights, query, targets)
    assert chosen.decay < 1.0, record
    # the chosen one is the best of every candidate it tried, and clearly above the order-blind ones
    assert max(record["valid"].values()) == pytest.approx(
        mean_ndcg(chosen.score(query), query, targets), abs=1e-5
    )
    blind = [v for name, v in record["valid"].items() if name.endswith("decay 1")]
    assert max(record["valid"].values()) > max(blind) + 0.05
    # a grid of one kind gives that kind
    only, _ = choose_backbone(weights, query, targets, grid=[("itemknn", 5)])
    assert (only.kind, only.param) == ("itemknn", 5)
    assert weights.get("itemknn", 5) is weights.get("itemknn", 5)  # computed once


def test_an_itemknn_backbone_ranks_and_explains(tmp_path: Path) -> None:
    histories, catalog, _ = grouped_world()
    data = from_user_histories(histories)
    m = TwoTower(backbone_kind="itemknn", knn_k=20, fusion=0.0, epochs=2, dim=16).fit(data, catalog=catalog)
    assert m.state.backbone is not None and m.state.backbone.kind == "itemknn"
    for g, item in WITHHELD.items():
        assert m.recommend_items(f"p{g}", k=1)[0].item_id == item
    q = data.take([data.user_index()["p0"]])
    i = data.item_index[WITHHELD[0]]
    terms = m.state.backbone.contributions(q, 0, i)
    assert sum(terms.values()) == pytest.approx(float(m.state.backbone.score(q)[0, i]), rel=1e-5)
    back = TwoTower.load(m.save(tmp_path / "m"))
    bb = back.state.backbone
    assert bb is not None and (bb.kind, bb.param) == ("itemknn", 20)
    np.testing.assert_allclose(back.score(q), m.score(q), rtol=1e-5, atol=1e-6)


def test_train_keeps_the_backbone_chosen_on_valid(tmp_path: Path) -> None:
    histories, catalog, _ = grouped_world()
    m = fit_two_tower(histories, catalog=catalog, epochs=3, dim=16, backbone_sasrec=False)
    choice = m.backbone_choice
    assert choice is not None and isinstance(m.state.backbone, ItemItemBackbone)
    assert (m.state.backbone.kind, m.state.backbone.param, m.state.backbone.decay) == (
        choice["kind"],
        choice["param"],
        choice["decay"],
    )
    assert m.config.backbone_kind == choice["kind"] and m.config.recency_decay == choice["decay"]
    assert len(choice["valid"]) > 1 and not any("SASRec" in k for k in choice["valid"])
    back = TwoTower.load(m.save(tmp_path / "m"))
    assert back.state.backbone is not None and back.state.backbone.describe() == m.state.backbone.describe()


def step_world(n_users: int = 100, length: int = 12) -> Histories:
    """Users walk the cycle with their own step (1, 2 or 3): the next item is ``last + (last - previous)``."""
    rng = np.random.default_rng(0)
    steps, starts = rng.choice([1, 2, 3], n_users), rng.integers(0, N, n_users)
    walks = [np.array([(s + k * st) % N for k in range(length)]) for s, st in zip(starts, steps, strict=True)]
    return Histories(
        [f"u{k}" for k in range(n_users)],
        [str(i) for i in range(N)],
        walks,
        [np.arange(length, dtype=np.float64) for _ in walks],
        [np.full(length, np.nan) for _ in walks],
    )


def test_the_choice_takes_sasrec_only_when_it_beats_every_item_item_candidate() -> None:
    data = step_world()
    fit = data.take(list(range(data.n_users)), [slice(0, -1)] * data.n_users)
    targets = [w[-1:] for w in data.items]
    weights = ItemWeights(fit)
    weak = [("ease", 1e9)]  # a lambda this large leaves EASE next to nothing
    fast = {"eval_every": 2, "patience": 2}
    chosen, record = choose_backbone(
        weights, fit, targets, grid=weak, decays=(1.0,), sequential=True, sasrec=fast
    )
    assert chosen.kind == "sasrec" and isinstance(chosen, SequenceBackbone), record
    assert record["valid"][f"SASRec, {chosen.epochs} epochs"] > record["valid"]["EASE lambda 1e+09, decay 1"]
    assert record["epochs"] == chosen.epochs
    # the same without the sequential candidate: the item-item one, and SASRec is not trained again
    plain, rec2 = choose_backbone(weights, fit, targets, grid=weak, decays=(1.0,))
    assert plain.kind == "ease" and not any("SASRec" in k for k in rec2["valid"])
    again, _ = choose_backbone(weights, fit, targets, grid=weak, decays=(1.0,), sequential=True, sasrec=fast)
    assert isinstance(again, SequenceBackbone) and again.model is chosen.model  # cached


def test_a_sasrec_backbone_survives_refit_save_and_explain(tmp_path: Path) -> None:
    data = step_world(n_users=40)
    m = fit_two_tower(data, epochs=2, dim=16, backbone_kind="sasrec", sasrec_epochs=4)
    assert isinstance(m.state.backbone, SequenceBackbone) and m.state.backbone.epochs == 4
    assert m.state.backbone.model.train_log.epochs == 4  # the refit ran the configured epochs
    q = data.take([0, 1, 2])
    item = int((data.items[0][-1] + 1) % N)
    terms = m.state.backbone.contributions(q, 0, item)
    assert sum(terms.values()) == pytest.approx(float(m.state.backbone.score(q)[0, item]), rel=1e-4, abs=1e-5)
    assert set(terms) <= set(data.items[0].tolist())
    ex = m.explain(data.user_ids[0], data.item_ids[item])
    assert ex.score == pytest.approx(sum(ex.groups.values()) + ex.offset, abs=1e-4)
    assert sum(v for _, v in ex.history) == pytest.approx(
        ex.groups["history"] + ex.groups["backbone"], abs=1e-4
    )
    back = TwoTower.load(m.save(tmp_path / "m"))
    assert isinstance(back.state.backbone, SequenceBackbone) and back.config.backbone_kind == "sasrec"
    np.testing.assert_allclose(back.score(q), m.score(q), rtol=1e-4, atol=1e-5)


def test_without_valid_auto_means_the_configured_ease() -> None:
    histories, catalog, _ = grouped_world()
    m = TwoTower(epochs=1, dim=16, ease_lambda=50.0).fit(from_user_histories(histories), catalog=catalog)
    assert m.state.backbone is not None and (m.state.backbone.kind, m.state.backbone.param) == ("ease", 50.0)
    assert m.backbone_choice is None


def test_an_unknown_kind_is_refused() -> None:
    fit, _, _ = cycle_world(n_users=10)
    with pytest.raises(ValueError, match="unknown backbone kind"):
        ItemWeights(fit).get("svd", 10)


def test_rank_of_chosen_backbone_matches_its_record() -> None:
    fit, query, targets = cycle_world(seed=1)
    chosen, record = choose_backbone(ItemWeights(fit), query, targets, decays=(0.5,))
    ranked = rank(chosen.score(query), query, 20)
    hits = np.mean([t[0] in r[:1] for r, t in zip(ranked, targets, strict=True)])
    assert hits > 0.9  # with decay 0.5 the last item's successor comes first
    assert record["decay"] == 0.5


def test_a_config_spelling_out_the_defaults_is_the_same_sasrec() -> None:
    fit, _, _ = cycle_world(n_users=20, length=6)
    w = ItemWeights(fit)
    a = w.sasrec(0, epochs=1)
    assert w.sasrec(0, epochs=1, config={"dim": 64, "dropout": 0.2}) is a
    assert w.sasrec(0, epochs=1, config={"dim": 32}) is not a


def test_a_folder_of_format_3_loads_with_its_ease_backbone(tmp_path: Path) -> None:
    import json

    histories, catalog, _ = grouped_world()
    data = from_user_histories(histories)
    m = TwoTower(epochs=1, dim=16).fit(data, catalog=catalog)
    folder = m.save(tmp_path / "m")
    meta_path = next(
        p for p in folder.iterdir() if p.suffix == ".json" and "config" in json.loads(p.read_text())
    )
    meta = json.loads(meta_path.read_text())
    assert meta["format_version"] == 5
    meta["format_version"] = 3
    del meta["config"]["backbone_kind"]  # format 3 did not name it
    meta_path.write_text(json.dumps(meta))
    back = TwoTower.load(folder)
    assert isinstance(back.state.backbone, ItemItemBackbone) and back.state.backbone.kind == "ease"
    q = data.take([0])
    np.testing.assert_allclose(back.score(q), m.score(q), rtol=1e-5, atol=1e-6)
