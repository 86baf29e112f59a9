"""Helpers every reader shares: warnings, URLs, dates, titles and images."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime

from newsletter.errors import ContentError
from newsletter.models import Image
from newsletter.sanitize import absolute_url, paragraphs_text, plain_text, url_mistake, url_refusal

MAX_TITLE = 300
MAX_LINE = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_SPACE = re.compile(r"\s+")
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(
    r"""\b(src|width|height|alt)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE
)


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


TIME_FORMS = (
    "ISO 8601 like 2026-03-04T17:21:00+05:30 or RFC 822 like Wed, 04 Mar 2026 17:21:00 +0530"
)


def parse_time(value: str, naive_zone: tzinfo) -> datetime:
    """Parse an ISO 8601 / RFC 3339 or an RFC 822 / 5322 time into UTC; raise ``ValueError``.

    RFC 822 is the form of RSS and of email, so content exported from either often
    carries it; feedparser reads it in feeds, and this reads it in JSON.
    """
    text = value.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    try:
        return as_utc(datetime.fromisoformat(text), naive_zone)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError) as err:
        raise ValueError(f"not a time: {value!r}") from err
    return as_utc(moment, naive_zone)


def warn_undated(notes: Notes, where: str, title: str, unreadable: list[str]) -> None:
    """Warn that an item has no usable date, naming it and any value that could not be read."""
    seen = f" (unreadable: {', '.join(map(repr, unreadable))})" if unreadable else ""
    notes.warn(
        f"{where} has no date{seen}; {one_line(title, 80)!r} is kept but ranked as the oldest"
        " (never the scored lead); give it a time in " + TIME_FORMS
    )


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


def img_tags(text: str) -> Iterator[dict[str, str]]:
    """Yield the src, width, height and alt of each ``<img>`` in a piece of HTML, unescaped."""
    for tag in _IMG_TAG.findall(text):
        yield {
            m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
            for m in _ATTR.finditer(tag)
        }


def content_alts(texts: Iterable[object], base: str | None) -> dict[str, str]:
    """Map each picture in the HTML ``texts`` (by absolute URL) to its own alt text."""
    found: dict[str, str] = {}
    for text in texts:
        if not isinstance(text, str):
            continue
        for attrs in img_tags(text):
            url = absolute_url(attrs.get("src", ""), base)
            alt = one_line(attrs.get("alt", ""))
            if url and alt:
                found.setdefault(url, alt)
    return found


def mistaken(value: object) -> str:
    """Say what is wrong with a URL written wrongly (``sanitize.url_mistake``), else ``""``."""
    if isinstance(value, str) and url_mistake(value):
        return url_refusal(value)
    return ""


def has_link(title: str, link: str | None, where: str, notes: Notes, raw: object = None) -> bool:
    """Tell whether a feed item can be used: it needs an http(s) link (skip it otherwise).

    ``raw`` is the link as the feed gave it: when it was refused as written wrongly, the
    warning says how.
    """
    if not title and not link and not mistaken(raw):
        notes.skip(f"{where} has neither a title nor a link; skipped")
        return False
    if not link:
        named = f"{where} ({title!r})" if title else where
        problem = mistaken(raw)
        if problem:
            notes.skip(f"{named}: the link {problem}; skipped")
        else:
            notes.skip(f"{named} has no http(s) link; skipped")
        return False
    return True


def report_mistakes(notes: Notes, where: str, what: str, mistakes: list[str], then: str) -> None:
    """Warn once about each URL written wrongly in ``what`` of the item at ``where``."""
    for problem in dict.fromkeys(mistakes):
        notes.warn(f"{where}: {what} {problem}; {then}")


def title_or_fallback(title: str, summary: str, link: str, where: str, notes: Notes) -> str:
    """The item's title, or one made from its summary (or link), with a warning."""
    if title:
        return title
    made = title_from_summary(summary) or one_line(link, 90)
    notes.warn(f"{where} has no title; used {made!r}")
    return made
