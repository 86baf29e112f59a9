"""Look at raw bytes before parsing: what kind of document is it, and is it safe to parse?

Nothing here fetches or expands anything: XML entity declarations are only read as text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from newsletter.errors import ContentError
from newsletter.sanitize import absolute_url

from .masking import masked

SNIFF_BYTES = 65536
_EBCDIC_XML = b"\x4c\x6f\xa7\x94"
_SKIP_PROLOG = re.compile(
    r"\A(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE\s+[^\[>]*(?:\[.*?\]\s*)?>)", re.DOTALL | re.IGNORECASE
)
_DOCTYPE_NAME = re.compile(r"<!DOCTYPE\s+([\w:.-]+)", re.IGNORECASE)
_ROOT = re.compile(r"<([A-Za-z_][\w:.-]*)")
_COMMENT_OR_CDATA = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>", re.DOTALL)
_ENTITY = re.compile(r"<!ENTITY\b(?P<body>[^>]*)>?", re.IGNORECASE)
_SAFE_ENTITY = re.compile(
    r"""\A\s+[A-Za-z_][\w.-]*\s+(?:"(?:[^"&%<]|&\#x?[0-9A-Fa-f]+;)*"|'(?:[^'&%<]|&\#x?[0-9A-Fa-f]+;)*')\s*\Z"""
)
_RELATIVE = re.compile(r"\A[\w./?=&%~+-]{1,300}\Z")
HTML_ROOTS = frozenset({"html", "head", "body"})
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json",
        "text/xml",
        "application/xml",
    }
)


def as_text(data: bytes, limit: int | None = None) -> str:
    """An ASCII-faithful view of raw bytes for pattern checks (UTF-16/32 and EBCDIC too)."""
    chunk = data if limit is None else data[:limit]
    if chunk.startswith(_EBCDIC_XML):
        return chunk.decode("cp037", "replace")
    return chunk.replace(b"\x00", b"").decode("latin-1")


_SIGNATURES = (
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or an office document"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x7fELF", "a program"),
)
_CONTROL_BYTES = frozenset(range(32)) - {9, 10, 12, 13}


def describe_bytes(data: bytes) -> str:
    """Say what kind of file the bytes look like, without repeating any of them."""
    for magic, what in _SIGNATURES:
        if data.startswith(magic):
            return f"it looks like {what}"
    sample = data[:SNIFF_BYTES]
    if sum(byte in _CONTROL_BYTES for byte in sample) > len(sample) // 100:
        return "it looks like binary data"
    lines = sample.count(b"\n") + (not sample.endswith(b"\n"))
    more = "+" if len(data) > len(sample) else ""
    return f"it is {lines}{more} line(s) of text starting with neither {{ nor <"


def first_char(data: bytes) -> str:
    """The first character that is not a byte-order mark or white space ('' if none)."""
    text = as_text(data, 4096).lstrip("\ufeff\u00ef\u00bb\u00bf\u00fe\u00ff \t\r\n")
    return text[:1]


def root_element(data: bytes) -> tuple[str, str]:
    """Return the DOCTYPE name and the root element name of a markup document (lower-case)."""
    text = as_text(data, SNIFF_BYTES).lstrip("\ufeff\u00ef\u00bb\u00bf\u00fe\u00ff")
    doctype = ""
    while True:
        match = _SKIP_PROLOG.match(text)
        if not match:
            break
        name = _DOCTYPE_NAME.match(match.group(0))
        if name:
            doctype = name.group(1).lower()
        text = text[match.end() :]
    root = _ROOT.match(text)
    return doctype, root.group(1).lower().rpartition(":")[2] if root else ""


def is_html_page(data: bytes) -> bool:
    """Tell whether the bytes are a web page rather than a feed."""
    doctype, root = root_element(data)
    return doctype == "html" or root in HTML_ROOTS


def check_entities(data: bytes, name: str) -> None:
    """Refuse XML that declares external, parameter or nested entities (XXE, entity bombs).

    Plain text entities such as ``<!ENTITY id "tag:example.com,">`` are allowed.
    """
    text = _COMMENT_OR_CDATA.sub("", as_text(data))
    for match in _ENTITY.finditer(text):
        body = match.group("body")
        if _SAFE_ENTITY.match(body):
            continue
        what = (
            "an external"
            if re.search(r"\b(SYSTEM|PUBLIC)\b", body)
            else ("a parameter" if body.lstrip().startswith("%") else "a nested or unusual")
        )
        raise ContentError(
            f"{name}: the XML declares {what} entity ({_entity_label(body)}); such documents "
            "can read local files or expand without limit, so it was not parsed. "
            "Ask the feed's publisher for a plain RSS or Atom feed"
        )


def _entity_label(body: str) -> str:
    words = body.split()
    names = [w for w in words if w != "%"]
    return f"<!ENTITY {names[0][:40]} …>" if names else "<!ENTITY …>"


class _LinkFinder(HTMLParser):
    """Collects ``<link rel="alternate" type="…feed…" href>`` and ``<base href>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and self.base is None:
            self.base = values.get("href") or None
        if tag != "link":
            return
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in FEED_TYPES and values.get("href"):
            self.links.append(values["href"])


def advertised_feeds(data: bytes, page_url: str | None) -> list[str]:
    """The feed URLs a web page advertises with ``<link rel="alternate">``, absolute, in order."""
    finder = _LinkFinder()
    finder.feed(data[: 4 * SNIFF_BYTES].decode("utf-8", "replace"))
    finder.close()
    base = absolute_url(finder.base, page_url) if finder.base else page_url
    found: list[str] = []
    for href in finder.links:
        url = absolute_url(href, base)
        if url is None and base is None and _RELATIVE.match(href):
            url = href.strip()
        if url and url not in found:
            found.append(url)
    return found[:10]


def html_page_error(data: bytes, name: str, page_url: str | None) -> ContentError:
    """The error for a web page given where a feed was expected."""
    feeds = advertised_feeds(data, page_url)
    if feeds:
        listed = "\n".join(f"  - {masked(url)}" for url in feeds)
        return ContentError(
            f"{name}: this is a web page, not a feed; it advertises these feeds, "
            f"use one of them as the source instead:\n{listed}"
        )
    return ContentError(
        f"{name}: this is a web page, not a feed, and it advertises no RSS or Atom feed; "
        "give the address of the site's feed instead"
    )
