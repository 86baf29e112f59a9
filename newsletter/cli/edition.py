"""Commands about one edition and its content: init, build, check, sources, preview."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import click

from newsletter import audience, build_output, clock, pipeline
from newsletter import preview as pv
from newsletter.cli.invocation import PROGRAM, command_name
from newsletter.cli.options import (
    build_options,
    config_file,
    config_option,
    options_from,
    print_warnings,
    settings_from,
    shown,
    warn,
)
from newsletter.config import starter
from newsletter.dkim import records
from newsletter.dkim.settings import DkimSettings
from newsletter.errors import ContentError, NewsletterError
from newsletter.limits import HTML_CLIP_BYTES
from newsletter.models import Edition
from newsletter.preflight.findings import ERROR
from newsletter.preflight.project import ListRead, check_project
from newsletter.sources import collect, describe_failures


@click.command()
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--now",
    metavar="ISO_TIME",
    help="Date the sample articles as if it were this time (default: now).",
)
def init(directory: Path, now: str | None) -> None:
    """Create a working starter project in DIR, its sample articles dated to now."""
    starter.write_starter(directory, clock.parse_time(now) or clock.now_utc())
    program = command_name()
    click.echo(f"Created a newsletter project in {directory}. Next steps:")
    click.echo(f"  cd {shlex.quote(str(directory))}")
    click.echo(f"  {program} build             # the edition in out/: open out/preview.html")
    click.echo(f"  {program} check             # what to change before sending for real")
    click.echo(f"  {program} send --dry-run    # one .eml per subscriber in outbox/")
    if program != PROGRAM:
        click.echo(f"('{PROGRAM}' alone works once its folder is on PATH: activate its venv.)")


@click.command()
@config_option
@build_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Folder for edition.html/.txt/.json (default: [output] build_dir).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Also replace files in --out that an earlier build did not write.",
)
def build(config_path: Path | None, out_dir: Path | None, force: bool, **flags: Any) -> None:
    """Build the edition: edition.html, .txt, .json and a static preview.html.

    A rebuild replaces what the last build wrote in the folder.
    """
    settings = settings_from(config_path)
    result = pipeline.build_edition(settings, options_from(flags))
    print_warnings(result.warnings)
    target = out_dir or settings.paths.build_dir
    build_output.claim(target, (*build_output.EDITION_FILES, pv.STATIC_NAME), force=force)
    paths = build_output.write_build(settings, result, target)
    paths.append(pv.write_static_preview(result, settings, target, force=True))
    edition = result.edition
    click.echo(f"Edition {edition.id}: {edition.subject}")
    click.echo(f"  HTML {edition.html_size / 1000:.1f} KB, text {len(edition.text)} chars")
    for path in paths:
        click.echo(f"  wrote {shown(path)}")


@click.command()
@config_option
@build_options
@click.option(
    "--check-links",
    is_flag=True,
    help="Also ask every link and image with HEAD (uses the network).",
)
@click.option(
    "--check-dns",
    is_flag=True,
    help="Also look up each DKIM key's TXT record and compare it with the key (uses DNS).",
)
def check(config_path: Path | None, check_links: bool, check_dns: bool, **flags: Any) -> None:
    """Preflight the edition, the config and the subscriber list: what to fix, and where."""
    settings = settings_from(config_path)
    result = pipeline.build_edition(settings, options_from(flags))
    edition = result.edition
    who = audience.Audience(subscribers_path=settings.paths.subscribers)
    reach, held = audience.Reach.of(who), audience.held_in(settings.paths.state)
    listing = ListRead(reach.scan, lambda: audience.recipients(who, reach, held))
    project = check_project(settings, edition, listing)
    findings = pipeline.preflight_edition(settings, edition, check_links=check_links)
    findings = sorted([*findings, *project.findings], key=lambda f: f.level != ERROR)
    _print_summary(edition, reach if project.subscribers is not None else None)
    print_warnings(result.warnings)
    for finding in findings:
        colour = "red" if finding.level == ERROR else "yellow"
        click.secho(f"{finding.level}: [{finding.code}] {finding.message}", fg=colour)
    click.echo("\nDNS records for deliverability:")
    for line in records.dns_records(settings.dkim, settings.sender.domain):
        click.echo(f"  {line}")
    levels = [f.level for f in findings]
    if check_dns and settings.dkim is not None:
        levels += _published_keys(settings.dkim)
    problems, warnings = levels.count(ERROR), len(levels) - levels.count(ERROR)
    if problems:
        raise NewsletterError(f"{problems} error(s): fix them before sending")
    click.echo(f"\nNo errors ({warnings} warning(s)).")


def _print_summary(edition: Edition, reach: audience.Reach | None) -> None:
    click.echo(f"Edition {edition.id}: {edition.subject}")
    clip = HTML_CLIP_BYTES // 1000
    click.echo(f"  HTML {edition.html_size / 1000:.1f} KB (Gmail clips at {clip} KB)")
    if reach is not None:
        scan = reach.scan
        held = f", {reach.members} more held by the tool" if reach.members else ""
        click.echo(
            f"  subscribers: {reach.mailed} to mail in {shown(scan.path)}{held} "
            f"({scan.skipped_status} not active, {scan.invalid} invalid, {scan.duplicates} "
            f"duplicate row(s), {reach.suppressed} suppressed)"
        )


def _published_keys(dkim: DkimSettings) -> list[str]:
    """Compare each DKIM key with the record DNS publishes; print and return the levels."""
    levels = []
    for found in records.published(dkim, records.lookup_txt):
        if found.level == "ok":
            click.echo(f"  ; DKIM: {found.message}")
            continue
        colour = "red" if found.level == ERROR else "yellow"
        click.secho(f"{found.level}: [dkim-dns] {found.message}", fg=colour)
        levels.append(found.level)
    return levels


@click.command()
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
    """Read every source; per source: items, sections, regions, warnings (exit 1: one failed)."""
    settings = settings_from(config_path)
    specs = sources or settings.paths.sources
    if not specs:
        raise NewsletterError("no sources: add [content] sources to the config or use --source")
    collection = collect(specs, settings, strict=strict, now=clock.now_utc())
    reports = [r.summary() for r in collection.reports]
    if as_json:
        data = {
            "sources": reports,
            "articles": len(collection.articles),
            "warnings": list(collection.warnings),
        }
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for report in reports:
            _print_source(report)
        click.echo(f"{len(collection.articles)} article(s) after merging and removing duplicates.")
        for message in collection.warnings_besides_failures():
            if not any(message in r["warnings"] for r in reports):
                warn(message)
    if collection.failed:
        raise ContentError(describe_failures(collection.failed, len(specs)))


def _print_source(report: dict[str, Any]) -> None:
    click.secho(f"{report['spec']}  [{report['kind']}]", bold=True)
    if report["error"]:
        click.secho(f"  failed: {report['error']}", fg="red")
    else:
        click.echo(f"  {report['items']} item(s)")
        click.echo("  sections: " + _counts(report["sections"]))
        click.echo("  regions:  " + _counts(report["regions"]))
    for message in report["warnings"]:
        click.secho(f"  warning: {message}", fg="yellow")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


@click.command()
@config_option
@build_options
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Port (default 8025, else a free one; 0: any free port).",
)
@click.option("--host", metavar="HOST", help="Listen on HOST instead of 127.0.0.1 (warns).")
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in a browser.")
@click.option("--subscriber", metavar="ADDRESS", help="Show this subscriber's message first.")
def preview(
    config_path: Path | None,
    port: int | None,
    host: str | None,
    open_browser: bool,
    subscriber: str | None,
    **flags: Any,
) -> None:
    """Serve a live-reloading preview of the edition on 127.0.0.1; never sends mail."""
    options = pv.PreviewOptions(
        config=config_file(config_path), build=options_from(flags), subscriber=subscriber or ""
    )
    pv.serve(options, host=host, port=port, open_browser=open_browser, echo=click.echo, warn=warn)
