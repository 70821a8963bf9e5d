"""Extraction on Ray against the single-process path: same users, same engine settings, one machine.

    python bench/ray_extract.py [--users 8] [--repeats 2] [--batch-size 4] [--modes single,ray1,ray2]

Three ways, each run ``--repeats`` times on the first ``--users`` users of
the example logs (examples/logs), into a fresh output each time:

1. ``single``: ``extract_profiles`` with one in-process vLLM engine (the
   engine is started first, so its load is timed apart);
2. ``ray1``: ``extract_profiles_ray`` with one actor asking for every CPU of
   a local Ray cluster (the same engine count and cores as ``single``);
3. ``ray2``: two actors, one CPU each, one engine each (on a 2-core machine
   both engines share the same cores: this measures overhead, not speed-up).

users/min is over the extraction itself (after the engine(s) loaded);
``startup_s`` is the engine load (single) or cluster + actor + engine start
(ray), ``total_s`` the whole call. The Ray overhead is ray1's extraction time
against single's. Writes ``bench/results/ray_extract.json`` and ``.md``.

    python bench/ray_extract.py --write-ceiling [--batch-size 32]

measures the driver's side alone: profile lines as the actors send them
back, appended one batch at a time (one ``write`` and ``fsync`` each) by the
store, as the driver does; no engine, no Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "logs"
RESULTS = ROOT / "bench" / "results"


def run_single(logs: Any, users: list[str], out: Path, batch_size: int) -> dict[str, Any]:
    from interests.llm.vllm_local import VLLMBackend
    from interests.profile.extract import extract_profiles

    t0 = time.perf_counter()
    backend = VLLMBackend()
    try:
        backend.start()
        startup = time.perf_counter() - t0
        res = extract_profiles(logs, output=out, backend=backend, users=users, batch_size=batch_size)
    finally:
        backend.close()
    return {
        "startup_s": startup,
        "extract_s": res.seconds,
        "total_s": time.perf_counter() - t0,
        **_counts(res),
    }


def run_ray(logs: Any, users: list[str], out: Path, batch_size: int, actors: int) -> dict[str, Any]:
    import ray

    from interests.scale.ray_extract import extract_profiles_ray

    cpus = os.cpu_count() or 1
    t0 = time.perf_counter()
    ray.init(
        num_cpus=cpus, include_dashboard=False, log_to_driver=False, _system_config={"worker_niceness": 0}
    )
    try:
        init = time.perf_counter() - t0
        res = extract_profiles_ray(
            logs, output=out, users=users, batch_size=batch_size, actors=actors, actor_cpus=cpus / actors
        )
    finally:
        ray.shutdown()
    started = max(res.actor_start_seconds)
    return {
        "startup_s": init + started,
        "extract_s": res.seconds - started,
        "total_s": time.perf_counter() - t0,
        "actor_start_s": res.actor_start_seconds,
        "partition_sizes": res.partition_sizes,
        "actor_failures": res.actor_failures,
        **_counts(res),
    }


def write_ceiling(batch_size: int, n: int = 50_000) -> dict[str, Any]:
    """Profiles/s the driver can append (scripted profiles of the example users, as JSON lines)."""
    from interests.ingest import read_logs
    from interests.llm.fake import FakeBackend
    from interests.profile.extract import extract_profiles
    from interests.profile.store import append_lines

    logs = read_logs(EXAMPLES / "events.csv", catalog=EXAMPLES / "catalog.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.jsonl"
        extract_profiles(logs, output=src, backend=FakeBackend())
        lines = [line.rstrip("\n") for line in src.open(encoding="utf-8")]
        batch = (lines * (batch_size // len(lines) + 1))[:batch_size]
        out, done, t = Path(tmp) / "out.jsonl", 0, time.perf_counter()
        while done < n:
            append_lines(out, batch)
            done += len(batch)
        seconds = time.perf_counter() - t
        size = out.stat().st_size / done
    return {
        "batch_size": batch_size,
        "profiles": done,
        "profiles_per_s": done / seconds,
        "bytes_per_profile": size,
        "mib_per_s": done / seconds * size / 2**20,
        "load_avg_1m_after": os.getloadavg()[0],
    }


def _counts(res: Any) -> dict[str, Any]:
    # engine_s: seconds inside the backend's generate calls (summed over actors): the engine's own
    # speed, against extract_s, which adds the set-up around it and, with Ray, the transport
    return {
        "profiles": res.profiles,
        "errors": res.errors,
        "output_tokens": res.output_tokens,
        "engine_s": res.engine_seconds,
    }


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--modes", default="single,ray1,ray2")
    ap.add_argument("--out", type=Path, default=RESULTS / "ray_extract.json")
    ap.add_argument("--write-ceiling", action="store_true", help="only the driver's append rate")
    args = ap.parse_args()
    if args.write_ceiling:
        print(json.dumps(write_ceiling(args.batch_size), indent=2))
        return

    from interests.ingest import read_logs

    logs = read_logs(EXAMPLES / "events.csv", catalog=EXAMPLES / "catalog.jsonl")
    users = list(logs.histories)[: args.users]
    modes = args.modes.split(",")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for r in range(args.repeats):
        for mode in modes:  # interleaved, so a change in the machine's load hits every mode alike
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "profiles.jsonl"
                if mode == "single":
                    row = run_single(logs, users, out, args.batch_size)
                else:
                    row = run_ray(logs, users, out, args.batch_size, int(mode[3:]))
            row["users_per_min"] = 60 * (row["profiles"] + row["errors"]) / row["extract_s"]
            row["load_avg_1m_after"] = os.getloadavg()[0]  # the machine is shared: say how busy it was
            runs[mode].append(row)
            print(f"repeat {r + 1} {mode}: " + json.dumps(row), file=sys.stderr, flush=True)

    summary: dict[str, Any] = {
        m: {k: _stats([x[k] for x in rows]) for k in ("users_per_min", "extract_s", "startup_s", "total_s")}
        for m, rows in runs.items()
        if rows
    }
    if "single" in summary and "ray1" in summary:
        single, ray1 = summary["single"]["extract_s"]["median"], summary["ray1"]["extract_s"]["median"]
        summary["ray1_overhead"] = ray1 / single - 1
    result = {
        "users": len(users),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "command": "python " + " ".join(sys.argv),
        "runs": runs,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "| mode | users/min (median, min-max) | extraction s (median) | start s (median) | whole call s |",
        "|---|---|---|---|---|",
    ]
    for m in modes:
        s = summary[m]
        u = s["users_per_min"]
        lines.append(
            f"| {m} | {u['median']:.1f} ({u['min']:.1f}-{u['max']:.1f}) | {s['extract_s']['median']:.1f} "
            f"| {s['startup_s']['median']:.1f} | {s['total_s']['median']:.1f} |"
        )
    if "ray1_overhead" in summary:
        lines.append(f"\nRay overhead of 1 actor against one process: {100 * summary['ray1_overhead']:+.1f}%")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
