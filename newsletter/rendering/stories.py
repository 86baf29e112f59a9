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


def _section_label(section: str) -> str:
    section = one_line(section)
    return section[:1].upper() + section[1:]


def _picture(image: Image | None, fallback_alt: str, width: int) -> Picture | None:
    """Size an image for a slot ``width`` pixels wide; alt text falls back to the headline."""
    if image is None or not image.url:
        return None
    shown = min(image.width, width) if image.width else width
    height = None
    if image.width and image.height:
        height = max(1, round(image.height * shown / image.width))
    return Picture(
        src=image.url,
        alt=one_line(image.alt) or one_line(fallback_alt),
        width=shown,
        height=height,
        caption=one_line(image.caption),
        credit=one_line(image.credit),
    )


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
        thumb=_picture(article.image, article.title, THUMB_WIDTH) if thumb else None,
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
