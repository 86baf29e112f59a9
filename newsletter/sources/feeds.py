"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 through feedparser → ``Article``s.

feedparser only ever gets the bytes (as a stream, never a URL or path), after
``sniff.check_entities`` has refused external and nested entity declarations, so
parsing reads no file and opens no connection.

Normalization: ids are the guid (prefixed with the feed's address when the guid
is not globally unique on its own, like ``42``), else the canonical link; times
are UTC; undated items are kept (``published=None``) with a warning; summaries
prefer the longer of content and description and are sanitized; images come from
``media:content``, ``media:thumbnail``, image enclosures, or the first picture in
the content. A picture's alt text is the feed's own description of it (its
``media:description`` or ``media:title``, the enclosure's ``alt`` or ``title``, the
same picture's ``alt`` in the content, then its media group's or item's description),
else the headline. Items with neither title nor link are skipped with a warning; an
item without a link is skipped too (an email item must link somewhere); an item
without a title gets one from the start of its text.
"""

from __future__ import annotations

import calendar
import html
import io
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.sax import SAXParseException

import feedparser

from newsletter.errors import ContentError
from newsletter.models import Article, Image
from newsletter.sanitize import canonical_url, clean_html, plain_text

from .common import (
    Notes,
    content_alts,
    has_link,
    http_url,
    img_tags,
    make_image,
    mistaken,
    one_line,
    report_mistakes,
    title_or_fallback,
    title_text,
    warn_undated,
)
from .mapping import Mapper
from .media import MediaText, media_texts
from .sniff import check_entities

_IMAGE_EXT = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)(?:$|[?#])", re.IGNORECASE)
_DATE_KEYS = ("published", "created", "updated")
# feedparser's loose parser can trip over damaged documents in these ways
PARSER_FAILURES = (LookupError, TypeError, AttributeError, ValueError, RecursionError)


@dataclass(frozen=True)
class FeedContext:
    """What every item of one feed needs: names, bases, mapping and fallbacks."""

    base: str | None
    feed_key: str
    is_atom: bool
    mapper: Mapper
    feed_terms: tuple[str, ...]
    source: str
    media: Mapping[str, MediaText] = field(default_factory=dict)  # picture URL → its words


def parse_feed(
    data: bytes,
    name: str,
    *,
    url: str | None,
    content_type: str | None,
    mapper: Mapper,
    notes: Notes,
) -> tuple[str, list[Article]]:
    """Parse RSS or Atom bytes; return the kind ("rss" or "atom") and the usable articles."""
    check_entities(data, name)
    headers = {"content-location": url} if url else {}
    if content_type:
        headers["content-type"] = content_type
    try:
        parsed = feedparser.parse(
            io.BytesIO(data),
            response_headers=headers,
            sanitize_html=True,
            resolve_relative_uris=True,
        )
    except PARSER_FAILURES as err:
        # The parser's own words may quote the document: only the kind of failure is shown.
        raise ContentError(
            f"{name}: the feed is too damaged to read ({type(err).__name__} in the feed "
            "parser); check it with a feed validator"
        ) from err
    version = str(parsed.get("version") or "")
    entries = list(parsed.get("entries") or [])
    problem = _bozo_text(parsed)
    if not version and not entries:
        detail = f" ({problem})" if problem else ""
        raise ContentError(f"{name}: not an RSS or Atom feed{detail}; check the file or address")
    if problem:
        notes.warn(f"{problem}; read what could be read")
    feed = parsed.get("feed") or {}
    home = http_url(feed.get("link"), url)
    context = FeedContext(
        base=url or home,
        feed_key=_feed_key(feed, url, home, name),
        is_atom=version.startswith("atom"),
        mapper=mapper,
        feed_terms=tuple(_terms(feed.get("tags") or [])),
        source=name,
        media=media_texts(data),
    )
    articles = []
    for number, entry in enumerate(entries, start=1):
        article = _entry_article(entry, number, context, notes)
        if article is not None:
            articles.append(article)
    return ("atom" if context.is_atom else "rss"), articles


def _bozo_text(parsed: Mapping[str, Any]) -> str:
    if not parsed.get("bozo"):
        return ""
    error = parsed.get("bozo_exception")
    if isinstance(error, SAXParseException):
        return f"ill-formed XML: {error.getMessage()} at line {error.getLineNumber()}"
    name = type(error).__name__
    if name == "CharacterEncodingOverride":
        return f"encoding problem: {one_line(str(error))}"
    if name == "NonXMLContentType":
        return f"served with a non-XML content type: {one_line(str(error))}"
    return f"feed problem: {one_line(str(error) or name)}"


def _feed_key(feed: Mapping[str, Any], url: str | None, home: str | None, name: str) -> str:
    for link in feed.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == "self":
            own = http_url(link.get("href"), url)
            if own:
                return canonical_url(own)
    return canonical_url(url or home or name)


def _terms(tags: Iterable[Any]) -> Iterable[str]:
    for tag in tags:
        if not isinstance(tag, Mapping):
            continue
        for key in ("label", "term"):
            value = tag.get(key)
            if isinstance(value, str) and value.strip():
                yield plain_text(value)


def _entry_article(
    entry: Mapping[str, Any], number: int, context: FeedContext, notes: Notes
) -> Article | None:
    where = f"item {number}"
    raw_title = str(entry["title"]) if isinstance(entry.get("title"), str) else ""
    title = title_text(raw_title, is_html=_title_is_html(entry, context.is_atom))
    link = http_url(entry.get("link"), context.base) or _guid_link(entry, context.base)
    if not has_link(title, link, where, notes, entry.get("link")) or link is None:
        return None
    mistakes: list[str] = []
    summary = _summary(entry, link, mistakes)
    title = title_or_fallback(title, summary, link, where, notes)
    named = f"{where} ({one_line(title, 80)!r})"
    report_mistakes(
        notes, named, "a link in the summary", mistakes, "the link is removed, its text kept"
    )
    published, updated, unreadable = _dates(entry)
    if published is None:
        warn_undated(notes, where, title, unreadable)
    found = context.mapper.classify(_terms(entry.get("tags") or []))
    fallback = context.mapper.classify(context.feed_terms)
    image, refused = _image(entry, title, link, context.media)
    report_mistakes(notes, named, "the image", refused, "the image is left out")
    return Article(
        id=_entry_id(entry, link, context.feed_key),
        title=title,
        url=link,
        summary=summary,
        section=found.section or fallback.section or "news",
        regions=found.regions or fallback.regions,
        published=published,
        updated=updated,
        author=_author(entry),
        image=image,
        tags=found.tags,
        source=context.source,
    )


def _title_is_html(entry: Mapping[str, Any], is_atom: bool) -> bool:
    detail = entry.get("title_detail")
    kind = detail.get("type", "") if isinstance(detail, Mapping) else ""
    return not (is_atom and kind == "text/plain")


def _guid_link(entry: Mapping[str, Any], base: str | None) -> str | None:
    guid = entry.get("id")
    if isinstance(guid, str) and guid.strip().lower().startswith(("http://", "https://")):
        return http_url(guid, base)
    return None


def _entry_id(entry: Mapping[str, Any], link: str, feed_key: str) -> str:
    guid = entry.get("id")
    if isinstance(guid, str) and one_line(guid, 1000):
        guid = one_line(guid, 1000)
        return guid if ":" in guid else f"{feed_key}#{guid}"
    return canonical_url(link)


def _summary(entry: Mapping[str, Any], base: str, mistakes: list[str]) -> str:
    """The longer of content and description, sanitized; links written wrongly are noted."""
    candidates = [c for c in entry.get("content") or [] if isinstance(c, Mapping)]
    detail = entry.get("summary_detail")
    if isinstance(detail, Mapping):
        candidates.append(detail)
    elif isinstance(entry.get("summary"), str):
        candidates.append({"type": "text/html", "value": entry["summary"]})
    best = ""
    best_length = -1
    best_mistakes: list[str] = []
    for candidate in candidates:
        value = candidate.get("value")
        if not isinstance(value, str):
            continue
        if candidate.get("type") == "text/plain":
            value = "<p>" + html.escape(value).replace("\n\n", "</p><p>") + "</p>"
        found: list[str] = []
        cleaned = clean_html(value, base, found)
        length = len(plain_text(cleaned))
        if length > best_length:
            best, best_length, best_mistakes = cleaned, length, found
    if best_length <= 0:
        return ""
    mistakes.extend(best_mistakes)
    return best


def _dates(entry: Mapping[str, Any]) -> tuple[datetime | None, datetime | None, list[str]]:
    """Return the item's published and updated times, and the date values feedparser could
    not read."""
    stamps: dict[str, datetime] = {}
    unreadable: list[str] = []
    for key in _DATE_KEYS:
        parsed = _own(entry, f"{key}_parsed")
        moment = _utc(parsed) if isinstance(parsed, time.struct_time) else None
        raw = _own(entry, key)
        if moment is not None:
            stamps[key] = moment
        elif isinstance(raw, str) and raw.strip():
            unreadable.append(one_line(raw, 60))
    published = stamps.get("published") or stamps.get("created") or stamps.get("updated")
    updated = stamps.get("updated")
    return published, updated, unreadable


def _own(entry: Mapping[str, Any], key: str) -> Any:
    """Read a key without feedparser's fallback from ``updated`` to ``published``."""
    return dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)


