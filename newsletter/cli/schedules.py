"""``newsletter schedule list`` and ``schedule run``: the scheduled sends."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from newsletter import clock
from newsletter.cli.options import config_option, settings_from
from newsletter.cli.process import log_to_stderr, stop_on_signals
from newsletter.config.schedules import EXAMPLE
from newsletter.scheduling.listing import format_upcoming, upcoming
from newsletter.scheduling.runner import run_forever


@click.group("schedule")
def schedule_group() -> None:
    """List or run the scheduled sends ([[schedule]] in the config)."""


@schedule_group.command("list")
@config_option
@click.option(
    "--count",
    default=3,
    type=click.IntRange(1, 100),
    metavar="N",
    help="Runs to show per schedule (default 3).",
)
def schedule_list(config_path: Path | None, count: int) -> None:
    """Show each schedule's next runs, in its time zone and in UTC."""
    settings = settings_from(config_path)
    if not settings.schedules:
        click.echo("No schedules configured. Add one to the config:\n" + EXAMPLE)
        return
    for line in format_upcoming(upcoming(settings, clock.now_utc(), count)):
        click.echo(line)


@schedule_group.command("run")
@config_option
def schedule_run(config_path: Path | None) -> None:
    """Build and send at each slot until SIGTERM or Ctrl-C."""
    settings = settings_from(config_path)
    if not settings.schedules:
        raise click.UsageError("no [[schedule]] in the config; see 'newsletter schedule list'")
    log_to_stderr()
    stop = threading.Event()
    with stop_on_signals(stop):
        run_forever(settings, stop)
