"""Extraction against an OpenAI-compatible server (vLLM first) through instructor.

Same prompts, same per-user draft model (its JSON Schema, with the user's
item ids as an ``enum``, goes out as ``response_format``), same grounding as
the in-process backend. ``concurrency`` requests are in flight at once
(asyncio); instructor re-asks once on a validation error; connection errors
and 5xx answers are retried with exponential backoff, and when they go on
the run stops with a :class:`BackendError` (finished batches are already on
disk, so a re-run resumes).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, cast

import httpx

from ..errors import BackendError
from ..prompting import approx_tokens
from .base import GenRequest, GenResult, Messages

# instructor logs every failed call; this backend reports failures itself, once
logging.getLogger("instructor").setLevel(logging.CRITICAL)

HINT = "start one with `interests serve` (or point --server at a running OpenAI-compatible server)"


class ServerBackend:
    name = "server"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        concurrency: int = 8,
        timeout: float = 300.0,
        connect_retries: int = 4,
        backoff: float = 1.0,
        max_model_len: int | None = None,
        validation_retries: int = 1,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.server: str | None = self.base_url
        self.api_key = api_key or "EMPTY"
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.connect_retries = connect_retries
        self.backoff = backoff
        self.validation_retries = validation_retries
        self._http_client = http_client
        self._card = self._probe() if http_client is None else {"id": model or "model"}
        self.model = model or str(self._card["id"])
        self.max_model_len = int(max_model_len or self._card.get("max_model_len") or 4096)

    def _probe(self) -> dict[str, Any]:
        """Ask the server which model it serves; fail in one line if it is not there."""
        try:
            r = httpx.get(
                f"{self.base_url}/models", headers={"Authorization": f"Bearer {self.api_key}"}, timeout=10.0
            )
            r.raise_for_status()
            data = r.json()["data"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise BackendError(
                f"cannot reach an OpenAI-compatible server at {self.base_url} ({exc}); {HINT}"
            ) from exc
        if not data:
            raise BackendError(f"the server at {self.base_url} serves no model")
        return dict(data[0])

    def count_tokens(self, messages: Messages) -> int:
        return approx_tokens(messages)

    def close(self) -> None:
        pass

    # -- requests ------------------------------------------------------------------------
    def _client(self) -> Any:
        import instructor
        from openai import AsyncOpenAI

        http = self._http_client or httpx.AsyncClient(timeout=self.timeout)
        raw = AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.api_key,
            timeout=self.timeout,
            max_retries=0,
            http_client=cast(Any, http),
        )  # httpx or httpx2, openai takes both
        return instructor.from_openai(raw, mode=instructor.Mode.JSON_SCHEMA), http

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        return asyncio.run(self._generate(requests))

    async def _generate(self, requests: list[GenRequest]) -> list[GenResult]:
        client, http = self._client()
        gate = asyncio.Semaphore(self.concurrency)
        try:
            tasks = [asyncio.create_task(self._one(client, gate, r)) for r in requests]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for t in tasks:
                    t.cancel()
                raise
        finally:
            if self._http_client is None:
                await http.aclose()

    async def _one(self, client: Any, gate: asyncio.Semaphore, req: GenRequest) -> GenResult:
        from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException
        from openai import APIConnectionError, APIStatusError, APITimeoutError

        async with gate:
            for attempt in range(self.connect_retries + 1):
                try:
                    parsed, completion = await client.chat.completions.create_with_completion(
                        model=self.model,
                        messages=req.messages,
                        response_model=req.response_model,
                        max_tokens=req.max_tokens,
                        temperature=req.temperature,
                        seed=req.seed,
                        max_retries=self.validation_retries,
                    )
                    return _result(req, parsed.model_dump_json(), "stop", completion)
                except IncompleteOutputException as exc:
                    return _result(req, _text(exc.last_completion), "length", exc.last_completion)
                except InstructorRetryException as exc:
                    last = exc.last_completion
                    finish = _finish(last)
                    if finish == "length":
                        return _result(req, _text(last), "length", last)
                    cause = exc.__cause__ or exc
                    if not isinstance(cause, APIConnectionError | APITimeoutError | APIStatusError):
                        return _result(
                            req, _text(last), "stop", last
                        )  # let the caller's validation report it
                    err: Exception = cause
                except (APIConnectionError, APITimeoutError) as exc:
                    err = exc
                except APIStatusError as exc:
                    if exc.status_code < 500 and exc.status_code != 429:
                        return GenResult(req.key, "", "error", error=f"HTTP {exc.status_code}: {exc.message}")
                    err = exc
                if attempt < self.connect_retries:
                    await asyncio.sleep(self.backoff * 2**attempt * (1 + random.random() / 4))
            raise BackendError(
                f"the server at {self.base_url} failed {self.connect_retries + 1} times in a row "
                f"({type(err).__name__}: {err}); finished profiles are saved, re-run to resume"
            )


def _text(completion: Any) -> str:
    try:
        return str(completion.choices[0].message.content or "")
    except (AttributeError, IndexError, TypeError):
        return ""


def _finish(completion: Any) -> str | None:
    try:
        return str(completion.choices[0].finish_reason)
    except (AttributeError, IndexError, TypeError):
        return None


def _result(req: GenRequest, text: str, finish: str, completion: Any) -> GenResult:
    usage = getattr(completion, "usage", None)
    details = getattr(usage, "prompt_tokens_details", None)
    return GenResult(
        key=req.key,
        text=text,
        finish_reason=finish,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cached_tokens=int(getattr(details, "cached_tokens", 0) or 0),
    )


__all__ = ["ServerBackend"]
