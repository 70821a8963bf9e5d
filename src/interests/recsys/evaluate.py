"""The protocol of docs/benchmarks.md in one call: baselines, two-tower and ablations, tuned on valid,
scored on test.

For each stage the models see only what the protocol allows: scoring valid,
train events (and profiles / taxonomy built from them); scoring test,
train + valid. Hyper-parameters (EASE lambda, ItemKNN k, the backbone's
recency decay, the recency-popularity half-life, SASRec's epoch count, the
two-tower's epoch count and fusion weight) are chosen on
valid NDCG@20, separately for the ``all`` and ``cold`` segments where they
apply, then the model is refit on train + valid and scored once on test.
Trained models run once per seed; the result holds the mean and, as
``<metric>_std``, the spread over seeds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .backbone import ItemWeights
from .baselines import MostPopular, RecentPopular, rank
from .data import from_user_histories, item_domains
from .metrics import ndcg_at_k, summarize
from .split import EvalCase, GlobalTimeSplit, make_split

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog, UserHistory
    from interests.schema import InterestProfile

log = logging.getLogger(__name__)

# name -> TwoTowerConfig overrides
VARIANTS: dict[str, dict[str, Any]] = {
    "two-tower": {},
    # everything the LLM profile feeds (its text, the taxonomy built from profiles, items' nodes) off:
    # the difference to "two-tower" is what the profiles add
    "two-tower-no-profile": {"use_profile": False, "use_taxonomy": False, "use_item_nodes": False},
    "two-tower-history": {
        "use_profile": False,
        "use_taxonomy": False,
        "use_l3": False,
        "use_item_text": False,
        "use_item_nodes": False,
    },
    "two-tower-profile": {"use_ids": False, "use_history": False, "backbone": False},
    "two-tower-no-backbone": {"backbone": False},
}
ProfileSource = Callable[[str, Mapping[str, "UserHistory"]], Mapping[str, "InterestProfile"]]
TaxonomySource = Callable[[str, Mapping[str, "InterestProfile"]], Any]


@dataclass
class EvalResult:
    """``table``: {segment: {model: {metric: value}}} (the JSON of ``interests evaluate --json``)."""

    table: dict[str, dict[str, dict[str, float]]]
    meta: dict[str, Any] = field(default_factory=dict)


def _ndcg20(ranked: np.ndarray, targets: Sequence[np.ndarray]) -> float:
    return float(np.mean([ndcg_at_k(r, t, 20) for r, t in zip(ranked, targets, strict=True)]))


def evaluate(
    logs: Any,
    *,
    catalog: Catalog | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    profiles: ProfileSource | None = None,
    taxonomy: TaxonomySource | None = None,
    ease_grid: Sequence[float] = (100.0, 500.0),
    knn_grid: Sequence[int] = (100, 200),
    decay_grid: Sequence[float] = (0.8, 0.9, 0.95),
    half_life_grid: Sequence[float] = (7.0, 30.0, 90.0, 365.0, float("inf")),
    sasrec_grid: Sequence[Mapping[str, Any]] | None = ({},),
    config: Mapping[str, Any] | None = None,
    cold_events: int = 3,
    argmax_rows: bool = False,
    sasrec_refit: bool = True,
    protocol: str = "last",
    select_inputs: bool = True,
) -> EvalResult:
    """Run the protocol on ``logs`` (``Logs`` or ``{user: UserHistory}``).

    ``profiles(key, histories)`` returns profiles for the users of
    ``histories`` (``{user: UserHistory}``) built from exactly those events
    (the protocol's cut of each user's log); ``key`` is ``"valid"``,
    ``"test"``, ``"valid-cold"`` or ``"test-cold"``, prefixed ``"time-"`` under the time
    protocol (its cuts are other events: a cache must keep them apart). ``taxonomy(key,
    profiles)`` builds a taxonomy from the ``"valid"`` / ``"test"`` profiles.
    Without them the profile and taxonomy inputs stay empty.

    Baselines: ``popular``, ``recent-popular`` (half-life in days from
    ``half_life_grid``), ``itemknn``, ``ease``, ``ease-recency`` and, once per
    seed, ``sasrec`` (each config of ``sasrec_grid``, :class:`SASRecConfig`
    overrides, trained with early stopping on valid NDCG@20; the best on valid
    is refit on train + valid for its best epoch count, or with ``sasrec_refit=False``
    scores test from train + valid sequences without retraining; ``None`` skips SASRec).
    The fusion weight is chosen by :func:`~interests.recsys.fusion.choose_fusion`
    (the backbone unless the gain on valid exceeds its noise); ``argmax_rows``
    also reports each fused variant with the plain valid argmax, as
    ``<name> (argmax)``, scored from the same trained models.

    ``protocol``: ``"last"`` (per-user leave-last-out, :class:`~interests.recsys.split.TemporalSplit`)
    or ``"time"`` (one global cut time, :class:`~interests.recsys.split.GlobalTimeSplit`: test
    targets are each user's first event after the cut; users with no event before it are new
    users, not evaluated, counted in ``meta["new_users"]``). Everything else is the same.

    ``select_inputs``: the ``two-tower`` variant is the model ``interests train`` ships, its input
    groups chosen on valid (:func:`~interests.recsys.select.select_inputs`; the record is in
    ``meta["chosen"]["two-tower"][seed]["inputs"]``); the other variants keep their fixed inputs.
    """
    from .backbone import ItemItemBackbone, SequenceBackbone, choose_backbone
    from .baselines import user_ndcg
    from .recommender import TwoTower
    from .select import BACKBONE_KEYS, candidate_groups
    from .select import select_inputs as choose_inputs

    histories = getattr(logs, "histories", logs)
    catalog = catalog if catalog is not None else getattr(logs, "catalog", None)
    data = from_user_histories(histories)
    split = make_split(data, protocol)
    domains = item_domains(data.item_ids, catalog)
    variants = VARIANTS if variants is None else variants
    cases = {(st, sg): split.case(st, sg, cold_events) for st in ("valid", "test") for sg in ("all", "cold")}
    meta: dict[str, Any] = {
        "users": data.n_users,
        "items": data.n_items,
        "events": int(sum(len(x) for x in data.items)),
        "protocol": protocol,
        "eval_users": {f"{k[0]}-{k[1]}": len(c.users) for k, c in cases.items()},
        "chosen": {},
        "seconds": {},
    }
    if isinstance(split, GlobalTimeSplit):
        meta["cuts"] = {"valid": split.valid_cut, "test": split.test_cut}
        meta["new_users"] = {st: split.counts(st)["new"] for st in ("valid", "test")}
    weights = {st: ItemWeights(cases[(st, "all")].fit) for st in ("valid", "test")}
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}

    def report(name: str, seg: str, ranked: np.ndarray, case: EvalCase) -> None:
        runs.setdefault((seg, name), []).append(summarize(ranked, case.targets, data.n_items, domains))

    def knn_score(stage: str, k: int, case: EvalCase) -> np.ndarray:
        """ItemKNN's scores from the stage's shared fits (the backbone choice reuses them)."""
        return np.asarray(
            (case.query.matrix() @ weights[stage].get("itemknn", k)).todense(), dtype=np.float32
        )

    # ---- baselines -------------------------------------------------------------------------
    t0 = time.perf_counter()
    for seg in ("all", "cold"):
        v, te = cases[("valid", seg)], cases[("test", seg)]
        report("popular", seg, rank(MostPopular().fit(te.fit).score(te.query), te.query, 20), te)
        best = max(
            knn_grid,
            key=lambda k: (_ndcg20(rank(knn_score("valid", k, v), v.query, 20), v.targets), -k),
        )
        meta["chosen"][f"itemknn-{seg}"] = {"k": best}
        hl = max(
            half_life_grid,
            key=lambda h: (
                _ndcg20(rank(RecentPopular(h).fit(v.fit).score(v.query), v.query, 20), v.targets),
                -h,
            ),
        )
        meta["chosen"][f"recent-popular-{seg}"] = {"half_life_days": hl}
        report("recent-popular", seg, rank(RecentPopular(hl).fit(te.fit).score(te.query), te.query, 20), te)
        report("itemknn", seg, rank(knn_score("test", best, te), te.query, 20), te)

        def ease_score(stage: str, lam: float, case: EvalCase) -> np.ndarray:
            return np.asarray(case.query.matrix() @ weights[stage].get("ease", lam), dtype=np.float32)

        lam = max(
            ease_grid, key=lambda x: (_ndcg20(rank(ease_score("valid", x, v), v.query, 20), v.targets), -x)
        )
        meta["chosen"][f"ease-{seg}"] = {"lambda": lam}
        report("ease", seg, rank(ease_score("test", lam, te), te.query, 20), te)
    lam_all = meta["chosen"]["ease-all"]["lambda"]
    v_all = cases[("valid", "all")]
    decay = max(
        decay_grid,
        key=lambda d: _ndcg20(
            rank(
                ItemItemBackbone(_sparse(weights["valid"].get("ease", lam_all)), d).score(v_all.query),
                v_all.query,
                20,
            ),
            v_all.targets,
        ),
    )
    meta["chosen"]["ease-recency"] = {"lambda": lam_all, "decay": decay}
    for seg in ("all", "cold"):
        te = cases[("test", seg)]
        bb = ItemItemBackbone(_sparse(weights["test"].get("ease", lam_all)), decay)
        report("ease-recency", seg, rank(bb.score(te.query), te.query, 20), te)
    # the two-tower's own backbone, chosen on valid as `interests train` chooses it
    sequential = bool(sasrec_grid) and (config or {}).get("backbone_sasrec", True)
    chosen_bb, bb_choice = choose_backbone(
        weights["valid"], v_all.query, v_all.targets, sequential=sequential, seed=seeds[0]
    )
    meta["chosen"]["backbone"] = bb_choice
    meta["seconds"]["baselines"] = round(time.perf_counter() - t0, 1)
    if sasrec_grid:
        t0 = time.perf_counter()
        for seed in seeds:
            meta["chosen"].setdefault("sasrec", []).append(
                _sasrec(cases, seed, sasrec_grid, report, weights, sasrec_refit)
            )
        meta["seconds"]["sasrec"] = round(time.perf_counter() - t0, 1)
    # a SASRec backbone: each seed's own (early-stopped on valid, refit on train + valid)
    bb_epochs = {
        seed: max(1, weights["valid"].sasrec(seed, valid=(v_all.query, v_all.targets)).train_log.best_epoch)
        for seed in (seeds if isinstance(chosen_bb, SequenceBackbone) else [])
    }
    for seg in ("all", "cold"):
        te = cases[("test", seg)]
        if isinstance(chosen_bb, SequenceBackbone):
            for seed, ep in bb_epochs.items():
                m = weights["test"].sasrec(seed, epochs=ep)
                report("backbone", seg, rank(m.score(te.query), te.query, 20), te)
        else:
            bb = ItemItemBackbone.fit(
                te.fit, chosen_bb.kind, chosen_bb.param, chosen_bb.decay, weights=weights["test"]
            )
            report("backbone", seg, rank(bb.score(te.query), te.query, 20), te)

    # ---- profiles and taxonomies per stage (built once, shared by seeds and variants) ------
    prof: dict[str, Mapping[str, InterestProfile]] = {}
    tax: dict[str, Any] = {}
    if profiles is not None:
        from interests.events import UserHistory

        for stage in ("valid", "test"):
            ends = split.ends(stage)
            cut = {
                u: UserHistory(u, histories[u].events[: int(e)])
                for u, e in zip(data.user_ids, ends, strict=True)
            }
            key = stage if protocol == "last" else f"{protocol}-{stage}"  # each protocol's own cache
            prof[stage] = profiles(key, cut)
            cold = {
                data.user_ids[u]: UserHistory(data.user_ids[u], cut[data.user_ids[u]].events[-cold_events:])
                for u in cases[(stage, "cold")].users
            }
            prof[f"{stage}-cold"] = profiles(f"{key}-cold", cold)
            if taxonomy is not None and prof[stage]:
                tax[stage] = taxonomy(key, prof[stage])
    meta["profiles"] = {k: len(v) for k, v in prof.items()}

    # ---- the two-tower and its ablations -----------------------------------------------------
    item_bb = chosen_bb if isinstance(chosen_bb, ItemItemBackbone) else None
    base_cfg = {
        "ease_lambda": item_bb.param if item_bb and item_bb.kind == "ease" else lam_all,
        "knn_k": int(item_bb.param) if item_bb and item_bb.kind == "itemknn" else 100,
        "backbone_kind": chosen_bb.kind,
        "recency_decay": item_bb.decay if item_bb else decay,
        "sasrec_epochs": 20,
        **(config or {}),
    }
    assert set(BACKBONE_KEYS) <= set(base_cfg)
    for name, over in variants.items():
        t1 = time.perf_counter()
        for seed in seeds:
            cfg = {**base_cfg, **over, "seed": seed, "fusion": None}
            if seed in bb_epochs:
                cfg["sasrec_epochs"] = bb_epochs[seed]
            v, vc = cases[("valid", "all")], cases[("valid", "cold")]
            valid_map = {
                v.fit.user_ids[u]: [data.item_ids[i] for i in t]
                for u, t in zip(v.users, v.targets, strict=True)
            }
            use_b = cfg.get("backbone", True)

            def fit_candidate(
                off: dict[str, bool],
                cfg: dict[str, Any] = cfg,
                v: EvalCase = v,
                valid_map: dict[str, list[str]] = valid_map,
            ) -> Any:
                """The variant fitted on valid, with the input groups in ``off`` switched off."""
                return TwoTower(**{**cfg, **off}).fit(
                    v.fit,
                    catalog=catalog,
                    profiles=prof.get("valid"),
                    taxonomy=tax.get("valid"),
                    valid=valid_map,
                    item_weights=weights["valid"],
                )

            m = fit_candidate({})
            inputs = None
            groups = candidate_groups(
                m.config,
                profiles=bool(prof.get("valid")),
                taxonomy=tax.get("valid") is not None,
                text=catalog is not None,
            )
            if select_inputs and name == "two-tower" and len(groups) > 1:

                def per_user(mm: Any, v: EvalCase = v) -> np.ndarray:
                    return user_ndcg(mm.score(v.query, profiles=prof.get("valid")), v.query, v.targets)

                m, off, inputs = choose_inputs(fit_candidate, per_user, groups, full=m)
                cfg = {**cfg, **off}
            epochs = max(1, m.train_log.best_epoch)
            fusion = {"all": m.config.fusion}
            picks = {"all": m.fusion_choice}
            if use_b:
                m.tune_fusion(vc.query, vc.targets, profiles=prof.get("valid-cold"))
                fusion["cold"] = m.config.fusion
                picks["cold"] = m.fusion_choice
            te = cases[("test", "all")]
            cfg_t = {**cfg, "fusion": fusion["all"]}
            mt = TwoTower(**cfg_t).fit(
                te.fit,
                catalog=catalog,
                profiles=prof.get("test"),
                taxonomy=tax.get("test"),
                item_weights=weights["test"],
                epochs=epochs,
            )
            for seg in ("all", "cold"):
                case = cases[("test", seg)]
                mt.config.fusion = fusion.get(seg, fusion["all"])
                p = prof.get("test") if seg == "all" else prof.get("test-cold")
                report(name, seg, rank(mt.score(case.query, profiles=p), case.query, 20), case)
                pick = picks.get(seg)
                if argmax_rows and pick is not None:
                    mt.config.fusion = pick["best"]
                    ranked = rank(mt.score(case.query, profiles=p), case.query, 20)
                    report(f"{name} (argmax)", seg, ranked, case)
            meta["chosen"].setdefault(name, []).append(
                {
                    "seed": seed,
                    "epochs": epochs,
                    "fusion": fusion,
                    "fusion_choice": picks,
                    **({"inputs": inputs} if inputs is not None else {}),
                    "train_seconds": round(mt.train_log.seconds, 1),
                }
            )
            log.info("%s seed %s: epochs %s fusion %s", name, seed, epochs, fusion)
        meta["seconds"][name] = round(time.perf_counter() - t1, 1)

    table: dict[str, dict[str, dict[str, float]]] = {"all": {}, "cold": {}}
    for (seg, name), rs in runs.items():
        keys = list(rs[0])
        row = {k: round(float(np.mean([r[k] for r in rs])), 5) for k in keys}
        if len(rs) > 1:
            row |= {f"{k}_std": round(float(np.std([r[k] for r in rs])), 5) for k in keys}
        table[seg][name] = row
    return EvalResult(table, meta)


def _sasrec(
    cases: Mapping[tuple[str, str], EvalCase],
    seed: int,
    grid: Sequence[Mapping[str, Any]],
    report: Callable[[str, str, np.ndarray, EvalCase], None],
    weights: Mapping[str, ItemWeights],
    refit: bool = True,
) -> dict[str, Any]:
    """One seed of SASRec: each grid config early-stopped on valid, the best refit and scored on test.

    Fits go through each stage's :class:`ItemWeights`, so a SASRec backbone of the two-tower with the
    same seed and epochs is this very model.
    """
    v = cases[("valid", "all")]
    fits = []
    for over in grid:
        m = weights["valid"].sasrec(seed, valid=(v.query, v.targets), config=dict(over))
        fits.append((m.train_log.best_valid or 0.0, m.train_log.best_epoch, dict(over), m))
        log.info("sasrec %s seed %s: valid %.4f at epoch %d", over, seed, fits[-1][0], fits[-1][1])
    best_valid, epochs, over, m = max(fits, key=lambda f: f[0])
    if refit:
        m = weights["test"].sasrec(seed, epochs=max(1, epochs), config=over)
    for seg in ("all", "cold"):
        case = cases[("test", seg)]
        report("sasrec", seg, rank(m.score(case.query), case.query, 20), case)
    return {
        "seed": seed,
        "config": over,
        "epochs": epochs,
        "valid_ndcg@20": round(best_valid, 5),
        "refit": refit,
        "train_seconds": round(m.train_log.seconds, 1),
    }


def _sparse(b: np.ndarray) -> Any:
    from .backbone import prune_columns

    return prune_columns(b, 500)


__all__ = ["VARIANTS", "EvalResult", "ProfileSource", "TaxonomySource", "evaluate"]
