"""Which user-side input groups the shipped two-tower keeps, chosen on valid with a noise rule.

The groups (:data:`INPUT_GROUPS`): the history pooling, the items' text, the
profile text, the taxonomy (user weights and item nodes) and the L3
statistics. A group is a candidate when there is something for it to read
(profiles, a taxonomy, a catalogue with text). One round of backward
elimination, the rule :func:`~interests.recsys.recommender.choose_fusion`
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
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

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


__all__ = ["INPUT_GROUPS", "candidate_groups", "overrides_of", "paired", "select_inputs"]
