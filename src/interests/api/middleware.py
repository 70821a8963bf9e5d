"""What every request passes through before the endpoints: metrics, the API key, the body size cap.

One plain ASGI middleware (no per-request task or stream wrapper, so it
costs microseconds): it times the request and counts it by route template
and status; when an API key is set it answers 401 to any request except
``GET /healthz`` without ``Authorization: Bearer <key>`` or ``X-API-Key:
<key>`` (compared with :func:`hmac.compare_digest`); and it answers 413 to a
body over the cap, by its ``Content-Length`` and by the bytes actually read
(a chunked body has no length). The body it read is handed on to the app.

:func:`check_bind` refuses to serve profiles on a non-loopback address
without a key.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from interests.errors import ConfigError

from .metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz"})
MIN_KEY_CHARS = 16


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1); a host name is not assumed to be one."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_key(api_key: str | None) -> None:
    """Raise :class:`ConfigError` for a key too short to stand guessing (``None``: no key, fine)."""
    if api_key is not None and len(api_key) < MIN_KEY_CHARS:
        raise ConfigError(
            f"the API key is {len(api_key)} characters: use at least {MIN_KEY_CHARS} "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )


def check_bind(host: str, api_key: str | None) -> None:
    """Raise :class:`ConfigError` unless ``host`` is loopback or a long enough API key is set."""
    check_key(api_key)
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"refusing to listen on {host}: profiles are personal data, so a non-loopback address "
            "needs an API key (--api-key or INTERESTS_API_KEY); or listen on 127.0.0.1"
        )


def key_matches(headers: list[tuple[bytes, bytes]], key: bytes) -> bool:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time."""
    ok = False
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            ok |= hmac.compare_digest(value[7:].strip(), key)
        elif name == b"x-api-key":
            ok |= hmac.compare_digest(value.strip(), key)
    return ok


async def send_json(
    send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: metrics, API key, body size cap (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        api_key: str | None = None,
        max_body_bytes: int = 1 << 20,
        route_of: Callable[[Scope], str] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.key = api_key.encode() if api_key else None
        self.max_body = max_body_bytes
        self.route_of = route_of or (lambda scope: "unmatched")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_status)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or self.route_of(scope)
            self.metrics.observe(label, scope["method"], status, time.perf_counter() - start)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = scope["headers"]
        if self.key is not None and scope["path"] not in OPEN_PATHS and not key_matches(headers, self.key):
            await send_json(
                send,
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        length = next((v for n, v in headers if n == b"content-length"), None)
        chunked = any(n == b"transfer-encoding" for n, _ in headers)
        if length is None and not chunked:
            await self.app(scope, receive, send)
            return
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_json(send, 400, "Content-Length is not a number")
                return
            if declared > self.max_body:
                await send_json(send, 413, self._too_large())
                return
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            part = message.get("body", b"")
            total += len(part)
            if total > self.max_body:
                await send_json(send, 413, self._too_large())
                return
            chunks.append(part)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return (
            f"request body over {self.max_body} bytes (--max-body-bytes): "
            "split the events into several requests"
        )


__all__ = ["MIN_KEY_CHARS", "Guard", "check_bind", "check_key", "is_loopback", "key_matches"]
