"""Scaling past one process on Ray (``pip install 'interests[ray]'``): profile extraction across a
cluster (:func:`extract_profiles_ray`; logs larger than memory with :func:`extract_partitioned_ray`;
one actor pool for many calls with :class:`RayExtractors`) and data-parallel training
(:class:`RayTraining`).

Importing this package does not import Ray; the functions do, when they run.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BackendSpec": "interests.llm.spec",
    "RayCluster": "interests.scale.ray_connect",
    "RayExtractResult": "interests.scale.ray_extract",
    "RayExtractors": "interests.scale.ray_extract",
    "extract_partitioned_ray": "interests.scale.ray_extract",
    "extract_profiles_ray": "interests.scale.ray_extract",
    "partition_of": "interests.scale.ray_extract",
    "RayTraining": "interests.scale.ray_train",
    "train_net_ray": "interests.scale.ray_train",
}

__all__ = [
    "BackendSpec",
    "RayCluster",
    "RayExtractResult",
    "RayExtractors",
    "RayTraining",
    "extract_partitioned_ray",
    "extract_profiles_ray",
    "partition_of",
    "train_net_ray",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
