"""Data-parallel training on Ray Train against the single-process loop, on ml-latest-small.

    python bench/train_workers.py [--dataset ml-latest-small] [--epochs 15] [--seeds 0,1,2]
                                  [--modes single,ray1,ray2] [--sample-users N]

The BENCHMARK.md protocol's test case: the network is trained on every
user's train + valid events for a fixed ``--epochs`` (no early stopping, so
every mode does the same work), then scores the test events (NDCG@20 of the
tower alone: no EASE backbone, so the number is the trained network's).

* ``single``: the in-process loop (torch with every core of the machine);
* ``ray1``: one Ray Train worker asking for every CPU (the same cores);
* ``ray2``: two workers, the CPUs split between them (DDP over gloo).

Per run: the median seconds per epoch (training only), the first epoch apart
(it warms up), the start-up (everything before the first epoch: cluster,
workers, shipping the data), the whole call, and test NDCG@20. On a 2-core
machine two workers share the same cores as one: the ray2 row measures
what data parallelism costs (communication, smaller per-worker batches), not
the speed-up several machines give. Writes
``bench/results/train_workers-<dataset>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def run(mode: str, case: Any, catalog: Any, epochs: int, seed: int) -> dict[str, Any]:
    import numpy as np

    from interests.recsys import TwoTower
    from interests.recsys.baselines import rank
    from interests.recsys.metrics import ndcg_at_k
    from interests.scale import RayTraining

    cpus = os.cpu_count() or 2
    spec = {
        "single": None,
        "ray1": RayTraining(workers=1, cpus_per_worker=cpus),
        "ray2": RayTraining(workers=2, cpus_per_worker=max(1, cpus // 2)),
    }[mode]
    t0 = time.perf_counter()
    model = TwoTower(seed=seed, backbone=False, fusion=1.0).fit(
        case.fit, catalog=catalog, epochs=epochs, distributed=spec
    )
    total = time.perf_counter() - t0
    q = case.fit.take(case.users)
    ranked = rank(model.score(q), q, 20)
    ndcg = float(np.mean([ndcg_at_k(r, t, 20) for r, t in zip(ranked, case.targets, strict=True)]))
    es = model.train_log.epoch_seconds
    return {
        "mode": mode,
        "seed": seed,
        "epochs": len(es),
        "epoch_s_median": statistics.median(es[1:] or es),
        "epoch_s_min": min(es[1:] or es),
        "epoch_s_max": max(es[1:] or es),
        "first_epoch_s": es[0],
        "startup_s": total - sum(es),
        "total_s": total,
        "test_ndcg20": ndcg,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument("--sample-users", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--modes", default="single,ray1,ray2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import ray

    from interests.recsys import from_user_histories
    from interests.recsys.split import TemporalSplit
    from recsys import load  # bench/recsys.py

    logs = load(args.dataset, args.sample_users)
    data = from_user_histories(logs.histories)
    case = TemporalSplit.of(data).case("test")
    cpus = os.cpu_count() or 2
    local = {"include_dashboard": False, "log_to_driver": False, "_system_config": {"worker_niceness": 0}}
    ray.init(num_cpus=cpus, **local)
    rows = []
    try:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for mode in args.modes.split(","):
                r = run(mode, case, logs.catalog, args.epochs, seed)
                print(json.dumps(r), flush=True)
                rows.append(r)
    finally:
        ray.shutdown()

    out = Path(args.out or ROOT / "bench" / "results" / f"train_workers-{args.dataset}.json")
    meta = {
        "dataset": args.dataset,
        "users": data.n_users,
        "items": data.n_items,
        "events": int(sum(len(x) for x in data.items)),
        "epochs": args.epochs,
        "cpus": cpus,
        "cpu": _cpu(),
    }
    out.write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    lines = [
        f"### {args.dataset}: {meta['users']} users, {meta['events']} events, {args.epochs} epochs, "
        f"{cpus} CPUs ({meta['cpu']})",
        "",
        "| mode | seconds/epoch, median (min-max) | first epoch s | start-up s | whole call s | "
        "test NDCG@20 (tower alone) |",
        "|---|---|---|---|---|---|",
    ]
    for mode in args.modes.split(","):
        rs = [r for r in rows if r["mode"] == mode]
        ep = [r["epoch_s_median"] for r in rs]
        nd = [r["test_ndcg20"] for r in rs]
        sd = statistics.stdev(nd) if len(nd) > 1 else 0.0
        first = statistics.median(r["first_epoch_s"] for r in rs)
        lines.append(
            f"| {mode} | {statistics.median(ep):.2f} ({min(r['epoch_s_min'] for r in rs):.2f}-"
            f"{max(r['epoch_s_max'] for r in rs):.2f}) | {first:.2f} "
            f"| {statistics.median(r['startup_s'] for r in rs):.1f} | "
            f"{statistics.median(r['total_s'] for r in rs):.1f} | {statistics.mean(nd):.4f} ± {sd:.4f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
    return name + (", AVX-512" if "avx512f" in text else ", AVX2" if "avx2" in text else "")


if __name__ == "__main__":
    main()
