"""Recommendations from interest profiles: a two-tower model fused with an EASE backbone, and its evaluation.

    from interests.recsys import TwoTower
    model = TwoTower().fit(logs, profiles=profiles, taxonomy=taxonomy)
    items, scores = model.recommend("u001", k=10)

Submodules: :mod:`.split` (the temporal split of docs/benchmarks.md), :mod:`.metrics`,
:mod:`.baselines` (most popular, recency-popularity, ItemKNN, EASE),
:mod:`.sasrec` (the sequential baseline), :mod:`.steer` and :mod:`.explore`
(steering by nodes, explore slots), :mod:`.features`,
:mod:`.model` (network + config), :mod:`.train` (the epochs), :mod:`.backbone`,
:mod:`.fit` (data in, a fitted model out), :mod:`.towers` (the fitted model and its
scores), :mod:`.lists` (score rows to lists), :mod:`.recommender` (the SDK class),
:mod:`.explain`, :mod:`.rerank`,
:mod:`.io`, :mod:`.evaluate` (the benchmark protocol). torch is imported
only when a model is built.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TwoTower": "interests.recsys.recommender",
    "Explanation": "interests.recsys.explain",
    "fit_two_tower": "interests.recsys.select",
    "FittedTowers": "interests.recsys.towers",
    "TwoTowerConfig": "interests.recsys.model",
    "EASE": "interests.recsys.baselines",
    "ItemKNN": "interests.recsys.baselines",
    "MostPopular": "interests.recsys.baselines",
    "RecentPopular": "interests.recsys.baselines",
    "SASRec": "interests.recsys.sasrec",
    "Steering": "interests.recsys.steer",
    "Histories": "interests.recsys.data",
    "from_user_histories": "interests.recsys.data",
    "TemporalSplit": "interests.recsys.split",
    "evaluate": "interests.recsys.evaluate",
    "recall_at_k": "interests.recsys.metrics",
    "ndcg_at_k": "interests.recsys.metrics",
    "coverage_at_k": "interests.recsys.metrics",
    "diversity_at_k": "interests.recsys.metrics",
    "mmr_rerank": "interests.recsys.rerank",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'interests.recsys' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
