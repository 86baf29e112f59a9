"""Which files a writer owns in a folder: a manifest of the names it wrote there.

A writer (``newsletter build``, ``newsletter archive export``) records the names of the
files it is about to write in its own manifest file before writing them, so a run cut
short still owns what it left. The next run replaces those freely; a file of the same
name that no run recorded is someone else's and is replaced only when forced. Names are
paths relative to the folder, with "/" between folders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from newsletter.errors import NewsletterError, OutputExistsError


@dataclass(frozen=True)
class Ownership:
    """One writer's manifest: its file name, the writer's name, what to do about others' files.

    ``remedy`` is said after the names of files it would not replace; ``{it}`` in it
    stands for "it" or "them".
    """

    manifest: str
    writer: str
    remedy: str

    def claim(self, folder: Path, names: Sequence[str], *, force: bool = False) -> None:
        """Record ``names`` in ``folder`` as the writer's to write; refuse files not its own.

        Raise ``OutputExistsError`` naming every such file, unless ``force``.
        """
        foreign = self.foreign(folder, names)
        if foreign and not force:
            if len(foreign) == 1:
                raise OutputExistsError(
                    f"{folder / foreign[0]} already exists and was not written by "
                    f"'{self.writer}'; {self.remedy.format(it='it')}"
                )
            raise OutputExistsError(
                f"{folder}: {', '.join(foreign)} already exist and were not written by "
                f"'{self.writer}'; {self.remedy.format(it='them')}"
            )
        self.record(folder, names)

    def record(self, folder: Path, names: Iterable[str]) -> None:
        """Write the manifest: the writer owns ``names`` in ``folder`` (and nothing else)."""
        record = {"written_by": self.writer, "files": sorted(set(names))}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / self.manifest).write_text(
                json.dumps(record, indent=2) + "\n", encoding="utf-8"
            )
        except OSError as err:
            raise NewsletterError(f"{folder}: cannot write there ({err.strerror})") from err

    def foreign(self, folder: Path, names: Sequence[str]) -> list[str]:
        """The names (the manifest among them) that exist in ``folder`` but no run recorded."""
        owned = self.owned(folder)
        mine = {self.manifest, *owned} if owned is not None else set()
        return [
            name
            for name in (*names, self.manifest)
            if (folder / name).exists() and name not in mine
        ]

    def owned(self, folder: Path) -> set[str] | None:
        """The names a run recorded in ``folder``: none without a manifest; None if not ours."""
        try:
            text = (folder / self.manifest).read_text(encoding="utf-8")
        except FileNotFoundError:
            return set()
        except (OSError, UnicodeDecodeError):
            return None
        try:
            record = json.loads(text)
        except ValueError:
            return None
        if not isinstance(record, dict) or record.get("written_by") != self.writer:
            return None
        files = record.get("files")
        if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
            return None
        return set(files)
