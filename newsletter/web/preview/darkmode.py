"""Show an email as a client in dark mode would: its dark rules applied unconditionally."""

from __future__ import annotations

import re

_DARK_MEDIA = re.compile(r"@media[^{};]*\(\s*prefers-color-scheme\s*:\s*dark\s*\)[^{};]*\{", re.I)
_SCHEME_META = re.compile(
    r"(<meta\b[^>]*\bname=\"(?:supported-)?color-schemes?\"[^>]*\bcontent=\")[^\"]*(\")", re.I
)


def force_dark(document: str) -> str:
    """Apply the email's dark-mode rules unconditionally, as a client in dark mode would.

    Each ``@media (prefers-color-scheme: dark) { … }`` block is unwrapped and the
    ``color-scheme`` meta tags say ``dark``; nothing else changes.
    """
    out: list[str] = []
    pos = 0
    while True:
        found = _DARK_MEDIA.search(document, pos)
        if found is None:
            break
        end = _block_end(document, found.end())
        if end is None:
            break
        out += [document[pos : found.start()], document[found.end() : end]]
        pos = end + 1
    out.append(document[pos:])
    return _SCHEME_META.sub(r"\1dark\2", "".join(out))


def _block_end(text: str, start: int) -> int | None:
    """Index of the ``}`` closing a block opened just before ``start``; ``None`` if absent."""
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        elif char == "<":
            return None
    return None
