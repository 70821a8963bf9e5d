"""Profiles scored by the planted truth (issue 12): is the hierarchy the one planted?

    python bench/hierarchy.py make-logs DIR [--no-categories] [--users 40] [--seed 1]
    python bench/hierarchy.py score PROFILES.jsonl TRUTH.json [--json]
    python bench/hierarchy.py vectors    # the item-vector table (no model: a scripted backend)
    python bench/hierarchy.py run [--model M] [--dtype D] [--structures data,model] [--out bench/results]

``run`` is the measurement of docs/benchmarks.md ("Hierarchy quality"): one
in-process engine extracts the example logs (with categories) and the planted
B log (no categories, 40 users) in each structure, scores every run, builds
the shared taxonomy from the example profiles (domain ARI against the planted
truth) and writes ``hierarchy-<model>-<dtype>.json``.

``make-logs`` writes the planted B logs (:func:`interests.synthetic.generate_planted_b`:
a vocabulary unlike examples/logs, by default a catalogue with no categories)
as events.csv, catalog.jsonl and truth.json. ``score`` scores any profiles file
against a truth.json (examples/logs/truth.json too); the definitions are in
:mod:`interests.synthetic.score`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from interests.synthetic import generate_planted_b, write_logs
from interests.synthetic.score import score_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "logs"
KEYS = (
    "domains_per_profile",
    "planted_domains_per_user",
    "domain_recall",
    "domain_coherence",
    "topic_recall",
    "topic_coherence",
    "duplicate_topics",
    "sentiment_order",
    "rhythm_accuracy",
    "trend_accuracy",
    "trend_rising",
    "trend_fading",
)


def cpu_kind() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    kind = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else platform.machine()
    return kind + (" with avx512_bf16" if "avx512_bf16" in flags else "")


def names_kept(path: Path) -> dict[str, Any]:
    """Shares of names and summaries the model wrote that grounding kept.

    Structure "data" records the source of every node's name; free grouping
    records only a count of replacements (a draft node can be renamed, then merged).
    """
    from interests.profile.store import read_profiles

    profiles = read_profiles(path)
    summ = [p.provenance.summary_source == "model" for p in profiles]
    out: dict[str, Any] = {
        "summaries_kept": round(sum(summ) / max(len(summ), 1), 4),
        "names_replaced_per_profile": round(
            sum(p.provenance.names_replaced for p in profiles) / max(len(profiles), 1), 3
        ),
    }
    dom = [d.name_source == "model" for p in profiles for d in p.domains if d.name_source]
    top = [t.name_source == "model" for p in profiles for d in p.domains for t in d.topics if t.name_source]
    if dom:
        out["domain_names_kept"] = round(sum(dom) / len(dom), 4)
        out["topic_names_kept"] = round(sum(top) / max(len(top), 1), 4)
        out["names_kept"] = round((sum(dom) + sum(top)) / (len(dom) + len(top)), 4)
    return out


def taxonomy_ari(profiles_path: Path) -> float:
    from sklearn.metrics import adjusted_rand_score

    from interests.ingest import read_catalog, read_logs
    from interests.profile.store import read_profiles
    from interests.taxonomy import build_taxonomy

    catalog = read_catalog(EXAMPLES / "catalog.jsonl")
    logs = read_logs(EXAMPLES / "events.csv", catalog=catalog)
    tax = build_taxonomy(read_profiles(profiles_path), catalog, histories=logs.histories, encoder="hashing")
    truth = json.loads((EXAMPLES / "truth.json").read_text())
    ids = list(catalog)
    return round(
        float(
            adjusted_rand_score(
                [truth["item_domain"][i] for i in ids], [tax.assignments[i].domain_id for i in ids]
            )
        ),
        4,
    )


def vectors() -> list[dict[str, Any]]:
    """Item vectors for catalogues without categories: weights and domain merging, scored."""
    import dataclasses

    from sklearn.metrics import adjusted_rand_score

    import interests.profile.item_clusters as ic
    import interests.profile.item_groups as ig
    from interests.llm.fake import FakeBackend
    from interests.profile.extract import extract_profiles
    from interests.profile.store import read_profiles
    from interests.synthetic import generate
    from interests.synthetic.profiles import planted_histories
    from interests.synthetic.score import score_profiles

    rows = []
    datasets = {
        "examples-no-categories": generate(n_users=24, seed=0, categories=False),
        "planted-b-no-categories": generate_planted_b(categories=False),
    }
    settings = [(0.0, 0.8), (0.5, 0.8), (0.7, 0.8), (0.5, 0.4)]
    defaults = (ic.BEHAVIOUR_WEIGHT, ic.TOPIC_USER_WEIGHT)
    try:
        for name, data in datasets.items():
            histories = planted_histories(data)
            truth = {
                "users": [dataclasses.asdict(u) for u in data.users],
                "item_domain": data.item_domain,
                "item_topic": data.item_topic,
            }
            for weight, users in settings:
                ic.BEHAVIOUR_WEIGHT, ic.TOPIC_USER_WEIGHT = weight, users
                groups = ig.group_items(histories, data.catalog)
                ids = list(groups.paths)
                out = Path(tempfile.mkdtemp()) / "profiles.jsonl"
                extract_profiles(histories, catalog=data.catalog, output=out, backend=FakeBackend())
                score = score_profiles(read_profiles(out), truth)
                row = {
                    "dataset": name,
                    "behaviour_weight": weight,
                    "topic_user_weight": users,
                    "topic_ari": round(
                        adjusted_rand_score(
                            [data.item_topic[i] for i in ids], [groups.paths[i][0][-1] for i in ids]
                        ),
                        4,
                    ),
                    **{k: score[k] for k in KEYS},
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        ic.BEHAVIOUR_WEIGHT, ic.TOPIC_USER_WEIGHT = defaults
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    from interests.ingest import read_logs
    from interests.llm.vllm_local import VLLMBackend
    from interests.profile.extract import extract_profiles

    work = Path(tempfile.mkdtemp(prefix="hierarchy-"))
    write_logs(generate_planted_b(n_users=40, seed=1, categories=False), work / "planted-b")
    every = {"examples": EXAMPLES, "planted-b-no-categories": work / "planted-b"}
    datasets = {k: every[k] for k in args.datasets.split(",")}
    backend = VLLMBackend(args.model, dtype=args.dtype)
    t = time.perf_counter()
    backend.start()
    load_s = time.perf_counter() - t
    runs = []
    try:
        for name, folder in datasets.items():
            logs = read_logs(folder / "events.csv", catalog=folder / "catalog.jsonl")
            for structure in args.structures.split(","):
                out = work / f"{name}-{structure}" / "profiles.jsonl"
                res = extract_profiles(logs, output=out, backend=backend, structure=structure)
                scores = score_file(out, folder / "truth.json")
                row = {
                    "dataset": name,
                    "structure": structure,
                    "users": res.users_selected,
                    "profiles": res.profiles,
                    "errors": res.errors,
                    "seconds": round(res.seconds, 1),
                    "users_per_min": round(60 * res.attempted / res.seconds, 2) if res.seconds else None,
                    "valid_first_try": res.valid_first_try,
                    "output_tokens": res.output_tokens,
                    **{k: scores.get(k) for k in KEYS},
                    **names_kept(out),
                }
                if name == "examples":
                    row["taxonomy_domain_ari"] = taxonomy_ari(out)
                print(json.dumps(row), flush=True)
                runs.append(row)
    finally:
        backend.close()
    return {
        "cpu": cpu_kind(),
        "model": backend.model,
        "dtype": getattr(backend, "dtype_used", args.dtype),
        "engine_load_s": round(load_s, 1),
        "runs": runs,
    }


def table(scores: dict[str, Any]) -> str:
    width = max(len(k) for k in scores)
    return "\n".join(f"{k:<{width}}  {'-' if v is None else v}" for k, v in scores.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score", help="score a profiles file against a truth.json")
    s.add_argument("profiles")
    s.add_argument("truth")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    m = sub.add_parser("make-logs", help="write the planted B logs to DIR")
    m.add_argument("dir")
    m.add_argument("--categories", action=argparse.BooleanOptionalAction, default=False)
    m.add_argument("--users", type=int, default=40)
    m.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("run", help="extract, score and compare both structures with the real engine")
    r.add_argument("--model", default=None)
    r.add_argument("--dtype", default=None)
    r.add_argument("--structures", default="data,model")
    r.add_argument("--datasets", default="examples,planted-b-no-categories")
    r.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    sub.add_parser("vectors", help="score item-vector settings for catalogues without categories")
    args = parser.parse_args(argv)
    if args.cmd == "vectors":
        Path(args_out := Path(__file__).resolve().parent / "results" / "hierarchy-vectors.json").write_text(
            json.dumps(vectors(), indent=1) + "\n"
        )
        print(f"-> {args_out}")
    elif args.cmd == "run":
        result = run(args)
        name = f"hierarchy-{result['model']}-{result['dtype']}-{args.structures.replace(',', '-')}.json"
        Path(args.out, name).write_text(json.dumps(result, indent=1) + "\n")
        print(f"-> {Path(args.out, name)}")
    elif args.cmd == "score":
        scores = score_file(args.profiles, args.truth)
        print(json.dumps(scores, indent=1) if args.json else table(scores))
    else:
        data = generate_planted_b(n_users=args.users, seed=args.seed, categories=args.categories)
        for kind, path in write_logs(data, args.dir).items():
            print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
