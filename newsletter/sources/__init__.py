"""Content sources: files and URLs in any supported format → one clean list of ``Article``s.

A source is a path or an http(s) URL. Its format is found by looking at the bytes,
not the name: an object with ``articles`` (or a bare list) is the publication's JSON
format, a JSON object with a jsonfeed.org ``version`` is a JSON Feed, XML goes to the
RSS/Atom reader, and a web page is refused with the feed links it advertises.

A source that fails as a whole becomes a ``SourceReport`` with ``error`` set and the
others go on. One that has items but none usable (every one was skipped) is read, yet
counts as failed too (``SourceReport.failure``). With ``strict=True`` a failure raises
``ContentError`` instead, and so does any item that would be skipped; ``collect``
reads every source first, so the error names each one that failed.

A source is named in every report, warning, error and article by ``masking.masked``
(a feed URL's password never shows), and a source that is not a feed is described
without repeating its bytes (it may be any file, ``/etc/passwd`` as well).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from newsletter.clock import FUTURE_SKEW
from newsletter.config.settings import Settings
from newsletter.errors import ContentError
from newsletter.models import Article
from newsletter.sanitize import plain_text

from .common import Notes, as_utc, one_line
from .feeds import parse_feed
from .fetch import MAX_BYTES, Fetcher, is_url
from .json_reader import decode_json, read_articles
from .jsonfeed import is_json_feed, read_json_feed
from .mapping import Mapper
from .masking import hide, masked
from .merge import deduplicate
from .sniff import describe_bytes, first_char, html_page_error, is_html_page

__all__ = [
    "Collection",
    "Fetcher",
    "SourceReport",
    "collect",
    "describe_failures",
    "read_source",
]

MAX_PARALLEL = 8  # sources read at once (fetching is mostly waiting)
_SCHEME = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class SourceReport:
    """What one source gave: its kind, its articles and its warnings (or why it failed)."""

    spec: str
    kind: str  # "json" | "jsonfeed" | "rss" | "atom" | "failed" (could not be read at all)
    articles: tuple[Article, ...]
    warnings: tuple[str, ...]
    error: str | None = None
    dropped: int = 0  # items skipped (each with a warning)

    @property
    def failure(self) -> str | None:
        """Why the source gave nothing usable: its error, or every item was skipped."""
        if self.error or self.articles or not self.dropped:
            return self.error
        return (
            f"{self.spec}: none of its items could be used ({self.dropped} skipped, see the "
            "warnings); fix them or remove the source"
        )

    def summary(self) -> dict[str, Any]:
        """The report as plain data for ``newsletter sources``: items, sections, regions."""
        return {
            "spec": self.spec,
            "kind": self.kind,
            "items": len(self.articles),
            "sections": dict(Counter(a.section for a in self.articles).most_common()),
            "regions": dict(Counter(r for a in self.articles for r in a.regions).most_common()),
            "warnings": list(self.warnings),
            "error": self.failure,
        }


@dataclass(frozen=True)
class Collection:
    """Every source's articles merged, deduplicated and in a deterministic order.

    ``warnings`` holds every source's warnings and, after them, each failed source's error.
    """

    articles: tuple[Article, ...]
    reports: tuple[SourceReport, ...]
    warnings: tuple[str, ...]

    @property
    def failed(self) -> tuple[SourceReport, ...]:
        """The sources that gave nothing usable (``SourceReport.failure``)."""
        return tuple(r for r in self.reports if r.failure)

    def warnings_besides_failures(self) -> tuple[str, ...]:
        """The warnings without the failed sources' errors (those are told on their own)."""
        errors = {r.error for r in self.failed}
        return tuple(w for w in self.warnings if w not in errors)


def describe_failures(failed: Sequence[SourceReport], total: int) -> str:
    """Say which sources could not be read, one line each in the source's own words."""
    head = (
        "no content source could be read"
        if len(failed) == total
        else f"{len(failed)} of {total} content sources could not be read"
    )
    return head + ":" + "".join(f"\n  - {r.failure}" for r in failed)


def read_source(
    spec: str, settings: Settings, *, strict: bool = False, fetcher: Fetcher | None = None
) -> SourceReport:
    """Read one source (path or URL); a failure is reported, not raised (unless strict)."""
    name = masked(spec)
    notes = Notes(name, strict)
    try:
        kind, articles = _read(spec, settings, notes, fetcher or Fetcher.from_settings(settings))
    except ContentError as err:
        err.args = (hide(str(err), spec),)
        if strict:
            raise
        warnings = tuple(hide(w, spec) for w in notes.warnings)
        return SourceReport(name, "failed", (), warnings, error=str(err))
    if not articles:
        notes.warn("no usable articles in this source")
    warnings = tuple(hide(w, spec) for w in notes.warnings)
    return SourceReport(name, kind, tuple(articles), warnings, dropped=notes.dropped)


