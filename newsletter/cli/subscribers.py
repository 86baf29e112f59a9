"""``newsletter subscribers``: the subscribers the tool holds, imported from and exported to CSV."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.options import config_option, print_warnings, settings_from, warn
from newsletter.lists.csvio import STDOUT, export_target
from newsletter.lists.members import export_subscribers, import_subscribers


@click.group("subscribers")
def subscribers_group() -> None:
    """The subscribers the tool holds (mailed with the list): import and export."""


@subscribers_group.command("import")
@config_option
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Stop at the first bad row, storing nothing.")
def subscribers_import(config_path: Path | None, file: Path, strict: bool) -> None:
    """Store the subscriber list FILE (CSV): active rows as subscribers, unsubscribed ones
    (bounced, complained …) on the suppression list; bad rows are named and skipped.
    """
    outcome = import_subscribers(settings_from(config_path).paths.state, file, strict=strict)
    print_warnings(outcome.scan.warnings)
    for problem in outcome.problems:
        warn(problem)
    click.echo(
        f"{file}: {outcome.members_added} subscriber(s) added, {outcome.members_updated} "
        f"already held; {outcome.suppressed} suppressed ({outcome.already_suppressed} already); "
        f"{outcome.skipped} not active, left out; {outcome.bad_rows} bad row(s) skipped"
    )


@subscribers_group.command("export")
@config_option
@click.argument(
    "file", metavar="[FILE|-]", type=click.Path(dir_okay=False, path_type=Path), default=STDOUT
)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def subscribers_export(config_path: Path | None, file: Path, force: bool) -> None:
    """Write the subscribers the tool holds as a CSV list to FILE|- (default: stdout).

    Suppressed ones carry their status (unsubscribed, bounced …); 'subscribers import'
    reads it back.
    """
    place = settings_from(config_path).paths.state
    with export_target(file, force=force) as out:
        count = export_subscribers(place, out)
    if file != STDOUT:
        click.echo(f"{count} subscriber(s) written to {file}")
