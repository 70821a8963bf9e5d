"""Connecting to Ray: the ``--ray`` address, the ``ray`` module itself, ``ray.init`` done once.

Shared by distributed extraction (:mod:`interests.scale.ray_extract`) and training
(:mod:`interests.scale.ray_train`); nothing here imports Ray until it is called.
"""

from __future__ import annotations

import re
import signal
import threading
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

_ADDRESS = re.compile(r"^(local|auto|ray://\S+|[\w.\-]+:\d+)$")
RAY_MISSING = "{what} needs Ray: pip install 'interests[ray]'"


def check_address(address: str | None) -> str | None:
    """A valid ``--ray`` value: ``local`` (also ``""``), ``auto``, ``ray://HOST:PORT`` or ``HOST:PORT``."""
    if address is None or address == "":
        return None if address is None else "local"
    if not _ADDRESS.match(address):
        raise ConfigError(
            f"--ray {address!r} is not a Ray address: give nothing (a local cluster), auto, "
            "ray://HOST:10001 or HOST:6379 (write --ray=ADDRESS or put --ray after the log files)"
        )
    return address


def require_ray(what: str = "distributed extraction") -> Any:
    """The ``ray`` module, or a :class:`ConfigError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(RAY_MISSING.format(what=what)) from exc
    return ray


def connect(ray: Any, address: str) -> None:
    """``ray.init``, keeping this process's SIGTERM handling (Ray's own aborts the process).

    A local cluster started here runs its workers at the driver's priority: Ray lowers
    workers' priority by 15 by default (``worker_niceness``), which on a shared machine
    starved the engines in the actors against the same engine in one process.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    local = {"include_dashboard": False, "_system_config": {"worker_niceness": 0}}
    ray.init(address=address, log_to_driver=True, **(local if address == "local" else {}))
    if main and callable(previous):  # e.g. the CLI's SIGTERM-as-Ctrl-C: finished batches are kept
        signal.signal(signal.SIGTERM, previous)


@dataclass(frozen=True)
class RayCluster:
    """Where and how wide a distributed extraction runs (the ``--ray``/``--actors`` options).

    ``address``: ``None`` (the Ray this process is connected to, else a new local
    cluster), ``"local"``, ``"auto"``, ``"ray://HOST:10001"`` or ``"HOST:6379"``.
    ``actors`` defaults to as many as the cluster holds, each asking for
    ``actor_cpus`` CPUs and ``actor_gpus`` GPUs (default: the engine's
    tensor-parallel size where the cluster has GPUs, else none).
    ``max_actor_failures`` (default 3 per actor) stops a job whose actors keep
    dying; ``name_prefix`` names the actors ``<prefix>-<index>``.
    """

    address: str | None = None
    actors: int | None = None
    actor_cpus: float = 1.0
    actor_gpus: float | None = None
    max_actor_failures: int | None = None
    name_prefix: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", check_address(self.address))
        if self.actors is not None and self.actors < 1:
            raise ConfigError(f"actors must be at least 1, not {self.actors}")
        if self.actor_cpus <= 0:
            raise ConfigError(f"actor_cpus must be above 0, not {self.actor_cpus}")
        if self.actor_gpus is not None and self.actor_gpus < 0:
            raise ConfigError(f"actor_gpus must be 0 or more, not {self.actor_gpus}")


__all__ = ["RAY_MISSING", "RayCluster", "check_address", "connect", "require_ray"]
