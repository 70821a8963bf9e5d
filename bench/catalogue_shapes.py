"""Hierarchies on every catalogue shape (issue 24): planted logs of each shape, and real data sets.

    python bench/catalogue_shapes.py planted [--engine] [--users 40] [--out bench/results]
    python bench/catalogue_shapes.py real DATA_DIR [--engine] [--users 50] [--out bench/results]

``planted`` writes the planted B logs (:func:`interests.synthetic.generate_planted_b`,
40 users, two domains each) once per catalogue shape (``list``, ``rooted``,
``path``, ``flat``, ``none``: :func:`interests.synthetic.planted_categories`),
reads them back through ``read_logs`` as a user's files would be, extracts
every user, scores the profiles against the planted truth
(:mod:`interests.synthetic.score`: split domains, domains per profile, topic
recall, coherence, trends, names that share a word with the planted name)
and builds the shared taxonomy from them (domain and topic ARI against the
planted truth).

``real`` extracts the example logs, the gift-card reviews and the first
``--users`` users of ml-latest-small found under ``DATA_DIR`` and measures the
names a person would see: attribute dumps, counters, duplicate names in a
profile, users whose items span two or more informative groups but got one
domain, and **name identifies group**: the share of nodes whose name's
embedding (the default text encoder) is nearer to the mean embedding of its
own items' titles than to any sibling's.

Without ``--engine`` the scripted backend names nothing, so every name is the
computed fallback (a measurement of the structure and of the fallbacks);
with ``--engine`` the embedded model names the groups on the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from interests.synthetic import CATALOGUE_SHAPES, generate_planted_b, write_logs
from interests.synthetic.score import score_file

ROOT = Path(__file__).resolve().parent.parent
KEYS = (
    "domains_per_profile",
    "planted_domains_per_user",
    "split_domains",
    "domain_recall",
    "domain_coherence",
    "topic_recall",
    "topic_coherence",
    "trend_accuracy",
    "domain_names_planted",
    "topic_names_planted",
    "counter_names",
    "dump_names",
    "names_distinct",
)


def _backend(engine: bool) -> Any:
    if engine:
        from interests.llm.vllm_local import VLLMBackend

        backend = VLLMBackend(None)
        backend.start()
        return backend
    from interests.llm.fake import FakeBackend

    return FakeBackend()


def _ari(profiles_path: Path, logs: Any, truth: dict[str, Any]) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score

    from interests.profile.store import read_profiles
    from interests.taxonomy import build_taxonomy

    tax = build_taxonomy(
        read_profiles(profiles_path), logs.catalog, histories=logs.histories, encoder="hashing"
    )
    ids = [i for i in truth["item_domain"] if i in tax.assignments]
    return {
        "taxonomy_domain_ari": round(
            float(
                adjusted_rand_score(
                    [truth["item_domain"][i] for i in ids], [tax.assignments[i].domain_id for i in ids]
                )
            ),
            4,
        ),
        "taxonomy_topic_ari": round(
            float(
                adjusted_rand_score(
                    [truth["item_topic"][i] for i in ids], [tax.assignments[i].topic_id for i in ids]
                )
            ),
            4,
        ),
    }


def planted(args: argparse.Namespace) -> list[dict[str, Any]]:
    from interests.ingest import read_logs
    from interests.profile.extract import extract_profiles

    work = Path(tempfile.mkdtemp(prefix="shapes-"))
    backend = _backend(args.engine)
    rows = []
    try:
        for shape in args.shapes.split(","):
            folder = work / shape
            data = generate_planted_b(n_users=args.users, seed=args.seed, shape=shape)
            paths = write_logs(data, folder)
            logs = read_logs(paths["events"], catalog=paths["catalog"])
            out = folder / "profiles.jsonl"
            t = time.perf_counter()
            extract_profiles(logs, output=out, backend=backend)
            seconds = time.perf_counter() - t
            scores = score_file(out, paths["truth"])
            truth = json.loads(paths["truth"].read_text())
            row = {"shape": shape, "seconds": round(seconds, 1), **{k: scores.get(k) for k in KEYS}}
            row |= _ari(out, logs, truth)
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        if hasattr(backend, "close"):
            backend.close()
    return rows


def _real_sets(data_dir: Path) -> dict[str, tuple[Path, Path]]:
    sets = {"examples": (ROOT / "examples/logs/events.csv", ROOT / "examples/logs/catalog.jsonl")}
    gift = data_dir / "amazon-gift-cards"
    if gift.is_dir():
        sets["gift-cards"] = (gift / "Gift_Cards_5.json.gz", gift / "meta_Gift_Cards.json.gz")
    ml = data_dir / "ml-latest-small"
    if ml.is_dir():
        sets["ml-latest-small"] = (ml / "ratings.csv", ml / "movies.csv")
    return sets


def name_identifies_group(profiles: list[Any], catalog: Any, encoder: Any) -> float | None:
    """Share of nodes whose name embeds nearer to its own items' titles than to any sibling's."""
    hits: list[bool] = []
    for p in profiles:
        levels = [[(d.name, [i for t in d.topics for i in t.item_ids]) for d in p.domains]]
        levels += [[(t.name, t.item_ids) for t in d.topics] for d in p.domains]
        for nodes in levels:
            if len(nodes) < 2:
                continue
            names = encoder.encode([n for n, _ in nodes])
            groups = []
            for _, ids in nodes:
                titles = [catalog.get_item(i).title for i in ids[:20]]
                groups.append(np.mean(encoder.encode(titles), axis=0))
            g = np.vstack(groups)
            g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
            n = names / np.maximum(np.linalg.norm(names, axis=1, keepdims=True), 1e-12)
            sim = n @ g.T
            hits += [int(np.argmax(sim[k])) == k for k in range(len(nodes))]
    return round(sum(hits) / len(hits), 4) if hits else None


def real(args: argparse.Namespace) -> list[dict[str, Any]]:
    import re

    from interests.encode import get_encoder
    from interests.ingest import read_logs
    from interests.profile.extract import extract_profiles
    from interests.profile.item_groups import group_items
    from interests.profile.store import read_profiles

    counter = re.compile(r"\(\s*\d+\s*\)")
    encoder = get_encoder(args.encoder)
    backend = _backend(args.engine)
    work = Path(tempfile.mkdtemp(prefix="real-"))
    rows = []
    try:
        for name, (events, catalog) in _real_sets(Path(args.data_dir)).items():
            logs = read_logs(events, catalog=catalog)
            users = sorted(logs.histories)[: args.users]
            groups = group_items(logs.histories, logs.catalog)
            out = work / name / "profiles.jsonl"
            t = time.perf_counter()
            extract_profiles(logs, output=out, backend=backend, users=users, groups=groups)
            seconds = time.perf_counter() - t
            profiles = read_profiles(out)
            names = [[d.name, *(t.name for t in d.topics)] for p in profiles for d in p.domains]
            flat = [n for ns in names for n in ns]
            dup = sum(
                sum(
                    c - 1
                    for c in Counter(
                        n.casefold() for d in p.domains for n in [d.name, *(t.name for t in d.topics)]
                    ).values()
                )
                for p in profiles
            )
            spans = 0
            one_domain = 0
            for p in profiles:
                keys = {
                    tuple(x[0] for x in groups.candidates(e.item_id)[:1])
                    for e in logs.histories[p.user_id].events
                }
                if len({k for k in keys if k}) >= 2:
                    spans += 1
                    one_domain += len(p.domains) < 2
            srcs = [d.name_source for p in profiles for d in p.domains] + [
                t.name_source for p in profiles for d in p.domains for t in d.topics
            ]
            row = {
                "dataset": name,
                "users": len(profiles),
                "seconds": round(seconds, 1),
                "group_source": groups.source,
                "domains_per_profile": round(np.mean([len(p.domains) for p in profiles]), 2),
                "dump_names": sum(":" in n for n in flat),
                "counter_names": sum(bool(counter.search(n)) for n in flat),
                "duplicate_names": dup,
                "users_spanning_2_groups": spans,
                "of_them_one_domain": one_domain,
                "name_identifies_group": name_identifies_group(profiles, logs.catalog, encoder),
                "names_from_model": round(sum(s == "model" for s in srcs) / max(len(srcs), 1), 4),
                "summaries_from_model": round(
                    sum(p.provenance.summary_source == "model" for p in profiles) / max(len(profiles), 1), 4
                ),
                "examples": [{d.name: [t.name for t in d.topics] for d in p.domains} for p in profiles[:3]],
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        if hasattr(backend, "close"):
            backend.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("planted", help="planted logs of every catalogue shape, scored by their truth")
    p.add_argument("--shapes", default=",".join(CATALOGUE_SHAPES))
    p.add_argument("--users", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("real", help="names on the example logs and the real data sets under DATA_DIR")
    r.add_argument("data_dir")
    r.add_argument("--users", type=int, default=50)
    r.add_argument(
        "--encoder", default=None, help="text encoder for name-identifies-group (default: embedded)"
    )
    for s in (p, r):
        s.add_argument(
            "--engine", action="store_true", help="the embedded model names groups (vLLM on the CPU)"
        )
        s.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    rows = planted(args) if args.cmd == "planted" else real(args)
    tag = "engine" if args.engine else "computed"
    path = Path(args.out) / f"catalogue-shapes-{args.cmd}-{tag}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    if __package__ is None and "" not in sys.path:
        sys.path.insert(0, "")
    sys.exit(main())
