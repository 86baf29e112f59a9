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
from newsletter.config.settings import ENV_CONFIG, Settings

F = TypeVar("F", bound=Callable[..., Any])


CONFIG_HELP = (
    f"Config file (default: $NEWSLETTER_CONFIG or ./{CONFIG_NAME}, "
    "else the bundled sample publication)."
)


def group_config_option(func: F) -> F:
    """Add ``--config`` before the command: ``newsletter --config FILE build``."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help=CONFIG_HELP,
    )(func)


def config_option(func: F) -> F:
    """Add ``--config`` after the command; without it, the one given before the command."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        callback=_config_given,
        help=CONFIG_HELP,
    )(func)


def _config_given(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    before: Path | None = ctx.find_root().params.get("config_path")
    if value is not None and before is not None and value != before:
        raise click.BadParameter(
            f"given twice, {before} before the command and {value} after it; give it once",
            ctx=ctx,
            param=param,
        )
    return value if value is not None else before


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
            metavar="ISO_TIME",
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
    """Load the settings of ``--config`` (or the default config); say when it is the sample."""
    return load_settings(config_file(config_path))


def config_file(config_path: Path | None) -> Path | None:
    """The config to use (``None``: the bundled sample, which is said once on stderr)."""
    found = find_config(config_path)
    if found is None:
        click.echo(
            f"note: no ./{CONFIG_NAME}, --config or ${ENV_CONFIG}: using the bundled sample "
            "publication (run 'newsletter init DIR' to start your own)",
            err=True,
        )
    return found


def shown(path: Path) -> str:
    """A path for a message: below the working directory, relative to it; else as it is."""
    if path.is_absolute():
        here = Path.cwd()
        if path.is_relative_to(here) and path != here:
            return str(path.relative_to(here))
    return str(path)


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
