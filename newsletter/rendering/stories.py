"""Prepare articles for the templates, and the subject, preheader and headings derived from them."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from urllib.parse import urlencode, urlsplit, urlunsplit

from newsletter.config.settings import Settings
from newsletter.errors import ConfigError
from newsletter.models import Article, Image
from newsletter.rendering.dates import stamp
from newsletter.rendering.excerpt import cut_summary
from newsletter.sanitize import clean_html, paragraphs_text

SUBJECT_MAX = 120
PREHEADER_MIN = 100
PREHEADER_MAX = 130
PREHEADER_PAD = 60
CONTENT_WIDTH = 600
THUMB_WIDTH = 88
THUMB_WIDTH_PHONE = 72  # mobile.css narrows thumbnails to this on phones
THUMB_ALT_PX = 11  # size of the alt text shown in a thumbnail's place when images are blocked
THUMB_ALT_LINE_PX = 14
THUMB_ALT_LINES = 2  # when the picture's height is unknown
LETTER_EM = 0.65  # a generous average advance of a sans-serif letter, in ems
ALT_ICON_PX = 20  # the broken-image icon some clients show ahead of the alt text

_SPACE = re.compile(r"\s+")
_BLOCK_END = re.compile(r"(?i)</(p|ul|ol|blockquote)\s*>")  # a blank line after each block


@dataclass(frozen=True)
class Picture:
    """An image as the templates place it."""

    src: str
    alt: str
    width: int
    height: int | None
    caption: str = ""
    credit: str = ""


@dataclass(frozen=True)
class Story:
    """An article prepared for the templates: links tagged, times local, text plain."""

    title: str
    url: str
    label: str
    kicker: str
    regions: str
    author: str
    byline_parts: tuple[str, ...]
    summary_html: str
    summary_text: str
    picture: Picture | None
    thumb: Picture | None


def tag_url(url: str, utm: Sequence[tuple[str, str]]) -> str:
    """Append UTM parameters the URL does not already carry; keep its fragment last."""
    if not utm:
        return url
    parts = urlsplit(url)
    present = {pair.split("=", 1)[0] for pair in parts.query.split("&") if pair}
    extra = urlencode([(k, v) for k, v in utm if k not in present])
    if not extra:
        return url
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def one_line(text: str) -> str:
    """Fold all whitespace (newlines included) into single spaces."""
    return _SPACE.sub(" ", text).strip()


def shorten(text: str, limit: int, floor: int = 0) -> str:
    """Cut ``text`` to at most ``limit`` characters at a word boundary, ending with an ellipsis."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= max(floor, limit // 2):
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


