"""What ``interests update`` costs and whether its profiles are as good as a full re-extraction.

Both measures start from the profiles ``bench/recsys.py --profiles extract``
cached for the BENCHMARK.md split (``.cache/recsys/<dataset>-data/``):
``train/`` holds profiles of each user's train events, ``train+valid/`` a full
re-extraction on train + valid events.

    python bench/update.py cost --dataset amazon-gift-cards --subset 100   # 10% of 100 users get new events
    python bench/update.py quality --dataset amazon-gift-cards --seeds 0,1,2,3,4
    python bench/update.py decay --dataset amazon-gift-cards --seeds 0,1,2   # choose --half-life

``cost``: every user's profile at time T (train events; stamped once with
``update --no-llm`` so each records its events digest), then the valid
events of a random 10% of users arrive: ``update`` (real engine, started only
if some user needs words) against a full re-extraction of every user on the
same events with the same engine (engine start-up excluded from both, and
reported). ``quality``: the protocol run with the test-stage profiles made by
``update`` from the train profiles (every user's history grew) instead of the
``train+valid/`` re-extraction; compare with ``bench/results/recsys-<dataset>.json``.
``decay``: the valid-stage profiles re-weighted with each ``--half-lives`` value
(``update --no-llm --refresh``, no model) and the recommender's valid NDCG@20.
Results: ``bench/results/update-<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recsys import ROOT, load


def _cuts(logs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each user's train and train+valid histories (the protocol's cuts)."""
    from interests.events import UserHistory
    from interests.recsys.data import from_user_histories
    from interests.recsys.split import TemporalSplit

    data = from_user_histories(logs.histories)
    split = TemporalSplit.of(data)
    train, grown = {}, {}
    for u, a, b in zip(data.user_ids, split.n_train, split.n_train + split.n_valid, strict=True):
        ev = logs.histories[u].events
        train[u], grown[u] = UserHistory(u, ev[: int(a)]), UserHistory(u, ev[: int(b)])
    return train, grown


def _start_copy(cache: Path, dest: Path, train: Mapping[str, Any], catalog: Any) -> Path:
    """A copy of the train profiles with the item groups extract made for them."""
    from interests.profile.extract import run_groups

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    out = dest / "profiles.jsonl"
    with (cache / "train" / "profiles.jsonl").open(encoding="utf-8") as src, out.open("w") as dst:
        dst.writelines(line for line in src if json.loads(line)["user_id"] in train)
    groups = cache / "train" / "profiles.groups.json"
    if groups.is_file():
        shutil.copy(groups, dest / "profiles.groups.json")
    else:  # profiles cached before extract saved its groups: the same groups, made from the same events
        run_groups(out, train, catalog)
    return out


def cost(args: argparse.Namespace) -> dict[str, Any]:
    from interests.llm.vllm_local import VLLMBackend
    from interests.profile.extract import extract_profiles
    from interests.profile.update import update_profiles

    logs = load(args.dataset, args.sample_users)
    cache = ROOT / ".cache" / "recsys" / f"{args.dataset}-data"
    train, grown = _cuts(logs)
    rng = np.random.default_rng(0)
    if args.subset and args.subset < len(train):
        keep = set(rng.choice(sorted(train), size=args.subset, replace=False).tolist())
        train = {u: h for u, h in train.items() if u in keep}
    users = sorted(u for u in train if len(grown[u].events) > len(train[u].events))
    moved = set(rng.choice(users, size=max(1, round(args.share * len(train))), replace=False).tolist())
    now = {u: (grown[u] if u in moved else h) for u, h in train.items()}
    work = ROOT / ".cache" / "bench-update" / args.dataset
    out = _start_copy(cache, work / "update", train, logs.catalog)
    t = time.perf_counter()
    stamp = update_profiles(train, profiles=out, catalog=logs.catalog, llm=False)
    stamp_s = time.perf_counter() - t
    t = time.perf_counter()
    engine = VLLMBackend(args.model)
    engine.start()
    start_s = time.perf_counter() - t
    try:
        t = time.perf_counter()
        res = update_profiles(now, profiles=out, catalog=logs.catalog, backend=engine)
        update_s = time.perf_counter() - t
        full_out = work / "full" / "profiles.jsonl"
        if full_out.parent.exists():
            shutil.rmtree(full_out.parent)
        t = time.perf_counter()
        full = extract_profiles(now, catalog=logs.catalog, output=full_out, backend=engine)
        full_s = time.perf_counter() - t
    finally:
        engine.close()
    return {
        "dataset": args.dataset,
        "users": len(train),
        "users_with_new_events": len(moved),
        "stamp_no_llm": {"seconds": round(stamp_s, 2), "users": stamp.exact + stamp.new},
        "engine_start_seconds": round(start_s, 1),
        "update": {
            "seconds": round(update_s, 2),
            "unchanged": res.unchanged,
            "exact": res.exact,
            "llm": res.llm,
            "new": res.new,
            "errors": res.errors,
            "llm_calls_avoided": res.llm_calls_avoided,
            "reasons": res.reasons,
        },
        "full_reextraction": {"seconds": round(full_s, 2), "profiles": full.profiles, "errors": full.errors},
        "time_ratio_update_over_full": round(update_s / full_s, 4),
        "llm_users_update_over_full": round(res.llm / max(full.profiles + full.errors, 1), 4),
    }


