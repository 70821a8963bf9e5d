"""Extraction through Ray Data ``map_batches`` (an actor pool of one in-process engine), for issue #13.

The same users, engine and batches as ``bench/ray_extract.py`` (the first 8
users of the example logs, batches of 4), but the batches go through
``ray.data.from_items(...).map_batches(Extractor, concurrency=1, num_cpus=2)``
instead of the project's own actor loop. Prints one JSON line per repeat:
start-up (cluster, actor and engine), extraction from the actor's first
batch to its last, and the seconds inside the engine::

    python bench/ray_data_extract.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "logs"


class Extractor:
    """One Ray Data actor: the in-process engine, ``extract_profiles`` on each batch of user ids."""

    def __init__(self, groups: Any, scale: Any, as_of: float | None) -> None:
        from interests.ingest import read_logs
        from interests.llm.vllm_local import VLLMBackend

        self.logs = read_logs(EXAMPLES / "events.csv", catalog=EXAMPLES / "catalog.jsonl")
        self.backend = VLLMBackend()
        self.backend.start()
        self.shared = {"groups": groups, "rating_scale": scale, "as_of": as_of}
        self.ready = time.time()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from interests.profile.extract import extract_profiles

        t0 = time.time()
        users = [str(u) for u in batch["user_id"]]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "profiles.jsonl"
            res = extract_profiles(
                {u: self.logs.histories[u] for u in users},
                catalog=self.logs.catalog,
                output=out,
                backend=self.backend,
                batch_size=len(users),
                **self.shared,
            )
            lines = out.read_text(encoding="utf-8").splitlines()
        n = len(users)
        return {
            "user_id": users,
            "profiles": [len(lines) / n] * n,
            "t0": [t0] * n,
            "t1": [time.time()] * n,
            "engine_s": [res.engine_seconds / n] * n,
            "output_tokens": [res.output_tokens / n] * n,
            "ready": [self.ready] * n,
        }


def run(users: int, batch_size: int) -> dict[str, Any]:
    import ray

    from interests.ingest import read_logs
    from interests.profile.extract import run_groups
    from interests.profile.signals import dataset_reference

    logs = read_logs(EXAMPLES / "events.csv", catalog=EXAMPLES / "catalog.jsonl")
    chosen = list(logs.histories)[:users]
    scale, latest = dataset_reference(logs.histories.values())
    with tempfile.TemporaryDirectory() as tmp:
        groups = run_groups(Path(tmp) / "profiles.jsonl", logs.histories, logs.catalog, None)
    t = time.time()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _system_config={"worker_niceness": 0})
    try:
        rows = (
            ray.data.from_items([{"user_id": u} for u in chosen])
            .map_batches(
                Extractor,
                fn_constructor_kwargs={"groups": groups, "scale": scale, "as_of": latest},
                batch_size=batch_size,
                concurrency=1,
                num_cpus=2,
            )
            .take_all()
        )
    finally:
        ray.shutdown()
    ready = min(r["ready"] for r in rows)
    return {
        "mode": "ray-data",
        "users": len(rows),
        "profiles": round(sum(r["profiles"] for r in rows)),
        "startup_s": ready - t,
        "extract_s": max(r["t1"] for r in rows) - min(r["t0"] for r in rows),
        "engine_s": sum(r["engine_s"] for r in rows),
        "output_tokens": round(sum(r["output_tokens"] for r in rows)),
        "total_s": time.time() - t,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    for _ in range(args.repeats):
        print(json.dumps(run(args.users, args.batch_size)), flush=True)


if __name__ == "__main__":
    main()
