"""ServerBackend against a fake OpenAI-compatible server on loopback (fast, no engine).

The fake imitates what the backend uses of vLLM's server: ``GET {prefix}/v1/models``,
``POST {prefix}/tokenize`` (at the server root, chat form, answering ``{"count": N}``)
and ``POST {prefix}/v1/chat/completions``, and records every request it gets.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import BaseModel

from interests.errors import BackendError
from interests.llm.base import GenRequest
from interests.llm.server import ServerBackend, approx_tokens, server_urls

CJK = [
    {"role": "system", "content": "你是一个推荐系统的分析助手。"},
    {"role": "user", "content": "ユーザーは最近、日本の推理小説と中国の武侠小説をよく読んでいます。"},
]


class Answer(BaseModel):
    summary: str


def _request(key: str = "u1") -> GenRequest:
    return GenRequest(key, [{"role": "user", "content": "x"}], Answer, max_tokens=64)


def fake_count(body: dict[str, Any]) -> int:
    """The fake tokenizer: one token a character plus 3 a message (not the backend's estimate)."""
    return sum(len(m["content"]) + 3 for m in body["messages"])


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class FakeServer:
    """What the fake answers; ``chat`` is a list of (status, headers) to send before succeeding."""

    prefix: str = ""
    tokenize: bool = True
    models: int = 200
    chat: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    chat_forever: tuple[int, dict[str, str]] | None = None
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self, method: str | None = None) -> list[str]:
        return [s.path for s in self.seen if method is None or s.method == method]

    def requests_to(self, suffix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith(suffix)]

    def answer(self, method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        p = self.prefix
        if method == "GET" and path == f"{p}/v1/models":
            if self.models != 200:
                return self.models, {}, {"error": "no"}
            cards = [{"id": "other", "max_model_len": 512}, {"id": "served", "max_model_len": 2048}]
            return 200, {}, {"object": "list", "data": [{"object": "model", **c} for c in cards]}
        if method == "POST" and path == f"{p}/tokenize" and self.tokenize:
            count = fake_count(body)
            return 200, {}, {"count": count, "max_model_len": 2048, "tokens": list(range(count))}
        if method == "POST" and path == f"{p}/v1/chat/completions":
            if self.chat:
                status, headers = self.chat.pop(0)
                return status, headers, {"error": {"message": f"status {status}"}}
            if self.chat_forever:
                status, headers = self.chat_forever
                return status, headers, {"error": {"message": f"status {status}"}}
            content = json.dumps({"summary": "Reads mystery novels."})
            return 200, {}, _completion(body["model"], content)
        return 404, {}, {"detail": "Not Found"}


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }


def _serve(fake: FakeServer) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            path = self.path.split("?")[0]
            fake.seen.append(Seen(self.command, path, dict(self.headers), body, time.monotonic()))
            status, headers, payload = fake.answer(self.command, path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(**kw: Any) -> FakeServer:
        fake = FakeServer(**kw)
        servers.append(_serve(fake))
        return fake

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def backends() -> Iterator[list[ServerBackend]]:
    made: list[ServerBackend] = []
    yield made
    for b in made:
        b.close()


def _backend(made: list[ServerBackend], url: str, **kw: Any) -> ServerBackend:
    b = ServerBackend(url, **kw)
    made.append(b)
    return b


# -- tokens ---------------------------------------------------------------------------------


def test_tokens_are_counted_by_the_servers_tokenizer(serve, backends):
    fake = serve()
    b = _backend(backends, f"{fake.host}/v1", model="served", max_model_len=1024, api_key="k")
    assert b.count_tokens(CJK) == fake_count({"messages": CJK})
    assert fake_count({"messages": CJK}) > approx_tokens(CJK)  # the estimate undercounts CJK text
    [req] = fake.requests_to("/tokenize")
    assert req.path == "/tokenize"  # at the server root, not under /v1
    assert req.body == {"model": "served", "messages": CJK}
    assert req.headers["Authorization"] == "Bearer k"
    # the budget search counts the prompt it keeps twice: asked once
    assert b.count_tokens(CJK) == fake_count({"messages": CJK})
    assert len(fake.requests_to("/tokenize")) == 1
    other = [{"role": "user", "content": "abc"}]
    assert b.count_tokens(other) == 6 and len(fake.requests_to("/tokenize")) == 2


def test_a_server_without_tokenize_gets_the_estimate_and_is_asked_once(serve, backends, caplog):
    fake = serve(tokenize=False)
    b = _backend(backends, f"{fake.host}/v1", model="served", max_model_len=1024)
    other = [{"role": "user", "content": "something else entirely"}]
    with caplog.at_level(logging.WARNING, logger="interests.llm.server"):
        assert b.count_tokens(CJK) == approx_tokens(CJK)
        assert b.count_tokens(other) == approx_tokens(other)
        assert b.count_tokens(CJK) == approx_tokens(CJK)
    assert len(fake.requests_to("/tokenize")) == 1
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "/tokenize" in r.getMessage()]
    assert len(warned) == 1 and "estimated" in warned[0].getMessage()


def test_an_unreachable_server_is_a_backend_error_when_counting():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    b = ServerBackend(f"http://127.0.0.1:{port}/v1", model="served", max_model_len=1024, connect_retries=0)
    try:
        with pytest.raises(BackendError, match=r"failed to count tokens.*re-run to resume"):
            b.count_tokens(CJK)
    finally:
        b.close()


