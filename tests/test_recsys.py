"""Contract tests of the recommenders on a synthetic matrix whose right answer is known.

Four interest groups of eight items; every user interacts with all items of
one group, except the probe users, who miss exactly one item of their group.
Every model variant must rank that withheld item first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from worlds import GROUPS, N_ITEMS, USERS_PER_GROUP, WITHHELD, grouped_world, make_profile

from interests.events import Catalog, UserHistory
from interests.recsys import EASE, ItemKNN, MostPopular, TwoTower, from_user_histories, mmr_rerank
from interests.recsys.baselines import rank
from interests.recsys.evaluate import VARIANTS
from interests.schema import InterestProfile

FAST = {"epochs": 40, "batch_size": 64, "dim": 32, "seed": 0}


@pytest.fixture(scope="module")
def world() -> tuple[dict[str, UserHistory], Catalog, dict[str, InterestProfile]]:
    return grouped_world()


def probes() -> list[str]:
    return [f"p{g}" for g in range(len(GROUPS))]


@pytest.mark.parametrize("model", [EASE(10.0), ItemKNN(20)], ids=["ease", "itemknn"])
def test_baselines_rank_withheld_item_first(world, model) -> None:  # type: ignore[no-untyped-def]
    histories, _, _ = world
    data = from_user_histories(histories)
    model.fit(data)
    rows = [data.user_ids.index(p) for p in probes()]
    query = data.take(rows)
    top = rank(model.score(query), query, 1)[:, 0]
    assert [data.item_ids[i] for i in top] == [WITHHELD[g] for g in range(len(GROUPS))]


def test_most_popular_ranks_by_count(world) -> None:  # type: ignore[no-untyped-def]
    histories, _, _ = world
    data = from_user_histories(histories)
    scores = MostPopular().fit(data).score(data.take([0]))
    # withheld items were seen by one user fewer than their group mates
    assert scores[0, data.item_index[WITHHELD[0]]] == USERS_PER_GROUP - 1
    assert scores[0, data.item_index["g0_0"]] == USERS_PER_GROUP


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("loss", ["sampled_softmax", "bce"])
def test_two_tower_variants_rank_withheld_item_first(world, variant: str, loss: str) -> None:  # type: ignore[no-untyped-def]
    histories, catalog, profiles = world
    model = TwoTower(**FAST, **VARIANTS[variant], loss=loss).fit(
        histories, catalog=catalog, profiles=profiles
    )
    items, _ = model.recommend(probes(), k=1)
    assert items[:, 0].tolist() == [WITHHELD[g] for g in range(len(GROUPS))]


def test_switched_off_inputs_are_ignored(world) -> None:  # type: ignore[no-untyped-def]
    """Without profile inputs, a model given profiles and a taxonomy is the model given neither:
    the two-tower-no-profile ablation compares like with like."""
    from interests.taxonomy import build_taxonomy

    histories, catalog, profiles = world
    taxonomy = build_taxonomy(list(profiles.values()), catalog, encoder="hashing")
    off = VARIANTS["two-tower-no-profile"]
    given = TwoTower(**FAST, **off).fit(histories, catalog=catalog, profiles=profiles, taxonomy=taxonomy)
    never = TwoTower(**FAST, **off).fit(histories, catalog=catalog)
    query = from_user_histories(histories).take(list(range(8)))
    assert np.allclose(given.score(query, profiles=profiles), never.score(query), atol=1e-5)
    # and with them on, they do change the scores
    full = TwoTower(**FAST).fit(histories, catalog=catalog, profiles=profiles, taxonomy=taxonomy)
    assert not np.allclose(full.score(query, profiles=profiles), never.score(query), atol=1e-3)


@pytest.fixture(scope="module")
def trained(world) -> TwoTower:  # type: ignore[no-untyped-def]
    histories, catalog, profiles = world
    return TwoTower(**FAST).fit(histories, catalog=catalog, profiles=profiles)


def test_recommend_filters_seen_and_shapes(trained: TwoTower, world) -> None:  # type: ignore[no-untyped-def]
    histories, _, _ = world
    items, scores = trained.recommend("u0_1", k=5)
    assert items.shape == (5,) and scores.shape == (5,)
    assert not set(items) & {e.item_id for e in histories["u0_1"].events}
    assert np.all(np.diff(scores) <= 1e-6)
    many, _ = trained.recommend(["u0_1", "u1_1"], k=3)
    assert many.shape == (2, 3)
    unfiltered, _ = trained.recommend("u0_1", k=3, filter_seen=False)
    assert set(unfiltered) <= {f"g0_{k}" for k in range(N_ITEMS)}


def test_save_load_round_trip(trained: TwoTower, tmp_path: Path) -> None:
    trained.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = TwoTower.load(tmp_path / "m")
    a, sa = trained.recommend(probes(), k=5)
    b, sb = loaded.recommend(probes(), k=5)
    assert (a == b).all()
    np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-5)
    assert loaded.config == trained.config
    ex1, ex2 = trained.explain("p0", "g0_7"), loaded.explain("p0", "g0_7")
    assert ex1.score == pytest.approx(ex2.score, abs=1e-5)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_saved_files_share_one_mode_that_respects_the_umask(
    trained: TwoTower, tmp_path: Path, umask: int
) -> None:
    """model.safetensors used to be 0600 (safetensors' private temp file) beside a 0644 config.json."""
    old = os.umask(umask)
    try:
        trained.save(tmp_path / "m")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "m").iterdir()}
    assert modes == {"config.json": 0o666 & ~umask, "model.safetensors": 0o666 & ~umask}


