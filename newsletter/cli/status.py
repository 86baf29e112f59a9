"""``newsletter status``: what each edition's send did, from the ledger."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from newsletter import pipeline
from newsletter.cli.options import config_option, settings_from
from newsletter.config.settings import Settings
from newsletter.errors import NewsletterError
from newsletter.state.api import EditionStatus
from newsletter.state.openers import open_ledger


@click.command()
@config_option
@click.argument("edition_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable output.")
def status(config_path: Path | None, edition_id: str | None, as_json: bool) -> None:
    """Show per edition: sent, failed, deferred, in flight, pending (failures listed)."""
    settings = settings_from(config_path)
    if edition_id:
        _edition_status(settings, edition_id, as_json)
        return
    editions = _editions(settings)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(e) for e in editions], indent=2, default=str))
    elif not editions:
        click.echo("No edition has been sent yet.")
    else:
        _print_table(editions)


def _editions(settings: Settings) -> list[EditionStatus]:
    if not settings.paths.state.exists():
        return []
    with open_ledger(settings.paths.state) as ledger:
        return ledger.editions()


def _print_table(editions: list[EditionStatus]) -> None:
    click.echo(
        f"{'EDITION':34} {'STARTED':16} {'SENT':>7} {'FAILED':>7} {'DEFERRED':>8} "
        f"{'IN FLIGHT':>9} {'PENDING':>7}  SUBJECT"
    )
    for entry in editions:
        n = entry.counts
        click.echo(
            f"{entry.id:34} {entry.started:%Y-%m-%d %H:%M} {n.get('sent', 0):>7} "
            f"{n.get('failed', 0):>7} {n.get('deferred', 0):>8} {n.get('in_flight', 0):>9} "
            f"{n.get('pending', 0):>7}  {entry.subject[:60]}"
        )


def _edition_status(settings: Settings, edition_id: str, as_json: bool) -> None:
    counts: dict[str, int] = {}
    failures: list[tuple[str, str, str]] = []
    if settings.paths.state.exists():
        with open_ledger(settings.paths.state) as ledger:
            counts, failures = ledger.summary(edition_id), ledger.failures(edition_id)
    if not any(counts.values()):
        raise NewsletterError(
            f"no send recorded for edition {edition_id!r}; 'newsletter status' lists them"
        )
    resumable = pipeline.unfinished_edition(settings)
    interrupted = bool(resumable and resumable[0].id == edition_id)
    if as_json:
        data = {
            "edition": edition_id,
            "counts": counts,
            "interrupted": interrupted,
            "failures": [list(f) for f in failures],
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"Edition {edition_id}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if interrupted:
        click.echo("  interrupted before everyone was tried: run 'newsletter send' to continue")
    for email, state, reply in failures:
        click.echo(f"  {state:9} {email}  {reply}")
