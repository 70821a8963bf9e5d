"""Environment defaults for vLLM's CPU build, shared by the in-process engine and ``interests serve``.

vLLM's automatic OpenMP binding keeps one core per worker free for its
scheduler. On a machine with a handful of cores that halves the compute: on
the project's 2-core machines binding the worker to both cores made the same
6 MovieLens extractions 1.54x faster (80.7 s -> 52.5 s, docs/benchmarks.md).
So on small machines the worker is bound to every core this process may use;
on larger ones vLLM's own choice stands. Variables the user already set are
never overridden, and GPU builds ignore all of them.

:func:`enforce_eager` picks another platform-dependent default: eager
execution on the CPU (what every CPU measurement in docs/benchmarks.md used;
vLLM's compiled CPU path was not measured), CUDA graphs on a GPU (vLLM's own
default, faster decoding).

:func:`default_dtype` picks the compute dtype. vLLM's CPU build downcasts a
float32 checkpoint to bf16, which is the fast path only where the CPU does
bf16 arithmetic natively (x86 ``avx512_bf16`` or ``amx_bf16``, the aarch64
``bf16`` feature): there bf16 was 1.6x faster than float32 on 2 cores
(52.5 s against 83.9 s, docs/benchmarks.md). On an AMD EPYC with AVX2 only, vLLM
logged "Failed to create oneDNN linear, fallback to torch linear" and the
same 8 users took 223 s in bf16 against 107 s in float32 (2.1x). So bf16 is
chosen only where the CPU flags say it is native, float32 elsewhere, and on
a GPU vLLM's own choice (``"auto"``) stands.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

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


def apply_cpu_engine_env(target: MutableMapping[str, str], kv_cache_gb: float = 2.0) -> None:
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


#: vLLM's log level unless ``interests -v`` (or the user's own VLLM_LOGGING_LEVEL): errors only. At
#: WARNING vLLM still printed a line per layer ("Attempted to load weight ... float32 into ... bfloat16")
#: and notes about Triton and eager mode on every run; none of them is the user's to act on.
QUIET_VLLM_LOGGING_LEVEL = "ERROR"


def vllm_is_quiet() -> bool:
    """Whether vLLM's log level hides INFO lines (then its weight-loading progress bar is hidden too)."""
    return os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper() not in ("DEBUG", "INFO")


def quiet_vllm_logging(target: MutableMapping[str, str]) -> None:
    """Keep vLLM's INFO lines out of the terminal: set ``VLLM_LOGGING_LEVEL`` unless already set.

    vLLM reads it when it is imported, so this must happen before; the engine process and
    ``interests serve``'s server inherit it through the environment.
    """
    target.setdefault("VLLM_LOGGING_LEVEL", QUIET_VLLM_LOGGING_LEVEL)


#: CPU flags (x86 ``flags``, aarch64 ``Features`` in /proc/cpuinfo) that mean native bf16 arithmetic
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (x86 ``flags``, aarch64 ``Features`` in /proc/cpuinfo); none if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:  # not Linux, or no /proc
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


def default_dtype(flags: set[str] | None = None) -> str:
    """``"bfloat16"`` where the CPU computes bf16 natively, else ``"float32"``; ``"auto"`` on a GPU.

    ``flags`` defaults to the CPU's own (:func:`cpu_flags`).
    """
    if gpu_available():
        return "auto"
    flags = cpu_flags() if flags is None else flags
    return "bfloat16" if flags & BF16_FLAGS else "float32"


def resolve_dtype(requested: str | None = None) -> str:
    """``requested`` when given; otherwise :func:`default_dtype`."""
    return default_dtype() if requested is None else requested


__all__ = [
    "apply_cpu_engine_env",
    "cpu_engine_env",
    "cpu_flags",
    "default_dtype",
    "enforce_eager",
    "gpu_available",
    "quiet_vllm_logging",
    "resolve_dtype",
    "usable_cores",
]