def _utc(parsed: time.struct_time) -> datetime | None:
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _author(entry: Mapping[str, Any]) -> str:
    detail = entry.get("author_detail")
    name = detail.get("name") if isinstance(detail, Mapping) else None
    if not isinstance(name, str) or not name.strip():
        name = entry.get("author")
    if not isinstance(name, str):
        return ""
    text = title_text(name)
    if "@" in text and " " not in text:
        return ""
    return one_line(text)


def _image(
    entry: Mapping[str, Any], title: str, base: str, media: Mapping[str, MediaText]
) -> tuple[Image | None, list[str]]:
    """The item's picture, and what was wrong with picture URLs written wrongly if none."""
    credit = _credit(entry)
    refused: list[str] = []
    for item in _media_candidates(entry):
        raw = item.get("url") or item.get("href")
        url = http_url(raw, base)
        if url:
            image = make_image(
                url,
                title,
                alt=_alt(entry, item, (str(raw).strip(), url, base), media),
                credit=credit,
                width=item.get("width"),
                height=item.get("height"),
            )
            return image, []
        if mistaken(raw):
            refused.append(mistaken(raw))
    image = _content_image(entry, title, base, credit)
    return image, [] if image is not None else refused


def _alt(
    entry: Mapping[str, Any],
    item: Mapping[str, Any],
    where: tuple[str, str, str],
    media: Mapping[str, MediaText],
) -> str:
    """The feed's own words for a picture: its own first, then what its group or item says.

    ``where`` is the picture's URL as written, the same made absolute, and the item's link.
    """
    raw, url, base = where
    said = media.get(raw) or media.get(url) or MediaText()
    for value in (said.own, item.get("alt"), item.get("title")):
        if isinstance(value, str) and value.strip():
            return value
    return content_alts(_content_texts(entry), base).get(url) or said.shared


