"""Write the archive as static files for any web host: the same bytes the service serves.

``index.html``, ``feed.xml`` and ``<edition id>/index.html``. The export keeps its own
manifest (``owned_files``), so running it again replaces its own files, removes the
pages it wrote that are no longer in the archive, and leaves everything else alone. A
folder that holds other files but no export is refused: nothing of someone else's is
overwritten. Each file is written whole, then moved into place, so a host serving the
folder never sends half a page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from newsletter.archive.feed import FEED_NAME
from newsletter.archive.published import editions_out, is_edition_id
from newsletter.archive.site import INDEX_NAME, ArchiveSite
from newsletter.config.settings import Settings
from newsletter.errors import NewsletterError
from newsletter.owned_files import Ownership

EXPORT = Ownership(
    ".newsletter-archive.json",
    "newsletter archive export",
    "move {it} away or choose another folder",
)


@dataclass(frozen=True)
class Exported:
    """What an export did: where, how many editions, which files it wrote and removed."""

    folder: Path
    editions: int
    written: tuple[str, ...]
    removed: tuple[str, ...]


def export_archive(settings: Settings, folder: Path) -> Exported:
    """Write the archive into ``folder`` (new, empty, or an earlier export)."""
    _check_folder(folder)
    site = ArchiveSite(settings)
    entries = editions_out(settings)
    names = site.paths(entries)
    before = EXPORT.owned(folder) or set()
    EXPORT.claim(folder, sorted(before | set(names)))  # a run cut short still owns both
    written = []
    for name, body in site.documents(entries):
        _write(folder, name, body)
        written.append(name)
    stale = sorted(name for name in before - set(written) if _of_an_export(name))
    for name in stale:
        _remove(folder, name)
    EXPORT.record(folder, written)
    return Exported(folder, len(entries), tuple(written), tuple(stale))


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise NewsletterError(f"{folder} is a file; give a folder to export the archive into")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not (folder / EXPORT.manifest).is_file() or EXPORT.owned(folder) is None:
        raise NewsletterError(
            f"{folder} is not empty and holds no archive export (no {EXPORT.manifest} "
            f"written by '{EXPORT.writer}'); choose a new or empty folder"
        )


def _of_an_export(name: str) -> bool:
    """Whether ``name`` is a path an export writes (a manifest may have been edited)."""
    folder, _, file = name.rpartition("/")
    if file not in (INDEX_NAME, FEED_NAME):
        return False
    return folder == "" or (is_edition_id(folder) and file == INDEX_NAME)


def _write(folder: Path, name: str, body: bytes) -> None:
    target = folder / name
    partial = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(body)
        os.replace(partial, target)
    except OSError as err:
        raise NewsletterError(f"{target}: cannot write it ({err.strerror})") from err


def _remove(folder: Path, name: str) -> None:
    target = folder / name
    try:
        target.unlink(missing_ok=True)
        if target.parent != folder and target.parent.is_dir() and not any(target.parent.iterdir()):
            target.parent.rmdir()
    except OSError as err:
        raise NewsletterError(f"{target}: cannot remove it ({err.strerror})") from err
