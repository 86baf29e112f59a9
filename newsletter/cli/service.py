"""``newsletter serve``: the public service (unsubscribe, subscribe, archive)."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.options import config_option, settings_from, warn
from newsletter.cli.process import log_to_stderr
from newsletter.config.settings import Settings
from newsletter.errors import ConfigError
from newsletter.hosts import is_loopback
from newsletter.web import serve as server
from newsletter.web.app import create_app


def service_warnings(settings: Settings, host: str) -> list[str]:
    """What a person should know before the service answers the public."""
    notes: list[str] = []
    if not settings.has_signing_key:
        notes.append(
            "no NEWSLETTER_SIGNING_KEY: links are checked with the development key, which "
            "is not secret; set the key your sends use before the service faces the public"
        )
    if not settings.smtp.host.strip():
        notes.append(
            "no [smtp] host: the subscribe form says subscribing is not available (503), "
            "since no confirmation email could go out; set smtp.host to take subscriptions"
        )
    if not is_loopback(host):  # refused without a key by ``require_key``
        notes.append(
            f"listening on {host}, not only this machine: put a reverse proxy with TLS in front"
        )
    return notes


def require_key(settings: Settings, host: str) -> None:
    """Refuse to face the network with the development key: anyone could forge its links."""
    if not settings.has_signing_key and not is_loopback(host):
        raise ConfigError(
            [
                f"--host {host}: the service would answer other machines with the development "
                "key, which is not secret; set NEWSLETTER_SIGNING_KEY to the key your sends use"
            ]
        )


@click.command("serve")
@config_option
@click.option("--host", metavar="HOST", help="Listen on HOST (default [web] host, 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Listen on PORT (default [web] port, 8080; 0: any free port).",
)
def serve(config_path: Path | None, host: str | None, port: int | None) -> None:
    """Serve one-click unsubscribe, subscribing and the archive, for a proxy in front."""
    settings = settings_from(config_path)
    host = host or settings.web.host
    require_key(settings, host)
    listener = server.bind(host, settings.web.port if port is None else port)
    for note in service_warnings(settings, host):
        warn(note)
    app = create_app(settings)
    click.echo(f"serving {settings.list.name} on {listener.url} (Ctrl-C stops)")
    log_to_stderr()  # one line per request (paths only), and each confirmation email
    server.run(app, listener, trusted_proxies=settings.web.trusted_proxies)
