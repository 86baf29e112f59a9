"""What every response of the service carries, and what every request may not exceed.

Pure ASGI middleware, so streaming responses (the preview's events) pass through:

- ``SecurityHeaders``: a Content-Security-Policy (no scripts unless the app says so, no
  framing), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (a
  token in a URL never leaks to another site) and ``X-Frame-Options: DENY``;
- ``BodyLimit``: a request body over the limit gets 413 before the app reads it;
- ``AccessLog``: one line per request with the path but never the query string, where
  tokens and addresses travel;
- ``Answered``: an exception the app has already answered (500) and logged goes no
  further, so the server does not log its traceback, whose text may hold an address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("newsletter.web")

PUBLIC_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """Add the security headers to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp, csp: str = PUBLIC_CSP) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode("ascii")),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in self.headers if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """A request body grew past the limit while it was read."""


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _plain(send, 400, b"Bad Content-Length")
                    return
                if declared > self.limit:
                    await _plain(send, 413, b"Request body too large")
                    return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        answer = _Answer(send)
        try:
            await self.app(scope, counting_receive, answer)
        except BodyTooLarge:
            if answer.status is None:
                await _plain(send, 413, b"Request body too large")


class _Answer:
    """The ``send`` of an app, watched: the status of the response once it has begun."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status: int | None = None  # None: nothing sent yet

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        await self._send(message)


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AccessLog:
    """Log each request as method, path (never the query), status and milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = _Answer(send)
        try:
            await self.app(scope, receive, answer)
        finally:
            if log.isEnabledFor(logging.INFO):
                took = (time.perf_counter() - started) * 1000
                status = 500 if answer.status is None else answer.status
                log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, took)


class Answered:
    """Stop an exception that the app answered with its 500 page (and logged) from going on.

    Starlette raises it again after its error page, for the server to log with the whole
    traceback; that text may quote an address or a token, so here it ends. The app's
    error handler logs its kind and place.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = _Answer(send)
        try:
            await self.app(scope, receive, answer)
        except Exception:
            if scope["type"] != "http" or answer.status is None:
                raise
