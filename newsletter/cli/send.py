"""``newsletter send``: parse, confirm, follow the progress and print; the pipeline sends."""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from newsletter import audience
from newsletter.cli.options import (
    build_options,
    config_option,
    options_from,
    print_warnings,
    settings_from,
    shown,
    warn,
    with_smtp_flags,
)
from newsletter.cli.process import log_to_stderr, stop_on_signals
from newsletter.config.settings import Settings
from newsletter.errors import NewsletterError
from newsletter.scheduling.runner import find_schedule, run_slot
from newsletter.sends.edition import send_edition
from newsletter.sends.plan import DryRun, Prepared, Resume, SendHooks, SendPlan, SendReport
from newsletter.subscribers.shard import parse_shard


@click.command()
@config_option
@build_options
@click.option(
    "--subscribers",
    "subscribers_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Subscriber CSV (default: [subscribers] file).",
)
@click.option("--dry-run", is_flag=True, help="Write .eml files instead of sending; no network.")
@click.option(
    "--outbox",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Dry-run output folder (default: [output] outbox).",
)
@click.option(
    "--mbox", is_flag=True, help="Dry run: one messages.mbox instead of one .eml per recipient."
)
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    metavar="N",
    help="Dry run: save only the first N messages (the manifest lists everyone).",
)
@click.option("--force", is_flag=True, help="Dry run: replace this edition's existing folder.")
@click.option("--to", "to_address", metavar="ADDRESS", help="Send a test copy to one address.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for cron and scripts).")
@click.option(
    "--allow-early",
    is_flag=True,
    help="Start a new edition even within [send] min_interval_hours of the last one.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), metavar="N", help="Send to at most N subscribers."
)
@click.option("--shard", metavar="K/N", help="Send only shard K of N (split by address).")
@click.option("--smtp-host", metavar="HOST", help="SMTP relay host (overrides [smtp] host).")
@click.option(
    "--smtp-port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="SMTP port (overrides [smtp] port).",
)
@click.option(
    "--smtp-security",
    type=click.Choice(["starttls", "ssl", "none"]),
    help="How to secure the SMTP connection (overrides [smtp] security).",
)
@click.option(
    "--smtp-user",
    metavar="USER",
    help="SMTP username; the password comes from NEWSLETTER_SMTP_PASSWORD.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option(
    "--slot",
    metavar="NAME",
    help="Run schedule NAME's due slot once (idempotent; for cron or a systemd timer).",
)
def send(config_path: Path | None, yes: bool, as_json: bool, **flags: Any) -> None:
    """Send the edition to the subscribers (or --dry-run to files)."""
    settings = settings_from(config_path)
    if flags["slot"]:
        conflicting = flags["dry_run"] or flags["to_address"] or flags["sources"]
        conflicting = conflicting or flags["allow_early"]
        run_slot_once(settings, flags["slot"], yes, conflicting=bool(conflicting))
        return
    settings = with_smtp_flags(settings, **flags)
    plan = send_plan(settings, flags)
    report = run_send(settings, plan, yes=yes, as_json=as_json)
    if report.written is not None:
        print_dry_run(report, as_json)
    else:
        print_live(report, as_json)


def send_plan(settings: Settings, flags: dict[str, Any]) -> SendPlan:
    """The send the flags ask for: audience, content options, dry run or live."""
    to = flags["to_address"]
    who = audience.Audience(
        subscribers_path=flags["subscribers_path"] or settings.paths.subscribers,
        shard=_shard(flags["shard"]),
        limit=flags["limit"],
        to=audience.normalize_address(to) if to else None,
    )
    dry_run = None
    if flags["dry_run"]:
        dry_run = DryRun(
            outbox=flags["outbox"] or settings.paths.outbox,
            force=flags["force"],
            mode="mbox" if flags["mbox"] else "eml",
            sample=flags["sample"],
        )
    resume = None if dry_run or to else Resume()
    return SendPlan(
        who,
        options_from(flags),
        resume=resume,
        dry_run=dry_run,
        spaced=not flags["allow_early"],
    )


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        return parse_shard(value)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--shard") from None


def run_slot_once(settings: Settings, name: str, yes: bool, *, conflicting: bool) -> None:
    """Run schedule ``name``'s due slot once, log what happened and exit with its code."""
    if conflicting:
        raise click.UsageError(
            "--slot takes what to send from the schedule (its slot is the guard against "
            "sending twice); drop --dry-run, --to, --source and --allow-early"
        )
    if not find_schedule(settings.schedules, name).dry_run and not yes:
        raise click.UsageError(f"schedule {name!r} sends live mail: add --yes")
    log_to_stderr()
    stop = threading.Event()
    with stop_on_signals(stop):
        outcome = run_slot(settings, name, stop=stop)
    click.echo(outcome.describe())
    raise click.exceptions.Exit(outcome.exit_code)


def run_send(settings: Settings, plan: SendPlan, *, yes: bool, as_json: bool) -> SendReport:
    """Run the send, asking first (unless ``yes``) and showing progress on a terminal."""
    if plan.dry_run is not None:
        return send_edition(settings, plan, SendHooks(warn=warn))
    follow = _Follow(settings, plan, yes=yes, bar=sys.stderr.isatty() and not as_json)
    stop = threading.Event()
    with stop_on_signals(stop), follow:
        hooks = SendHooks(warn=warn, ready=follow.ready, progress=follow.progress, stop=stop)
        return send_edition(settings, plan, hooks)


