"""The backend contract: chat requests with a JSON schema in, raw completions out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

Messages = list[dict[str, str]]


def approx_tokens(messages: Messages) -> int:
    """A cheap upper-bound token estimate (about 3 characters a token), for backends without a tokenizer."""
    return sum(len(m["content"]) // 3 + 4 for m in messages)


@dataclass
class GenRequest:
    """One constrained chat completion to run."""

    key: str  # the user id, echoed back in the result
    messages: Messages
    response_model: type[BaseModel]  # the per-user draft model; its JSON Schema constrains decoding
    max_tokens: int = 1024
    temperature: float = 0.0
    seed: int = 0

    def schema(self) -> dict[str, Any]:
        return self.response_model.model_json_schema()


@dataclass
class GenResult:
    """What came back for one request. ``text`` is raw JSON text (possibly cut off)."""

    key: str
    text: str
    finish_reason: str  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """Anything that runs a batch of :class:`GenRequest` (in-process engine, server, fake)."""

    name: str
    model: str
    server: str | None
    max_model_len: int

    def generate(self, requests: list[GenRequest]) -> list[GenResult]: ...

    def count_tokens(self, messages: Messages) -> int: ...

    def close(self) -> None: ...


__all__ = ["Backend", "GenRequest", "GenResult", "Messages", "approx_tokens"]
