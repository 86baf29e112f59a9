"""The publication's own JSON content format (see DESIGN.md) → ``Article``s.

The file is an object with an ``articles`` list, or a bare list. Each article is an
object; ``title`` and ``url`` are required, everything else is optional:

- ``url``, ``image.url``: absolute http(s), or relative to ``publication.site_url``
  (``/news/a``). An address with a user name or password, or without a scheme
  (``img.example.com/x.jpg``), is refused with a warning, never made a path on the site.
- ``id``: a string (a number is accepted); defaults to the canonical URL.
- ``summary``: HTML, sanitized; ``title`` and ``author`` become plain text.
- ``published``/``updated``: ISO 8601, or RFC 822 as in RSS and email. A time without
  an offset is taken in the publication's time zone (``publication.timezone``) without
  a warning, because a publication's own file naturally speaks local time. All times
  come out in UTC. An article with neither is kept, ranked as the oldest, with a warning.
- ``section``: mapped like feed categories (``Editorial`` → ``opinion``), lower-case.
- ``regions``: a list or a single string, mapped (``usa`` → ``United States``).
- ``tags``, ``pinned``, ``trending_rank`` (≥ 1), ``popularity`` (≥ 0), ``priority``.
- ``image``: an object ``{url, alt, caption, credit, width, height}`` or a URL string;
  without alt text the title is used.

A bad required field skips that article with a warning; a bad optional field is
dropped with a warning and the article is kept. Unknown fields are reported once
per file (typos are the usual cause).
"""

from __future__ import annotations

import difflib
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from newsletter.config.settings import Settings
from newsletter.errors import ContentError
from newsletter.models import Article, Image
from newsletter.sanitize import canonical_url, clean_html, plain_text, url_refusal

from .common import (
    TIME_FORMS,
    Notes,
    http_url,
    make_image,
    one_line,
    parse_time,
    title_text,
    warn_undated,
)
from .mapping import Mapper

FIELDS = (
    "id",
    "title",
    "url",
    "summary",
    "author",
    "published",
    "updated",
    "section",
    "regions",
    "tags",
    "pinned",
    "trending_rank",
    "popularity",
    "priority",
    "image",
)
IMAGE_FIELDS = ("url", "alt", "caption", "credit", "width", "height")


class _Skip(Exception):
    """An article cannot be used; the message says which field and why."""


def decode_json(data: bytes, name: str) -> object:
    """Decode UTF-8 JSON bytes; raise ``ContentError`` naming line and column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ContentError(
            f"{name}: not UTF-8 text (bad byte 0x{data[err.start]:02x} on line {line}, "
            f"byte {err.start}); save the file as UTF-8"
        ) from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ContentError(
            f"{name}: not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}; "
            "fix the syntax there (a missing comma, quote or bracket is the usual cause)"
        ) from err
    except (ValueError, RecursionError) as err:
        raise ContentError(f"{name}: JSON that cannot be read ({err})") from err


def article_list(doc: object, name: str) -> list[Any]:
    """Find the list of articles in a decoded document, or raise ``ContentError``."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        articles = doc.get("articles")
        if isinstance(articles, list):
            return articles
        if "articles" in doc:
            found = type(articles).__name__
            raise ContentError(f"{name}: 'articles' must be a list of objects, found {found}")
        keys = ", ".join(repr(k) for k in list(doc)[:8]) or "no keys"
        raise ContentError(
            f"{name}: expected an object with an 'articles' list (or a list of articles), "
            f"found an object with {keys}"
        )
    raise ContentError(
        f"{name}: expected an object with an 'articles' list (or a list of articles), "
        f"found {_kind(doc)}"
    )


def read_articles(
    doc: object, name: str, settings: Settings, mapper: Mapper, notes: Notes
) -> list[Article]:
    """Turn a decoded content document into articles, skipping bad ones with a warning."""
    items = article_list(doc, name)
    reader = _ArticleReader(
        settings.publication.site_url or None, settings.publication.timezone, mapper, notes, name
    )
    articles: list[Article] = []
    unknown: Counter[str] = Counter()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            found = _kind(item)
            notes.skip(f"article {number}: expected an object, found {found}; fix or remove it")
            continue
        unknown.update(str(k) for k in item if k not in FIELDS)
        article = reader.read(number, item)
        if article is not None:
            articles.append(article)
    if unknown:
        notes.warn(f"ignored unknown fields: {_describe_unknown(unknown)}")
    return articles


def _describe_unknown(unknown: Counter[str]) -> str:
    parts = []
    for key, count in sorted(unknown.items()):
        hint = difflib.get_close_matches(key, FIELDS, n=1)
        tip = f", did you mean {hint[0]!r}?" if hint else ""
        parts.append(f"{key!r} ({count} article{'s' if count != 1 else ''}{tip})")
    return "; ".join(parts)


