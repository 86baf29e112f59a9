"""A build's output folder: edition.html, .txt and .json, and which files a build owns there.

``newsletter build`` records the names of the files it writes in ``MANIFEST`` before
writing them (``owned_files``): the next build replaces those freely; a file of the
same name that no build recorded is someone else's and is replaced only when forced.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from newsletter.config.settings import Settings
from newsletter.messages import EXAMPLE_READER, MessageFactory
from newsletter.owned_files import Ownership
from newsletter.pipeline import BuildResult

MANIFEST = ".newsletter-build.json"
WRITER = "newsletter build"
BUILD = Ownership(MANIFEST, WRITER, "use --force to replace {it} or choose another --out")
EDITION_FILES = ("edition.html", "edition.txt", "edition.json")  # what write_build writes


def write_build(settings: Settings, result: BuildResult, out_dir: Path) -> list[Path]:
    """Write edition.html, edition.txt and edition.json into ``out_dir`` (``claim`` it first).

    The HTML and text are as an example reader without a name would get them.
    """
    edition = result.edition
    out_dir.mkdir(parents=True, exist_ok=True)
    html, text = MessageFactory(edition, settings).parts(EXAMPLE_READER)  # as a reader sees it
    info = json.dumps(edition_info(result), ensure_ascii=False, indent=2) + "\n"
    paths = [out_dir / name for name in EDITION_FILES]
    for path, content in zip(paths, (html, text, info), strict=True):
        path.write_text(content, encoding="utf-8", newline="")
    return paths


def edition_info(result: BuildResult) -> dict[str, Any]:
    """The edition's metadata: id, subject, preheader, sizes, warnings and selection."""
    edition = result.edition
    return {
        "id": edition.id,
        "subject": edition.subject,
        "preheader": edition.preheader,
        "created": edition.created.isoformat(),
        "html_bytes": edition.html_size,
        "text_bytes": len(edition.text.encode("utf-8")),
        "warnings": list(edition.warnings),
        "selection": result.selection,
    }


def claim(folder: Path, names: Sequence[str], *, force: bool = False) -> None:
    """Record ``names`` in ``folder`` as the build's to write; refuse files that are not its own.

    Raise ``OutputExistsError`` naming every such file, unless ``force``.
    """
    BUILD.claim(folder, names, force=force)


def foreign_files(folder: Path, names: Sequence[str]) -> list[str]:
    """The names (the manifest among them) that exist in ``folder`` but no build recorded."""
    return BUILD.foreign(folder, names)


def owned_files(folder: Path) -> set[str] | None:
    """The names a build recorded in ``folder``: none without a manifest; None if not ours."""
    return BUILD.owned(folder)
