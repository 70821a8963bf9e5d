"""Raw vLLM on the extraction prompts under one engine setting (thread binding, dtype).

    python bench/engine_settings.py [--users 6] [--max-items 60] [--dtype float32]
    VLLM_CPU_OMP_THREADS_BIND=auto python bench/engine_settings.py   # vLLM's own binding

Run it once per setting (the environment is read when the engine starts) and
compare the seconds of runs made back to back. Every call starts with an
empty prefix cache. Prints one JSON line; the table is in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    import extract as bench  # the same users, prompts and schemas as bench/extract.py
    from interests.llm.vllm_local import VLLMBackend
    from interests.profile.prompting import DEFAULT_MAX_ITEMS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=6)
    ap.add_argument("--calls", type=int, default=2)
    ap.add_argument(
        "--max-items",
        type=int,
        default=DEFAULT_MAX_ITEMS,
        help="items shown per user (default: the extractor's)",
    )
    ap.add_argument(
        "--dtype",
        default=None,
        help="vLLM dtype (default: the backend's, bfloat16 where the CPU has avx512_bf16/amx, else float32)",
    )
    args = ap.parse_args()
    histories, catalog = bench.load_users(args.users)
    backend = VLLMBackend(dtype=args.dtype)
    t0 = time.perf_counter()
    backend.start()
    load_s = time.perf_counter() - t0
    prompts = bench.build_prompts(
        histories, catalog, backend.count_tokens, backend.max_model_len - 1160, args.max_items
    )
    calls = [bench.run_vllm_raw(backend, prompts, bench.MAX_NEW_TOKENS) for _ in range(args.calls)]
    backend.close()
    env = {k: os.environ.get(k) for k in bench.ENGINE_VARS}
    print(json.dumps({"env": env, "dtype": backend.dtype_used, "load_s": round(load_s, 1), "calls": calls}))
