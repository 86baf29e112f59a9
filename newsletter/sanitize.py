"""HTML sanitizing and URL checks shared by every content reader.

Summaries keep a small allowlist of inline and block tags; every link and image
must be an absolute http(s) URL, without a user name or password, and a relative
one must not be a host name missing its scheme (``url_mistake``); everything else
(scripts, handlers, styles, ``javascript:``) is removed. Plain text is derived for
titles and the text part.
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
_RELATIVE_STARTS = ("/", "./", "../", "?", "#")


def absolute_url(url: str | None, base: str | None = None) -> str | None:
    """Return ``url`` as an absolute http(s) URL (resolved against ``base``), or ``None``.

    Anything else (``javascript:``, ``data:``, ``file:``, protocol-less junk) is ``None``,
    and so is an address written wrongly (see ``url_mistake``).
    """
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url) or url_mistake(url):
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
    if "@" in parts.netloc:
        return None
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, parts.fragment)
    )


def url_mistake(url: str) -> str:
    """Say how ``url`` is written wrongly, or return ``""``; the words fit after the URL.

    Two mistakes are never guessed around:

    - a user name or password (``https://user:pass@host/``): an email would hand them
      to every reader, and ``https://bank.example@evil.example/`` is a known disguise;
    - no scheme where the first part could be a host name (``img.example.com/x.jpg``,
      ``www.example.com:8080/``): resolving it would make a path under the site that
      does not exist. A relative reference says it is one by starting with ``/``, ``./``,
      ``../``, ``?`` or ``#``, or by having no dot before its first ``/`` (``local``).
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if "@" in parts.netloc:
        return (
            f"carries a user name or password (…@{parts.hostname or '?'}); an email would show"
            " them to every reader: remove them"
        )
    if parts.scheme and "." not in parts.scheme:
        return ""
    if text.startswith(_RELATIVE_STARTS):
        return ""
    head = re.split(r"[/?#]", text, maxsplit=1)[0]
    if "." not in head:
        return ""
    return (
        f"has no scheme: write the full address (https://{text}), or start a path on the"
        f" site with / (/{text})"
    )


def url_refusal(url: object, base: str | None = None) -> str:
    """Say why ``absolute_url`` refuses ``url``; the words fit after the field's name."""
    if isinstance(url, str) and url.strip():
        mistake = url_mistake(url)
        if mistake:
            return f"{_shown(url)} {mistake}"
    return "must be an absolute http(s) URL"


def _shown(url: str) -> str:
    """``url`` quoted for a message, cut short; a user name or password is never shown."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        if "@" in parts.netloc:
            host = parts.netloc.rpartition("@")[2]
            text = urlunsplit((parts.scheme, f"…@{host}", parts.path, parts.query, ""))
    except ValueError:
        pass
    return repr(text if len(text) <= 100 else text[:99] + "…")


def clean_html(fragment: str, base: str | None = None, mistakes: list[str] | None = None) -> str:
    """Sanitize an HTML fragment with the allowlist; relative links resolve against ``base``.

    A link written wrongly (``url_mistake``) loses its address, keeping its text; what
    was wrong with it is appended to ``mistakes`` when given.
    """
    if not fragment:
        return ""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "a" and attribute == "href":
            if mistakes is not None and url_mistake(value):
                mistakes.append(url_refusal(value))
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