def quality(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from interests.llm.vllm_local import VLLMBackend
    from interests.pipeline import cached_profiles, hashing_taxonomy
    from interests.profile.store import read_profiles
    from interests.profile.update import update_profiles
    from interests.recsys.evaluate import VARIANTS, evaluate

    torch.set_num_threads(1)
    logs = load(args.dataset, args.sample_users)
    cache = ROOT / ".cache" / "recsys" / f"{args.dataset}-data"
    train, _ = _cuts(logs)
    cached = cached_profiles(cache, catalog=logs.catalog)
    work = ROOT / ".cache" / "bench-update" / args.dataset / "quality"
    counts: dict[str, Any] = {}

    def source(key: str, histories: Mapping[str, Any]) -> Mapping[str, Any]:
        if key != "test":
            return cached(key, histories)
        out = _start_copy(cache, work, train, logs.catalog)
        t = time.perf_counter()
        res = update_profiles(
            dict(histories), profiles=out, catalog=logs.catalog, backend=lambda: VLLMBackend(args.model)
        )
        counts.update(res.to_dict(), seconds=round(time.perf_counter() - t, 1))
        return {p.user_id: p for p in read_profiles(out) if p.user_id in histories}

    seeds = [int(s) for s in args.seeds.split(",")]
    res = evaluate(
        logs,
        seeds=seeds,
        variants={v: VARIANTS[v] for v in ("two-tower",)},
        profiles=source,
        taxonomy=hashing_taxonomy(logs.catalog),
    )
    return {"dataset": args.dataset, "seeds": seeds, "update": counts, "table": res.table}


def decay(args: argparse.Namespace) -> dict[str, Any]:
    """Valid NDCG@20 of the recommender fed with train profiles re-weighted by each half-life (no LLM)."""
    import torch

    from interests.pipeline import hashing_taxonomy
    from interests.profile.store import read_profiles
    from interests.profile.update import update_profiles
    from interests.recsys.data import from_user_histories
    from interests.recsys.recommender import TwoTower
    from interests.recsys.split import TemporalSplit

    torch.set_num_threads(1)
    logs = load(args.dataset, args.sample_users)
    cache = ROOT / ".cache" / "recsys" / f"{args.dataset}-data"
    train, _ = _cuts(logs)
    data = from_user_histories(logs.histories)
    v = TemporalSplit.of(data).case("valid", "all")
    valid_map = {
        v.fit.user_ids[u]: [data.item_ids[i] for i in t] for u, t in zip(v.users, v.targets, strict=True)
    }
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: dict[str, Any] = {}
    for h in [None, *(float(x) for x in args.half_lives.split(","))]:
        work = ROOT / ".cache" / "bench-update" / args.dataset / "decay"
        out = _start_copy(cache, work, train, logs.catalog)
        update_profiles(train, profiles=out, catalog=logs.catalog, llm=False, refresh=True, half_life_days=h)
        profiles = {p.user_id: p for p in read_profiles(out)}
        taxonomy = hashing_taxonomy(logs.catalog)("valid", profiles)
        scores = []
        for seed in seeds:
            m = TwoTower(seed=seed).fit(
                v.fit, catalog=logs.catalog, profiles=profiles, taxonomy=taxonomy, valid=valid_map
            )
            scores.append(float(m.train_log.best_valid or 0.0))
        rows["none" if h is None else f"{h:g}"] = {
            "valid_ndcg@20": round(float(np.mean(scores)), 5),
            "std": round(float(np.std(scores)), 5),
            "per_seed": [round(x, 5) for x in scores],
        }
        logging.info("half-life %s: %s", h, rows["none" if h is None else f"{h:g}"])
    return {"dataset": args.dataset, "seeds": seeds, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["cost", "quality", "decay"])
    ap.add_argument("--dataset", default="amazon-gift-cards")
    ap.add_argument("--sample-users", type=int, default=None)
    ap.add_argument("--share", type=float, default=0.1, help="share of users whose new events arrive (cost)")
    ap.add_argument("--subset", type=int, default=None, help="cost: only N random users of the data set")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--model", default=None)
    ap.add_argument("--half-lives", default="30,90,365", help="half-lives in days to compare (decay)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = {"cost": cost, "quality": quality, "decay": decay}[args.what](args)
    tag = f"-sample{args.sample_users}" if args.sample_users else ""
    out = Path(args.out or ROOT / "bench" / "results" / f"update-{args.dataset}{tag}.json")
    previous = json.loads(out.read_text()) if out.is_file() else {}
    previous[args.what] = result
    out.write_text(json.dumps(previous, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
