"""Input groups are chosen on valid: an informative group stays, a noise group goes, the choice is saved."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from interests.events import Event, UserHistory
from interests.recsys import TwoTower
from interests.recsys.select import INPUT_GROUPS, fit_two_tower, overrides_of, select_inputs


def stub(informative: dict[str, float], n: int = 300, seed: int = 0):  # type: ignore[no-untyped-def]
    """Per-user valid NDCG where leaving out group g costs ``informative[g]`` on average, plus noise."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.4, n)
    noise = {g: rng.normal(0, 0.05, n) for g in INPUT_GROUPS}

    def fit(off: dict[str, bool]) -> dict[str, bool]:
        return off

    def per_user(off: dict[str, bool]) -> np.ndarray:
        s = base.copy()
        for g, o in INPUT_GROUPS.items():
            if o.items() <= off.items():
                s = s - informative.get(g, 0.0) + noise[g]
        return s

    return fit, per_user


def test_the_rule_keeps_the_informative_group_and_drops_the_noise_one() -> None:
    fit, per_user = stub({"history": 0.05, "profile": 0.0})
    model, over, record = select_inputs(fit, per_user, ["history", "profile"])
    assert record["chosen"] == ["history"] and record["dropped"] == ["profile"]
    assert over == INPUT_GROUPS["profile"] and model == INPUT_GROUPS["profile"]  # the single-drop fit, reused
    g = record["groups"]
    assert g["history"]["kept"] and g["history"]["gain"] > 2 * g["history"]["se"]
    assert not g["profile"]["kept"]
    assert overrides_of(record) == over


def test_groups_that_matter_only_together_are_kept() -> None:
    calls: list[dict[str, bool]] = []
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.4, 300)

    def fit(off: dict[str, bool]) -> dict[str, bool]:
        calls.append(off)
        return off

    def per_user(off: dict[str, bool]) -> np.ndarray:
        both = {**INPUT_GROUPS["history"], **INPUT_GROUPS["l3"]}.items() <= off.items()
        prof = INPUT_GROUPS["profile"].items() <= off.items()
        cost = (0.1 if both else 0.0) + (0.05 if prof else 0.0)  # history or l3 alone suffices
        return base - cost + rng.normal(0, 0.01, len(base))

    _, over, record = select_inputs(fit, per_user, ["history", "l3", "profile"], full={})
    assert over == {} and record["reduced"]["kept_full"] and record["dropped"] == []
    assert len(calls) == 4  # three single drops and one reduced fit; the full model was given


def planted(n_per_group: int = 12, seed: int = 0) -> dict[str, UserHistory]:
    """Four taste groups: the history says the group; the L3 statistics (every rating 5, events an hour
    apart) say nothing about it."""
    rng = random.Random(seed)
    histories: dict[str, UserHistory] = {}
    t = 1.6e9
    for g in range(4):
        for n in range(n_per_group):
            uid = f"u{g}_{n}"
            evs = []
            for i in rng.sample([f"g{g}_{k}" for k in range(10)], 8):
                t += 3600
                evs.append(Event(uid, i, t, 5.0))
            histories[uid] = UserHistory(uid, evs)
    return histories


def test_train_chooses_inputs_on_valid_and_the_choice_survives_save_and_load(tmp_path: Path) -> None:
    histories = planted()
    model = fit_two_tower(histories, backbone=False, epochs=8, dim=16, seed=0)
    rec = model.input_choice
    assert rec is not None and set(rec["groups"]) == {"history", "l3"}
    assert rec["chosen"] == ["history"] and rec["dropped"] == ["l3"]  # informative stays, noise goes
    assert rec["groups"]["history"]["gain"] > 2 * rec["groups"]["history"]["se"]
    assert model.config.use_history and not model.config.use_l3
    back = TwoTower.load(model.save(tmp_path / "m"))
    assert back.input_choice == rec
    assert (back.config.use_history, back.config.use_l3) == (True, False)
    # a format-4 folder (before the record was kept) still loads, with no record
    meta_path = tmp_path / "m" / "config.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 4
    del meta["input_choice"]
    meta_path.write_text(json.dumps(meta))
    old = TwoTower.load(tmp_path / "m")
    assert old.input_choice is None and not old.config.use_l3
    # without selection every group stays and nothing is recorded
    plain = fit_two_tower(histories, backbone=False, epochs=2, dim=16, select_inputs=False)
    assert plain.input_choice is None and plain.config.use_l3
