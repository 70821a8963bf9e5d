"""Extraction throughput: the project's paths against the plain loop and raw vLLM, in one run.

    python bench/extract.py [--users 16] [--loop-users 4] [--repeats 3] [--max-items N] [--json]

Same users (the first N of ml-latest-small, read through the normal
ingestion path), same rendered prompts, same model, same machine:

1. ``transformers-loop``: one ``generate`` per user, greedy, same max tokens,
   JSON parsed afterwards (what a user would otherwise write);
2. ``vllm-raw``: one ``LLM.chat`` call on the same prompts with the same
   per-user JSON schema, no pipeline around it;
3. ``interests``: ``extract_profiles`` in-process (signals, prompts, retries,
   grounding, fsync'd writes included);
4. ``interests-server``: the same through ``interests serve`` + ``--server``
   at concurrency 1, 4 and 16 (the best one is reported under this name).

Writes ``bench/results/extract.json`` and ``bench/results/extract.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("INTERESTS_DATA_DIR", ROOT.parent / "shared" / "data")) / "ml-latest-small"
RESULTS = ROOT / "bench" / "results"
MAX_NEW_TOKENS = 768
# as set for the engine (by interests.llm.cpu_env unless the user set them), recorded in the results
ENGINE_VARS = ("VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_CPU_NUM_OF_RESERVED_CPU")


class PeakRSS:
    """Samples the RSS of this process and all its children (the vLLM engine runs in one)."""

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # a child may exit while sampled
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return self.peak / 2**20


def load_users(n: int) -> Any:
    from interests.ingest import read_logs

    logs = read_logs(
        [DATA / "ratings.csv", DATA / "tags.csv"],
        catalog=DATA / "movies.csv",
        mapping="user=userId,item=movieId,time=timestamp,rating=rating,text=tag",
    )
    keep = list(logs.histories)[:n]
    return {u: logs.histories[u] for u in keep}, logs.catalog


def build_prompts(
    histories: dict, catalog: Any, count_tokens: Any, budget: int, max_items: int
) -> list[tuple[str, Any, Any]]:
    """The exact prompts and draft models extract_profiles builds."""
    from interests.profile.draft import draft_model
    from interests.profile.prompting import PromptRenderer
    from interests.profile.signals import compute_signals, dataset_reference

    scale, as_of = dataset_reference(histories.values())
    renderer = PromptRenderer()
    out = []
    for uid, h in histories.items():
        sig = compute_signals(h, catalog, as_of=as_of, rating_scale=scale)
        pr = renderer.render(
            h, sig, catalog, max_tokens=budget, max_items=max_items, count_tokens=count_tokens
        )
        out.append((uid, pr, draft_model(pr.item_ids, with_text=pr.with_text, domain_names=pr.categories)))
    return out


def _valid(model: Any, text: str) -> bool:
    try:
        model.model_validate_json(text)
        return True
    except Exception:
        return False


def run_transformers_loop(model_path: str, prompts: list, max_new_tokens: int) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype="auto")  # the float32 weights vLLM serves
    model.eval()
    t0 = time.perf_counter()
    n_out = n_in = valid = 0
    with PeakRSS() as mem:
        for _, pr, draft in prompts:
            ids = tok.apply_chat_template(
                pr.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                gen = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
            new = gen[0, ids["input_ids"].shape[1] :]
            n_in += ids["input_ids"].shape[1]
            n_out += len(new)
            valid += _valid(draft, tok.decode(new, skip_special_tokens=True))
    dt = time.perf_counter() - t0
    return _row(len(prompts), dt, n_in, n_out, valid, mem.mb)


def run_vllm_raw(backend: Any, prompts: list, max_new_tokens: int) -> dict[str, float]:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    backend._llm.reset_prefix_cache()  # every run starts cold, as a real run over new users does
    params = [
        SamplingParams(
            max_tokens=max_new_tokens,
            temperature=0.0,
            structured_outputs=StructuredOutputsParams(json=d.model_json_schema()),
        )
        for _, _, d in prompts
    ]
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        outs = backend._llm.chat([pr.messages for _, pr, _ in prompts], params, use_tqdm=False)
        dt = time.perf_counter() - t0
    n_in = sum(len(o.prompt_token_ids) for o in outs)
    n_out = sum(len(o.outputs[0].token_ids) for o in outs)
    valid = sum(_valid(d, o.outputs[0].text) for (_, _, d), o in zip(prompts, outs, strict=True))
    return _row(len(prompts), dt, n_in, n_out, valid, mem.mb)


def run_interests(
    backend: Any, histories: dict, catalog: Any, batch_size: int, max_items: int
) -> dict[str, float]:
    from interests.profile.extract import extract_profiles

    backend._llm.reset_prefix_cache()
    with tempfile.TemporaryDirectory() as tmp, PeakRSS() as mem:
        res = extract_profiles(
            histories,
            catalog=catalog,
            output=Path(tmp) / "p.jsonl",
            backend=backend,
            batch_size=batch_size,
            max_new_tokens=MAX_NEW_TOKENS,
            max_items=max_items,
        )
    row = _row(len(histories), res.seconds, res.prompt_tokens, res.output_tokens, res.valid_first_try, mem.mb)
    row.update(
        retries=res.retries,
        errors=res.errors,
        outside_engine_share=round(1 - res.engine_seconds / res.seconds, 4) if res.seconds else 0.0,
        prefix_cache_hit_rate=round(res.cached_tokens / res.prompt_tokens, 4) if res.prompt_tokens else 0.0,
    )
    return row


def _row(n: int, seconds: float, n_in: int, n_out: int, valid: int, rss_mb: float) -> dict[str, float]:
    return {
        "users": n,
        "seconds": round(seconds, 2),
        "users_per_min": round(60 * n / seconds, 3),
        "prompt_tokens_per_s": round(n_in / seconds, 1),
        "output_tokens_per_s": round(n_out / seconds, 2),
        "valid_first_try": round(valid / n, 4),
        "peak_rss_mb": round(rss_mb, 1),
    }


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Median of every number, with min and max for the headline ones."""
    out: dict[str, Any] = {}
    for k in runs[0]:
        vals = [r[k] for r in runs if isinstance(r.get(k), int | float)]
        if vals:
            out[k] = statistics.median(vals)
            if k in ("users_per_min", "output_tokens_per_s", "seconds"):
                out[f"{k}_min"], out[f"{k}_max"] = min(vals), max(vals)
    out["runs"] = len(runs)
    return out


