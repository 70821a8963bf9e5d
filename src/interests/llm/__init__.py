"""LLM backends: in-process vLLM, an OpenAI-compatible server, and a scripted fake."""

from __future__ import annotations

import importlib
from typing import Any

from .base import Backend, GenRequest, GenResult

_LAZY = {
    "VLLMBackend": "interests.llm.vllm_local",
    "ServerBackend": "interests.llm.server",
    "FakeBackend": "interests.llm.fake",
    "schema_answer": "interests.llm.fake",
    "BackendSpec": "interests.llm.spec",
}

__all__ = [
    "Backend",
    "BackendSpec",
    "FakeBackend",
    "GenRequest",
    "GenResult",
    "ServerBackend",
    "VLLMBackend",
    "schema_answer",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