def test_explain_terms_add_up_to_the_score(trained: TwoTower) -> None:
    items, scores = trained.recommend("p1", k=3)
    for iid, s in zip(items, scores, strict=True):
        ex = trained.explain("p1", str(iid))
        assert ex.score == pytest.approx(float(s), abs=1e-4)
        assert ex.offset + sum(ex.groups.values()) == pytest.approx(ex.score, abs=1e-5)
        assert sum(v for _, v in ex.history) == pytest.approx(
            ex.groups["history"] + ex.groups["backbone"], abs=1e-5
        )
        # only the user's own items explain the score, and the profile node citing them is named
        assert {i for i, _ in ex.history} <= {f"g1_{k}" for k in range(N_ITEMS)}
        assert ex.profile_nodes[0][0] == "Jazz Records > jazz records"


class _StubTaxonomy:
    """Two domains with one topic each: items of groups 0-1 in d0/t0, groups 2-3 in d1/t1."""

    domain_ids: ClassVar[list[str]] = ["d0", "d1"]
    topic_ids: ClassVar[list[str]] = ["t0", "t1"]

    def topic_domain_index(self) -> np.ndarray:
        return np.array([0, 1])

    def assign_items(self, items):  # type: ignore[no-untyped-def]
        from interests.taxonomy import ItemAssignment

        out = {}
        for it in items:
            k = 0 if it.item_id[1] in "01" else 1
            out[it.item_id] = ItemAssignment(f"d{k}", f"t{k}", 0.9, 0.9)
        return out


def test_explain_with_taxonomy_nodes_sum_to_the_taxonomy_group(world) -> None:  # type: ignore[no-untyped-def]
    histories, catalog, profiles = world
    model = TwoTower(**FAST).fit(histories, catalog=catalog, profiles=profiles, taxonomy=_StubTaxonomy())
    items, _ = model.recommend(probes(), k=1)
    assert items[:, 0].tolist() == [WITHHELD[g] for g in range(len(GROUPS))]
    ex = model.explain("p2", "g2_7")
    assert {n for n, _ in ex.nodes} <= {"d1", "t1"}  # labels where the taxonomy has them, else ids
    assert sum(v for _, v in ex.nodes) == pytest.approx(ex.groups["taxonomy"], abs=1e-5)
    assert ex.item_node == "d1 > t1"


def test_cold_start_from_items_profile_or_text(trained: TwoTower, world) -> None:  # type: ignore[no-untyped-def]
    _, _, profiles = world
    items, _ = trained.recommend_new(["g3_0", "g3_1", "g3_2"], k=3)
    assert set(items) <= {f"g3_{k}" for k in range(3, N_ITEMS)}
    text_only = TwoTower(**FAST, **VARIANTS["two-tower-profile"])
    histories, catalog, _ = world
    text_only.fit(histories, catalog=catalog, profiles=profiles)
    by_text, _ = text_only.recommend_new(text="Loves sourdough baking.", k=3)
    assert set(by_text) <= {f"g3_{k}" for k in range(N_ITEMS)}
    by_profile, _ = text_only.recommend_new(profile=make_profile("new", 2, ["g2_0"]), k=3)
    assert set(by_profile) <= {f"g2_{k}" for k in range(N_ITEMS)}


def test_unknown_user_says_how_to_fix(trained: TwoTower) -> None:
    from interests.errors import InterestsError

    with pytest.raises(InterestsError, match="recommend_new"):
        trained.recommend("nobody")


def test_mmr_rerank_spreads_domains() -> None:
    cand = np.array([0, 1, 2, 3, 4])
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    domains = np.array([0, 0, 0, 1, 2])
    same, _ = mmr_rerank(cand, scores, domains, 3, 0.0)
    assert same.tolist() == [0, 1, 2]
    spread, _ = mmr_rerank(cand, scores, domains, 3, 1.0)
    assert sorted(domains[spread].tolist()) == [0, 1, 2]


def test_diverse_recommendations_cover_more_domains(trained: TwoTower) -> None:
    plain, _ = trained.recommend("u0_1", k=6, filter_seen=False)
    diverse, _ = trained.recommend("u0_1", k=6, filter_seen=False, diverse=0.9)
    groups = lambda ids: {i.split("_")[0] for i in ids}  # noqa: E731
    assert len(groups(diverse)) > len(groups(plain))
