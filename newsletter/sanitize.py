"""HTML sanitizing and URL checks shared by every content reader.

Summaries keep a small allowlist of inline and block tags; every link and image
must be an absolute http(s) URL; everything else (scripts, handlers, styles,
``javascript:``) is removed. Plain text is derived for titles and the text part.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3

ALLOWED_TAGS = {
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "s",
    "small",
    "sub",
    "sup",
    "br",
    "p",
    "ul",
    "ol",
    "li",
    "blockquote",
    "q",
    "cite",
    "code",
    "abbr",
    "span",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}}
_TRACKING_PREFIXES = ("utm_",)
_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(
    r"(?i)<\s*/?\s*(?:p|br|div|li|ul|ol|h[1-6]|blockquote|tr|td|th|table|section|article|"
    r"header|footer|figure|figcaption|hr|dd|dt|pre)\b[^>]*>"
)
_SPACE = re.compile(r"\s+")


def absolute_url(url: str | None, base: str | None = None) -> str | None:
    """Return ``url`` as an absolute http(s) URL (resolved against ``base``), or ``None``.

    Anything else (``javascript:``, ``data:``, ``file:``, protocol-less junk) is ``None``.
    """
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return None
    url = url.replace(" ", "%20")
    if base:
        try:
            url = urljoin(base, url)
        except ValueError:
            return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that cannot be
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, parts.fragment)
    )


def clean_html(fragment: str, base: str | None = None) -> str:
    """Sanitize an HTML fragment with the allowlist; relative links resolve against ``base``."""
    if not fragment:
        return ""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "a" and attribute == "href":
            return absolute_url(value, base)
        return value

    cleaned = nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https"},
        link_rel="noopener",
        strip_comments=True,
    )
    return cleaned.strip()


def plain_text(fragment: str) -> str:
    """Markup to one line of plain text: tags dropped, entities decoded, spaces folded."""
    if not fragment:
        return ""
    text = nh3.clean(_BLOCK.sub(" ", fragment), tags=set(), strip_comments=True)
    text = html.unescape(_TAG.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


def paragraphs_text(fragment: str) -> str:
    """Sanitized HTML to readable plain text, keeping paragraph breaks (for the text part)."""
    if not fragment:
        return ""
    marked = re.sub(r"(?i)<\s*(br|/p|/li|/blockquote)\b[^>]*>", "\n", fragment)
    marked = re.sub(r"(?i)<\s*li\b[^>]*>", "\n- ", marked)
    lines = [plain_text(line) for line in marked.split("\n")]
    out: list[str] = []
    for line in lines:
        if line.startswith("- ") and out and not out[-1]:
            out.pop()  # list items sit together
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def canonical_url(url: str) -> str:
    """Return the form of ``url`` used to spot duplicates.

    Scheme and host are lower-cased; the default port, the fragment, ``utm_*``
    parameters and a trailing slash on the path are dropped.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    if parts.username or parts.password:
        host = f"{parts.netloc.rpartition('@')[0]}@{host}"
    path = parts.path.rstrip("/")
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith(_TRACKING_PREFIXES)
    ]
    return urlunsplit((scheme, host, path, urlencode(query), ""))