def _kind(value: object) -> str:
    names = {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


class _ArticleReader:
    """Reads one article object at a time; holds what every article needs."""

    def __init__(
        self, base: str | None, zone: tzinfo, mapper: Mapper, notes: Notes, name: str
    ) -> None:
        self.base = base
        self.zone = zone
        self.mapper = mapper
        self.notes = notes
        self.name = name

    def read(self, number: int, item: Mapping[str, Any]) -> Article | None:
        """Read one article; ``None`` (with a warning) if it cannot be used."""
        where = _where(number, item.get("id"))
        try:
            title = self._title(item)
            url = self._url(item)
            ident = self._id(item, url)
        except _Skip as err:
            self.notes.skip(f"{where}: {err}; fix or remove it")
            return None
        optional: list[str] = []
        unreadable: list[str] = []
        published = self._time(item, "published", optional, unreadable)
        updated = self._time(item, "updated", optional, unreadable)
        article = Article(
            id=ident,
            title=title,
            url=url,
            summary=self._summary(item, optional),
            section=self._section(item, optional),
            regions=self._strings(item, "regions", optional, self.mapper.region_value),
            published=published,
            updated=updated,
            author=self._text(item, "author", optional),
            image=self._image(item, title, optional),
            tags=self._strings(item, "tags", optional, _tag),
            pinned=self._flag(item, "pinned", optional),
            trending_rank=self._whole(item, "trending_rank", optional, low=1),
            popularity=self._number(item, "popularity", optional),
            priority=self._whole(item, "priority", optional, low=-1000, high=1000) or 0,
            source=self.name,
        )
        for problem in optional:
            self.notes.warn(f"{_where(number, ident)}: {problem}")
        if published is None and updated is None:
            warn_undated(self.notes, _where(number, ident), title, unreadable)
        return article

    def _title(self, item: Mapping[str, Any]) -> str:
        value = item.get("title")
        if not isinstance(value, str) or not title_text(value):
            raise _Skip("'title' is required (a non-empty string)")
        return title_text(value)

    def _url(self, item: Mapping[str, Any]) -> str:
        url = http_url(item.get("url"), self.base)
        if url is None:
            raise _Skip(f"'url' {url_refusal(item.get('url'))}")
        return url

    def _id(self, item: Mapping[str, Any], url: str) -> str:
        value = item.get("id")
        if value is None or value == "":
            return canonical_url(url)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip() and value.isprintable():
            return value.strip()
        raise _Skip("'id' must be a non-empty string without control characters")

    def _summary(self, item: Mapping[str, Any], problems: list[str]) -> str:
        value = item.get("summary")
        if value is None:
            return ""
        if not isinstance(value, str):
            problems.append(f"'summary' must be a string of HTML, found {_kind(value)}; ignored")
            return ""
        mistakes: list[str] = []
        summary = clean_html(value, self.base, mistakes)
        problems.extend(
            f"a link in 'summary' {m}; the link is removed, its text kept" for m in mistakes
        )
        return summary

    def _text(self, item: Mapping[str, Any], key: str, problems: list[str]) -> str:
        value = item.get(key)
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            value = value["name"]
        if value is None:
            return ""
        if not isinstance(value, str):
            problems.append(f"{key!r} must be a string, found {_kind(value)}; ignored")
            return ""
        return title_text(value)

    def _time(
        self, item: Mapping[str, Any], key: str, problems: list[str], unreadable: list[str]
    ) -> datetime | None:
        value = item.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return parse_time(value, self.zone)
            except (ValueError, OverflowError):
                pass
        shown = one_line(repr(value), 60)
        problems.append(f"{key!r} is not a time in {TIME_FORMS} (found {shown}); ignored")
        unreadable.append(one_line(str(value), 60))
        return None

    def _section(self, item: Mapping[str, Any], problems: list[str]) -> str:
        value = item.get("section")
        if value is None or value == "":
            return "news"
        if not isinstance(value, str):
            problems.append(f"'section' must be a string, found {_kind(value)}; used 'news'")
            return "news"
        return self.mapper.section_value(value) or "news"

    def _strings(
        self, item: Mapping[str, Any], key: str, problems: list[str], convert: Callable[[str], str]
    ) -> tuple[str, ...]:
        value = item.get(key)
        if value is None:
            return ()
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"{key!r} must be a list of strings, found {_kind(value)}; ignored")
            return ()
        out: list[str] = []
        for raw in values:
            text = convert(raw) if one_line(raw) else ""
            if text and text.casefold() not in {known.casefold() for known in out}:
                out.append(text)
        return tuple(out)

    def _flag(self, item: Mapping[str, Any], key: str, problems: list[str]) -> bool:
        value = item.get(key, False)
        if value is None or isinstance(value, bool):
            return bool(value)
        problems.append(f"{key!r} must be true or false, found {_kind(value)}; used false")
        return False

    def _whole(
        self,
        item: Mapping[str, Any],
        key: str,
        problems: list[str],
        *,
        low: int,
        high: int = 1_000_000,
    ) -> int | None:
        value = item.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        problems.append(f"{key!r} must be a whole number from {low} to {high}; ignored")
        return None

    def _number(self, item: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
        value = item.get(key)
        if value is None:
            return None
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= 0
        ):
            return float(value)
        problems.append(f"{key!r} must be a number of 0 or more; ignored")
        return None

    def _image(self, item: Mapping[str, Any], title: str, problems: list[str]) -> Image | None:
        value = item.get("image")
        if value is None or value == "":
            return None
        if isinstance(value, str):
            value = {"url": value}
        if not isinstance(value, dict):
            found = _kind(value)
            problems.append(f"'image' must be an object with a 'url', found {found}; ignored")
            return None
        url = http_url(value.get("url"), self.base)
        if url is None:
            problems.append(f"'image.url' {url_refusal(value.get('url'))}; the image is left out")
            return None
        texts = {
            k: str(value[k]) if isinstance(value.get(k), str) else ""
            for k in ("alt", "caption", "credit")
        }
        unknown = sorted(str(k) for k in value if k not in IMAGE_FIELDS)
        if unknown:
            problems.append(f"'image' has unknown fields {', '.join(map(repr, unknown))}; ignored")
        return make_image(
            url,
            title,
            alt=texts["alt"],
            caption=texts["caption"],
            credit=texts["credit"],
            width=value.get("width"),
            height=value.get("height"),
        )


def _where(number: int, ident: object) -> str:
    if isinstance(ident, str | int) and not isinstance(ident, bool) and str(ident).strip():
        return f"article {number} (id {one_line(str(ident), 80)!r})"
    return f"article {number}"


def _tag(value: str) -> str:
    return one_line(plain_text(value), 80)
