"""Load test of ``interests api`` on loopback against a two-tower model of ml-latest-small.

    python bench/api.py                         # trains a model (3 epochs, about a minute), then measures
    python bench/api.py --model out/ml-model    # reuses a model folder

The server is the real command (``interests api``, one uvicorn worker) in a
subprocess; the load generator is a closed loop of ``--concurrency`` httpx
async connections in this process, so client and server share the machine's
cores. Each repeat runs, for a fixed number of requests:

1. ``read``: ``GET /users/{u}/recommendations?k=20`` for random trained users;
2. ``mixed``: the same, while a second client posts events
   (``POST /events``, 1-5 events of a random user) in a closed loop, or
   with ``--post-rate`` at a fixed rate (open loop), so the posted users'
   cached score rows are rebuilt on their next read and their profiles
   re-grounded in the background (and the rows rebuilt once more).

    python bench/api.py --rate 200 --concurrency 32 --post-rate 30   # the issue's floor (#16)

Reported per phase: requests/s and client-side p50/p95/p99 latency, and the
server's own time per request from its ``/metrics`` histogram (bucket
bounds, so p50/p99 there are upper bounds). Median, min and max over the
repeats go to ``bench/results/api-ml-latest-small.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("INTERESTS_DATA_DIR", ROOT.parent / "shared" / "data")) / "ml-latest-small"
MAPPING = "user=userId,item=movieId,time=timestamp,rating=rating"
ROUTE = "/users/{user_id}/recommendations"
MAX_PENDING_POSTS = 16  # --post-rate: posts in flight at most; the ones due beyond are skipped (counted)


def train(out: Path, epochs: int) -> float:
    """Fit the two-tower model the way ``interests train --no-holdout`` does; returns seconds."""
    import torch

    from interests.ingest import read_logs
    from interests.recsys import fit_two_tower

    torch.set_num_threads(1)
    t = time.perf_counter()
    logs = read_logs(DATA / "ratings.csv", mapping=MAPPING, catalog=DATA / "movies.csv")
    fit_two_tower(logs, holdout=False, epochs=epochs, seed=0).save(out)
    return time.perf_counter() - t


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: Path, work: Path, port: int) -> subprocess.Popen[bytes]:
    profiles = work / "profiles.jsonl"
    profiles.touch()
    log = work / "profiles.events.jsonl"
    log.unlink(missing_ok=True)
    exe = Path(sys.executable).with_name("interests")
    catalog = str(DATA / "movies.csv")
    cmd = [
        str(exe),
        "api",
        str(model),
        "--profiles",
        str(profiles),
        "--catalog",
        catalog,
        "--port",
        str(port),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"the server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not answer /healthz within 120 s")


def first_refresh(base: str, user: str, item: str) -> float:
    """Post one event of a user without a profile; seconds until the refreshed profile is served."""
    t = time.perf_counter()
    with httpx.Client(base_url=base, timeout=60) as c:
        c.post("/events", json={"events": [{"user_id": user, "item_id": item}]}).raise_for_status()
        while c.get(f"/users/{user}/profile").status_code == 404:
            if time.perf_counter() - t > 300:
                raise SystemExit("no refreshed profile after 300 s")
            time.sleep(0.05)
    return time.perf_counter() - t


def server_hist(client: httpx.Client) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(bucket bounds, cumulative counts, sum, count) of the recommendations route's latency histogram."""
    bounds, counts, total, n = [], [], 0.0, 0.0
    for line in client.get("/metrics").text.splitlines():
        if f'route="{ROUTE}"' not in line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith("interests_api_request_seconds_bucket"):
            le = name.split('le="')[1].split('"')[0]
            bounds.append(float("inf") if le == "+Inf" else float(le))
            counts.append(float(value))
        elif name.startswith("interests_api_request_seconds_sum"):
            total = float(value)
        elif name.startswith("interests_api_request_seconds_count"):
            n = float(value)
    return np.array(bounds), np.array(counts), total, n


def hist_quantile(bounds: np.ndarray, cum: np.ndarray, q: float) -> float:
    """Upper bound of the bucket holding the q-quantile."""
    if not len(cum) or cum[-1] <= 0:
        return float("nan")
    return float(bounds[int(np.searchsorted(cum, q * cum[-1]))])


