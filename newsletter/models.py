"""The data that flows between stages: frozen, plain, free of I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


@dataclass(frozen=True)
class Image:
    """An article's picture. ``url`` is an absolute http(s) URL."""

    url: str
    alt: str = ""
    caption: str = ""
    credit: str = ""
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Article:
    """One normalized, sanitized story from any source.

    ``summary`` is sanitized HTML (allowlisted tags, absolute links only).
    ``section`` is lower-case (``news``, ``opinion``, ``blog``, ``interview`` …).
    ``published``/``updated`` are timezone-aware or ``None`` (undated).
    """

    id: str
    title: str
    url: str
    summary: str = ""
    section: str = "news"
    regions: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    author: str = ""
    image: Image | None = None
    tags: tuple[str, ...] = ()
    pinned: bool = False
    trending_rank: int | None = None
    popularity: float | None = None
    priority: int = 0
    source: str = ""

    @property
    def last_changed(self) -> datetime | None:
        """The newer of ``updated`` and ``published``."""
        stamps = [t for t in (self.updated, self.published) if t is not None]
        return max(stamps) if stamps else None


@dataclass(frozen=True)
class Skip:
    """An article the selection passed over, and why (shown in previews and manifests)."""

    article_id: str
    title: str
    reason: str


@dataclass(frozen=True)
class Digest:
    """What one edition contains, chosen by ``selection.select``."""

    lead: Article | None
    trending: tuple[Article, ...] = ()
    opinion: tuple[Article, ...] = ()
    skipped: tuple[Skip, ...] = ()
    now: datetime | None = None

    @property
    def is_empty(self) -> bool:
        """No lead story means nothing to send."""
        return self.lead is None

    def articles(self) -> tuple[Article, ...]:
        """Every article in the digest, lead first."""
        lead = (self.lead,) if self.lead else ()
        return lead + self.trending + self.opinion


_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Subscriber:
    """One row of the subscriber list. ``email`` is normalized; ``line`` is the CSV line."""

    email: str
    name: str = ""
    status: str = "active"
    fields: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    line: int = 0

    @property
    def active(self) -> bool:
        """Only active subscribers are ever mailed."""
        return self.status == "active"


@dataclass(frozen=True)
class Edition:
    """A rendered edition: HTML and text with personal slots, rendered once.

    ``html`` and ``text`` contain the slot tokens of ``newsletter.placeholders``; they are
    filled per subscriber without re-rendering.
    """

    id: str
    subject: str
    preheader: str
    html: str
    text: str
    digest: Digest
    created: datetime
    warnings: tuple[str, ...] = ()

    @property
    def html_size(self) -> int:
        """Size of the HTML part in bytes (UTF-8), as Gmail measures for clipping."""
        return len(self.html.encode("utf-8"))


@dataclass(frozen=True)
class OutgoingMessage:
    """The exact bytes for one recipient (CRLF line endings) and what identifies them.

    ``payload`` is the SMTP DATA payload for ``data`` (CRLF lines, lines starting with
    "." doubled, ending in CRLF "." CRLF) when the producer made it; a sender makes it
    from ``data`` otherwise. ``pieces`` are the parts ``data`` is joined from when the
    producer kept them: each starts at a line start, and those at even positions are the
    same for every message of an edition (a signer prepares them once). A copy with
    other ``data`` must keep neither the old ``payload`` nor the old ``pieces``.
    ``envelope_from`` is this message's own envelope sender (a VERP return path), ""
    for the run's.
    """

    recipient: str
    message_id: str
    data: bytes
    payload: bytes | None = field(default=None, repr=False)
    pieces: tuple[bytes, ...] = field(default=(), repr=False, compare=False)
    envelope_from: str = ""
