"""Lay out the plain-text part: wrap, join or underline lines to the text width."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

TEXT_WIDTH = 72


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """Wrap each line of ``text`` at ``width``; long words (URLs) stay whole; blank lines stay."""
    out: list[str] = []
    for number, line in enumerate(str(text).split("\n")):
        lead = indent if first is None or number else first
        if not line.strip():
            out.append("")
            continue
        out.extend(
            textwrap.wrap(
                line,
                width=width,
                initial_indent=lead,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(out)


def join_fit(parts: Sequence[str], separator: str, width: int = TEXT_WIDTH) -> str:
    """Join ``parts`` on one line if it fits in ``width``, else one part per line."""
    joined = separator.join(parts)
    return joined if len(joined) <= width else "\n".join(parts)


def underline(text: str, char: str = "-") -> str:
    """Return a rule as long as ``text`` (capped at the text width)."""
    return char * min(len(text), TEXT_WIDTH)
