"""A scripted backend for fast unit tests of the logic around a real engine.

It never stands in for the engine in integration tests (those run vLLM).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .base import GenRequest, GenResult, Messages, approx_tokens

Script = Callable[[GenRequest, int], tuple[str, str]]  # (request, attempt) -> (text, finish_reason)


def schema_answer(
    schema: dict[str, Any],
    *,
    name: str = "Favourites",
    summary: str = "Likes what the log shows.",
    text_sentiment: str = "positive",
    n_items: int = 2,
) -> dict[str, Any]:
    """A valid answer for any draft schema (either structure): what a script returns by default.

    Every required field is filled: names with ``name``, the summary with
    ``summary``, ``text_sentiment`` with ``text_sentiment``, a list of choices
    (item ids, attribute values) with its first ``n_items`` choices, any
    other list with one element, any other choice with its first option.
    """
    defs = schema.get("$defs", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        return defs[node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node

    def fill(node: dict[str, Any], key: str = "") -> Any:
        node = resolve(node)
        if key == "text_sentiment":
            return text_sentiment
        if "enum" in node or "const" in node:
            return (node.get("enum") or [node.get("const")])[0]
        kind = node.get("type")
        if kind == "object":
            return {
                k: fill(v, k) for k, v in node.get("properties", {}).items() if k in node.get("required", [])
            }
        if kind == "array":
            item = resolve(node["items"])
            lo, hi = node.get("minItems", 0), node.get("maxItems", n_items)
            if "enum" in item or "const" in item:
                choices = item.get("enum") or [item["const"]]
                return choices[: max(lo, min(n_items, hi))]
            return [fill(item) for _ in range(max(lo, 1))]
        if kind == "string":
            return summary if key == "summary" else name
        return None

    return fill(schema)


class FakeBackend:
    name = "fake"
    server: str | None = None

    def __init__(
        self, script: Script | None = None, *, model: str = "fake-model", max_model_len: int = 4096
    ) -> None:
        self.script = script or (
            lambda request, attempt: (json.dumps(schema_answer(request.schema())), "stop")
        )
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


__all__ = ["FakeBackend", "Script", "schema_answer"]
