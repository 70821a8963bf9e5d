"""What ``interests train`` chooses on valid: the user-side input groups (with a noise rule), and
:func:`fit_two_tower`, which chooses the backbone, epochs, fusion and inputs, then refits.

Which user-side input groups the shipped two-tower keeps:

The groups (:data:`INPUT_GROUPS`): the history pooling, the items' text, the
profile text, the taxonomy (user weights and item nodes) and the L3
statistics. A group is a candidate when there is something for it to read
(profiles, a taxonomy, a catalogue with text). One round of backward
elimination, the rule :func:`~interests.recsys.fusion.choose_fusion`
uses for the fusion weight:

1. the full model and, for each candidate group, the model without it are
   fit on the valid split's training events and scored on valid (the score
   the model would ship: fused with its backbone at its own chosen fusion);
2. a group **stays only when it gains beyond noise**: the paired per-user
   valid NDCG@20 difference ``full - without`` has a mean above ``margin``
   (2) standard errors;
3. the groups that fail are dropped together; when more than one is dropped
   the reduced model is fit once more and kept unless the full model beats it
   beyond the same margin (groups that only matter together are not lost).
   Every candidate failing keeps the full model: there is nothing to choose.

``len(candidates) + 1`` fits at most (the single-drop fit is reused), each
with the backbone chosen once by the full model. The record is what
``interests train --json`` returns as ``inputs``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog
    from interests.scale.ray_train import RayTraining
    from interests.taxonomy.model import Taxonomy

    from .fit import Profiles
    from .recommender import TwoTower
    from .towers import FittedTowers

log = logging.getLogger(__name__)

#: the config fields that say which backbone a model has (chosen on valid, kept by the refit)
BACKBONE_KEYS = ("backbone_kind", "ease_lambda", "knn_k", "recency_decay", "sasrec_epochs")

#: group name -> the config overrides that switch it off
INPUT_GROUPS: dict[str, dict[str, bool]] = {
    "history": {"use_history": False},
    "item-text": {"use_item_text": False},
    "profile": {"use_profile": False},
    "taxonomy": {"use_taxonomy": False, "use_item_nodes": False},
    "l3": {"use_l3": False},
}


def candidate_groups(cfg: Any, *, profiles: bool, taxonomy: bool, text: bool) -> list[str]:
    """The groups switched on in ``cfg`` that have something to read."""
    has = {"history": True, "item-text": text, "profile": profiles, "taxonomy": taxonomy, "l3": True}
    return [g for g, off in INPUT_GROUPS.items() if has[g] and all(getattr(cfg, k) for k in off)]


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the per-user difference ``a - b``."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) < 2:
        return float(d.mean()) if len(d) else 0.0, float("inf")
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def select_inputs(
    fit: Callable[[dict[str, bool]], Any],
    per_user: Callable[[Any], np.ndarray],
    groups: Sequence[str],
    *,
    full: Any = None,
    margin: float = 2.0,
) -> tuple[Any, dict[str, bool], dict[str, Any]]:
    """One round of backward elimination of ``groups`` (see the module doc).

    ``fit(overrides)`` trains a candidate on valid's training events (``{}``: the full model;
    ``full`` when already trained); ``per_user(model)`` is its per-user valid NDCG@20. Returns
    the chosen candidate (trained), its config overrides and the record of the choice.
    """
    full = full if full is not None else fit({})
    base = per_user(full)
    record: dict[str, Any] = {
        "rule": f"a group stays when its valid gain exceeds {margin:g} standard errors",
        "full_ndcg@20": round(float(base.mean()), 5) if len(base) else 0.0,
        "groups": {},
    }
    fits: dict[str, Any] = {}
    dropped: list[str] = []
    for g in groups:
        m = fit(dict(INPUT_GROUPS[g]))
        fits[g] = m
        s = per_user(m)
        gain, se = paired(base, s)
        keep = gain > margin * se
        record["groups"][g] = {
            "without_ndcg@20": round(float(s.mean()), 5),
            "gain": round(gain, 5),
            "se": round(se, 5),
            "kept": keep,
        }
        log.info(
            "inputs: without %s valid NDCG@20 %.4f (gain of keeping it %+.4f, standard error %.4f): %s",
            g,
            float(s.mean()),
            gain,
            se,
            "kept" if keep else "dropped",
        )
        if not keep:
            dropped.append(g)
    chosen, over, model = list(groups), {}, full
    if dropped and len(dropped) < len(groups):
        over = {k: v for g in dropped for k, v in INPUT_GROUPS[g].items()}
        reduced = fits[dropped[0]] if len(dropped) == 1 else fit(dict(over))
        s = per_user(reduced)
        gain, se = paired(base, s)
        record["reduced"] = {
            "dropped": dropped,
            "ndcg@20": round(float(s.mean()), 5),
            "full_gain": round(gain, 5),
            "se": round(se, 5),
        }
        if gain > margin * se:  # the dropped groups matter together: keep them
            over = {}
            record["reduced"]["kept_full"] = True
        else:
            chosen, model = [g for g in groups if g not in dropped], reduced
    elif dropped:
        record["note"] = "no group gains beyond noise: the full model is kept (nothing to choose)"
    record["chosen"] = chosen
    record["dropped"] = [g for g in groups if g not in chosen]
    log.info("inputs: kept %s, dropped %s", chosen or "none", record["dropped"] or "none")
    return model, over, record


def overrides_of(record: Mapping[str, Any] | None) -> dict[str, bool]:
    """The config overrides that drop what ``record`` dropped."""
    return {k: v for g in (record or {}).get("dropped", []) for k, v in INPUT_GROUPS[g].items()}


def fit_two_tower(
    logs: Any,
    *,
    catalog: Catalog | None = None,
    profiles: Profiles = None,
    taxonomy: Taxonomy | None = None,
    holdout: bool = True,
    distributed: RayTraining | None = None,
    select_inputs: bool = True,
    **config: Any,
) -> TwoTower:
    """Train a model the way ``interests train`` does.

    With ``holdout`` the valid events of the temporal split (docs/benchmarks.md) pick the
    backbone (:func:`~interests.recsys.backbone.choose_backbone`: EASE or
    ItemKNN with its parameter and recency decay, or SASRec), the epoch count (early
    stopping) and the fusion weight (:func:`~interests.recsys.fusion.choose_fusion`: the backbone alone
    unless the tower's valid gain exceeds its noise) on a model fit to the
    earlier events; the returned model is then refit on every event with those
    settings. ``select_inputs`` also chooses the user-side input groups on valid
    (:func:`~interests.recsys.select.select_inputs`: a group stays only when it gains
    beyond noise; the record is ``model.input_choice``). Without ``holdout``,
    ``config["epochs"]`` epochs, the configured backbone (EASE when ``"auto"``) and
    ``fusion=0.5``. ``distributed``: every fit on Ray Train workers.
    """
    from .backbone import ItemWeights
    from .fit import as_histories, fit_towers, profile_map
    from .model import TwoTowerConfig
    from .recommender import TwoTower
    from .select import select_inputs as choose  # the argument of that name is a switch
    from .split import TemporalSplit

    data, cat = as_histories(logs)
    catalog = catalog if catalog is not None else cat
    args: dict[str, Any] = dict(
        catalog=catalog, profiles=profiles, taxonomy=taxonomy, distributed=distributed
    )

    def config_with(over: Mapping[str, Any]) -> TwoTowerConfig:
        return TwoTowerConfig.from_dict({**config, **over})

    if not holdout:
        return TwoTower.of(fit_towers(config_with({"fusion": 0.5, **config}), data, **args))
    split = TemporalSplit.of(data)
    case = split.case("valid")
    valid = {
        case.fit.user_ids[u]: [data.item_ids[i] for i in t]
        for u, t in zip(case.users, case.targets, strict=True)
    }
    weights = ItemWeights(case.fit)  # shared by the input-selection fits

    def fit_candidate(over: Mapping[str, Any]) -> FittedTowers:
        return fit_towers(config_with(over), case.fit, item_weights=weights, valid=valid, **args)

    probe = fit_candidate({})
    chosen = {k: getattr(probe.config, k) for k in BACKBONE_KEYS}
    over: dict[str, Any] = {}
    inputs: dict[str, Any] | None = None
    groups = candidate_groups(
        probe.config, profiles=bool(profiles), taxonomy=taxonomy is not None, text=catalog is not None
    )
    if select_inputs and len(groups) > 1:
        pmap = profile_map(profiles)

        def per_user(m: FittedTowers) -> np.ndarray:
            from .baselines import user_ndcg

            return user_ndcg(m.score(case.query, profiles=pmap), case.query, case.targets)

        probe, over, inputs = choose(
            lambda off: fit_candidate({**chosen, **off}), per_user, groups, full=probe
        )
    assert probe.train_log is not None
    final = fit_towers(
        config_with({"fusion": probe.config.fusion, **chosen, **over}),
        data,
        epochs=max(1, probe.train_log.best_epoch),
        **args,
    )
    assert final.train_log is not None
    final.train_log.best_valid = probe.train_log.best_valid
    final.train_log.valid = probe.train_log.valid
    return TwoTower.of(
        replace(
            final,
            fusion_choice=probe.fusion_choice,
            backbone_choice=probe.backbone_choice,
            input_choice=inputs,
        )
    )


__all__ = [
    "BACKBONE_KEYS",
    "INPUT_GROUPS",
    "candidate_groups",
    "fit_two_tower",
    "overrides_of",
    "paired",
    "select_inputs",
]
