"""``newsletter archive export DIR``: the archive of sent editions as static files."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.archive.export import export_archive
from newsletter.cli.options import config_option, settings_from, shown


@click.group("archive")
def archive_group() -> None:
    """The public archive of the editions that went out (also served by 'serve')."""


@archive_group.command("export")
@config_option
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
def archive_export(config_path: Path | None, folder: Path) -> None:
    """Write index.html, feed.xml and one page per edition into DIR, for any web host."""
    settings = settings_from(config_path)
    done = export_archive(settings, folder)
    gone = f", removed {len(done.removed)} old file(s)" if done.removed else ""
    click.echo(
        f"exported {done.editions} edition(s) to {shown(folder)}: {len(done.written)} file(s){gone}"
    )
    click.echo(
        f"host it at {settings.web.archive_url} ([web] public_url), where each email's "
        "'View this email in your browser' link points"
    )
