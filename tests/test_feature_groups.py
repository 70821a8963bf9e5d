"""A user feature group defined in one place: a toy group registered here, and nowhere else,
is computed, trained, scored, explained, saved and loaded by the unchanged recommender."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from worlds import GROUPS, WITHHELD, grouped_world

from interests.errors import ConfigError
from interests.events import Catalog, UserHistory
from interests.recsys import TwoTower
from interests.recsys.features import USER_GROUPS, FeatureGroup, FeatureInputs
from interests.recsys.io import LEGACY_GROUPS
from interests.schema import InterestProfile

FAST = {"epochs": 10, "batch_size": 64, "dim": 32, "seed": 0, "fusion": 0.5}


class FamilyShares(FeatureGroup):
    """The user's share of history items in each item family (``g<k>_*``), one column per family."""

    name, module_name = "families", "families_proj"

    def size(self, cfg: Any) -> int:
        return len(GROUPS)

    def module(self, cfg: Any) -> Any:
        m = super().module(cfg)
        m.weight.data.zero_()  # starts at zero: any weight it ends with was learnt
        return m

    def rows(self, x: FeatureInputs) -> np.ndarray:
        family = np.array([int(i.split("_")[0][1:]) for i in x.query.item_ids])
        out = np.zeros((x.query.n_users, len(GROUPS)), dtype=np.float32)
        for r, items in enumerate(x.query.items):
            if len(items):
                out[r] = np.bincount(family[items], minlength=len(GROUPS)) / len(items)
        return out


@pytest.fixture(scope="module")
def world() -> tuple[dict[str, UserHistory], Catalog, dict[str, InterestProfile]]:
    return grouped_world()


@pytest.fixture
def families() -> Iterator[FeatureGroup]:
    group = FamilyShares()
    USER_GROUPS.append(group)
    try:
        yield group
    finally:
        USER_GROUPS.remove(group)


def test_a_registered_group_is_trained_saved_loaded_and_explained(world, families, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    histories, catalog, profiles = world
    model = TwoTower(**FAST).fit(histories, catalog=catalog, profiles=profiles)
    assert model.config.user_groups == [*LEGACY_GROUPS, "families"]
    assert model.known is not None and model.state.feats is not None
    p0 = model.known.user_index()["p0"]
    assert model.state.feats["families"][p0].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert float(model.state.net.families_proj.weight.detach().abs().sum()) > 0  # trained from zero
    items, _ = model.recommend([f"p{g}" for g in range(len(GROUPS))], k=1)
    assert items[:, 0].tolist() == [WITHHELD[g] for g in range(len(GROUPS))]

    ex = model.explain("p0", "g0_7")
    assert list(ex.groups) == ["history", *LEGACY_GROUPS, "families", "bias", "backbone"]
    assert ex.groups["families"] != 0
    assert ex.offset + sum(ex.groups.values()) == pytest.approx(ex.score, abs=1e-5)

    folder = model.save(tmp_path / "m")
    assert json.loads((folder / "config.json").read_text())["config"]["user_groups"][-1] == "families"
    loaded = TwoTower.load(folder)
    np.testing.assert_array_equal(loaded.state.feats["families"], model.state.feats["families"])  # type: ignore[index]
    a, sa = model.recommend(["p0", "u2_1"], k=5)
    b, sb = loaded.recommend(["p0", "u2_1"], k=5)
    assert (a == b).all()
    np.testing.assert_allclose(sa, sb, rtol=1e-6, atol=1e-6)
    assert loaded.explain("p0", "g0_7").groups == pytest.approx(ex.groups, abs=1e-6)
    # a new user's rows are computed by the group too
    new, _ = loaded.recommend_new(["g2_0", "g2_1"], k=3)
    assert set(new) <= {f"g2_{k}" for k in range(2, 8)}
    # what Ray Train ships to its workers still pickles
    assert isinstance(pickle.loads(pickle.dumps(loaded.state.net)).user_groups[-1], FamilyShares)


def test_models_keep_the_groups_they_were_built_with(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    histories, catalog, profiles = world
    plain = (
        TwoTower(**{**FAST, "epochs": 2})
        .fit(histories, catalog=catalog, profiles=profiles)
        .save(tmp_path / "p")
    )
    # a format 2 folder (before the groups were recorded) has the three groups of that time
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.safetensors").write_bytes((plain / "model.safetensors").read_bytes())
    meta = json.loads((plain / "config.json").read_text())
    del meta["config"]["user_groups"]
    meta["format_version"] = 2
    (old / "config.json").write_text(json.dumps(meta))
    group = FamilyShares()
    USER_GROUPS.append(group)
    try:
        for folder in (plain, old):  # a model saved without a group loads while it is registered
            m = TwoTower.load(folder)
            assert m.config.user_groups == LEGACY_GROUPS
            assert m.recommend("p1", k=1)[0][0] == WITHHELD[1]
        with_group = TwoTower(**{**FAST, "epochs": 2}).fit(histories, catalog=catalog, profiles=profiles)
        with_group.save(tmp_path / "g")
    finally:
        USER_GROUPS.remove(group)
    with pytest.raises(ConfigError, match="'families' is registered"):
        TwoTower.load(tmp_path / "g")
