"""Environment defaults for vLLM's CPU build, shared by the in-process engine and ``interests serve``.

vLLM's automatic OpenMP binding keeps one core per worker free for its
scheduler. On a machine with a handful of cores that halves the compute: on
the project's 2-core machines binding the worker to both cores made the same
6 MovieLens extractions 1.54x faster (80.7 s -> 52.5 s, docs/benchmarks.md).
So on small machines the worker is bound to every core this process may use;
on larger ones vLLM's own choice stands. Variables the user already set are
never overridden, and GPU builds ignore all of them.

:func:`enforce_eager` picks the other platform-dependent default: eager
execution on the CPU (what every CPU measurement in docs/benchmarks.md used;
vLLM's compiled CPU path was not measured), CUDA graphs on a GPU (vLLM's own
default, faster decoding).
"""

from __future__ import annotations

import os

#: at most this many usable cores: bind the worker to all of them, reserve none
SMALL_MACHINE_CORES = 4


def usable_cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def cpu_engine_env(kv_cache_gb: float = 2.0) -> dict[str, str]:
    """The variables to set when the user has not: KV cache size and, on small machines, thread binding."""
    env = {"VLLM_CPU_KVCACHE_SPACE": f"{kv_cache_gb:g}"}
    cores = usable_cores()
    if "VLLM_CPU_OMP_THREADS_BIND" not in os.environ and len(cores) <= SMALL_MACHINE_CORES:
        env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, cores))
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    return env


def apply_cpu_engine_env(target: dict[str, str] | os._Environ[str], kv_cache_gb: float = 2.0) -> None:
    """Set the defaults in ``target`` (``os.environ`` or a child's environment) without overriding."""
    for key, value in cpu_engine_env(kv_cache_gb).items():
        target.setdefault(key, value)


def gpu_available() -> bool:
    """Whether torch sees a CUDA (or ROCm) device; the CPU build of vLLM ships a CPU-only torch."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def enforce_eager(requested: bool | None = None) -> bool:
    """``requested`` when given; otherwise eager on the CPU and CUDA graphs on a GPU."""
    return (not gpu_available()) if requested is None else requested


__all__ = ["apply_cpu_engine_env", "cpu_engine_env", "enforce_eager", "gpu_available", "usable_cores"]
