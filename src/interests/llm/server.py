"""Extraction against an OpenAI-compatible server (vLLM first) through instructor.

Same prompts, same per-user draft model (its JSON Schema, with the user's
item ids as an ``enum``, goes out as ``response_format``), same grounding as
the in-process backend. ``concurrency`` requests are in flight at once
(asyncio); instructor re-asks once on a validation error. Transport retries
are the OpenAI client's own: connection errors, timeouts, 408, 409, 429 and
5xx answers are retried ``connect_retries`` times (0.5 s doubling up to 8 s,
or what the server's ``Retry-After`` / ``retry-after-ms`` asks), and when
they go on the run stops with a :class:`BackendError` (finished batches are
already on disk, so a re-run resumes).

Prompt tokens are counted by the server's own tokenizer (vLLM's
``POST /tokenize`` at the server root, with the chat template applied), as
the in-process engine counts them; a server without that endpoint gets the
characters / 3 estimate, and one WARNING says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from ..errors import BackendError
from .base import GenRequest, GenResult, Messages, approx_tokens

# instructor logs every failed call; this backend reports failures itself, once
logging.getLogger("instructor").setLevel(logging.CRITICAL)
log = logging.getLogger(__name__)

HINT = "start one with `interests serve` (or point --server at a running OpenAI-compatible server)"
DEFAULT_CONTEXT = 4096
#: answers of ``POST /tokenize`` that mean "this server has no (usable) tokenizer endpoint"
NO_TOKENIZE = frozenset({404, 405, 422, 501})
_COUNT_CACHE = 64  # the budget search counts the prompt it kept twice


def server_urls(url: str) -> tuple[str, str]:
    """``(base URL for the OpenAI client, server root)`` of a ``--server`` URL.

    The URL is used as given, except that a bare host (``http://host:port``,
    no path) gets ``/v1``, which is what ``interests serve`` prints. The root
    (where vLLM's ``/tokenize`` is) is the base URL less a trailing ``/v1``.
    """
    base = url.strip().rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base, base.removesuffix("/v1")


class ServerBackend:
    """A :class:`~interests.llm.base.Backend` that sends each request to an OpenAI-compatible server.

    * ``base_url``: used as given (``http://h:8000/v1``, ``https://gateway/openai/v1``);
      a bare ``http://host:port`` gets ``/v1``. See :func:`server_urls`.
    * ``model``: the ``model`` field of each request. Without it the server's
      ``GET /models`` is asked at construction (10 s; an unreachable server or
      a wrong key fails here, in one line) and its first model is used. With
      it nothing is asked at construction.
    * ``max_model_len``: the context length the prompt budget is computed from.
      Without it: what ``/models`` reports for the model (vLLM reports it);
      with ``model`` given that request is made the first time the length is
      needed (the start of a run), and the card of that model is read. A server
      that cannot be reached then fails in one line; one that answers but
      does not report the length (no ``/models``, no such model listed, no
      ``max_model_len`` field) gets 4096 and a WARNING.
    * ``connect_retries``: transport retries of each request, done by the
      OpenAI client (``Retry-After`` honoured).
    * ``validation_retries``: instructor's re-asks after a reply that does not
      validate (not transport retries).
    * ``http_client``: an ``httpx.AsyncClient`` for the chat requests (proxy,
      custom TLS, a mock transport in tests). ``sync_http_client``: an
      ``httpx.Client`` for the backend's own synchronous requests
      (``GET /models``, ``POST /tokenize``). When ``http_client`` is given
      without ``sync_http_client`` no request goes around it: nothing is
      asked at construction, tokens are estimated, ``model`` defaults to
      ``"model"`` and ``max_model_len`` to 4096.
    """

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
        max_model_len: int | None = None,
        validation_retries: int = 1,
        http_client: httpx.AsyncClient | None = None,
        sync_http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url, self.root = server_urls(base_url)
        self.server: str | None = self.base_url
        self.api_key = api_key or "EMPTY"
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.connect_retries = max(0, connect_retries)
        self.validation_retries = validation_retries
        self._http_client = http_client
        self._given_sync = sync_http_client
        self._own_sync: httpx.Client | None = None
        # an async client alone means every request goes through it: no side requests
        self._offline = http_client is not None and sync_http_client is None
        self._has_tokenize = not self._offline
        self._warned_count = False
        self._counts: OrderedDict[tuple[tuple[str, str], ...], int] = OrderedDict()
        self._max_model_len: int | None = int(max_model_len) if max_model_len else None
        if model:
            self.model = model
        elif self._offline:
            self.model = "model"
        else:
            card = self._first_model()
            self.model = str(card["id"])
            if self._max_model_len is None:
                self._max_model_len = int(card.get("max_model_len") or DEFAULT_CONTEXT)

    # -- the server's own endpoints (sync) -------------------------------------------------
    def _sync(self) -> httpx.Client:
        if self._given_sync is not None:
            return self._given_sync
        if self._own_sync is None:
            self._own_sync = httpx.Client(
                timeout=self.timeout,
                transport=httpx.HTTPTransport(retries=self.connect_retries),  # connect errors only
            )
        return self._own_sync

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def _models(self) -> list[dict[str, Any]]:
        """``GET /models``; a transport error, 401 or 403 is a :class:`BackendError`."""
        try:
            r = self._sync().get(f"{self.base_url}/models", headers=self._auth(), timeout=10.0)
        except httpx.TransportError as exc:
            raise BackendError(
                f"cannot reach an OpenAI-compatible server at {self.base_url} ({exc}); {HINT}"
            ) from exc
        if r.status_code in (401, 403):
            raise BackendError(
                f"cannot reach an OpenAI-compatible server at {self.base_url} "
                f"({r.status_code} {r.reason_phrase}); check --api-key"
            )
        r.raise_for_status()
        return [dict(card) for card in r.json()["data"]]

    def _first_model(self) -> dict[str, Any]:
        """Ask the server which model it serves; fail in one line if it is not there."""
        try:
            data = self._models()
        except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
            raise BackendError(
                f"cannot reach an OpenAI-compatible server at {self.base_url} ({exc}); {HINT}"
            ) from exc
        if not data:
            raise BackendError(f"the server at {self.base_url} serves no model")
        return data[0]

    def _context_length(self) -> int:
        """The served model's context length from ``/models``, else 4096 (with a WARNING)."""
        if self._offline:
            return DEFAULT_CONTEXT
        why = ""
        try:
            card = next((c for c in self._models() if c.get("id") == self.model), None)
            if card is None:
                why = f"it does not list {self.model!r}"
            elif card.get("max_model_len"):
                return int(card["max_model_len"])
            else:
                why = f"its card of {self.model!r} has no max_model_len"
        except (httpx.HTTPStatusError, KeyError, ValueError, TypeError) as exc:
            why = f"GET /models: {exc}"
        log.warning(
            "the server at %s does not report the context length (%s); assuming %d tokens "
            "(set --max-model-len to the server's)",
            self.base_url,
            why,
            DEFAULT_CONTEXT,
        )
        return DEFAULT_CONTEXT

    @property
    def max_model_len(self) -> int:
        if self._max_model_len is None:
            self._max_model_len = self._context_length()
        return self._max_model_len

    @max_model_len.setter
    def max_model_len(self, value: int) -> None:
        self._max_model_len = int(value)

    def count_tokens(self, messages: Messages) -> int:
        """Prompt tokens by the server's tokenizer, chat template included (vLLM's ``/tokenize``).

        A server without ``/tokenize`` (404, 405, 422, 501, or an answer
        without ``count``) is not asked again and gets :func:`approx_tokens`;
        one that fails to count one prompt (400, 5xx) gets the estimate for
        that prompt. Either way one WARNING says so. An unreachable server is
        a :class:`BackendError`.
        """
        if not self._has_tokenize:
            return approx_tokens(messages)
        key = tuple((m["role"], m["content"]) for m in messages)
        if key in self._counts:
            self._counts.move_to_end(key)
            return self._counts[key]
        url = f"{self.root}/tokenize"
        try:
            r = self._sync().post(url, json={"model": self.model, "messages": messages}, headers=self._auth())
        except httpx.TransportError as exc:
            raise BackendError(
                f"the server at {self.base_url} failed to count tokens at {url} "
                f"({type(exc).__name__}: {exc}); finished profiles are saved, re-run to resume"
            ) from exc
        if r.status_code in (401, 403):
            raise BackendError(f"the server at {url} refused the API key ({r.status_code}); check --api-key")
        count: Any = None
        if r.is_success:
            try:
                count = r.json().get("count")
            except (ValueError, AttributeError):
                count = None
        if isinstance(count, int) and not isinstance(count, bool):
            self._counts[key] = count
            if len(self._counts) > _COUNT_CACHE:
                self._counts.popitem(last=False)
            return count
        if r.status_code in NO_TOKENIZE or r.is_success:
            self._has_tokenize = False
            log.warning(
                "the server at %s has no usable /tokenize (%s at %s); prompt tokens are estimated "
                "as characters / 3, which undercounts e.g. Chinese or Japanese text",
                self.base_url,
                r.status_code if not r.is_success else "no count in the answer",
                url,
            )
        elif not self._warned_count:
            self._warned_count = True
            log.warning(
                "the server at %s could not count a prompt's tokens (%d: %s); that prompt's are estimated",
                self.base_url,
                r.status_code,
                r.text[:200],
            )
        return approx_tokens(messages)

    def close(self) -> None:
        """Close the backend's own HTTP client (a client passed in is the caller's to close)."""
        if self._own_sync is not None:
            self._own_sync.close()
            self._own_sync = None

    # -- requests ------------------------------------------------------------------------
    def _client(self) -> Any:
        import instructor
        from openai import AsyncOpenAI

        http = self._http_client or httpx.AsyncClient(timeout=self.timeout)
        raw = AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.api_key,
            timeout=self.timeout,
            max_retries=self.connect_retries,  # transport retries, Retry-After honoured
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
        from openai import APIConnectionError, APIStatusError

        async with gate:
            try:
                parsed, completion = await client.chat.completions.create_with_completion(
                    model=self.model,
                    messages=req.messages,
                    response_model=req.response_model,
                    max_tokens=req.max_tokens,
                    temperature=req.temperature,
                    seed=req.seed,
                    max_retries=self.validation_retries,  # instructor's re-asks, not transport retries
                )
                return _result(req, parsed.model_dump_json(), "stop", completion)
            except IncompleteOutputException as exc:
                return _result(req, _text(exc.last_completion), "length", exc.last_completion)
            except InstructorRetryException as exc:
                last = exc.last_completion
                if _finish(last) == "length":
                    return _result(req, _text(last), "length", last)
                cause = exc.__cause__ or exc
                if not isinstance(cause, APIConnectionError | APIStatusError):
                    return _result(req, _text(last), "stop", last)  # let the caller's validation report it
                err: Exception = cause
            except (APIConnectionError, APIStatusError) as exc:  # APITimeoutError is a connection error
                err = exc
        if isinstance(err, APIStatusError) and err.status_code < 500 and err.status_code != 429:
            # this request's fault (400: e.g. a prompt longer than the context), not an outage
            return GenResult(req.key, "", "error", error=f"HTTP {err.status_code}: {err.message}")
        # the OpenAI client has already retried it connect_retries times
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