async def load(
    base: str,
    users: list[str],
    items: list[str],
    n: int,
    concurrency: int,
    post: bool,
    seed: int,
    rate: float | None = None,
    post_rate: float | None = None,
) -> dict[str, Any]:
    """``n`` recommendation requests: a closed loop of ``concurrency`` readers, or with ``rate`` an
    open loop sending request ``k`` at ``k / rate`` s, its latency counted from that time (so time
    spent waiting behind a slow request counts: no coordinated omission). With ``post``, posts
    alongside: a closed loop of one poster, or with ``post_rate`` an open loop sending post ``k`` at
    ``k / post_rate`` s (so a faster server does not get more posts)."""
    rng = random.Random(seed)
    prng = random.Random(seed + 1000)  # the posts' own draws: the same reads with and without them
    lat: list[float] = []
    post_lat: list[float] = []
    failures = 0
    skipped = 0
    left = n
    sent = 0
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def reader() -> None:
            nonlocal left, failures, sent
            while left > 0:
                left -= 1
                t = time.perf_counter()
                if rate:
                    t, sent = t0 + sent / rate, sent + 1
                    await asyncio.sleep(max(0.0, t - time.perf_counter()))
                try:
                    r = await client.get(f"/users/{rng.choice(users)}/recommendations", params={"k": 20})
                    failures += r.status_code != 200
                except httpx.HTTPError:  # e.g. a keep-alive connection the server closed while stalled
                    failures += 1
                lat.append(time.perf_counter() - t)
            done.set()

        async def post_one(t: float) -> None:
            nonlocal failures
            u = prng.choice(users)
            events = [{"user_id": u, "item_id": prng.choice(items)} for _ in range(prng.randint(1, 5))]
            try:
                r = await client.post("/events", json={"events": events})
                failures += r.status_code != 200
            except httpx.HTTPError:
                failures += 1
            post_lat.append(time.perf_counter() - t)

        async def poster() -> None:
            nonlocal skipped
            pending: set[asyncio.Task[None]] = set()
            k = 0
            while not done.is_set():
                if not post_rate:
                    await post_one(time.perf_counter())
                    continue
                t, k = t0 + k / post_rate, k + 1
                await asyncio.sleep(max(0.0, t - time.perf_counter()))
                if done.is_set():
                    break
                if len(pending) >= MAX_PENDING_POSTS:  # a server that fell behind: bounded, counted
                    skipped += 1
                    continue
                task = asyncio.create_task(post_one(t))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)

        t0 = time.perf_counter() + 0.05
        await asyncio.gather(*[reader() for _ in range(concurrency)], *([poster()] if post else []))
        wall = time.perf_counter() - t0
    a = np.array(lat) * 1e3
    out = {
        "requests": len(lat),
        "seconds": wall,
        "rps": len(lat) / wall,
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "failures": failures,
    }
    if post:
        p = np.array(post_lat) * 1e3
        out |= {"posts": len(p), "posts_per_s": len(p) / wall, "post_p50_ms": float(np.percentile(p, 50))}
        out["posts_skipped"] = skipped
        out["post_p99_ms"] = float(np.percentile(p, 99))
    return out


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``), with its live child processes'
    (the profile refresh process) unless ``children`` is false."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if not children:
        return own
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):  # the refresh thread starts the child: every thread's
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    for k in kids:
        try:
            own += cpu_seconds(k)
        except OSError:  # exited meanwhile
            pass
    return own


