"""A scripted backend for fast unit tests of the logic around a real engine.

It never stands in for the engine in integration tests (those run vLLM).
"""

from __future__ import annotations

from collections.abc import Callable

from ..prompting import approx_tokens
from .base import GenRequest, GenResult, Messages

Script = Callable[[GenRequest, int], tuple[str, str]]  # (request, attempt) -> (text, finish_reason)


class FakeBackend:
    name = "fake"
    server: str | None = None

    def __init__(self, script: Script, *, model: str = "fake-model", max_model_len: int = 4096) -> None:
        self.script = script
        self.model = model
        self.max_model_len = max_model_len
        self.calls: list[list[GenRequest]] = []
        self._attempts: dict[str, int] = {}

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        self.calls.append(list(requests))
        out = []
        for r in requests:
            attempt = self._attempts.get(r.key, 0)
            self._attempts[r.key] = attempt + 1
            text, finish = self.script(r, attempt)
            out.append(GenResult(r.key, text, finish, approx_tokens(r.messages), len(text) // 3))
        return out

    def count_tokens(self, messages: Messages) -> int:
        return approx_tokens(messages)

    def close(self) -> None:
        pass
