"""Scaling past one process: profile extraction across a Ray cluster (``pip install 'interests[ray]'``).

Importing this package does not import Ray; :func:`extract_profiles_ray` does, when it runs.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BackendSpec": "interests.scale.ray_extract",
    "RayExtractResult": "interests.scale.ray_extract",
    "extract_profiles_ray": "interests.scale.ray_extract",
    "partition_of": "interests.scale.ray_extract",
}

__all__ = ["BackendSpec", "RayExtractResult", "extract_profiles_ray", "partition_of"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
