"""One cell of the subscriber list as safe text: one line, capped, quoted in messages."""

from __future__ import annotations

import unicodedata

MAX_NAME = 100
MAX_FIELD = 1000

_KEPT_FORMAT_CHARS = frozenset("\u200c\u200d")  # ZWNJ and ZWJ: part of some scripts and emoji


def clean_cell(text: str, limit: int) -> tuple[str, bool]:
    """Make ``text`` one safe line: no control or invisible characters, spaces folded, capped.

    Returns the text and whether it was cut to ``limit`` characters.
    """
    if text.isascii() and text.isprintable():
        if text == text.strip() and "  " not in text and len(text) <= limit:
            return text, False
    elif not text.isprintable():
        text = "".join(_safe_char(ch) for ch in text)
    text = " ".join(unicodedata.normalize("NFC", text).split())
    if len(text) <= limit:
        return text, False
    return text[:limit].rstrip(), True


def _safe_char(ch: str) -> str:
    """Map a control or line-break character to a space and a format character to nothing."""
    category = unicodedata.category(ch)
    if category in ("Cc", "Zl", "Zp"):
        return " "
    if category in ("Cf", "Cs") and ch not in _KEPT_FORMAT_CHARS:
        return ""
    return ch


def quote_value(text: str) -> str:
    """Quote a value from the file for a message, escaped and shortened."""
    return repr(text if len(text) <= 80 else text[:79] + "…")