def _content_texts(entry: Mapping[str, Any]) -> list[object]:
    texts: list[object] = [
        c.get("value") for c in entry.get("content") or [] if isinstance(c, Mapping)
    ]
    texts.append(entry.get("summary"))
    return texts


def _media_candidates(entry: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for item in entry.get("media_content") or []:
        if isinstance(item, Mapping) and _is_image(item):
            yield item
    for item in entry.get("media_thumbnail") or []:
        if isinstance(item, Mapping):
            yield item
    for item in entry.get("enclosures") or []:
        if isinstance(item, Mapping) and str(item.get("type", "")).lower().startswith("image/"):
            yield item


def _is_image(item: Mapping[str, Any]) -> bool:
    medium = str(item.get("medium") or "").lower()
    kind = str(item.get("type") or "").lower()
    if medium or kind:
        return medium == "image" or kind.startswith("image/")
    return bool(_IMAGE_EXT.search(str(item.get("url") or "")))


def _credit(entry: Mapping[str, Any]) -> str:
    for item in entry.get("media_credit") or []:
        if isinstance(item, Mapping) and isinstance(item.get("content"), str):
            return str(item["content"])
    return ""


def _content_image(entry: Mapping[str, Any], title: str, base: str, credit: str) -> Image | None:
    for text in _content_texts(entry):
        if not isinstance(text, str):
            continue
        for attrs in img_tags(text):
            if attrs.get("width") == "1" or attrs.get("height") == "1":
                continue
            url = http_url(attrs.get("src", ""), base)
            if url:
                return make_image(
                    url,
                    title,
                    alt=attrs.get("alt", ""),
                    credit=credit,
                    width=attrs.get("width"),
                    height=attrs.get("height"),
                )
    return None
