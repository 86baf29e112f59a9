"""Helpers every reader shares: warnings, URLs, dates, titles and images."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from newsletter.errors import ContentError
from newsletter.models import Image
from newsletter.sanitize import absolute_url, paragraphs_text, plain_text

MAX_TITLE = 300
MAX_LINE = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_SPACE = re.compile(r"\s+")


@dataclass
class Notes:
    """Warnings of one source, each prefixed with the source's name.

    ``skip`` is for problems that drop an item: in strict mode they raise instead.
    ``dropped`` counts the items dropped.
    """

    source: str
    strict: bool = False
    warnings: list[str] = field(default_factory=list)
    dropped: int = 0

    def warn(self, text: str) -> None:
        """Record a warning about this source."""
        self.warnings.append(f"{self.source}: {text}")

    def skip(self, text: str) -> None:
        """Record a dropped item; raise ``ContentError`` in strict mode."""
        if self.strict:
            raise ContentError(f"{self.source}: {text} (strict mode stops here)")
        self.dropped += 1
        self.warn(text)


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """Fold whitespace, drop control characters and cut ``text`` to ``limit`` characters."""
    text = _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    if len(text) > limit:
        cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
        text = cut.rstrip(" ,.;:") + "…"
    return text


def title_text(value: str, *, is_html: bool = True) -> str:
    """Turn a title (markup or plain text) into one clean line."""
    return one_line(plain_text(value) if is_html else html.unescape(value), MAX_TITLE)


def title_from_summary(summary: str, limit: int = 90) -> str:
    """Make a stand-in title from the first paragraph of a sanitized summary."""
    first = next((line for line in paragraphs_text(summary).splitlines() if line.strip()), "")
    return one_line(first, limit)


def http_url(value: object, base: str | None = None) -> str | None:
    """Return ``value`` as an absolute http(s) URL resolved against ``base``, else ``None``."""
    if not isinstance(value, str):
        return None
    return absolute_url(value, base)


def as_utc(moment: datetime, naive_zone: tzinfo) -> datetime:
    """Make ``moment`` timezone-aware (naive ones are taken in ``naive_zone``) and UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=naive_zone)
    return moment.astimezone(UTC)


def parse_iso(value: str, naive_zone: tzinfo) -> datetime:
    """Parse an ISO 8601 / RFC 3339 timestamp into a UTC datetime; raise ``ValueError``."""
    text = value.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    return as_utc(datetime.fromisoformat(text), naive_zone)


def positive_int(value: object) -> int | None:
    """Read a positive whole number (also from a numeric string), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 < value < 100_000:
        return value
    return None


def make_image(
    url: str | None,
    title: str,
    *,
    alt: str = "",
    caption: str = "",
    credit: str = "",
    width: object = None,
    height: object = None,
) -> Image | None:
    """Build an ``Image`` from an absolute URL; missing alt text falls back to the title."""
    if not url:
        return None
    return Image(
        url=url,
        alt=one_line(plain_text(alt)) or title,
        caption=one_line(plain_text(caption), 500),
        credit=one_line(plain_text(credit)),
        width=positive_int(width),
        height=positive_int(height),
    )


def has_link(title: str, link: str | None, where: str, notes: Notes) -> bool:
    """Tell whether a feed item can be used: it needs an http(s) link (skip it otherwise)."""
    if not title and not link:
        notes.skip(f"{where} has neither a title nor a link; skipped")
        return False
    if not link:
        notes.skip(f"{where} ({title!r}) has no http(s) link; skipped")
        return False
    return True


def title_or_fallback(title: str, summary: str, link: str, where: str, notes: Notes) -> str:
    """The item's title, or one made from its summary (or link), with a warning."""
    if title:
        return title
    made = title_from_summary(summary) or one_line(link, 90)
    notes.warn(f"{where} has no title; used {made!r}")
    return made
