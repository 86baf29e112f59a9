"""Notice edits to a set of files and folders by polling their times and sizes.

Nothing here knows what the files are: ``snapshots.watch_for`` says which ones a build
depends on, and ``live.PreviewApp`` polls the signature and rebuilds when it changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

MAX_WATCHED = 2000

Signature = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Watch:
    """The files a snapshot depends on, and folders whose every file counts."""

    files: tuple[Path, ...] = ()
    folders: tuple[Path, ...] = ()

    def paths(self) -> list[Path]:
        """Every watched file that exists now, folders expanded (bounded)."""
        found = list(self.files)
        for folder in self.folders:
            found.extend(islice(files_under(folder), MAX_WATCHED))
        return found[:MAX_WATCHED]

    def signature(self) -> Signature:
        """What changes when a watched file is edited, added or removed."""
        marks: list[tuple[str, int, int]] = []
        for path in self.paths():
            try:
                stat = path.stat()
            except OSError:
                marks.append((str(path), -1, -1))
                continue
            marks.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(marks)


def files_under(folder: Path) -> Iterator[Path]:
    """The files under ``folder``, sorted, leaving out hidden ones (nothing if unreadable)."""
    try:
        entries = sorted(folder.rglob("*"))
    except OSError:
        return
    for entry in entries:
        if entry.is_file() and not entry.name.startswith("."):
            yield entry
