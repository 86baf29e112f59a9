"""Run an ASGI app under uvicorn on a socket we bind, so the real port is known at once.

Binding ourselves lets ``--port 0`` print the port it got, and lets a busy port fail with
a clear message before anything starts. Uvicorn's access log stays off: its lines carry
query strings, where tokens travel (``web.security.AccessLog`` logs paths only).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import uvicorn

from newsletter.errors import ConfigError
from newsletter.web.security import ASGIApp


@dataclass(frozen=True)
class Listener:
    """A bound, listening socket and the URL it answers on."""

    sock: socket.socket
    url: str


def bind(host: str, port: int) -> Listener:
    """Bind ``host:port`` (port 0: any free one); a clear error if that cannot be done."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ConfigError(
            [f"--host {host}: not an address of this machine ({err.strerror})"]
        ) from err
    family, _, _, _, address = infos[0]
    # The protocol must say TCP: asyncio turns Nagle off only on sockets that say so, and
    # with Nagle on, an answer's body waits for the peer's delayed ACK of its head (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        why = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be used ({err.strerror})"
        raise ConfigError([f"{host}:{port} {why}; pick another with --port"]) from err
    sock.listen(2048)
    sock.set_inheritable(True)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    return Listener(sock, f"http://{shown}:{bound_port}")


def run(
    app: ASGIApp,
    listener: Listener,
    *,
    trusted_proxies: Sequence[str] = ("127.0.0.1",),
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` on ``listener`` until SIGINT or SIGTERM."""
    config = uvicorn.Config(
        app,
        access_log=False,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=list(trusted_proxies),
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        lifespan="on",  # the app lets go of the state and finishes its emails at the end
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready()
    server.run(sockets=[listener.sock])
