"""Recommendation benchmark (BENCHMARK.md protocol): two-tower vs SASRec, EASE, ItemKNN, popularity.

    python bench/recsys.py                                  # ml-latest-small, no LLM profiles
    python bench/recsys.py --dataset amazon-gift-cards
    python bench/recsys.py --profiles extract               # extract (or reuse) profiles, build taxonomies
    python bench/recsys.py --profiles cached                # only profiles already under .cache/recsys/
    python bench/recsys.py --profiles extract --sample-users 200   # the profile ablation on 200 random users

Writes ``bench/results/recsys-<dataset>.json`` (``{segment: {model: metrics}}``,
the same object ``interests evaluate --json`` prints), a ``.meta.json`` with the
chosen hyper-parameters, timings and speed numbers, and a Markdown table
``recsys-<dataset>.md``. Profiles come from ``interests.extract_profiles`` on
exactly the events the protocol allows (train; train+valid; each user's 3
most recent events for the cold segment) and are cached under
``.cache/recsys/<dataset>-data/<split>/profiles.jsonl`` (``--structure data``, the
default; ``<dataset>/`` for ``--structure model``); extraction is resumable,
so a re-run only extracts users whose profile is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    "ml-latest-small": ("ratings.csv", "user=userId,item=movieId,time=timestamp,rating=rating", "movies.csv"),
    "amazon-gift-cards": (
        "Gift_Cards_5.json.gz",
        "user=reviewerID,item=asin,time=unixReviewTime,rating=overall,text=summary+reviewText",
        "meta_Gift_Cards.json.gz",
    ),
}
METRICS = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@20", "diversity@20"]


def data_dir() -> Path:
    return Path(os.environ.get("INTERESTS_DATA_DIR") or ROOT.parent / "shared" / "data")


def load(dataset: str, sample_users: int | None = None):  # type: ignore[no-untyped-def]
    """The data set; with ``sample_users`` only that many users, drawn at random (seed 0), with all
    their events (the per-user split makes each user's cuts, and so their cached profiles, the same
    as in the whole data set)."""
    from interests.ingest import read_logs

    logs_file, mapping, catalog = DATASETS[dataset]
    d = data_dir() / dataset
    logs = read_logs(d / logs_file, mapping=mapping, catalog=d / catalog)
    if sample_users is None or sample_users >= len(logs.histories):
        return logs
    users = sorted(logs.histories)
    keep = np.random.default_rng(0).choice(len(users), size=sample_users, replace=False)
    return read_logs(
        d / logs_file, mapping=mapping, catalog=logs.catalog, users=[users[i] for i in sorted(keep)]
    )


def speed(logs) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """What `interests train` costs on the whole log, single-user latency (p50/p95), batch throughput."""
    from interests.recsys import fit_two_tower

    t = time.perf_counter()
    model = fit_two_tower(logs, seed=0)  # holdout run picks epochs + fusion, then refits on everything
    train_s = time.perf_counter() - t
    users = list(logs.histories)
    model.recommend(users[0], k=20)  # warm-up (item vectors cached)
    rng = np.random.default_rng(0)
    lat = []
    for u in rng.choice(users, size=min(300, len(users)), replace=False):
        t = time.perf_counter()
        model.recommend(str(u), k=20)
        lat.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    for b in range(0, len(users), 256):
        model.recommend(users[b : b + 256], k=20)
    batch_s = time.perf_counter() - t
    return {
        "train_seconds": round(train_s, 1),
        "train_epochs": model.train_log.epochs,
        "recommend_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "recommend_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "batch_users_per_s": round(len(users) / batch_s, 1),
        "items": model.config.n_items,
        "threads": int(os.environ.get("OMP_NUM_THREADS", "1")),
    }


def markdown(dataset: str, table: dict, meta: dict) -> str:
    seeds = len(meta.get("seeds", [])) or "the"
    lines = [f"### {dataset}", ""]
    for seg in ("all", "cold"):
        lines += [
            f"Segment `{seg}` (test, mean over seeds; ± is the std over {seeds} seeds)",
            "",
            "| model | " + " | ".join(METRICS) + " |",
            "|---|" + "---|" * len(METRICS),
        ]
        for name, row in table[seg].items():
            cells = []
            for m in METRICS:
                v = row.get(m)
                sd = row.get(f"{m}_std")
                cells.append("" if v is None else f"{v:.4f}" + (f" ± {sd:.4f}" if sd is not None else ""))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def sasrec_grid(spec: str) -> list[dict[str, float]] | None:
    """``"dim=64,dropout=0.2;dim=64,dropout=0.5"`` -> SASRecConfig overrides; ``"none"`` -> None."""
    if spec.strip().lower() == "none":
        return None
    out = []
    for part in spec.split(";"):
        kv = dict(x.split("=", 1) for x in part.split(",") if x.strip())
        out.append({k.strip(): int(v) if v.strip().isdigit() else float(v) for k, v in kv.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    from interests.pipeline import cached_profiles, hashing_taxonomy
    from interests.recsys.evaluate import VARIANTS, evaluate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ml-latest-small", choices=sorted(DATASETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS)
    )
    ap.add_argument("--profiles", default="cached", choices=["none", "cached", "extract"])
    ap.add_argument(
        "--structure",
        default="data",
        choices=["data", "model"],
        help="how the profiles are grouped (each has its own cache, never reused for the other)",
    )
    ap.add_argument(
        "--limit-users", type=int, default=None, help="extract profiles for at most N users per split"
    )
    ap.add_argument(
        "--sample-users",
        type=int,
        default=None,
        help="evaluate on N random users (seed 0) with all their events: a cheaper profile ablation",
    )
    ap.add_argument(
        "--sasrec",
        default="dim=64,dropout=0.2",
        help="SASRec configs tried on valid, ';'-separated, each k=v,k=v (SASRecConfig fields); 'none' skips",
    )
    ap.add_argument(
        "--sasrec-no-refit",
        action="store_true",
        help="score SASRec's test from the model early-stopped on valid (no refit on train+valid; cheaper)",
    )
    ap.add_argument(
        "--argmax-rows",
        action="store_true",
        help="also report each fused two-tower with the plain valid-argmax fusion (the rule before #15)",
    )
    ap.add_argument(
        "--protocol", default="last", choices=["last", "time"], help="leave-last-out or one global cut time"
    )
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="only measure speed (merged into .meta.json)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    logs = load(args.dataset, args.sample_users)
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"recsys-{args.dataset}.json"
    if args.speed_only:
        meta_path = out.with_suffix(".meta.json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        meta["speed"] = speed(logs)
        meta_path.write_text(json.dumps(meta, indent=1, default=str) + "\n")
        print(json.dumps(meta["speed"]))
        return 0
    # free-grouping profiles (made before structure "data" existed) stay where they were
    cache = (
        ROOT / ".cache" / "recsys" / (args.dataset if args.structure == "model" else f"{args.dataset}-data")
    )
    prof = (
        None
        if args.profiles == "none"
        else cached_profiles(
            cache,
            extract=args.profiles == "extract",
            catalog=logs.catalog,
            limit=args.limit_users,
            structure=args.structure,
        )
    )
    t = time.perf_counter()
    res = evaluate(
        logs,
        seeds=[int(s) for s in args.seeds.split(",")],
        variants={v: VARIANTS[v] for v in args.variants.split(",")},
        profiles=prof,
        taxonomy=hashing_taxonomy(logs.catalog) if prof else None,
        sasrec_grid=sasrec_grid(args.sasrec),
        argmax_rows=args.argmax_rows,
        sasrec_refit=not args.sasrec_no_refit,
        protocol=args.protocol,
    )
    res.meta["seconds"]["total"] = round(time.perf_counter() - t, 1)
    res.meta["seeds"] = [int(s) for s in args.seeds.split(",")]
    res.meta["sample_users"] = args.sample_users
    res.meta["structure"] = args.structure if prof else None
    res.meta["profiles_source"] = args.profiles
    if not args.no_speed:
        res.meta["speed"] = speed(logs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res.table, indent=1) + "\n")
    out.with_suffix(".meta.json").write_text(json.dumps(res.meta, indent=1, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(args.dataset, res.table, res.meta) + "\n")
    print(json.dumps(res.table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
