"""``interests context`` measured: within the tokenizer's count at every budget, top domain kept, time.

Profiles are made without a model (``update_profiles(llm=False)``: the data's
groups, computed names and summary, every statistic exact), for every user of
the example logs and for the first ``--ml-users`` users of ml-latest-small
(skipped when ``../shared/data`` is absent). Each profile is rendered at each
budget in each format with the embedded model's tokenizer (loaded once,
before the clock starts), and the result re-counted:

    python bench/context.py                      # writes bench/results/context.json, prints the table

"within budget": the share of users whose text the tokenizer counts at most
the budget (a ``ContextBudgetError`` counts as not within); "top domain": the
share whose text holds the profile's top-weight domain line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ML = ROOT.parent / "shared" / "data" / "ml-latest-small"
BUDGETS = (64, 128, 256, 512)
FORMATS = ("text", "markdown", "json")


def profiles_of(logs: Any, folder: Path) -> list[Any]:
    from interests.profile.store import read_profiles
    from interests.profile.update import update_profiles

    out = folder / "profiles.jsonl"
    update_profiles(logs, profiles=out, llm=False)
    return read_profiles(out)


def datasets(ml_users: int, folder: Path) -> dict[str, list[Any]]:
    import interests

    found: dict[str, list[Any]] = {}
    ex = interests.read_logs(ROOT / "examples/logs/events.csv", catalog=ROOT / "examples/logs/catalog.jsonl")
    (folder / "examples").mkdir()
    found["examples"] = profiles_of(ex, folder / "examples")
    if ML.is_dir() and ml_users > 0:
        ml = interests.read_logs(
            ML / "ratings.csv",
            mapping="user=userId,item=movieId,time=timestamp,rating=rating",
            catalog=ML / "movies.csv",
            users=[str(u) for u in range(1, ml_users + 1)],
        )
        (folder / "ml").mkdir()
        found[f"ml-latest-small ({ml_users} users)"] = profiles_of(ml, folder / "ml")
    else:
        print(f"{ML} absent: ml-latest-small skipped", file=sys.stderr)
    return found


def measure(profiles: list[Any], count: Any, budget: int, fmt: str) -> dict[str, Any]:
    from interests.profile.context import ContextBudgetError, render_context

    within = top = 0
    seconds, kept = [], []
    for p in profiles:
        t0 = time.perf_counter()
        try:
            r = render_context(p, budget, format=fmt, tokenizer=count)
        except ContextBudgetError:
            seconds.append(time.perf_counter() - t0)
            continue
        seconds.append(time.perf_counter() - t0)
        within += count(r.text) <= budget
        name = max(p.domains, key=lambda d: d.weight).name
        present = json.loads(r.text)["domains"][0]["name"] == name if fmt == "json" else name in r.text
        top += present
        kept.append(r.lines_kept / r.lines_total)
    ms = [1000 * s for s in seconds]
    return {
        "budget": budget,
        "format": fmt,
        "users": len(profiles),
        "within_budget": within / len(profiles),
        "top_domain": top / len(profiles),
        "lines_kept": statistics.mean(kept) if kept else 0.0,
        "ms_median": statistics.median(ms),
        "ms_min": min(ms),
        "ms_max": max(ms),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ml-users", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/context.json")
    args = ap.parse_args()
    from interests.llm.tokens import TextTokens

    t0 = time.perf_counter()
    count = TextTokens()
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        data = datasets(args.ml_users, Path(tmp))
    rows = []
    for name, profiles in data.items():
        for fmt in FORMATS:
            for budget in BUDGETS:
                rows.append({"data": name, **measure(profiles, count, budget, fmt)})
    result = {"tokenizer": count.name, "tokenizer_load_s": round(load_s, 2), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"tokenizer {count.name}, loaded in {load_s:.1f} s (imports included)")
    print(
        "| data | format | budget | users | within budget | top domain present | lines kept "
        "| ms/user median (min-max) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['data']} | {r['format']} | {r['budget']} | {r['users']} | {r['within_budget']:.0%} "
            f"| {r['top_domain']:.0%} | {r['lines_kept']:.0%} "
            f"| {r['ms_median']:.1f} ({r['ms_min']:.1f}-{r['ms_max']:.1f}) |"
        )


if __name__ == "__main__":
    main()
