"""Peak memory of ingestion on 1,000,000 events, with and without the per-user cap.

    nice -n 10 python bench/memory.py                       # 1M events, 3 runs per setting
    python bench/memory.py --events 200000 --runs 1          # quicker

Synthetic events (``interests.synthetic.synthetic_events``) are written to a
CSV file in a temporary folder, then each setting is read in a fresh Python
process (so one run's memory cannot hide in another's) through the public
path, ``read_logs(path, max_events_per_user=N)``. A process reports its peak
resident set size (``resource.getrusage``, the kernel's high-water mark) and
the same after imports, before reading (the baseline); ``--tracemalloc`` adds
the peak of Python allocations (slower). The Markdown table (median, min and
max over the runs) goes to stdout and to ``bench/results/memory.md``.

The third setting reads with the cap but without duplicate detection
(``read_logs(..., dedup=False)``, ``--keep-duplicates``) to show how much of
what is left is the set of row digests kept to count duplicates. The fourth,
``partitioned``, keeps every event: ``partition_logs`` spills them to
``--parts`` per-user files and the histories are then read one partition at a
time (logs larger than memory; docs/logs.md)::

    nice -n 10 python bench/memory.py --events 10000000 --users 20000 --items 200000 \
        --settings no-cap,partitioned --parts 32 --runs 1 --out bench/results/memory-10m.md
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SETTINGS = ("no-cap", "cap", "cap-no-dedup", "partitioned")


def write_events(path: Path, n_events: int, n_users: int, n_items: int) -> float:
    """Write the synthetic events as CSV; return the seconds it took."""
    from interests.synthetic import synthetic_events

    start = time.perf_counter()
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user", "item", "rating", "timestamp", "type"])
        for e in synthetic_events(n_events, n_users, n_items):
            w.writerow([e.user_id, e.item_id, int(e.rating or 0), int(e.ts or 0), e.event])
    return time.perf_counter() - start


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure(path: str, setting: str, cap: int, trace: bool, parts: int) -> dict[str, Any]:
    """One reading in this process (run by the parent as a child process)."""
    import tracemalloc

    from interests.ingest import partition_logs, read_logs

    baseline = _rss_mb()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    if setting == "partitioned":
        # every user's whole history, one partition in memory at a time (what a job over it holds)
        with tempfile.TemporaryDirectory(prefix="interests-parts-") as tmp:
            split = partition_logs(path, tmp, parts=parts)
            kept = users = 0
            for part in split:
                kept += part.n_events
                users += len(part)
            report = split.report
    else:
        logs = read_logs(
            path, max_events_per_user=None if setting == "no-cap" else cap, dedup=setting != "cap-no-dedup"
        )
        report, kept, users = logs.report, logs.n_events, len(logs)
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    return {
        "setting": setting,
        "rows": report.rows_read,
        "kept": kept,
        "users": users,
        "seconds": seconds,
        "baseline_mb": baseline,
        "peak_mb": _rss_mb(),
        "traced_mb": traced,
    }


def _child(path: Path, setting: str, cap: int, trace: bool, parts: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(path),
        "--setting",
        setting,
        "--cap",
        str(cap),
        "--parts",
        str(parts),
    ]
    if trace:
        cmd.append("--tracemalloc")
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _stat(values: list[float], fmt: str = "{:,.0f}") -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(
    runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace, write_s: float, size_mb: float
) -> str:
    lines = [
        "# Ingestion memory",
        "",
        f"`python bench/memory.py --events {args.events} --users {args.users} --items {args.items} "
        f"--cap {args.cap} --runs {args.runs}` on {datetime.now(timezone.utc):%Y-%m-%d}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, shared machine (`nice -n 10`).",
        "",
        f"{args.events:,} synthetic events ({args.users:,} users, about {args.events // args.users:,} events "
        f"each; {args.items:,} items) in a {size_mb:,.0f} MB CSV file (written in {write_s:.0f} s), "
        f"read by `read_logs` in a fresh process per run. Peak RSS is the kernel's high-water mark "
        f"for the process; the baseline is the same after imports, before reading. Median "
        f"(min-max) over {args.runs} runs.",
        "",
        "| setting | events kept | peak RSS (MB) | over baseline (MB) | read time (s) |"
        + (" tracemalloc peak (MB) |" if args.tracemalloc else ""),
        "|---|---:|---:|---:|---:|" + ("---:|" if args.tracemalloc else ""),
    ]
    for setting in args.settings:
        rs = runs[setting]
        label = {
            "no-cap": "no cap",
            "cap": f"`max_events_per_user={args.cap}`",
            "cap-no-dedup": f"cap {args.cap}, `dedup=False` (`--keep-duplicates`)",
            "partitioned": f"`partition_logs(parts={args.parts})`, no cap",
        }[setting]
        row = (
            f"| {label} | {rs[0]['kept']:,} | {_stat([r['peak_mb'] for r in rs])} | "
            f"{_stat([r['peak_mb'] - r['baseline_mb'] for r in rs])} | "
            f"{_stat([r['seconds'] for r in rs], '{:.1f}')} |"
        )
        if args.tracemalloc:
            row += f" {_stat([r['traced_mb'] for r in rs if r['traced_mb'] is not None])} |"
        lines.append(row)
    lines += [
        "",
        "The cap keeps each user's most recent events in a bounded heap, so the histories "
        "no longer grow with the log; what still grows with the number of rows is the set "
        "of 96-bit row digests kept to count exact duplicates (the third row shows the "
        "reading without it).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--cap", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parts", type=int, default=16, help="partitions of the partitioned setting")
    ap.add_argument(
        "--settings", default=",".join(SETTINGS), help=f"comma-separated, of: {', '.join(SETTINGS)}"
    )
    ap.add_argument("--tracemalloc", action="store_true", help="also the peak of Python allocations (slower)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/results alone")
    ap.add_argument("--out", type=Path, default=RESULTS / "memory.md", help="where the table goes")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--setting", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.setting, args.cap, args.tracemalloc, args.parts)))
        return
    args.settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = sorted(set(args.settings) - set(SETTINGS))
    if unknown:
        ap.error(f"unknown setting {unknown[0]!r}: choose from {', '.join(SETTINGS)}")
    with tempfile.TemporaryDirectory(prefix="interests-memory-") as tmp:
        path = Path(tmp) / "events.csv"
        write_s = write_events(path, args.events, args.users, args.items)
        size_mb = path.stat().st_size / 2**20
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in args.settings}
        for k in range(args.runs):
            for setting in args.settings:
                r = _child(path, setting, args.cap, args.tracemalloc, args.parts)
                runs[setting].append(r)
                print(
                    f"run {k + 1} {setting}: peak {r['peak_mb']:.0f} MB, baseline {r['baseline_mb']:.0f} MB, "
                    f"{r['seconds']:.1f} s, {r['kept']:,} events kept",
                    file=sys.stderr,
                )
    text = table(runs, args, write_s, size_mb)
    print(text)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