def collect(
    specs: Sequence[str],
    settings: Settings,
    *,
    strict: bool = False,
    now: datetime | None = None,
    fetcher: Fetcher | None = None,
) -> Collection:
    """Read every source (several at once), merge, deduplicate (newer copy wins), apply rules.

    The result does not depend on which source answers first: reports keep the order
    of ``specs`` and the articles are sorted. With ``strict``, every source is read and
    then one ``ContentError`` names each that failed.

    Articles dated more than a few minutes after ``now`` (default: the clock) are kept
    (the selection passes them over) with a warning naming their source.
    """
    fetcher = fetcher or Fetcher.from_settings(settings)

    def read(spec: str) -> SourceReport:
        try:
            return read_source(spec, settings, strict=strict, fetcher=fetcher)
        except ContentError as err:  # strict: told with the others once all are read
            return SourceReport(spec, "failed", (), (), error=str(err))

    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(specs)))) as pool:
        reports = tuple(pool.map(read, specs))
    failed = [r for r in reports if r.failure]
    if strict and failed:
        warnings_found = [w for r in reports for w in r.warnings]
        raise ContentError(describe_failures(failed, len(specs)), warnings=warnings_found)
    warnings: list[str] = []
    if not specs:
        warnings.append(
            "no content sources given; add [content] sources to the config or pass --source"
        )
    candidates: list[Article] = []
    moment = as_utc(now, UTC) if now else datetime.now(UTC)
    for report in reports:
        warnings.extend(report.warnings)
        if report.error:
            warnings.append(report.error)
        for article in report.articles:
            if _usable(article, settings.selection.min_summary_length, warnings):
                _warn_if_future(article, moment, warnings)
                candidates.append(article)
    kept, dropped = deduplicate(candidates, settings.selection.title_similarity, moment)
    warnings.extend(dropped)
    return Collection(tuple(kept), reports, tuple(warnings))


def _read(
    spec: str, settings: Settings, notes: Notes, fetcher: Fetcher
) -> tuple[str, list[Article]]:
    url: str | None = None
    content_type: str | None = None
    name = notes.source  # the spec as shown: masked
    if is_url(spec):
        fetched = fetcher.get(spec.strip())
        notes.warnings.extend(fetched.warnings)
        data, url, content_type = fetched.body, fetched.url, fetched.content_type
    else:
        data = _read_file(spec, name)
    return _parse(data, name, url, content_type, settings, notes)


def _read_file(spec: str, name: str) -> bytes:
    path = _local_path(spec, name)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ContentError(
                f"{name}: the file is {size // 1048576} MB, over the "
                f"{MAX_BYTES // 1048576} MB limit for a content source"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise ContentError(
            f"{name}: no such file; check [content] sources in the config or the --source option"
        ) from None
    except IsADirectoryError:
        raise ContentError(
            f"{name}: this is a folder; give a content file or feed inside it"
        ) from None
    except OSError as err:
        raise ContentError(f"{name}: cannot read the file ({err.strerror or err})") from err


def _local_path(spec: str, name: str) -> Path:
    if spec.lower().startswith("file://"):
        return Path(url2pathname(urlsplit(spec).path))
    if _SCHEME.match(spec):
        raise ContentError(
            f"{name}: only http(s) addresses and file paths can be sources; "
            "write the address with http:// or https://"
        )
    return Path(spec).expanduser()


def _parse(
    data: bytes,
    name: str,
    url: str | None,
    content_type: str | None,
    settings: Settings,
    notes: Notes,
) -> tuple[str, list[Article]]:
    mapper = Mapper.from_settings(settings)
    first = first_char(data)
    if not first:
        raise ContentError(f"{name}: the source is empty")
    if first == "<":
        if is_html_page(data):
            raise html_page_error(data, name, url)
        return parse_feed(
            data, name, url=url, content_type=content_type, mapper=mapper, notes=notes
        )
    doc = _json_or_neither(data, name, first)
    if is_json_feed(doc):
        assert isinstance(doc, dict)
        return "jsonfeed", read_json_feed(doc, name, url=url, mapper=mapper, notes=notes)
    return "json", read_articles(doc, name, settings, mapper, notes)


def _json_or_neither(data: bytes, name: str, first: str) -> object:
    """Decode JSON; bytes that do not even look like JSON get a plainer message."""
    try:
        return decode_json(data, name)
    except ContentError:
        if first in '{["' or name.lower().endswith(".json"):
            raise
    # Say what it looks like, never what it says: it may be any file (a key, a password list).
    raise ContentError(
        f"{name}: neither JSON nor an RSS/Atom feed ({describe_bytes(data)}; its content is "
        "not repeated here); give a JSON content file, an RSS/Atom feed or a JSON Feed"
    )


def _usable(article: Article, minimum: int, warnings: list[str]) -> bool:
    if minimum <= 0:
        return True
    length = len(plain_text(article.summary))
    if length >= minimum:
        return True
    warnings.append(
        f"{article.source}: skipped {one_line(article.title, 80)!r}: its summary has {length} "
        f"characters, fewer than selection.min_summary_length ({minimum})"
    )
    return False


def _warn_if_future(article: Article, now: datetime, warnings: list[str]) -> None:
    moment = article.last_changed
    if moment is not None and moment > now + FUTURE_SKEW:
        warnings.append(
            f"{article.source}: {one_line(article.title, 80)!r} is dated in the future "
            f"({moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC); the selection passes it over "
            "until then (check the source's clock or time zone if that is wrong)"
        )
