"""What several commands share: common options, loading settings, printing warnings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from newsletter import clock, pipeline
from newsletter.config.load import find_config, load_settings
from newsletter.config.paths import CONFIG_NAME
from newsletter.config.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    """Add ``--config`` (default: ./newsletter.toml, else the bundled sample)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"Config file (default: $NEWSLETTER_CONFIG or ./{CONFIG_NAME}, "
        "else the bundled sample publication).",
    )(func)


def build_options(func: F) -> F:
    """Add the options that choose what goes into an edition."""
    options = [
        click.option(
            "--source",
            "sources",
            multiple=True,
            metavar="PATH_OR_URL",
            help="Content source (JSON file, RSS/Atom/JSON feed file or http(s) URL); "
            "repeatable; replaces [content] sources.",
        ),
        click.option(
            "--now",
            metavar="ISO",
            help="Build as if it were this time, e.g. 2026-03-04T18:00:00+05:30 "
            "(no offset: the publication's time zone).",
        ),
        click.option("--strict", is_flag=True, default=None, help="Any source failure is fatal."),
        click.option("--lead", "lead_url", metavar="URL", help="Make this article the lead."),
        click.option(
            "--allow-repeats", is_flag=True, help="Include articles sent in recent editions."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_from(config_path: Path | None) -> Settings:
    """Load the settings of ``--config`` (or the default config)."""
    return load_settings(find_config(config_path))


def options_from(flags: dict[str, Any]) -> pipeline.BuildOptions:
    """The content options shared by build, send, check and preview."""
    return pipeline.BuildOptions(
        sources=tuple(flags["sources"]),
        now=clock.parse_time(flags["now"]),
        strict=flags["strict"],
        lead_url=flags["lead_url"],
        allow_repeats=flags["allow_repeats"],
    )


def with_smtp_flags(settings: Settings, **flags: Any) -> Settings:
    """The settings with ``--smtp-host``/``--smtp-port``/``--smtp-security``/``--smtp-user``."""
    smtp = settings.smtp
    smtp = dataclasses.replace(
        smtp,
        host=flags["smtp_host"] or smtp.host,
        port=flags["smtp_port"] or smtp.port,
        security=flags["smtp_security"] or smtp.security,
        username=flags["smtp_user"] or smtp.username,
    )
    return dataclasses.replace(settings, smtp=smtp)


def warn(message: str) -> None:
    """Print a warning to stderr."""
    click.secho(f"warning: {message}", fg="yellow", err=True)


def print_warnings(warnings: Iterable[str]) -> None:
    """Print each warning to stderr."""
    for message in warnings:
        warn(message)