class _Follow:
    """The terminal side of a live send: the confirmation, then a progress bar or log lines."""

    def __init__(self, settings: Settings, plan: SendPlan, *, yes: bool, bar: bool):
        self.settings, self.plan, self.yes, self.bar = settings, plan, yes, bar
        self.stack = ExitStack()
        self.update: Any = None

    def __enter__(self) -> _Follow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def ready(self, prepared: Prepared) -> None:
        """Say what is resumed, ask to confirm, then start the progress display."""
        edition, stored = prepared.edition, prepared.list_size
        if stored is not None:
            click.echo(
                f"Joining edition {edition.id} ({edition.subject}): its list of {stored} "
                "recipient(s) is in the state, shared by its senders."
            )
        elif prepared.resumed:
            click.echo(f"Resuming edition {edition.id} ({edition.subject}), interrupted earlier.")
        who = self.plan.audience
        # Counting reads the whole list once more: only for the prompt and the progress bar.
        total = stored
        if total is None and (self.bar or not self.yes):
            total = audience.count_recipients(who, audience.held_in(self.settings.paths.state))
        if not self.yes:
            if not sys.stdin.isatty():
                raise click.UsageError(
                    "sending live mail needs confirmation: add --yes (for cron/scripts) "
                    "or use --dry-run"
                )
            smtp = self.settings.smtp
            click.echo(f"Edition {edition.id}: {edition.subject}")
            click.echo(f"  to: {total} recipient(s) from {who.to or who.subscribers_path}")
            click.echo(f"  via: {smtp.host}:{smtp.effective_port} ({smtp.security})")
            click.confirm("Send now?", abort=True)
        self.update = self._bar(total) if self.bar else _ProgressLog(total)

    def progress(self, email: str, state: str) -> None:
        """Count one recipient done."""
        if self.update is not None:
            self.update(email, state)

    def _bar(self, total: int | None) -> Any:
        started = time.monotonic()

        def rate(done: int | None) -> str:
            elapsed = time.monotonic() - started
            return f"{(done or 0) / elapsed:.0f} msg/s" if elapsed > 0.5 else ""

        bar = self.stack.enter_context(
            click.progressbar(
                length=total,
                label="Sending",
                file=sys.stderr,
                show_pos=True,
                show_eta=True,
                item_show_func=rate,
            )
        )
        return lambda _email, _state: bar.update(1, bar.pos + 1)


class _ProgressLog:
    """Progress as a quiet log line every 10 seconds (when stderr is not a terminal)."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self, _email: str, _state: str) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= 10:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            of = f"/{self.total}" if self.total is not None else ""
            click.echo(f"progress: {self.done}{of} ({rate:.0f} msg/s)", err=True)


def print_dry_run(report: SendReport, as_json: bool) -> None:
    """Say where the dry run wrote what, and who was not mailed."""
    outcome, scan, edition = report.written, report.scan, report.prepared.edition
    assert outcome is not None  # a dry-run report
    print_warnings(scan.warnings)
    skipped = scan.skipped_status + scan.invalid + scan.duplicates
    if as_json:
        data = {
            "edition": edition.id,
            "dry_run": True,
            "written": outcome.written,
            "saved": outcome.saved,
            "folder": str(outcome.folder),
            "manifest": str(outcome.manifest),
            "skipped_subscribers": skipped,
            "suppressed": report.suppressed,
            "members": report.reach.members,
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"Edition {edition.id}: {edition.subject}")
    saved = "" if outcome.saved == outcome.written else f" ({outcome.saved} saved as files)"
    click.echo(f"  {outcome.written} message(s) built{saved}, in {shown(outcome.folder)}")
    click.echo(f"  manifest: {shown(outcome.manifest)}")
    if skipped:
        click.echo(
            f"  not mailed: {scan.skipped_status} inactive, {scan.invalid} invalid, "
            f"{scan.duplicates} duplicate row(s)"
        )
    _print_reach(report)
    click.echo("This was a dry run: nothing was sent. To send for real, drop --dry-run.")


def print_live(report: SendReport, as_json: bool) -> None:
    """Print the live summary; raise when anyone was not delivered or the run paused."""
    summary, edition = report.summary, report.prepared.edition
    assert summary is not None  # a live report
    print_warnings(report.scan.warnings)
    if as_json:
        data = {**summary.as_dict(), "suppressed": report.suppressed}
        click.echo(json.dumps({**data, "members": report.reach.members}, indent=2))
    else:
        click.echo(
            f"Edition {edition.id}: sent {summary.sent}, failed {summary.failed}, "
            f"deferred {summary.deferred}, skipped {summary.skipped} (already done), "
            f"held {summary.held}; {summary.seconds:.1f} s, {summary.rate:.1f} msg/s"
        )
        _print_reach(report)
    if summary.paused:
        raise NewsletterError(summary.pause_reason)
    if summary.failed or summary.deferred:
        raise NewsletterError(
            f"{summary.failed + summary.deferred} recipient(s) not delivered; "
            f"see 'newsletter status {edition.id}' (run send again to retry deferred ones)"
        )


def _print_reach(report: SendReport) -> None:
    """Say how many suppressed addresses were left out, and members mailed beside the list."""
    reach, during = report.reach, report.suppressed - report.reach.suppressed
    if report.suppressed:
        since = f" ({during} of them suppressed while it was sending)" if during else ""
        click.echo(
            f"  suppressed: {report.suppressed} address(es) left out{since}; "
            "see 'newsletter suppressions list'"
        )
    if reach.members:
        click.echo(f"  {reach.members} subscriber(s) the tool holds, beside the list")
