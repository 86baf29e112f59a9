"""The command line. Thin: parse, load settings, call the pipeline, print.

The only importer of click. ``NewsletterError`` becomes a one-line message and
its exit code here: 0 ok, 1 a problem with input or delivery, 2 usage,
3 nothing new to send.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from newsletter import __version__, clock, pipeline, schedule, timetable
from newsletter.config import (
    CONFIG_NAME,
    SAMPLE_DIR,
    Settings,
    find_config,
    load_settings,
    resource_path,
)
from newsletter.errors import (
    EXIT_NOTHING_NEW,
    EXIT_PROBLEM,
    NewsletterError,
    NothingToSend,
    UsageProblem,
)

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


def _settings(config_path: Path | None) -> Settings:
    return load_settings(find_config(config_path))


def _build_options(settings: Settings, **flags: Any) -> pipeline.BuildOptions:
    return _options(flags)


def _options(flags: dict[str, Any]) -> pipeline.BuildOptions:
    """The content options shared by build, send, check and preview."""
    return pipeline.BuildOptions(
        sources=tuple(flags["sources"]),
        now=clock.parse_time(flags["now"]),
        strict=flags["strict"],
        lead_url=flags["lead_url"],
        allow_repeats=flags["allow_repeats"],
    )


def warn(message: str) -> None:
    """Print a warning to stderr."""
    click.secho(f"warning: {message}", fg="yellow", err=True)


def _print_warnings(warnings: tuple[str, ...] | list[str]) -> None:
    for message in warnings:
        warn(message)


class UserError(click.ClickException):
    """A ``NewsletterError`` shown as ``error: …`` (exit code 1)."""

    exit_code = EXIT_PROBLEM

    def show(self, file: Any = None) -> None:
        """Print the message to stderr, without a traceback."""
        click.secho(f"error: {self.format_message()}", fg="red", err=True)


class NothingNew(UserError):
    """Nothing new to send: a skip, not a failure (exit code 3)."""

    exit_code = EXIT_NOTHING_NEW

    def show(self, file: Any = None) -> None:
        """Print the reason to stderr."""
        click.echo(self.format_message(), err=True)


class Commands(click.Group):
    """The command group: turns ``NewsletterError`` into a message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; known errors become ``UserError``."""
        try:
            return super().invoke(ctx)
        except NothingToSend as err:
            raise NothingNew(str(err)) from err
        except UsageProblem as err:
            raise click.BadParameter(str(err), param_hint=err.option or None) from err
        except NewsletterError as err:
            raise UserError(str(err)) from err
        except BrokenPipeError:
            sys.stderr.close()
            raise click.exceptions.Exit(1) from None


@click.group(
    cls=Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="newsletter")
def cli() -> None:
    """Build an email digest from your publication's content and deliver it."""


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Create a working starter project in DIRECTORY."""
    if directory.exists() and any(directory.iterdir()):
        raise NewsletterError(
            f"{directory} is not empty; choose a new folder so nothing is overwritten"
        )
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(SAMPLE_DIR / "content", directory / "content")
    shutil.copytree(resource_path("templates"), directory / "templates")
    shutil.copyfile(resource_path("subscribers.example.csv"), directory / "subscribers.csv")
    config = (SAMPLE_DIR / CONFIG_NAME).read_text(encoding="utf-8")
    config += (
        '\n[subscribers]\nfile = "subscribers.csv"\n'
        '\n[templates]\ndir = "templates"   # edit these to restyle the email\n'
        '\n[output]\nbuild_dir = "out"\noutbox = "outbox"\nstate_dir = ".newsletter"\n'
        '\n[smtp]\n# host = "smtp.example.org"\n# port = 587\n# security = "starttls"\n'
        '# username = "newsletter"   # password: NEWSLETTER_SMTP_PASSWORD\n'
    )
    (directory / CONFIG_NAME).write_text(config, encoding="utf-8")
    click.echo(f"Created a newsletter project in {directory}")
    click.echo(f"  cd {directory}")
    click.echo("  newsletter build --out out/")
    click.echo("  newsletter send --dry-run --outbox outbox/")


@cli.command()
@config_option
@build_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for edition.html/.txt/.json (default: [output] build_dir).",
)
@click.option("--force", is_flag=True, help="Replace existing files in --out.")
def build(config_path: Path | None, out_dir: Path | None, force: bool, **flags: Any) -> None:
    """Build the edition: edition.html, .txt, .json and a static preview.html."""
    settings = _settings(config_path)
    result = pipeline.build_edition(settings, _build_options(settings, **flags))
    _print_warnings(result.warnings)
    from newsletter.preview import write_static_preview

    target = out_dir or settings.paths.build_dir
    if (target / "preview.html").exists() and not force:
        raise NewsletterError(
            f"{target / 'preview.html'} already exists; use --force to replace it "
            "or choose another --out"
        )
    paths = pipeline.write_build(settings, result, target, force=force)
    paths.append(write_static_preview(result, settings, target, force=force))
    edition = result.edition
    click.echo(f"Edition {edition.id}: {edition.subject}")
    click.echo(f"  HTML {edition.html_size / 1000:.1f} KB, text {len(edition.text)} chars")
    for path in paths:
        click.echo(f"  wrote {path}")


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    from newsletter.subscribers import parse_shard

    try:
        return parse_shard(value)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--shard") from None


@cli.command()
@config_option
@build_options
@click.option(
    "--subscribers",
    "subscribers_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Subscriber CSV (default: [subscribers] file).",
)
@click.option("--dry-run", is_flag=True, help="Write .eml files instead of sending; no network.")
@click.option(
    "--outbox",
    type=click.Path(file_okay=False, path_type=Path),
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
@click.option("--limit", type=click.IntRange(min=1), help="Send to at most N subscribers.")
@click.option("--shard", metavar="K/N", help="Send only shard K of N (split by address).")
@click.option("--smtp-host", help="SMTP relay host (overrides [smtp] host).")
@click.option("--smtp-port", type=click.IntRange(1, 65535), help="SMTP port.")
@click.option("--smtp-security", type=click.Choice(["starttls", "ssl", "none"]))
@click.option(
    "--smtp-user", help="SMTP username; the password comes from NEWSLETTER_SMTP_PASSWORD."
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option(
    "--slot",
    metavar="NAME",
    help="Run schedule NAME's due slot once (idempotent; for cron or a systemd timer).",
)
def send(
    config_path: Path | None,
    subscribers_path: Path | None,
    dry_run: bool,
    outbox: Path | None,
    mbox: bool,
    sample: int | None,
    force: bool,
    to_address: str | None,
    yes: bool,
    limit: int | None,
    shard: str | None,
    smtp_host: str | None,
    smtp_port: int | None,
    smtp_security: str | None,
    smtp_user: str | None,
    as_json: bool,
    slot: str | None,
    **flags: Any,
) -> None:
    """Send the edition to the subscribers (or --dry-run to files)."""
    settings = _settings(config_path)
    if slot:
        _send_slot(settings, slot, yes, conflicting=dry_run or bool(to_address or flags["sources"]))
        return
    smtp = settings.smtp
    smtp = dataclasses.replace(
        smtp,
        host=smtp_host or smtp.host,
        port=smtp_port or smtp.port,
        security=smtp_security or smtp.security,
        username=smtp_user or smtp.username,
    )
    settings = dataclasses.replace(settings, smtp=smtp)
    audience = pipeline.Audience(
        subscribers_path=subscribers_path or settings.paths.subscribers,
        shard=_shard(shard),
        limit=limit,
        to=pipeline.normalize_address(to_address) if to_address else None,
    )
    if dry_run:
        _send_dry_run(settings, audience, outbox, force, mbox, sample, as_json, flags)
    else:
        _send_live(settings, audience, yes, as_json, flags)


def _send_slot(settings: Settings, name: str, yes: bool, *, conflicting: bool) -> None:
    if conflicting:
        raise click.UsageError(
            "--slot takes what to send from the schedule; drop --dry-run, --to and --source"
        )
    if not schedule.find_schedule(settings.schedules, name).dry_run and not yes:
        raise click.UsageError(f"schedule {name!r} sends live mail: add --yes")
    _log_to_stderr()
    stop = threading.Event()
    with schedule.stop_on_signals(stop):
        outcome = schedule.run_slot(settings, name, stop=stop)
    click.echo(outcome.describe())
    raise click.exceptions.Exit(outcome.exit_code)


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)


def _send_dry_run(
    settings: Settings,
    audience: pipeline.Audience,
    outbox: Path | None,
    force: bool,
    mbox: bool,
    sample: int | None,
    as_json: bool,
    flags: dict[str, Any],
) -> None:
    result = pipeline.build_edition(settings, _build_options(settings, **flags))
    _print_warnings(result.warnings)
    _preflight(settings, result.edition)
    outcome, scan = pipeline.dry_run(
        settings,
        result,
        audience,
        outbox or settings.paths.outbox,
        force=force,
        mode="mbox" if mbox else "eml",
        sample=sample,
    )
    _print_warnings(scan.warnings)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "edition": result.edition.id,
                    "dry_run": True,
                    "written": outcome.written,
                    "saved": outcome.saved,
                    "folder": str(outcome.folder),
                    "manifest": str(outcome.manifest),
                    "skipped_subscribers": scan.invalid + scan.duplicates + scan.skipped_status,
                },
                indent=2,
            )
        )
        return
    click.echo(f"Edition {result.edition.id}: {result.edition.subject}")
    saved = "" if outcome.saved == outcome.written else f" ({outcome.saved} saved as files)"
    click.echo(f"  {outcome.written} message(s) built{saved}, in {outcome.folder}")
    click.echo(f"  manifest: {outcome.manifest}")
    skipped = scan.skipped_status + scan.invalid + scan.duplicates
    if skipped:
        click.echo(
            f"  not mailed: {scan.skipped_status} inactive, {scan.invalid} invalid, "
            f"{scan.duplicates} duplicate row(s)"
        )
    click.echo("This was a dry run: nothing was sent. To send for real, drop --dry-run.")


def _send_live(
    settings: Settings,
    audience: pipeline.Audience,
    yes: bool,
    as_json: bool,
    flags: dict[str, Any],
) -> None:
    from newsletter.delivery.smtp import check_smtp_settings

    check_smtp_settings(settings.smtp)
    resumed = None if audience.to else pipeline.unfinished_edition(settings)
    if resumed:
        edition, selection = resumed
        click.echo(f"Resuming edition {edition.id} ({edition.subject}), interrupted earlier.")
    else:
        result = pipeline.build_edition(settings, _build_options(settings, **flags))
        _print_warnings(result.warnings)
        edition, selection = result.edition, result.selection
    _preflight(settings, edition)
    bar = sys.stderr.isatty() and not as_json
    # Counting reads the whole list once more: only for the prompt and the progress bar.
    total = pipeline.count_recipients(audience) if bar or not yes else None
    smtp = settings.smtp
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(
                "sending live mail needs confirmation: add --yes (for cron/scripts) "
                "or use --dry-run"
            )
        click.echo(f"Edition {edition.id}: {edition.subject}")
        click.echo(f"  to: {total} recipient(s) from {audience.to or audience.subscribers_path}")
        click.echo(f"  via: {smtp.host}:{smtp.effective_port} ({smtp.security})")
        click.confirm("Send now?", abort=True)
    stop = threading.Event()
    with schedule.stop_on_signals(stop):
        if bar:
            started = time.monotonic()

            def rate(done: int | None) -> str:
                elapsed = time.monotonic() - started
                return f"{(done or 0) / elapsed:.0f} msg/s" if elapsed > 0.5 else ""

            with click.progressbar(
                length=total,
                label="Sending",
                file=sys.stderr,
                show_pos=True,
                show_eta=True,
                item_show_func=rate,
            ) as bar:
                summary, scan = pipeline.live_send(
                    settings,
                    edition,
                    selection,
                    audience,
                    progress=lambda _email, _state: bar.update(1, bar.pos + 1),
                    stop=stop,
                )
        else:
            summary, scan = pipeline.live_send(
                settings,
                edition,
                selection,
                audience,
                progress=_ProgressLog(total),
                stop=stop,
            )
    _print_warnings(scan.warnings)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        click.echo(
            f"Edition {edition.id}: sent {summary.sent}, failed {summary.failed}, "
            f"deferred {summary.deferred}, skipped {summary.skipped} (already done), "
            f"held {summary.held}; {summary.seconds:.1f} s, {summary.rate:.1f} msg/s"
        )
    if summary.paused:
        raise NewsletterError(summary.pause_reason)
    if summary.failed or summary.deferred:
        raise NewsletterError(
            f"{summary.failed + summary.deferred} recipient(s) not delivered; "
            f"see 'newsletter status {edition.id}' (run send again to retry deferred ones)"
        )


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


@cli.command()
@config_option
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="PATH_OR_URL",
    help="Read these sources instead of [content] sources.",
)
@click.option("--strict", is_flag=True, help="Any source failure is fatal.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable output.")
def sources(
    config_path: Path | None, sources: tuple[str, ...], strict: bool, as_json: bool
) -> None:
    """Read every source; per source: items, sections, regions, warnings."""
    from newsletter.sources import collect

    settings = _settings(config_path)
    specs = sources or settings.paths.sources
    if not specs:
        raise NewsletterError("no sources: add [content] sources to the config or use --source")
    collection = collect(specs, settings, strict=strict, now=clock.now_utc())
    reports = [pipeline.source_report(r) for r in collection.reports]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "sources": reports,
                    "articles": len(collection.articles),
                    "warnings": list(collection.warnings),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for report in reports:
        click.secho(f"{report['spec']}  [{report['kind']}]", bold=True)
        if report["error"]:
            click.secho(f"  failed: {report['error']}", fg="red")
            continue
        click.echo(f"  {report['items']} item(s)")
        click.echo("  sections: " + _counts(report["sections"]))
        click.echo("  regions:  " + _counts(report["regions"]))
        for message in report["warnings"]:
            click.secho(f"  warning: {message}", fg="yellow")
    click.echo(f"{len(collection.articles)} article(s) after merging and removing duplicates.")
    for message in collection.warnings:
        if not any(message in r["warnings"] for r in reports):
            warn(message)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


@cli.command()
@config_option
@build_options
@click.option(
    "--check-links",
    is_flag=True,
    help="Also ask every link and image with HEAD (uses the network).",
)
def check(config_path: Path | None, check_links: bool, **flags: Any) -> None:
    """Preflight the edition: errors and warnings, with where and how to fix."""
    from newsletter.dkim import dns_records

    settings = _settings(config_path)
    result = pipeline.build_edition(settings, _build_options(settings, **flags))
    findings = pipeline.preflight_edition(settings, result.edition, check_links=check_links)
    edition = result.edition
    click.echo(f"Edition {edition.id}: {edition.subject}")
    click.echo(f"  HTML {edition.html_size / 1000:.1f} KB (Gmail clips at 102 KB)")
    _print_warnings(result.warnings)
    for finding in findings:
        colour = "red" if finding.level == "error" else "yellow"
        click.secho(f"{finding.level}: [{finding.code}] {finding.message}", fg=colour)
    click.echo("\nDNS records for deliverability:")
    for line in dns_records(settings.dkim, settings.sender.domain):
        click.echo(f"  {line}")
    problems = [f for f in findings if f.level == "error"]
    if problems:
        raise NewsletterError(f"{len(problems)} error(s): fix them before sending")
    click.echo(f"\nNo errors ({len(findings)} warning(s)).")


def _preflight(settings: Settings, edition: Any) -> None:
    """Run the preflight before a send: print warnings, stop on errors."""
    from newsletter.preflight import raise_for_errors

    findings = pipeline.preflight_edition(settings, edition)
    for finding in findings:
        if finding.level != "error":
            warn(f"[{finding.code}] {finding.message}")
    raise_for_errors(findings)


@cli.command()
@config_option
@build_options
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port (default 8025, else a free one; 0: any free port).",
)
@click.option("--host", metavar="ADDR", help="Listen on ADDR instead of 127.0.0.1 (warns).")
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in a browser.")
@click.option("--subscriber", metavar="EMAIL", help="Show this subscriber's message first.")
def preview(
    config_path: Path | None,
    port: int | None,
    host: str | None,
    open_browser: bool,
    subscriber: str | None,
    **flags: Any,
) -> None:
    """Serve a live-reloading preview of the edition on 127.0.0.1; never sends mail."""
    from newsletter import preview as pv

    build = _options(flags)
    pv.serve(
        pv.PreviewOptions(
            config=find_config(config_path), build=build, subscriber=subscriber or ""
        ),
        host=host,
        port=port,
        open_browser=open_browser,
        echo=click.echo,
        warn=warn,
    )


@cli.group("schedule")
def schedule_group() -> None:
    """List or run the scheduled sends ([[schedule]] in the config)."""


@schedule_group.command("list")
@config_option
@click.option("--count", default=3, type=click.IntRange(1, 100), help="Runs to show per schedule.")
def schedule_list(config_path: Path | None, count: int) -> None:
    """Show each schedule's next runs, in its time zone and in UTC."""
    settings = _settings(config_path)
    if not settings.schedules:
        click.echo("No schedules configured. Add one to the config:\n" + timetable.EXAMPLE)
        return
    for line in schedule.format_upcoming(schedule.upcoming(settings, clock.now_utc(), count)):
        click.echo(line)


