"""Benchmark of the shared taxonomy (issue 4): how well it recovers known structure.

    python bench/taxonomy.py synthetic            # encoders and robustness on planted logs
    python bench/taxonomy.py engine PROFILES      # profiles written by the real engine for examples/logs
    python bench/taxonomy.py movielens [--profiles FILE] [--encoder hashing] [--users 100]

Results go to bench/results/taxonomy-<part>.json; bench/results/taxonomy.md
quotes them. Run with OMP_NUM_THREADS=1 on shared machines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def data_dir() -> Path:
    return Path(os.environ.get("INTERESTS_DATA_DIR", ROOT.parent / "shared" / "data"))


def _ari(truth: dict[str, str], got: dict[str, str]) -> float:
    from sklearn.metrics import adjusted_rand_score

    ids = sorted(truth)
    return round(float(adjusted_rand_score([truth[i] for i in ids], [got[i] for i in ids])), 4)


def _kmeans_ari(x: np.ndarray, truth: list[str], k: int) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    scores = [
        adjusted_rand_score(truth, KMeans(k, n_init=10, random_state=s).fit_predict(x)) for s in range(3)
    ]
    return round(float(np.mean(scores)), 4)


# ---- synthetic ------------------------------------------------------------------------------


def synthetic(encoders: list[str]) -> dict[str, Any]:
    from interests.encode import get_encoder, item_text
    from interests.events import Catalog, Item
    from interests.synthetic import generate
    from interests.synthetic.profiles import planted_profiles
    from interests.taxonomy import build_taxonomy

    out: dict[str, Any] = {"encoders": [], "robustness": []}
    data = generate()
    ids = list(data.catalog)
    dom = [data.item_domain[i] for i in ids]
    top = [data.item_topic[i] for i in ids]
    full = [item_text(data.catalog[i]) for i in ids]
    # without categories: what the encoder knows from titles and attributes alone
    bare = [item_text(Item(i, data.catalog[i].title, [], "", data.catalog[i].attributes)) for i in ids]
    profiles = planted_profiles(data, lump=0.3, seed=0)
    bare_catalog = Catalog({i: Item(i, it.title, [], "", it.attributes) for i, it in data.catalog.items()})
    for spec in encoders:
        enc = get_encoder(spec)
        t0 = time.perf_counter()
        xf = enc.encode(full)
        t_full = time.perf_counter() - t0
        xb = enc.encode(bare)
        t0 = time.perf_counter()
        tax = build_taxonomy(profiles, data.catalog, encoder=enc)
        t_build = time.perf_counter() - t0
        tax_bare = build_taxonomy(profiles, bare_catalog, encoder=enc)
        row = {
            "encoder": spec,
            "dim": enc.dim,
            "ms_per_item_uncached": round(1000 * t_full / len(full), 2),
            "kmeans_ari_domain_full_text": _kmeans_ari(xf, dom, 6),
            "kmeans_ari_topic_full_text": _kmeans_ari(xf, top, 18),
            "kmeans_ari_domain_no_categories": _kmeans_ari(xb, dom, 6),
            "kmeans_ari_topic_no_categories": _kmeans_ari(xb, top, 18),
            "taxonomy_domains": len(tax.domains),
            "taxonomy_topics": len(tax.topics),
            "taxonomy_ari_domain": _ari(
                data.item_domain, {i: a.domain_id for i, a in tax.assignments.items()}
            ),
            "taxonomy_ari_topic": _ari(data.item_topic, {i: a.topic_id for i, a in tax.assignments.items()}),
            "taxonomy_ari_domain_no_categories": _ari(
                data.item_domain, {i: a.domain_id for i, a in tax_bare.assignments.items()}
            ),
            "taxonomy_ari_topic_no_categories": _ari(
                data.item_topic, {i: a.topic_id for i, a in tax_bare.assignments.items()}
            ),
            "taxonomy_domains_no_categories": len(tax_bare.domains),
            "build_s_cached": round(t_build, 2),
        }
        print(row, flush=True)
        out["encoders"].append(row)
    for lump in (0.0, 0.3, 0.6):
        for seed in range(5):
            d = generate(seed=seed)
            tax = build_taxonomy(
                planted_profiles(d, lump=lump, seed=seed), d.catalog, encoder="hashing", seed=seed
            )
            clf = tax.metrics["classifier"]
            row = {
                "lump": lump,
                "seed": seed,
                "domains": len(tax.domains),
                "topics": len(tax.topics),
                "ari_domain": _ari(d.item_domain, {i: a.domain_id for i, a in tax.assignments.items()}),
                "ari_topic": _ari(d.item_topic, {i: a.topic_id for i, a in tax.assignments.items()}),
                "held_out_domain_accuracy": clf.get("domain_accuracy"),
                "held_out_topic_accuracy": clf.get("topic_accuracy"),
            }
            print(row, flush=True)
            out["robustness"].append(row)
    return out


# ---- engine profiles on the example logs -------------------------------------------------------


def engine(profiles_path: str, encoder: str) -> dict[str, Any]:
    from interests.ingest import read_catalog
    from interests.profile.store import read_profiles
    from interests.taxonomy import build_taxonomy

    logs = ROOT / "examples" / "logs"
    profiles = read_profiles(profiles_path)
    catalog = read_catalog(logs / "catalog.jsonl")
    truth = json.loads((logs / "truth.json").read_text())
    tax = build_taxonomy(profiles, catalog, encoder=encoder)
    nodes = [(d.name, [t.name for t in d.topics]) for p in profiles for d in p.domains]
    return {
        "profiles": profiles_path,
        "models": sorted({p.provenance.model for p in profiles}),
        "users": len(profiles),
        "domain_nodes": len(nodes),
        "domains_per_profile": round(len(nodes) / max(len(profiles), 1), 2),
        "encoder": encoder,
        "domains": len(tax.domains),
        "topics": len(tax.topics),
        "ari_domain": _ari(truth["item_domain"], {i: a.domain_id for i, a in tax.assignments.items()}),
        "ari_topic": _ari(truth["item_topic"], {i: a.topic_id for i, a in tax.assignments.items()}),
        "classifier": tax.metrics["classifier"],
        "labels": [d.label for d in tax.domains],
    }


# ---- MovieLens ------------------------------------------------------------------------------------


def standin_profiles(histories: dict[str, Any], catalog: Any, encoder: Any, seed: int = 0) -> list[Any]:
    """Profiles without an LLM, for when none are available: each user's items clustered.

    Per user: KMeans over their items' text vectors (``item_text``, which
    shows genres, as the prompt does) into 2-5 domain nodes, each split into
    up to 2 topic nodes; a node is named after its two most central item
    titles (no genre words in names). Weights from evidence, L3 from signals.
    """
    from sklearn.cluster import KMeans

    from interests.encode import item_text
    from interests.profile.signals import compute_signals
    from interests.schema import Domain, InterestProfile, Provenance, Topic

    def name(ids: list[str], x: np.ndarray) -> str:
        c = x.mean(axis=0)
        order = np.argsort(-(x @ c))[:2]
        return " & ".join(catalog.get_item(ids[k]).title for k in order)

    def split(ids: list[str], x: np.ndarray, k: int) -> list[list[int]]:
        if k < 2 or len(ids) < 2 * k:
            return [list(range(len(ids)))]
        labels = KMeans(k, n_init=4, random_state=seed).fit_predict(x)
        return [list(np.flatnonzero(labels == c)) for c in range(k) if (labels == c).any()]

    out = []
    for uid, h in histories.items():
        ids = h.item_ids()
        x = encoder.encode([item_text(catalog.get_item(i)) for i in ids])
        domains = []
        for grp in split(ids, x, int(np.clip(len(ids) // 15, 2, 5))):
            g_ids, g_x = [ids[k] for k in grp], x[grp]
            topics = []
            for sub in split(g_ids, g_x, 2 if len(g_ids) >= 8 else 1):
                t_ids = [g_ids[k] for k in sub]
                topics.append(
                    Topic(
                        name=name(t_ids, g_x[sub]), weight=round(len(t_ids) / len(g_ids), 4), item_ids=t_ids
                    )
                )
            domains.append(
                Domain(name=name(g_ids, g_x), weight=round(len(g_ids) / len(ids), 4), topics=topics)
            )
        sig = compute_signals(h, catalog, rating_scale=(0.5, 5.0))
        out.append(
            InterestProfile(
                user_id=uid,
                summary="stand-in",
                domains=domains,
                sentiment=sig.sentiment,
                time_patterns=sig.time_patterns,
                stats=sig.stats,
                provenance=Provenance(
                    model="stand-in-kmeans",
                    backend="none",
                    prompt_template="none",
                    prompt_hash="",
                    created_at="",
                    events_used=len(h.events),
                    events_total=len(h.events),
                    truncated=False,
                ),
            )
        )
    return out


def genre_purity(assign: dict[str, str], catalog: Any) -> dict[str, Any]:
    """Purity of the domains against MovieLens genres (an item counts when it has the domain's top genre)."""
    by_dom: dict[str, list[str]] = {}
    for i, d in assign.items():
        if catalog.get_item(i).categories and catalog.get_item(i).categories != ["(no genres listed)"]:
            by_dom.setdefault(d, []).append(i)
    hits, n, rows = 0, 0, []
    for d, ids in sorted(by_dom.items()):
        genres = Counter(g for i in ids for g in catalog.get_item(i).categories)
        top, _ = genres.most_common(1)[0]
        h = sum(1 for i in ids if top in catalog.get_item(i).categories)
        hits, n = hits + h, n + len(ids)
        rows.append(
            {
                "domain": d,
                "items": len(ids),
                "top_genre": top,
                "share": round(h / len(ids), 3),
                "next_genres": [g for g, _ in genres.most_common(4)[1:]],
            }
        )
    return {"purity": round(hits / max(n, 1), 4), "items": n, "domains": rows}


def movielens(
    profiles_path: str | None, encoder_spec: str, n_users: int, n_domains: int | None
) -> dict[str, Any]:
    from interests.encode import get_encoder
    from interests.ingest import read_catalog, read_logs
    from interests.profile.store import read_profiles
    from interests.taxonomy import build_taxonomy

    root = data_dir() / "ml-latest-small"
    catalog = read_catalog(root / "movies.csv", mapping="item=movieId,title=title,categories=genres")
    users = [str(u) for u in range(1, n_users + 1)]
    logs = read_logs(
        root / "ratings.csv",
        mapping="user=userId,item=movieId,time=timestamp,rating=rating",
        catalog=catalog,
        users=users,
    )
    enc = get_encoder(encoder_spec)
    t0 = time.perf_counter()
    if profiles_path:
        profiles = [p for p in read_profiles(profiles_path) if p.user_id in set(users)]
        source = f"{profiles_path} ({sorted({p.provenance.model for p in profiles})})"
    else:
        profiles = standin_profiles(logs.histories, catalog, enc)
        source = "stand-in: per-user KMeans of item texts (no LLM), see standin_profiles()"
    t_prof = time.perf_counter() - t0
    t0 = time.perf_counter()
    tax = build_taxonomy(profiles, catalog, histories=logs.histories, encoder=enc, n_domains=n_domains)
    t_build = time.perf_counter() - t0
    assign = {i: a.domain_id for i, a in tax.assignments.items()}
    cited = {i: d for i, d in assign.items() if i in tax.cited_items}
    rng = random.Random(0)
    shuffled_ids = list(assign)
    labels = list(assign.values())
    rng.shuffle(labels)
    result = {
        "profiles": source,
        "users": len(profiles),
        "events": logs.n_events,
        "encoder": enc.name,
        "domains": len(tax.domains),
        "topics": len(tax.topics),
        "domain_nodes": tax.metrics["n_domain_nodes"],
        "cited_items": len(tax.cited_items),
        "catalogue_items": len(assign),
        "purity_all_items": genre_purity(assign, catalog),
        "purity_cited_items": genre_purity(cited, catalog)["purity"],
        "purity_random_same_sizes": genre_purity(dict(zip(shuffled_ids, labels, strict=True)), catalog)[
            "purity"
        ],
        "classifier": tax.metrics["classifier"],
        "l1_silhouette": tax.metrics["l1_silhouette"],
        "labels": [(d.id, d.label, d.size, d.categories) for d in tax.domains],
        "seconds": {"profiles": round(t_prof, 1), "build": round(t_build, 1)},
    }
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    s = sub.add_parser("synthetic")
    s.add_argument("--encoders", default="hashing,minilm,smollm2-135m")
    e = sub.add_parser("engine")
    e.add_argument("profiles")
    e.add_argument("--encoder", default="hashing")
    m = sub.add_parser("movielens")
    m.add_argument("--profiles")
    m.add_argument("--encoder", default="hashing")
    m.add_argument("--users", type=int, default=100)
    m.add_argument("--domains", type=int)
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    if args.part == "synthetic":
        result = synthetic(args.encoders.split(","))
        name = "synthetic"
    elif args.part == "engine":
        result = engine(args.profiles, args.encoder)
        name = f"engine-{args.encoder}"
    else:
        result = movielens(args.profiles, args.encoder, args.users, args.domains)
        name = f"movielens-{args.encoder}" + ("-llm" if args.profiles else "-standin")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"taxonomy-{name}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1)[:6000])
    print(f"-> {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