def phase(
    base: str, users: list[str], items: list[str], args: argparse.Namespace, post: bool, seed: int, pid: int
) -> dict:
    with httpx.Client(base_url=base) as c:
        _, c0, s0, n0 = server_hist(c)
        cpu0, own0, main0 = cpu_seconds(pid), time.process_time(), cpu_seconds(pid, children=False)
        res = asyncio.run(
            load(
                base,
                users,
                items,
                args.requests,
                args.concurrency,
                post,
                seed,
                rate=args.rate,
                post_rate=args.post_rate,
            )
        )
        cpu1, own1, main1 = cpu_seconds(pid), time.process_time(), cpu_seconds(pid, children=False)
        b1, c1, s1, n1 = server_hist(c)
    # CPU per recommendation (in the mixed phase the posts and profile refreshes too): what the
    # server needs on a core of its own, whatever else runs on the machine
    res["server_cpu_ms_per_request"] = (cpu1 - cpu0) / res["requests"] * 1e3
    res["server_main_cpu_ms_per_request"] = (main1 - main0) / res["requests"] * 1e3  # without the child
    res["client_cpu_ms_per_request"] = (own1 - own0) / res["requests"] * 1e3
    d = c1 - (c0 if len(c0) == len(c1) else 0)
    res["server_mean_ms"] = (s1 - s0) / max(n1 - n0, 1) * 1e3
    res["server_p50_ms_le"] = hist_quantile(b1, d, 0.5) * 1e3
    res["server_p99_ms_le"] = hist_quantile(b1, d, 0.99) * 1e3
    return res


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {
        k: {
            "median": statistics.median(r[k] for r in runs),
            "min": min(r[k] for r in runs),
            "max": max(r[k] for r in runs),
        }
        for k in keys
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="Model folder to serve (default: train one).")
    ap.add_argument("--epochs", type=int, default=3, help="Epochs when training here.")
    ap.add_argument("--requests", type=int, default=2000, help="Recommendation requests per phase.")
    ap.add_argument("--concurrency", type=int, default=8, help="Concurrent reading connections.")
    ap.add_argument(
        "--rate",
        type=float,
        default=None,
        help="Open loop: this many requests/s (latency from each request's scheduled time); "
        "default a closed loop as fast as the server answers.",
    )
    ap.add_argument(
        "--post-rate",
        type=float,
        default=None,
        help="Mixed phase: this many posts/s (open loop); default a closed loop of one poster.",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--note", default="", help="Free text stored with the results (e.g. machine load).")
    ap.add_argument("--keep", action="store_true", help="Keep the work folder (trained model, events log).")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api-ml-latest-small.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="interests-api-bench-"))
    trained_s = None
    model = args.model
    if model is None:
        model = work / "model"
        trained_s = train(model, args.epochs)
        print(f"trained in {trained_s:.0f} s", flush=True)
    cfg = json.loads((model / "config.json").read_text())
    users, items = [str(u) for u in cfg["user_ids"]], [str(i) for i in cfg["item_ids"]]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    runs: dict[str, list[dict[str, Any]]] = {"read": [], "mixed": []}
    warm: dict[str, Any] = {}
    proc = start_server(model, work, port)
    try:
        # first request of every user builds its score row: measured once, apart
        warm = asyncio.run(load(base, users, items, len(users), args.concurrency, False, seed=99))
        print(f"warm-up (cold cache): {warm['rps']:.0f} req/s, p99 {warm['p99_ms']:.1f} ms", flush=True)
        # the first profile refresh groups every logged item once (catalogue genres): timed apart
        warm["first_refresh_s"] = first_refresh(base, users[0], items[0])
        print(f"first profile refresh (item groups): {warm['first_refresh_s']:.1f} s", flush=True)
        for rep in range(args.repeats):
            for name in runs:
                res = phase(base, users, items, args, post=name == "mixed", seed=rep, pid=proc.pid)
                runs[name].append(res)
                print(
                    f"repeat {rep} {name}: {res['rps']:.0f} req/s, p50 {res['p50_ms']:.1f} ms, "
                    f"p99 {res['p99_ms']:.1f} ms, server mean {res['server_mean_ms']:.2f} ms, "
                    f"server CPU {res['server_cpu_ms_per_request']:.2f} ms/req"
                    + (f", {res['posts_per_s']:.0f} posts/s" if "posts" in res else ""),
                    flush=True,
                )
    finally:
        proc.terminate()
        proc.wait(30)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "dataset": "ml-latest-small",
        "machine": machine(),
        "note": args.note,
        "config": {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "rate": args.rate,
            "post_rate": args.post_rate,
            "repeats": args.repeats,
            "k": 20,
            "explain": False,
            "epochs": None if args.model else args.epochs,
            "train_seconds": trained_s,
            "users": len(users),
            "items": len(items),
        },
        "warmup": warm,
        "summary": {name: summary(r) for name, r in runs.items()},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
