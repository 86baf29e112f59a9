"""Answer only the Host names a server expects: a guard against DNS rebinding.

A page on another site can point its own host name at 127.0.0.1 and read a local
server through the browser; the Host header still carries that foreign name, so a
server that answers only its own names (``127.0.0.1:8025``, ``localhost:8025`` …)
gives such a page nothing but a 421.
"""

from __future__ import annotations

from collections.abc import Iterable

from newsletter.web.security import ASGIApp, Receive, Scope, Send


def host_names(port: int, *names: str) -> frozenset[str]:
    """The Host header values of a loopback server on ``port``, and of ``names`` there."""
    known = ("127.0.0.1", "localhost", "[::1]", *names)
    bracketed = (f"[{n}]" if ":" in n and not n.startswith("[") else n for n in known)
    return frozenset(f"{name.lower()}:{port}" for name in bracketed)


class HostCheck:
    """Refuse with 421 a request whose Host header is not one of ``allowed``."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str], message: str) -> None:
        self.app = app
        self.allowed = frozenset(name.lower() for name in allowed)
        self.body = f"{message}\n".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(scope):
            await send(
                {
                    "type": "http.response.start",
                    "status": 421,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(self.body)).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": self.body})
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        hosts = [value for name, value in scope.get("headers", []) if name == b"host"]
        if not hosts:
            return True  # HTTP/1.0 without Host: no name to rebind
        return len(hosts) == 1 and hosts[0].decode("latin-1").lower() in self.allowed
