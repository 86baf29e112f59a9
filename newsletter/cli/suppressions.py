"""``newsletter suppressions``: the addresses no send may mail; list, add, remove, export.

This is the operator's own list on their own terminal, so addresses are shown whole
(output, not a log).
"""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.options import config_option, print_warnings, settings_from, warn
from newsletter.errors import NewsletterError
from newsletter.lists import suppressions as lists
from newsletter.lists.csvio import STDOUT, export_target
from newsletter.state.lists import SUPPRESSION_REASONS, Suppression

REASON = click.Choice(SUPPRESSION_REASONS)


@click.group("suppressions")
def suppressions_group() -> None:
    """The suppression list: unsubscribes, bounces, complaints and manual entries."""


@suppressions_group.command("list")
@config_option
@click.option("--reason", type=REASON, help="Only the suppressions with this reason.")
def suppressions_list(config_path: Path | None, reason: str | None) -> None:
    """Show every suppressed address: why, from where and since when."""
    found = lists.listed(settings_from(config_path).paths.state, reason)
    if not found:
        click.echo("No address is suppressed." if reason is None else f"None with {reason}.")
        return
    width = max(len("EMAIL"), *(len(s.email) for s in found))
    click.echo(f"{'EMAIL':{width}}  {'REASON':11}  {'SOURCE':10}  {'SINCE':16}  DETAIL")
    for entry in found:
        click.echo(
            f"{entry.email:{width}}  {entry.reason:11}  {entry.source:10}  "
            f"{entry.at[:16].replace('T', ' ')}  {_detail(entry)}"
        )
    click.echo(f"{len(found)} address(es)")


def _detail(entry: Suppression) -> str:
    edition = f"edition {entry.edition_id}" if entry.edition_id else ""
    return "; ".join(part for part in (entry.detail, edition) if part)


@suppressions_group.command("add")
@config_option
@click.argument("addresses", metavar="ADDRESS...", nargs=-1)
@click.option(
    "--reason", type=REASON, default="manual", show_default=True, help="Why they are suppressed."
)
@click.option("--note", default="", metavar="NOTE", help="A note kept with each address.")
@click.option(
    "--from",
    "from_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also add every row of this CSV (as 'suppressions export' writes it).",
)
@click.option("--strict", is_flag=True, help="With --from: stop at the first bad row.")
def suppressions_add(
    config_path: Path | None,
    addresses: tuple[str, ...],
    reason: str,
    note: str,
    from_file: Path | None,
    strict: bool,
) -> None:
    """Suppress each ADDRESS: no send mails it again (until removed)."""
    if not addresses and from_file is None:
        raise click.UsageError("give at least one ADDRESS, or --from FILE")
    place = settings_from(config_path).paths.state
    outcome = lists.suppress(place, addresses, reason, note)
    if from_file is not None:
        read = lists.suppress_from(place, from_file, reason, note, strict=strict)
        assert read.scan is not None  # a read from a file
        print_warnings(read.scan.warnings)
        outcome.added += read.added
        outcome.already += read.already
        outcome.problems += read.problems
    for entry in outcome.already:
        click.echo(f"{entry.email}: already suppressed ({entry.reason}, since {entry.at[:10]})")
    for problem in outcome.problems:
        warn(problem)
    click.echo(f"{outcome.added} address(es) added to the suppression list.")
    if outcome.problems:
        raise NewsletterError(f"{len(outcome.problems)} address(es) or row(s) not added; see above")


@suppressions_group.command("remove")
@config_option
@click.argument("addresses", metavar="ADDRESS...", nargs=-1, required=True)
def suppressions_remove(config_path: Path | None, addresses: tuple[str, ...]) -> None:
    """Lift the suppression of each ADDRESS: sends may mail it again."""
    removed, missing = lists.lift(settings_from(config_path).paths.state, addresses)
    for entry in removed:
        click.echo(f"{entry.email}: removed (was {entry.reason}, since {entry.at[:10]})")
    for address in missing:
        click.echo(f"{address}: not on the suppression list")


@suppressions_group.command("export")
@config_option
@click.argument(
    "file", metavar="[FILE|-]", type=click.Path(dir_okay=False, path_type=Path), default=STDOUT
)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def suppressions_export(config_path: Path | None, file: Path, force: bool) -> None:
    """Write the list as CSV to FILE|- (default: stdout); 'add --from' reads it back.

    Columns: email,reason,source,at,edition,detail.
    """
    place = settings_from(config_path).paths.state
    with export_target(file, force=force) as out:
        count = lists.export(place, out)
    if file != STDOUT:
        click.echo(f"{count} suppression(s) written to {file}")
