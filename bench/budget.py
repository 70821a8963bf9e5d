"""Prompt budget for long histories: profile quality against tokens spent, by ``max_items``.

    python bench/budget.py [--users 12] [--max-items 15,30,60]

The first N users of ml-latest-small (read through the normal ingestion
path) are extracted in-process once per ``max_items`` setting, each run
starting with an empty prefix cache. For every setting it reports prompt
tokens and engine seconds per user against what the profile keeps:

- ``top3_recall``: share of each user's three most frequent categories over
  the *whole* history (not only the items shown) named by a domain or topic;
- ``items_cited``: distinct items cited as evidence per profile;
- ``names_replaced`` and ``summaries_computed``: how much grounding repaired;
- ``valid_first_try``.

Writes ``bench/results/budget.{json,md}``; the table is in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = Path(__file__).resolve().parent / "results"


def quality(profiles: list[Any]) -> dict[str, float]:
    recall, cited, replaced, names, computed = [], [], 0, 0, 0
    for p in profiles:
        top = [c.name.lower() for c in p.stats.top_categories[:3]]
        named = {d.name.lower() for d in p.domains} | {t.name.lower() for d in p.domains for t in d.topics}
        if top:
            recall.append(sum(c in named for c in top) / len(top))
        cited.append(len({i for d in p.domains for t in d.topics for i in t.item_ids}))
        replaced += p.provenance.names_replaced
        names += len(p.domains) + sum(len(d.topics) for d in p.domains)
        computed += p.provenance.summary_source == "computed"
    n = max(len(profiles), 1)
    return {
        "top3_recall": round(statistics.mean(recall), 4) if recall else 0.0,
        "items_cited": round(statistics.mean(cited), 2) if cited else 0.0,
        "names_replaced": round(replaced / max(names, 1), 4),
        "summaries_computed": round(computed / n, 4),
    }


def markdown(rows: dict[str, dict[str, float]], users: int) -> str:
    lines = [
        f"First {users} users of ml-latest-small, in-process `extract_profiles`, "
        "prefix cache reset per setting.",
        "",
        "| max_items | prompt tokens/user | engine s/user | valid first try | top-3 category recall "
        "| items cited | names replaced | summaries computed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, r in rows.items():
        lines.append(
            f"| {k} | {r['prompt_tokens_per_user']:.0f} | {r['engine_s_per_user']:.2f} "
            f"| {r['valid_first_try']:.0%} "
            f"| {r['top3_recall']:.2f} | {r['items_cited']:.1f} | {r['names_replaced']:.0%} "
            f"| {r['summaries_computed']:.0%} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import extract as bench  # same users as bench/extract.py
    from interests.llm.vllm_local import VLLMBackend
    from interests.profile.extract import extract_profiles
    from interests.profile.store import read_profiles

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=12)
    ap.add_argument("--max-items", default="15,30,60")
    args = ap.parse_args()
    histories, catalog = bench.load_users(args.users)
    rows: dict[str, dict[str, float]] = {}
    with VLLMBackend() as backend:
        backend.start()
        for m in [int(x) for x in args.max_items.split(",")]:
            backend._llm.reset_prefix_cache()
            with tempfile.TemporaryDirectory() as tmp:
                res = extract_profiles(
                    histories,
                    catalog=catalog,
                    output=Path(tmp) / "p.jsonl",
                    backend=backend,
                    max_items=m,
                    max_new_tokens=bench.MAX_NEW_TOKENS,
                )
                profiles = read_profiles(Path(tmp) / "p.jsonl")
            n = len(histories)
            rows[str(m)] = {
                "prompt_tokens_per_user": res.prompt_tokens / n,
                "output_tokens_per_user": res.output_tokens / n,
                "engine_s_per_user": res.engine_seconds / n,
                "valid_first_try": res.valid_first_try / n,
                "errors": res.errors,
                **quality(profiles),
            }
            print(f"max_items={m}: {json.dumps(rows[str(m)])}", file=sys.stderr, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "budget.json").write_text(json.dumps({"users": args.users, "rows": rows}, indent=1) + "\n")
    (RESULTS / "budget.md").write_text(markdown(rows, args.users))
    print(markdown(rows, args.users))
