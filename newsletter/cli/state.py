"""``newsletter state migrate``: create or upgrade the state's schema (SQLite or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.options import config_option, settings_from
from newsletter.state.openers import migrate


@click.group("state")
def state_group() -> None:
    """The state: history, stored editions, delivery ledger, schedule slots."""


@state_group.command("migrate")
@config_option
def state_migrate(config_path: Path | None) -> None:
    """Create the state's tables, or upgrade them (also done on first use)."""
    click.echo(migrate(settings_from(config_path).paths.state).describe())
