"""``newsletter status``: what each edition's send did, from the ledger; give one up.

The columns add up to the list the send set out to reach: sent + failed + deferred +
in flight (``held`` under ``[smtp] in_flight = "hold"``) + pending + not yet attempted.
With the state in PostgreSQL, the senders sharing an edition are listed too: each one's
counts, whom it holds, and whether its lease runs (``live``) or ran out.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from newsletter.bookkeeping import unfinished_edition
from newsletter.cli.options import config_option, settings_from
from newsletter.config.settings import Settings
from newsletter.errors import NewsletterError
from newsletter.sends.abandon import abandon_edition
from newsletter.state.api import EditionStatus
from newsletter.state.openers import open_crew, open_editions, open_ledger
from newsletter.state.sharing import Worker


@click.command()
@config_option
@click.argument("edition_id", metavar="[EDITION]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable output.")
@click.option(
    "--abandon",
    is_flag=True,
    help="Give up EDITION's unfinished send: it is not resumed; the next send builds anew.",
)
def status(config_path: Path | None, edition_id: str | None, as_json: bool, abandon: bool) -> None:
    """Show per edition: sent, failed, deferred, in flight, pending, not yet attempted.

    With EDITION: that edition alone, with every failure and the server's reply.
    """
    settings = settings_from(config_path)
    if abandon:
        if not edition_id:
            raise click.UsageError("--abandon needs the EDITION to give up")
        _abandon(settings, edition_id, as_json)
        return
    if edition_id:
        _edition_status(settings, edition_id, as_json)
        return
    editions = _editions(settings)
    if as_json:
        rows = [{**dataclasses.asdict(e), "not_attempted": e.not_attempted} for e in editions]
        click.echo(json.dumps(rows, indent=2, default=str))
    elif not editions:
        click.echo("No edition has been sent yet.")
    else:
        _print_table(editions, _flight_label(settings))
        sending = unfinished_edition(settings) if settings.paths.state.shared else None
        if sending is not None:
            _print_workers(sending[0].id, _workers(settings, sending[0].id))


def _workers(settings: Settings, edition_id: str) -> list[Worker]:
    """The senders that joined a shared edition (none for a SQLite state)."""
    if not settings.paths.state.shared:
        return []
    with open_crew(settings.paths.state) as crew:
        return crew.workers(edition_id)


def _print_workers(edition_id: str, workers: list[Worker]) -> None:
    if not workers:
        return
    click.echo(f"Senders of edition {edition_id}:")
    for w in workers:
        if w.live:
            lease = f"live (lease {w.lease_left:.0f} s left)"
        elif w.state == "sending":
            lease = f"lease ran out {-w.lease_left:.0f} s ago"
        else:
            lease = w.state
        click.echo(
            f"  #{w.id:<4} pid {w.pid} on {w.host}  {lease}; sent {w.sent}, failed {w.failed}, "
            f"deferred {w.deferred}; holds {w.pending} not yet tried, {w.in_flight} in flight"
        )


def _flight_label(settings: Settings) -> str:
    """What an ``in_flight`` recipient is called: held for a person, or in flight."""
    return "held" if settings.smtp.in_flight == "hold" else "in flight"


def _editions(settings: Settings) -> list[EditionStatus]:
    if not settings.paths.state.exists():
        return []
    with open_ledger(settings.paths.state) as ledger:
        return ledger.editions()


def _print_table(editions: list[EditionStatus], flight: str) -> None:
    click.echo(
        f"{'EDITION':34} {'STARTED':16} {'SENT':>7} {'FAILED':>7} {'DEFERRED':>8} "
        f"{flight.upper():>9} {'PENDING':>7} {'NOT TRIED':>9}  SUBJECT"
    )
    for entry in editions:
        n = entry.counts
        untried = "-" if entry.not_attempted is None else entry.not_attempted
        click.echo(
            f"{entry.id:34} {entry.started:%Y-%m-%d %H:%M} {n.get('sent', 0):>7} "
            f"{n.get('failed', 0):>7} {n.get('deferred', 0):>8} {n.get('in_flight', 0):>9} "
            f"{n.get('pending', 0):>7} {untried:>9}  {entry.subject[:60]}"
        )


def _edition_status(settings: Settings, edition_id: str, as_json: bool) -> None:
    found: EditionStatus | None = None
    failures: list[tuple[str, str, str]] = []
    stored = None
    if settings.paths.state.exists():
        with open_ledger(settings.paths.state) as ledger:
            found, failures = ledger.edition(edition_id), ledger.failures(edition_id)
        with open_editions(settings.paths.state) as archive:
            stored = archive.get(edition_id)
    if found is None:
        raise NewsletterError(
            f"no send recorded for edition {edition_id!r}; 'newsletter status' lists them"
        )
    resumable = unfinished_edition(settings)
    interrupted = bool(resumable and resumable[0].id == edition_id)
    abandoned = stored is not None and stored.status == "abandoned"
    workers = _workers(settings, edition_id)
    live = sum(1 for w in workers if w.live)
    if as_json:
        data: dict[str, Any] = {
            "edition": edition_id,
            "subject": found.subject,
            "recipients": found.recipients,
            "counts": found.counts,
            "not_attempted": found.not_attempted,
            "in_flight_policy": settings.smtp.in_flight,
            "interrupted": interrupted,
            "abandoned": abandoned,
            "failures": [list(f) for f in failures],
        }
        if settings.paths.state.shared:
            data["workers"] = [dataclasses.asdict(w) for w in workers]
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"Edition {edition_id}: {_columns(found, _flight_label(settings))}")
    if interrupted and live:
        click.echo(
            f"  being sent by {live} sender(s); 'newsletter send' on another host joins them"
        )
    elif interrupted:
        click.echo(
            "  interrupted before everyone was tried: run 'newsletter send' to continue, or "
            f"'newsletter status {edition_id} --abandon' to give it up"
        )
    if abandoned:
        click.echo("  abandoned: it is not resumed; the next send builds a new edition")
    held = settings.smtp.in_flight == "hold"
    for email, state, reply in failures:
        shown = "held" if held and state == "in_flight" else state
        click.echo(f"  {shown:9} {email}  {reply}")
    _print_workers(edition_id, workers)


def _columns(found: EditionStatus, flight: str) -> str:
    """The counts in the order of a send, adding up to the recipients when they are known."""
    n = found.counts
    parts = [
        f"sent {n.get('sent', 0)}",
        f"failed {n.get('failed', 0)}",
        f"deferred {n.get('deferred', 0)}",
        f"{flight} {n.get('in_flight', 0)}",
        f"pending {n.get('pending', 0)}",
    ]
    if found.recipients is None:
        return ", ".join(parts) + " (the list size was not recorded for this send)"
    parts.append(f"not yet attempted {found.not_attempted}")
    return ", ".join(parts) + f"; {found.recipients} recipient(s) in all"


def _abandon(settings: Settings, edition_id: str, as_json: bool) -> None:
    done = abandon_edition(settings, edition_id)
    if as_json:
        data: dict[str, Any] = {
            "edition": done.edition_id,
            "abandoned": True,
            "reached": done.reached,
            "articles_counted": bool(done.reached),
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"Edition {done.edition_id} ({done.subject}) abandoned: it will not be resumed, and "
        "the next send builds a new edition."
    )
    if done.reached:
        click.echo(
            f"  {done.reached} message(s) went out (or may have), so its articles stay counted "
            "as sent and are not repeated."
        )
    else:
        click.echo("  No message went out, so its articles may go in the next edition.")
    click.echo(f"  Its ledger is kept: 'newsletter status {done.edition_id}' still shows it.")
