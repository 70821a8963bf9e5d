"""``interests forget`` on a world every stage wrote: what is left, what was touched, how long, and
whether the remaining users' recommendations moved.

    python bench/forget.py                  # 24 users, forget 3
    python bench/forget.py --users 48 --forget 5

The world is the tests' (``tests/forget_world.py``): extract (raw ids and
hashed ids), update, taxonomy, a two-tower model (2 epochs), reports and an
API run with posted events, in one working folder. Measured: occurrences of
the forgotten users' ids, pseudonyms and review markers left in any file
(bytes, Parquet also as a table), files touched, rows removed, seconds (the
command, in-process), and for the remaining users the share of identical
top-20 lists from the model folder before and after (rows dropped, weights
kept). For scale, the same share against a retrain without the forgotten
users (logs purged, same seed and settings), and against a retrain on the
same data (how much training itself varies). Results go to
``bench/results/forget.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from forget_world import KEY, build_world, needles, occurrences

import interests


def top20(model_dir: Path, users: list[str]) -> dict[str, list[str]]:
    from interests.recsys import TwoTower

    model = TwoTower.load(model_dir)
    return {u: [r.item_id for r in model.recommend_items(u, k=20)] for u in users}


def retrain(work: Path, logs: Path, out: Path) -> Path:
    """``interests train`` as the world ran it, over ``logs`` and ``work``'s profiles and taxonomy."""
    from click.testing import CliRunner
    from interests.cli import cli

    args = ["train", "--logs", str(logs / "events.csv"), "--logs", str(logs / "more.csv")]
    args += ["--catalog", str(logs / "catalog.jsonl"), "--profiles", str(work / "profiles.jsonl")]
    args += ["--taxonomy", str(work / "taxonomy"), "-o", str(out), "--epochs", "2"]
    res = CliRunner().invoke(cli, [*args, "--quarantine", str(out.parent / "q.jsonl")])
    assert res.exit_code == 0, res.output
    return out


def purged(logs: Path, out: Path, gone: list[str]) -> Path:
    out.mkdir()
    shutil.copy(logs / "catalog.jsonl", out / "catalog.jsonl")
    for name in ("events.csv", "more.csv"):
        rows = (logs / name).read_text().splitlines(keepends=True)
        (out / name).write_text("".join(r for r in rows if r.split(",")[0] not in gone))
    return out


def share(a: dict[str, list[str]], b: dict[str, list[str]]) -> float:
    """Share of users whose two top-20 lists are identical (items and order)."""
    return sum(a[u] == b[u] for u in a) / len(a)


def overlap(a: dict[str, list[str]], b: dict[str, list[str]]) -> float:
    """Mean share of a user's top-20 items in both lists (order ignored)."""
    return sum(len(set(a[u]) & set(b[u])) / max(1, len(a[u])) for u in a) / len(a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=24)
    ap.add_argument("--forget", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench/results/forget.json"))
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        world = build_world(Path(tmp), n_users=args.users)
        built = time.perf_counter() - t0
        work, users = world["work"], world["users"]
        gone = users[: args.forget]
        kept = users[args.forget :]
        before_hits = occurrences(work, needles(gone))
        before = top20(world["model"], kept)
        same_data = top20(retrain(work, world["logs"], Path(tmp) / "retrain-same"), kept)
        receipt = interests.forget(gone, [work], hash_key=KEY)
        left = occurrences(work, needles(gone))
        after = top20(world["model"], kept)
        again = interests.forget(gone, [work], hash_key=KEY)
        same = sum(before[u] == after[u] for u in kept)
        without = top20(
            retrain(work, purged(world["logs"], Path(tmp) / "purged", gone), Path(tmp) / "rt"), kept
        )
        touched = receipt.touched
        result = {
            "users": len(users),
            "forgotten": len(gone),
            "world_seconds": round(built, 1),
            "files_in_work": sum(1 for f in work.rglob("*") if f.is_file()),
            "files_naming_them_before": len(before_hits),
            "occurrences_before": sum(before_hits.values()),
            "occurrences_left": sum(left.values()),
            "files_touched": len(receipt.touched),
            "rows_removed": receipt.rows,
            "touched": [(Path(t.path).relative_to(work).as_posix(), t.action, t.rows) for t in touched],
            "seconds": round(receipt.seconds, 2),
            "second_run_changed": again.changed,
            "second_run_seconds": round(again.seconds, 2),
            "identical_top20_share": same / len(kept),
            "identical_top20_share_retrain_without_them": share(before, without),
            "top20_overlap_retrain_without_them": round(overlap(before, without), 3),
            "identical_top20_share_retrain_same_data": share(before, same_data),
            "retrain": {Path(k).relative_to(work).as_posix(): v for k, v in receipt.retrain.items()},
        }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
