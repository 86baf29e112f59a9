"""JSON Feed 1.0 / 1.1 (jsonfeed.org) → ``Article``s.

Times are RFC 3339 (or RFC 822, which some exporters write); those without an offset
are taken as UTC (as feedparser does for XML feeds); an undated item is kept, ranked as
the oldest, with a warning naming it. Relative
URLs resolve against the feed's own address. Ids are the item's id, prefixed with the
feed's address when not globally unique on their own (JSON Feed ids are only unique
within one feed). JSON Feed has no alt text of its own: a picture's is the ``title`` of
the attachment with its URL, else its ``alt`` in ``content_html``, else the headline.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from newsletter.errors import ContentError
from newsletter.models import Article, Image
from newsletter.sanitize import canonical_url, clean_html, plain_text

from .common import (
    Notes,
    content_alts,
    has_link,
    http_url,
    make_image,
    mistaken,
    one_line,
    parse_time,
    report_mistakes,
    title_or_fallback,
    title_text,
    warn_undated,
)
from .mapping import Mapper

VERSION_PREFIX = "https://jsonfeed.org/version/"


def is_json_feed(doc: object) -> bool:
    """Tell whether a decoded JSON document is a JSON Feed."""
    if not isinstance(doc, dict):
        return False
    version = doc.get("version")
    return isinstance(version, str) and version.strip().lower().startswith(
        (VERSION_PREFIX, VERSION_PREFIX.replace("https:", "http:"))
    )


def read_json_feed(
    doc: Mapping[str, Any], name: str, *, url: str | None, mapper: Mapper, notes: Notes
) -> list[Article]:
    """Read the items of a decoded JSON Feed, skipping unusable ones with a warning."""
    items = doc.get("items")
    if not isinstance(items, list):
        raise ContentError(f"{name}: a JSON Feed needs an 'items' list; this one has none")
    feed_url = http_url(doc.get("feed_url"), url)
    home = http_url(doc.get("home_page_url"), url)
    base = url or feed_url or home
    feed_key = canonical_url(feed_url or url or home or name)
    feed_author = _author(doc)
    articles = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            notes.skip(f"item {number} is not an object; skipped")
            continue
        article = _item(item, number, base, feed_key, feed_author, mapper, notes, name)
        if article is not None:
            articles.append(article)
    return articles


def _item(
    item: Mapping[str, Any],
    number: int,
    base: str | None,
    feed_key: str,
    feed_author: str,
    mapper: Mapper,
    notes: Notes,
    name: str,
) -> Article | None:
    where = f"item {number}"
    raw_title = item.get("title")
    title = title_text(raw_title) if isinstance(raw_title, str) else ""
    link = http_url(item.get("url"), base) or http_url(item.get("external_url"), base)
    if not has_link(title, link, where, notes, item.get("url")) or link is None:
        return None
    mistakes: list[str] = []
    summary = _summary(item, link, mistakes)
    title = title_or_fallback(title, summary, link, where, notes)
    named = f"{where} ({one_line(title, 80)!r})"
    report_mistakes(
        notes, named, "a link in the summary", mistakes, "the link is removed, its text kept"
    )
    image, refused = _image(item, title, link)
    report_mistakes(notes, named, "the image", refused, "the image is left out")
    unreadable: list[str] = []
    published = _time(item.get("date_published"), unreadable)
    updated = _time(item.get("date_modified"), unreadable)
    if published is None:
        published = updated
    if published is None:
        warn_undated(notes, where, title, unreadable)
    tags = [t for t in item.get("tags") or [] if isinstance(t, str)]
    found = mapper.classify(tags)
    return Article(
        id=_item_id(item.get("id"), link, feed_key),
        title=title,
        url=link,
        summary=summary,
        section=found.section or "news",
        regions=found.regions,
        published=published,
        updated=updated,
        author=_author(item) or feed_author,
        image=image,
        tags=found.tags,
        source=name,
    )


def _item_id(value: object, link: str, feed_key: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and one_line(value, 1000):
        text = one_line(value, 1000)
        return text if ":" in text else f"{feed_key}#{text}"
    return canonical_url(link)


def _summary(item: Mapping[str, Any], base: str, mistakes: list[str]) -> str:
    """The longest of the item's texts, sanitized; links written wrongly are noted."""
    candidates = []
    if isinstance(item.get("content_html"), str):
        candidates.append(item["content_html"])
    for key in ("content_text", "summary"):
        if isinstance(item.get(key), str):
            text = html.escape(item[key]).replace("\n\n", "</p><p>")
            candidates.append(f"<p>{text}</p>")
    cleaned = []
    for candidate in candidates:
        found: list[str] = []
        cleaned.append((clean_html(candidate, base, found), found))
    best, found = max(cleaned, key=lambda pair: len(plain_text(pair[0])), default=("", []))
    if not plain_text(best):
        return ""
    mistakes.extend(found)
    return best


def _time(value: object, unreadable: list[str]) -> datetime | None:
    """Read one of the item's times; a value that is not one is noted in ``unreadable``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return parse_time(value, UTC)
        except (ValueError, OverflowError):
            pass
    unreadable.append(one_line(str(value), 60))
    return None


def _author(holder: Mapping[str, Any]) -> str:
    authors = holder.get("authors")
    people = authors if isinstance(authors, list) else [holder.get("author")]
    names = [p.get("name") for p in people if isinstance(p, Mapping)]
    return one_line(", ".join(title_text(n) for n in names if isinstance(n, str) and n.strip()))


def _image(item: Mapping[str, Any], title: str, base: str) -> tuple[Image | None, list[str]]:
    """The item's picture, and what was wrong with picture URLs written wrongly if none."""
    said = content_alts([item.get("content_html")], base)
    said.update(_attachment_titles(item, base))  # an attachment's title comes first
    url = http_url(item.get("image"), base) or http_url(item.get("banner_image"), base)
    if url:
        return make_image(url, title, alt=said.get(url, "")), []
    refused = [mistaken(item.get(key)) for key in ("image", "banner_image")]
    for attachment in item.get("attachments") or []:
        if not isinstance(attachment, Mapping):
            continue
        kind = str(attachment.get("mime_type") or "").lower()
        if not kind.startswith("image/"):
            continue
        link = http_url(attachment.get("url"), base)
        if link:
            return make_image(link, title, alt=said.get(link, "")), []
        refused.append(mistaken(attachment.get("url")))
    return None, [r for r in refused if r]


def _attachment_titles(item: Mapping[str, Any], base: str) -> dict[str, str]:
    """Map each attachment's URL to its title, where it has one."""
    found: dict[str, str] = {}
    for attachment in item.get("attachments") or []:
        if not isinstance(attachment, Mapping):
            continue
        link = http_url(attachment.get("url"), base)
        name = attachment.get("title")
        if link and isinstance(name, str) and name.strip():
            found.setdefault(link, name)
    return found