def fit_box(text: str, width: int, height: int, font_px: int, line_px: int) -> str:
    """Cut ``text`` at a word boundary to what fits a box, never breaking a word across lines.

    A blocked image shows its alt text inside the image's box (after an icon, in some
    clients): a narrow box wraps a long word mid-way and cuts the last lines, so keep
    only the whole words that fit, and end with an ellipsis when something is left out.
    """
    letter = font_px * LETTER_EM
    first, other = (max(1, int((width - icon) / letter)) for icon in (ALT_ICON_PX, 0))
    lines = max(1, height // line_px)
    rows: list[str] = []
    for word in one_line(text).split(" "):
        if rows and len(rows[-1]) + 1 + len(word) <= (first if len(rows) == 1 else other):
            rows[-1] += " " + word
        elif len(rows) < lines and len(word) <= (other if rows else first):
            rows.append(word)
        else:
            return _ellipsis(rows, word, first if len(rows) <= 1 else other)
    return " ".join(rows)


def _ellipsis(rows: list[str], word: str, room: int) -> str:
    """End the fitted rows with an ellipsis in the last row's ``room``; a long first word is cut."""
    if not rows:
        return word[: room - 1] + "…"
    last = rows[-1]
    while len(last) + 1 > room and " " in last:
        last = last.rsplit(" ", 1)[0]
    rows[-1] = last[: room - 1].rstrip(" ,;:.-–—")
    return " ".join(r for r in rows if r) + "…"


def _section_label(section: str) -> str:
    section = one_line(section)
    return section[:1].upper() + section[1:]


def _picture(
    image: Image | None, fallback_alt: str, width: int, *, thumb: bool = False
) -> Picture | None:
    """Size an image for a slot ``width`` pixels wide; alt text falls back to the headline."""
    if image is None or not image.url:
        return None
    shown = min(image.width, width) if image.width else width
    height = None
    if image.width and image.height:
        height = max(1, round(image.height * shown / image.width))
    alt = one_line(image.alt) or one_line(fallback_alt)
    if thumb:
        alt = _thumb_alt(alt, shown, height)
    return Picture(
        src=image.url,
        alt=alt,
        width=shown,
        height=height,
        caption=one_line(image.caption),
        credit=one_line(image.credit),
    )


def _thumb_alt(alt: str, shown: int, height: int | None) -> str:
    """Fit a thumbnail's alt text to its box at the narrowest, phone width."""
    lines = THUMB_ALT_LINES
    if height is not None:
        lines = max(1, round(height * THUMB_WIDTH_PHONE / shown) // THUMB_ALT_LINE_PX)
    box_height = lines * THUMB_ALT_LINE_PX
    return fit_box(alt, THUMB_WIDTH_PHONE, box_height, THUMB_ALT_PX, THUMB_ALT_LINE_PX)


def _byline(article: Article, zone: tzinfo) -> tuple[str, ...]:
    """Return the parts of ``Author | Updated: … | Created: …``, leaving out what is unknown."""
    parts = [one_line(article.author)] if article.author.strip() else []
    created = stamp(article.published, zone) if article.published else ""
    updated = stamp(article.updated, zone) if article.updated else ""
    if updated and updated != created:
        parts.append(f"Updated: {updated}")
    if created:
        parts.append(f"Created: {created}")
    elif updated:
        parts.append(f"Updated: {updated}")
    return tuple(parts)


def story(article: Article, settings: Settings, *, thumb: bool = False) -> Story:
    """Prepare one article for the templates."""
    summary = cut_summary(clean_html(article.summary), settings.email.summary_max_chars)
    regions = " · ".join(one_line(r) for r in article.regions[:2] if r.strip())
    label = _section_label(article.section)
    return Story(
        title=one_line(article.title),
        url=tag_url(article.url, settings.email.utm),
        label=label,
        kicker=regions or label,
        regions=regions,
        author=one_line(article.author),
        byline_parts=_byline(article, settings.publication.timezone),
        summary_html=summary,
        summary_text=paragraphs_text(_BLOCK_END.sub(r"\g<0><br>", summary)),
        picture=None if thumb else _picture(article.image, article.title, CONTENT_WIDTH),
        thumb=_picture(article.image, article.title, THUMB_WIDTH, thumb=True) if thumb else None,
    )


def opinion_heading(stories: Sequence[Story], order: Sequence[str]) -> str:
    """Name the opinion block after the sections in it, e.g. ``Opinion / Blog / Interview``."""
    rank = {_section_label(name).casefold(): i for i, name in enumerate(order)}
    labels = sorted({s.label for s in stories}, key=lambda x: (rank.get(x.casefold(), 99), x))
    return " / ".join(labels)


def preheader_text(settings: Settings, lead: Story, trending: Sequence[Story]) -> str:
    """Return the inbox preview line: configured, else the lead's summary, else the headlines."""
    if settings.email.preheader:
        return shorten(settings.email.preheader, PREHEADER_MAX, PREHEADER_MIN)
    source = one_line(lead.summary_text)
    if not source and trending:
        source = "Also today: " + " · ".join(s.title for s in trending)
    return shorten(source or lead.title, PREHEADER_MAX, PREHEADER_MIN)


def subject_text(settings: Settings, lead: Story, date: str) -> str:
    """Return the subject line: the configured pattern, else the lead's headline."""
    pattern = settings.email.subject
    if not pattern:
        return shorten(lead.title, SUBJECT_MAX)
    values = {"lead": lead.title, "date": date, "publication": settings.publication.name}
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as err:
        raise ConfigError(
            f"email.subject: {err}; write placeholders like {{lead}} and a literal brace as {{{{",
            settings.paths.config_file,
        ) from err
    for name in fields:
        if name not in values:
            raise ConfigError(
                f"email.subject: unknown placeholder {{{name}}}; use {{lead}}, {{date}} "
                "or {publication}",
                settings.paths.config_file,
            )
    return shorten(pattern.format_map(values), SUBJECT_MAX)
