"""Run an ASGI app under uvicorn on a socket we bind, so the real port is known at once.

Binding ourselves lets ``--port 0`` print the port it got, and lets a busy port fail with
a clear message before anything starts. Uvicorn's access log stays off: its lines carry
query strings, where tokens travel (``web.security.AccessLog`` logs paths only).

``run`` serves in the foreground until SIGINT or SIGTERM; ``Background`` serves on a
thread until told to stop. Either way, ``on_stop`` callbacks run as the server begins to
stop, before it waits for open responses: an app ends its long-lived streams there
(the preview's events), so stopping takes a moment, not the graceful timeout.
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import uvicorn

from newsletter.errors import ConfigError
from newsletter.web.security import ASGIApp

STOP_SECONDS = 10.0


@dataclass(frozen=True)
class Listener:
    """A bound, listening socket and the URL it answers on."""

    sock: socket.socket
    url: str

    @property
    def address(self) -> tuple[str, int]:
        """The host and port the socket is bound to."""
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)


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
        why = "it is in use" if err.errno == errno.EADDRINUSE else err.strerror
        raise ConfigError(
            [f"cannot listen on {host}:{port}: {why}; pick another with --port (0: any free port)"]
        ) from err
    sock.listen(2048)
    sock.set_inheritable(True)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    return Listener(sock, f"http://{shown}:{bound_port}")


class Server(uvicorn.Server):
    """Uvicorn's server, calling ``on_stop`` as it begins to stop."""

    def __init__(self, config: uvicorn.Config, on_stop: Sequence[Callable[[], None]] = ()) -> None:
        super().__init__(config)
        self.on_stop = tuple(on_stop)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the app's long-lived responses, then stop as uvicorn does."""
        for callback in self.on_stop:
            callback()
        await super().shutdown(sockets)


def server_for(
    app: ASGIApp,
    *,
    trusted_proxies: Sequence[str] = ("127.0.0.1",),
    on_stop: Sequence[Callable[[], None]] = (),
) -> Server:
    """A uvicorn server for ``app``: no access log, no server header, proxies as trusted."""
    config = uvicorn.Config(
        app,
        access_log=False,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=list(trusted_proxies),
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        lifespan="auto",  # an app with a lifespan (the service) ends its work at the end
    )
    return Server(config, on_stop)


def run(
    app: ASGIApp,
    listener: Listener,
    *,
    trusted_proxies: Sequence[str] = ("127.0.0.1",),
    on_ready: Callable[[], None] | None = None,
    on_stop: Sequence[Callable[[], None]] = (),
) -> None:
    """Serve ``app`` on ``listener`` until SIGINT or SIGTERM (raised again once stopped)."""
    server = server_for(app, trusted_proxies=trusted_proxies, on_stop=on_stop)
    if on_ready is not None:
        on_ready()
    server.run(sockets=[listener.sock])


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Make SIGTERM raise ``KeyboardInterrupt`` as Ctrl-C does, so both stop ``run`` alike."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Background:
    """Serve an app on its own thread until ``stop``: for tests and for embedding."""

    def __init__(
        self,
        app: ASGIApp,
        listener: Listener,
        *,
        trusted_proxies: Sequence[str] = ("127.0.0.1",),
        on_stop: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.listener = listener
        self._server = server_for(app, trusted_proxies=trusted_proxies, on_stop=on_stop)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [listener.sock]},
            name=f"serve-{listener.address[1]}",
            daemon=True,
        )

    def start(self) -> Background:
        """Start serving; connections made before the thread runs wait in the backlog."""
        self._thread.start()
        return self

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Stop serving and close the socket; say whether the thread ended within ``timeout``."""
        if not self._thread.is_alive():
            self.listener.sock.close()
            return True
        self._server.should_exit = True
        self._thread.join(timeout)
        return not self._thread.is_alive()
