"""Write a built edition to a folder: edition.html, edition.txt and edition.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from newsletter.config.settings import Settings
from newsletter.errors import OutputExistsError
from newsletter.messages import EXAMPLE_READER, MessageFactory
from newsletter.pipeline import BuildResult


def write_build(
    settings: Settings, result: BuildResult, out_dir: Path, *, force: bool = False
) -> list[Path]:
    """Write edition.html, edition.txt and edition.json into ``out_dir``.

    The HTML and text are as an example reader without a name would get them.
    """
    edition = result.edition
    out_dir.mkdir(parents=True, exist_ok=True)
    html, text = MessageFactory(edition, settings).parts(EXAMPLE_READER)  # as a reader sees it
    targets = {
        "edition.html": html,
        "edition.txt": text,
        "edition.json": json.dumps(edition_info(result), ensure_ascii=False, indent=2) + "\n",
    }
    paths = [out_dir / name for name in targets]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise OutputExistsError(
            f"{existing[0]} already exists; use --force to replace it or choose another --out"
        )
    for path, content in zip(paths, targets.values(), strict=True):
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