# -- the base URL ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "base", "root"),
    [
        ("http://h:8000", "http://h:8000/v1", "http://h:8000"),
        ("http://h:8000/", "http://h:8000/v1", "http://h:8000"),
        ("http://h:8000/v1", "http://h:8000/v1", "http://h:8000"),
        ("http://h:8000/v1/", "http://h:8000/v1", "http://h:8000"),
        ("http://h:8000/openai/v1", "http://h:8000/openai/v1", "http://h:8000/openai"),
        ("https://h/api", "https://h/api", "https://h/api"),
    ],
)
def test_the_url_is_used_as_given_and_a_bare_host_gets_v1(given, base, root):
    assert server_urls(given) == (base, root)


@pytest.mark.parametrize(("prefix", "suffix"), [("", ""), ("", "/v1"), ("/openai", "/openai/v1")])
def test_every_request_goes_where_the_url_says(serve, backends, prefix, suffix):
    fake = serve(prefix=prefix)
    b = _backend(backends, fake.host + suffix)  # no model: asks /models
    assert b.base_url == f"{fake.host}{prefix}/v1" and b.server == b.base_url
    assert (b.model, b.max_model_len) == ("other", 512)  # the first model listed, and its length
    assert b.count_tokens(CJK) == fake_count({"messages": CJK})
    [res] = b.generate([_request()])
    assert res.finish_reason == "stop" and json.loads(res.text) == {"summary": "Reads mystery novels."}
    assert fake.paths() == [f"{prefix}/v1/models", f"{prefix}/tokenize", f"{prefix}/v1/chat/completions"]


# -- --served-model: no probe ------------------------------------------------------------------


def test_a_given_model_is_not_probed(serve, backends):
    fake = serve()
    b = _backend(backends, f"{fake.host}/v1", model="served", max_model_len=1024)
    assert b.count_tokens(CJK) > 0 and b.max_model_len == 1024
    [res] = b.generate([_request()])
    assert res.finish_reason == "stop"
    assert not any(p.endswith("/models") for p in fake.paths()), fake.paths()
    assert fake.requests_to("/chat/completions")[0].body["model"] == "served"


def test_a_given_model_without_a_length_asks_models_once_when_needed(serve, backends):
    fake = serve()
    b = _backend(backends, f"{fake.host}/v1", model="served")
    assert fake.paths() == []  # nothing at construction
    assert b.max_model_len == 2048  # the card of the served model, not the first one listed
    assert b.max_model_len == 2048
    assert fake.paths() == ["/v1/models"]


def test_a_server_that_does_not_report_the_length_gets_4096(serve, backends, caplog):
    fake = serve(models=404)
    b = _backend(backends, f"{fake.host}/v1", model="served")
    with caplog.at_level(logging.WARNING, logger="interests.llm.server"):
        assert b.max_model_len == 4096
    assert any("--max-model-len" in r.getMessage() for r in caplog.records)


def test_without_a_model_an_unreachable_server_fails_at_construction():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendError, match=r"cannot reach an OpenAI-compatible server.*interests serve"):
        ServerBackend(f"http://127.0.0.1:{port}", connect_retries=0)


# -- retries: the OpenAI client's own --------------------------------------------------------


def test_a_503_is_retried_by_the_client(serve, backends):
    fake = serve(chat=[(503, {"Retry-After": "0"})])
    b = _backend(backends, f"{fake.host}/v1", model="served", max_model_len=1024)
    [res] = b.generate([_request()])
    assert res.finish_reason == "stop" and res.prompt_tokens == 7
    first, second = fake.requests_to("/chat/completions")
    # retried by the OpenAI client itself (it numbers its retries), not by a loop around it
    assert (first.headers["x-stainless-retry-count"], second.headers["x-stainless-retry-count"]) == ("0", "1")


def test_retry_after_is_honoured(serve, backends):
    """The client's own first delay is at most 0.5 s; the server asks for 1.2 s."""
    fake = serve(chat=[(429, {"retry-after-ms": "1200"})])
    b = _backend(backends, f"{fake.host}/v1", model="served", max_model_len=1024)
    [res] = b.generate([_request()])
    assert res.finish_reason == "stop"
    first, second = fake.requests_to("/chat/completions")
    assert second.at - first.at >= 1.15


def test_a_server_that_stays_down_stops_the_run(serve, backends):
    fake = serve(chat_forever=(503, {}))
    b = _backend(backends, f"{fake.host}/v1", model="served", max_model_len=1024, connect_retries=1)
    with pytest.raises(BackendError, match=r"failed 2 times in a row.*re-run to resume"):
        b.generate([_request()])
    assert len(fake.requests_to("/chat/completions")) == 2


def test_a_400_is_that_users_error_and_not_retried(serve, backends):
    fake = serve(chat_forever=(400, {}))
    b = _backend(backends, f"{fake.host}/v1", model="served", max_model_len=1024)
    [res] = b.generate([_request()])
    assert res.finish_reason == "error" and res.error is not None and res.error.startswith("HTTP 400")
    assert len(fake.requests_to("/chat/completions")) == 1
