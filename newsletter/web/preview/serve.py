"""Serve the preview on this machine: its address and port, Host names, --open, Ctrl-C.

The preview listens on 127.0.0.1 unless told otherwise (another address needs an
explicit ``--host`` and gets a warning: the page shows subscriber addresses), on port
8025 when it is free, else on any free port. It answers only its own Host names while
on loopback, and it never sends mail. It runs on the same stack as the public service
(``web.serve``, uvicorn), as a separate app on its own port.
"""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable, Collection

from newsletter.errors import ConfigError, NewsletterError
from newsletter.hosts import is_loopback
from newsletter.web import serve as server
from newsletter.web.host_check import host_names
from newsletter.web.preview.live import PreviewApp
from newsletter.web.preview.routes import create_preview_app
from newsletter.web.preview.snapshots import PreviewOptions

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
OPEN_DELAY_SECONDS = 0.3
WILDCARDS = ("0.0.0.0", "::")  # noqa: S104 - names of the wildcard, never bound here


def remote_warning(host: str) -> str:
    """The warning printed when the preview listens beyond loopback."""
    return (
        f"the preview listens on {host}: anyone who can reach this machine can read the "
        "edition and the first subscriber addresses; stop it when you are done"
    )


class PreviewServer:
    """One ``PreviewApp`` on a bound socket: run it in the foreground or on a thread."""

    def __init__(
        self, app: PreviewApp, listener: server.Listener, allowed_hosts: Collection[str] | None
    ) -> None:
        self.app = app
        self.listener = listener
        self.web = create_preview_app(app, allowed_hosts)
        self._background: server.Background | None = None

    @property
    def server_address(self) -> tuple[str, int]:
        """The host and port the preview is bound to."""
        return self.listener.address

    @property
    def url(self) -> str:
        """The address to open in a browser."""
        host, port = self.server_address
        shown = "127.0.0.1" if host in WILDCARDS else f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, either raised as ``KeyboardInterrupt`` once stopped."""
        with server.sigterm_interrupts():
            server.run(self.web, self.listener, trusted_proxies=(), on_stop=[self.app.stop])

    def start(self) -> None:
        """Serve on a background thread until ``stop``."""
        self._background = server.Background(
            self.web, self.listener, trusted_proxies=(), on_stop=[self.app.stop]
        ).start()

    def stop(self) -> bool:
        """Stop serving (open event streams end first); say whether it stopped in time."""
        if self._background is None:
            self.listener.sock.close()
            return True
        return self._background.stop()


def start_server(
    app: PreviewApp,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    allow_remote: bool = False,
) -> PreviewServer:
    """Bind the preview to ``host:port`` (0: any free port); non-loopback needs ``allow_remote``."""
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"refusing to serve the preview on {host!r}: it shows subscriber addresses; "
            "it listens on 127.0.0.1 unless you pass --host explicitly"
        )
    bare = host.strip("[]")
    listener = server.bind(bare, port)
    remote = allow_remote and not is_loopback(host)
    allowed = None if remote else host_names(listener.address[1], bare)
    return PreviewServer(app, listener, allowed)


def serve(
    options: PreviewOptions,
    *,
    host: str | None = None,
    port: int | None = None,
    open_browser: bool = False,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> None:
    """Serve the live preview until Ctrl-C or SIGTERM; never sends mail."""
    address = host or DEFAULT_HOST
    app = PreviewApp(options)
    try:
        if options.subscriber and app.snapshot.ok:
            app.personal(app.snapshot, options.subscriber)
        preview = _bind(app, address, port, explicit_host=host is not None)
    except NewsletterError:
        app.close()
        raise
    if not is_loopback(address):
        warn(remote_warning(address))
    app.start()
    snapshot = app.snapshot
    where = options.config or "the bundled sample publication"
    echo(f"Previewing {where} at {preview.url}")
    echo(f"  watching {len(snapshot.watch.paths())} files; the page updates when they change")
    if snapshot.problem is not None:
        warn(f"{snapshot.problem.title}: {snapshot.problem.message}")
    echo("  never sends mail; press Ctrl-C to stop")
    if open_browser:
        threading.Timer(OPEN_DELAY_SECONDS, webbrowser.open, args=(preview.url,)).start()
    try:
        preview.run()
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM, raised again once the server has stopped
    finally:
        app.close()
    echo("stopped")


def _bind(app: PreviewApp, host: str, port: int | None, *, explicit_host: bool) -> PreviewServer:
    """Bind to ``port``, or the default port, falling back to a free one if it is taken."""
    if port is not None:
        return start_server(app, host, port, allow_remote=explicit_host)
    try:
        return start_server(app, host, DEFAULT_PORT, allow_remote=explicit_host)
    except ConfigError:
        return start_server(app, host, 0, allow_remote=explicit_host)
