"""Steering and exploration benchmark (issue #15) on the BENCHMARK.md test split.

    python bench/steer.py                         # ml-latest-small, seed 0
    python bench/steer.py --seeds 0,1,2           # mean and spread over seeds

The model is the two-tower as ``interests train`` ships it (fused with the
EASE backbone), trained on every user's train + valid events with the epoch
count and fusion weight that ``bench/recsys.py`` chose on valid for this data
set (``--epochs``, ``--fusion``); test events are scored once. Without a
taxonomy the hierarchy is the catalogue's: every MovieLens genre of a film is a
node to steer to, and each film's first genre is its domain for exploration.

**Steering.** For every test user and every genre among that user's test
films: the steered list (``recommend(domains=genre)``: the model's top 20
inside the genre) against the unsteered top 20 filtered to the genre (the
post-hoc alternative). Precision: share of the 20 slots in the genre.
NDCG@20 / Recall@20: against the user's test films in that genre. Mix:
two genres at 50/50 (the user's two most frequent test genres), the share
each gets.

**Exploration.** Users whose test films include a domain (first genre)
absent from their train + valid history. Hit rate: an explore slot names one
of those new domains; against a random unseen domain (its exact expectation)
and the most popular unseen domain (most training users). Cost: NDCG@20 over
every test user of the list whose last N slots explore, against the plain list.

Writes ``bench/results/steer-<dataset>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from math import comb
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from recsys import DATASETS  # noqa: E402
from recsys import load as load_sample  # noqa: E402

K = 20


def run_seed(logs, seed: int, epochs: int, fusion: float, explore_ns: list[int]) -> dict:  # type: ignore[no-untyped-def]
    from interests.recsys import TwoTower
    from interests.recsys.data import from_user_histories
    from interests.recsys.lists import steered_row
    from interests.recsys.metrics import ndcg_at_k, recall_at_k, top_k
    from interests.recsys.split import TemporalSplit
    from interests.recsys.steer import Resolved, Steering

    data = from_user_histories(logs.histories)
    case = TemporalSplit.of(data).case("test")
    t0 = time.perf_counter()
    model = TwoTower(epochs=epochs, fusion=fusion, seed=seed).fit(case.fit, catalog=logs.catalog).state
    train_s = time.perf_counter() - t0
    index = model.node_index
    cats = model.categories
    assert cats is not None and cats.names, "the catalogue lists no categories"
    members = {g: index.resolve(g, ("category",)).members for g in cats.names}
    query = case.query
    scores = model.score(query, feats=model.feats.take(case.users))
    for r, items in enumerate(query.items):
        scores[r, items] = -np.inf
    plain = top_k(scores, K)

    # ---- steering --------------------------------------------------------------------------------
    rows = []  # (genre, precision steered, precision plain, ndcg steered, ndcg filtered, recall s, recall f)
    mix_err = []
    t0 = time.perf_counter()
    for r, targets in enumerate(case.targets):
        genres = [g for g in cats.names if members[g][targets].any()]
        for g in genres:
            tg = targets[members[g][targets]]
            steer = Resolved.of(Steering.of(domains=g), index)
            picks = steered_row(model, scores[r], query.items[r], None, K, steer=steer)
            steered = np.array([p.item for p in picks], dtype=np.int64)
            filt = plain[r][members[g][plain[r]]]
            rows.append(
                (
                    g,
                    float(members[g][steered].mean()) if len(steered) else 0.0,
                    float(members[g][plain[r]].mean()),
                    ndcg_at_k(steered, tg, K),
                    ndcg_at_k(filt, tg, K),
                    recall_at_k(steered, tg, K),
                    recall_at_k(filt, tg, K),
                )
            )
        counts = sorted(((int(members[g][targets].sum()), g) for g in genres), reverse=True)
        if len(counts) >= 2:
            a, b = counts[0][1], counts[1][1]
            steer = Resolved.of(Steering.of(mix={a: 0.5, b: 0.5}), index)
            picks = steered_row(model, scores[r], query.items[r], None, K, steer=steer)
            got = sum(p.node == a for p in picks) / max(len(picks), 1)
            mix_err.append(abs(got - 0.5))
    steer_s = time.perf_counter() - t0
    arr = np.array([x[1:] for x in rows], dtype=np.float64)
    steering = {
        "pairs": len(rows),
        "users": len(case.targets),
        "precision@20": {"steered": arr[:, 0].mean(), "unsteered": arr[:, 1].mean()},
        "ndcg@20": {"steered": arr[:, 2].mean(), "filtered": arr[:, 3].mean()},
        "recall@20": {"steered": arr[:, 4].mean(), "filtered": arr[:, 5].mean()},
        "filtered_list_length": float(arr[:, 1].mean() * K),
        "mix_50_50_abs_share_error": float(np.mean(mix_err)) if mix_err else None,
        "mix_users": len(mix_err),
        "seconds_per_list": steer_s / max(len(rows) + len(mix_err), 1),
    }
    per_genre = {}
    for g in cats.names:
        sel = np.array([x[0] == g for x in rows])
        if sel.sum() >= 20:
            per_genre[g] = {
                "pairs": int(sel.sum()),
                "precision_unsteered": float(arr[sel, 1].mean()),
                "ndcg_steered": float(arr[sel, 2].mean()),
                "ndcg_filtered": float(arr[sel, 3].mean()),
            }
    steering["per_genre"] = per_genre

    # ---- exploration -----------------------------------------------------------------------------
    dom, names = model.explore_domains()
    D = len(names)
    tr = model.explore_transitions()
    pop_order = np.argsort(-tr.users, kind="stable")
    base_ndcg = [ndcg_at_k(plain[r], t, K) for r, t in enumerate(case.targets)]
    explore: dict = {"domains": D, "ns": {}}
    for n in explore_ns:
        hits = {"explore": [], "random": [], "popular": [], "explore_item": []}
        ndcgs = []
        for r, targets in enumerate(case.targets):
            picks = steered_row(
                model,
                scores[r],
                query.items[r],
                model.feats.take([case.users[r]]),
                K,
                steer=Resolved([], [], []),
                explore=n,
            )
            ranked = np.array([p.item for p in picks], dtype=np.int64)
            ndcgs.append(ndcg_at_k(ranked, targets, K))
            touched = np.zeros(D, dtype=bool)
            hd = dom[query.items[r]]
            touched[hd[hd >= 0]] = True
            td = dom[targets]
            new = set(td[(td >= 0) & ~touched[np.maximum(td, 0)]].tolist())
            if not new:
                continue
            avail = np.isfinite(scores[r]) & (dom >= 0)
            offerable = (~touched) & (np.bincount(dom[avail], minlength=D) > 0)
            shown = [p.domain for p in picks if p.source == "exploration"]
            hits["explore"].append(float(bool(new & set(shown))))
            hits["explore_item"].append(
                float(bool(set(p.item for p in picks if p.source == "exploration") & set(targets.tolist())))
            )
            U = int(offerable.sum())
            h = len(new & set(np.flatnonzero(offerable).tolist()))
            m = min(n, U)
            hits["random"].append(1.0 - comb(U - h, m) / comb(U, m) if U else 0.0)
            pop = [d for d in pop_order.tolist() if offerable[d]][:n]
            hits["popular"].append(float(bool(new & set(pop))))
        explore["ns"][str(n)] = {
            "eligible_users": len(hits["explore"]),
            "hit_rate": {k: float(np.mean(v)) for k, v in hits.items()},
            "ndcg@20": {"explore": float(np.mean(ndcgs)), "plain": float(np.mean(base_ndcg))},
        }
    return {"seed": seed, "train_seconds": train_s, "steering": steering, "exploration": explore}


def summarise(runs: list[dict]) -> dict:
    def ms(get) -> list[float]:  # type: ignore[no-untyped-def]
        v = np.array([get(r) for r in runs], dtype=np.float64)
        return [float(v.mean()), float(v.std(ddof=0))]

    out = {
        "steering": {
            f"{m}.{s}": ms(lambda r, m=m, s=s: r["steering"][m][s])
            for m, s in [
                ("precision@20", "steered"),
                ("precision@20", "unsteered"),
                ("ndcg@20", "steered"),
                ("ndcg@20", "filtered"),
                ("recall@20", "steered"),
                ("recall@20", "filtered"),
            ]
        },
        "exploration": {},
    }
    out["steering"]["mix_50_50_abs_share_error"] = ms(lambda r: r["steering"]["mix_50_50_abs_share_error"])
    for n in runs[0]["exploration"]["ns"]:
        row = {}
        for k in ("explore", "random", "popular", "explore_item"):
            row[f"hit.{k}"] = ms(lambda r, n=n, k=k: r["exploration"]["ns"][n]["hit_rate"][k])
        row["ndcg@20.explore"] = ms(lambda r, n=n: r["exploration"]["ns"][n]["ndcg@20"]["explore"])
        row["ndcg@20.plain"] = ms(lambda r, n=n: r["exploration"]["ns"][n]["ndcg@20"]["plain"])
        row["eligible_users"] = runs[0]["exploration"]["ns"][n]["eligible_users"]
        out["exploration"][n] = row
    return out


def markdown(dataset: str, summary: dict, runs: list[dict], cmd: str) -> str:
    def f(x: list[float]) -> str:
        return f"{x[0]:.4f} ± {x[1]:.4f}" if len(runs) > 1 else f"{x[0]:.4f}"

    s = summary["steering"]
    st = runs[0]["steering"]
    lines = [
        f"# Steering and exploration: {dataset}",
        "",
        f"`{cmd}`; seeds {', '.join(str(r['seed']) for r in runs)} (mean ± std over seeds).",
        "",
        f"Steering: {st['pairs']} (user, genre) pairs of {st['users']} test users.",
        "",
        "| list | precision@20 | NDCG@20 (node's test events) | Recall@20 |",
        "|---|---|---|---|",
        f"| steered (`--domain GENRE`) | {f(s['precision@20.steered'])} | {f(s['ndcg@20.steered'])} | "
        f"{f(s['recall@20.steered'])} |",
        f"| unsteered top 20, filtered to the genre | {f(s['precision@20.unsteered'])} | "
        f"{f(s['ndcg@20.filtered'])} | {f(s['recall@20.filtered'])} |",
        "",
        f"Mix 50/50 of each user's two main test genres ({st['mix_users']} users): mean |share - 0.5| "
        f"{f(s['mix_50_50_abs_share_error'])}.",
        "",
        "| explore slots | eligible users | hit: explore | hit: random unseen | hit: most popular unseen "
        "| explore item in test | NDCG@20 with slots | NDCG@20 plain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, row in summary["exploration"].items():
        lines.append(
            f"| {n} | {row['eligible_users']} | {f(row['hit.explore'])} | {f(row['hit.random'])} | "
            f"{f(row['hit.popular'])} | {f(row['hit.explore_item'])} | {f(row['ndcg@20.explore'])} | "
            f"{f(row['ndcg@20.plain'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ml-latest-small", choices=sorted(DATASETS))
    ap.add_argument("--seeds", default="0")
    ap.add_argument(
        "--epochs", type=int, default=11, help="bench/recsys.py's valid choice on ml-latest-small"
    )
    ap.add_argument("--fusion", type=float, default=0.8, help="bench/recsys.py's valid choice (all segment)")
    ap.add_argument("--explore", default="1,2,3", help="explore slot counts to measure")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument(
        "--sample-users", type=int, default=None, help="only this many random users (a smoke run)"
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="only summarise the runs of earlier result files (seeds run as separate processes)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    runs = []
    if args.merge:
        for f in args.merge:
            runs += json.loads(Path(f).read_text())["runs"]
        runs.sort(key=lambda r: r["seed"])
        args.seeds = ""
    logs = load_sample(args.dataset, args.sample_users) if args.seeds else None
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        res = run_seed(logs, seed, args.epochs, args.fusion, [int(n) for n in args.explore.split(",")])
        print(
            json.dumps(
                {k: v for k, v in res.items() if k != "steering"}
                | {"steering": {k: v for k, v in res["steering"].items() if k != "per_genre"}},
                indent=1,
            ),
            flush=True,
        )
        runs.append(res)
    summary = summarise(runs)
    cmd = "python bench/steer.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"steer-{args.dataset}" + (f"-sample{args.sample_users}" if args.sample_users else "")
    (out / f"{stem}.json").write_text(
        json.dumps({"summary": summary, "runs": runs, "command": cmd}, indent=1)
    )
    md = markdown(args.dataset, summary, runs, cmd.strip())
    (out / f"{stem}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
