"""Where a list export goes (a new file, or standard output) and how its rows are written."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from newsletter.errors import NewsletterError, OutputExistsError

STDOUT = Path("-")


@contextmanager
def export_target(path: Path, *, force: bool = False) -> Iterator[TextIO]:
    """Open ``path`` for a CSV export (``-``: standard output); never overwrite silently."""
    if path == STDOUT:
        yield sys.stdout
        return
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; choose another file or add --force to replace it")
    try:
        with path.open("w", encoding="utf-8", newline="") as out:
            yield out
    except OSError as err:
        raise NewsletterError(f"{path}: cannot write the export ({err.strerror})") from err


def write_rows(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    """Write ``header`` and ``rows`` as CSV (the subscriber list's dialect); count the rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    written = 0
    for row in rows:
        writer.writerow(row)
        written += 1
    return written
