"""``newsletter bounces``: read the bounce mailbox; suppress, count and mark the ledger."""

from __future__ import annotations

import os
from pathlib import Path

import click

from newsletter.bounces.process import MailboxChoice, open_mailbox, process_mailbox
from newsletter.cli.options import config_option, print_warnings, settings_from, warn
from newsletter.errors import NothingToSend


@click.command("bounces")
@config_option
@click.option(
    "--imap",
    metavar="URL",
    help="Read an IMAP folder: imaps://USER@HOST[:PORT]/FOLDER "
    "(password: $NEWSLETTER_IMAP_PASSWORD; imap:// only to this machine).",
)
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Read a maildir folder (handled mail moves to cur/, flagged seen).",
)
@click.option(
    "--mbox",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Read an mbox file (left as it is).",
)
@click.option(
    "--move-to",
    metavar="FOLDER",
    help="With --imap: move handled mail to FOLDER (default: flag it seen and "
    "NewsletterProcessed).",
)
@click.option("--dry-run", is_flag=True, help="Read and decide, but change nothing.")
def bounces(
    config_path: Path | None,
    imap: str | None,
    maildir: Path | None,
    mbox: Path | None,
    move_to: str | None,
    dry_run: bool,
) -> None:
    """Read bounces, complaints and unsubscribe mails: suppress, count, mark the ledger.

    Exit code 3 when nothing new was found to act on.
    """
    settings = settings_from(config_path)
    choice = MailboxChoice(imap or "", maildir, mbox, move_to or "")
    mailbox = open_mailbox(choice, os.environ, dry_run=dry_run)
    if not settings.has_signing_key:
        warn(
            "NEWSLETTER_SIGNING_KEY is not set: VERP return paths, unsubscribe links and "
            "unsubscribe mails cannot be checked, so only the addresses reports name are used"
        )
    summary = process_mailbox(settings, mailbox, dry_run=dry_run)
    for line in summary.lines():
        click.echo(line)
    print_warnings(summary.warnings)
    if not summary.acted:
        raise NothingToSend(
            f"nothing new to act on in {summary.where}: every report was handled before, "
            "or none was a bounce, a complaint or an unsubscribe"
        )
