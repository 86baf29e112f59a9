"""Why the preview has nothing (or not everything) to show, and the file and line to fix.

A message names a file the preview watches (``path:line``, or a path and ``at line N``);
only such files are read, for the lines around the one named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SNIPPET_CONTEXT = 3
MAX_SNIPPET_BYTES = 2_000_000
MAX_SNIPPET_CHARS = 300

_PATH_LINE = re.compile(r"(?P<path>(?:[A-Za-z]:)?[\\/][^\s:'\"]+?):(?P<line>\d+)(?!\d)")
_AT_LINE = re.compile(r"\bat line (?P<line>\d+)(?!\d| of the rendered)")


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file, a line (0: unknown) and the lines around it."""

    path: Path
    line: int
    snippet: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Problem:
    """Why there is nothing (or not everything) to show, and where to fix it."""

    title: str
    message: str
    kind: str
    location: Location | None = None


def problem(
    title: str, message: str, kind: str, candidates: Iterable[Path] = (), clues: str = ""
) -> Problem:
    """Make a ``Problem``, locating the file and line the message (or ``clues``) names."""
    known = list(candidates)
    return Problem(title, message, kind, locate(message, known) or locate(clues, known))


def locate(message: str, candidates: Iterable[Path]) -> Location | None:
    """Find the first known file a message names: ``path:line``, or a path and ``at line N``."""
    known = {str(path): path for path in candidates}
    for found in _PATH_LINE.finditer(message):
        path = known.get(found.group("path"))
        if path is not None:
            return _location(path, int(found.group("line")))
    for text in sorted(known, key=len, reverse=True):
        at = message.find(text)
        if at < 0:
            continue
        line = _AT_LINE.search(message, at + len(text))
        return _location(known[text], int(line.group("line")) if line else 0)
    return None


def _location(path: Path, line: int) -> Location:
    """Read the lines around ``line`` of a watched file (nothing if unreadable or huge)."""
    if line <= 0:
        return Location(path, 0)
    try:
        if path.stat().st_size > MAX_SNIPPET_BYTES:
            return Location(path, line)
        lines = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return Location(path, line)
    first = max(1, line - SNIPPET_CONTEXT)
    last = min(len(lines), line + SNIPPET_CONTEXT)
    snippet = tuple((n, lines[n - 1][:MAX_SNIPPET_CHARS]) for n in range(first, last + 1))
    return Location(path, line, snippet)