def markdown(results: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"Machine: {meta['machine']}. Model: {meta['model']}. "
        f"Users: first {meta['users']} of ml-latest-small (transformers loop: first {meta['loop_users']}); "
        f"max items {meta['max_items']}; max new tokens {MAX_NEW_TOKENS}; "
        f"medians of {meta['repeats']} runs (min-max).",
        "",
        "| path | users/min | output tok/s | prompt tok/s | valid first try | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if not isinstance(r, dict) or "users_per_min" not in r:
            continue
        lines.append(
            f"| {name} | {r['users_per_min']:.2f} "
            f"({r.get('users_per_min_min', 0):.2f}-{r.get('users_per_min_max', 0):.2f}) "
            f"| {r['output_tokens_per_s']:.1f} | {r['prompt_tokens_per_s']:.0f} | {r['valid_first_try']:.0%} "
            f"| {r['peak_rss_mb']:.0f} |"
        )
    ratios = results.get("ratios", {})
    if ratios:
        lines += [
            "",
            "Ratios measured in the same run: " + ", ".join(f"{k} = {v}" for k, v in ratios.items()) + ".",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from interests.profile.prompting import DEFAULT_MAX_ITEMS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--loop-users", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument(
        "--max-items",
        type=int,
        default=DEFAULT_MAX_ITEMS,
        help="most recent items shown per user (default: the extractor's default)",
    )
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--skip-loop", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    args = ap.parse_args(argv)

    from interests.llm.vllm_local import VLLMBackend
    from interests.llm.weights import prepare_model

    model_path = str(prepare_model())
    histories, catalog = load_users(args.users)
    backend = VLLMBackend()
    backend.start()
    prompts = build_prompts(
        histories, catalog, backend.count_tokens, backend.max_model_len - 1160, args.max_items
    )
    results: dict[str, Any] = {}
    raw_runs, ours_runs = [], []
    for _ in range(args.repeats):  # interleaved so that machine noise hits both alike
        raw_runs.append(run_vllm_raw(backend, prompts, MAX_NEW_TOKENS))
        ours_runs.append(run_interests(backend, histories, catalog, args.batch_size, args.max_items))
        print(
            f"vllm-raw {raw_runs[-1]['users_per_min']} u/min; "
            f"interests {ours_runs[-1]['users_per_min']} u/min",
            file=sys.stderr,
            flush=True,
        )
    backend.close()
    results["vllm-raw"], results["interests"] = summarise(raw_runs), summarise(ours_runs)
    if not args.skip_loop:
        loop_prompts = prompts[: args.loop_users]
        results["transformers-loop"] = summarise(
            [
                run_transformers_loop(model_path, loop_prompts, MAX_NEW_TOKENS)
                for _ in range(max(1, args.repeats - 1))
            ]
        )
    if not args.skip_server:
        results.update(
            run_server(
                histories,
                catalog,
                [int(c) for c in args.concurrency.split(",")],
                args.repeats,
                args.batch_size,
                args.max_items,
            )
        )
    r = results
    ratios = {
        "interests / vllm-raw (users/min)": round(
            r["interests"]["users_per_min"] / r["vllm-raw"]["users_per_min"], 3
        )
    }
    if "transformers-loop" in r:
        ratios["interests / transformers-loop"] = round(
            r["interests"]["users_per_min"] / r["transformers-loop"]["users_per_min"], 2
        )
    if "interests-server" in r:
        ratios["interests-server / interests"] = round(
            r["interests-server"]["users_per_min"] / r["interests"]["users_per_min"], 3
        )
    results["ratios"] = ratios
    meta = {
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "model": "smollm2-135m (float32 weights; vLLM computes in bf16, transformers in float32)",
        "engine_env": {k: os.environ.get(k) for k in ENGINE_VARS},
        "users": args.users,
        "loop_users": args.loop_users,
        "repeats": args.repeats,
        "max_items": args.max_items,
    }
    results["meta"] = meta
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "extract.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "extract.md").write_text(markdown(results, meta))
    print(json.dumps(results, indent=1) if args.json else markdown(results, meta))
    return 0


def run_server(
    histories: dict, catalog: Any, concurrencies: list[int], repeats: int, batch_size: int, max_items: int
) -> dict[str, Any]:
    import urllib.request

    from interests.llm.launch import start_server
    from interests.llm.server import ServerBackend
    from interests.profile.extract import extract_profiles

    out: dict[str, Any] = {}
    os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # exposes POST /reset_prefix_cache: every run starts cold
    with start_server(log_path=RESULTS / "server.log") as server:
        root = server.base_url.rsplit("/v1", 1)[0]
        for c in concurrencies:
            runs = []
            for _ in range(repeats):
                urllib.request.urlopen(
                    urllib.request.Request(f"{root}/reset_prefix_cache", method="POST"), timeout=60
                ).read()
                backend = ServerBackend(server.base_url, concurrency=c)
                with tempfile.TemporaryDirectory() as tmp, PeakRSS() as mem:
                    res = extract_profiles(
                        histories,
                        catalog=catalog,
                        output=Path(tmp) / "p.jsonl",
                        backend=backend,
                        batch_size=max(batch_size, c),
                        max_new_tokens=MAX_NEW_TOKENS,
                        max_items=max_items,
                    )
                runs.append(
                    _row(
                        len(histories),
                        res.seconds,
                        res.prompt_tokens,
                        res.output_tokens,
                        res.valid_first_try,
                        mem.mb,
                    )
                )
                print(f"server c={c}: {runs[-1]['users_per_min']} u/min", file=sys.stderr, flush=True)
            out[f"interests-server-c{c}"] = summarise(runs)
    best = max((k for k in out), key=lambda k: out[k]["users_per_min"])
    out["interests-server"] = {**out[best], "concurrency": int(best.rsplit("c", 1)[1])}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