@schedule_group.command("run")
@config_option
def schedule_run(config_path: Path | None) -> None:
    """Build and send at each slot until SIGTERM or Ctrl-C."""
    settings = _settings(config_path)
    if not settings.schedules:
        raise click.UsageError("no [[schedule]] in the config; see 'newsletter schedule list'")
    _log_to_stderr()
    stop = threading.Event()
    with schedule.stop_on_signals(stop):
        schedule.run_forever(settings, stop)


@cli.command()
@config_option
@click.argument("edition_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable output.")
def status(config_path: Path | None, edition_id: str | None, as_json: bool) -> None:
    """Show per edition: sent, failed, deferred, in flight, pending (failures listed)."""
    from newsletter.state.openers import open_ledger

    settings = _settings(config_path)
    editions = []
    if settings.paths.state_db.exists():
        with open_ledger(settings.paths.state_db) as ledger:
            editions = ledger.editions()
            if edition_id:
                _edition_status(settings, ledger, edition_id, as_json)
                return
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(e) for e in editions], indent=2, default=str))
        return
    if not editions:
        click.echo("No edition has been sent yet.")
        return
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


def _edition_status(settings: Settings, ledger: Any, edition_id: str, as_json: bool) -> None:
    counts = ledger.summary(edition_id)
    failures = ledger.failures(edition_id)
    if not any(counts.values()):
        raise NewsletterError(
            f"no send recorded for edition {edition_id!r}; 'newsletter status' lists them"
        )
    resumable = pipeline.unfinished_edition(settings)
    interrupted = bool(resumable and resumable[0].id == edition_id)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "edition": edition_id,
                    "counts": counts,
                    "interrupted": interrupted,
                    "failures": [list(f) for f in failures],
                },
                indent=2,
            )
        )
        return
    click.echo(f"Edition {edition_id}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if interrupted:
        click.echo("  interrupted before everyone was tried: run 'newsletter send' to continue")
    for email, state, reply in failures:
        click.echo(f"  {state:9} {email}  {reply}")


def main() -> None:
    """Run the command line."""
    cli(prog_name="newsletter")
