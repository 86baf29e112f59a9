"""Preflight: check an edition and one personalized sample message before anything is sent.

Errors mean the mail is broken, non-compliant or likely rejected (the send stops);
warnings mean it will arrive but could be better. Every finding names where the
problem is and how to fix it. Only ``check_links=True`` touches the network.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from html.entities import html5 as html5_entities
from html.parser import HTMLParser
from http.client import HTTPException, HTTPMessage
from typing import IO
from urllib.parse import quote, urlsplit

from newsletter import placeholders
from newsletter.config.settings import Settings
from newsletter.dkim import SIGNED_HEADERS, DkimSettings, DkimSigner, aligned, verify
from newsletter.errors import DeliveryError, NewsletterError
from newsletter.limits import HTML_CLIP_BYTES, HTML_WARN_BYTES, MAX_LINE_OCTETS
from newsletter.models import Edition, Subscriber

ERROR = "error"
WARNING = "warning"

SUBJECT_WARN_CHARS = 78
SUBJECT_MAX_CHARS = 200
PREHEADER_MIN_CHARS = 40
PREHEADER_MAX_CHARS = 140
IMAGE_ONLY_HTML_CHARS = 3200
LOW_CONTRAST_DISTANCE = 12.0
ALT_DIFF_PERCENT = 50.0
LINK_TIMEOUT = 10.0
LINK_WORKERS = 8
MAX_LINKS = 300
LINK_BUDGET = 60.0
SKIPPED = "skipped"
ONE_CLICK = "List-Unsubscribe=One-Click"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


ACTIVE_TAGS = _names(
    "script iframe object embed form input button select textarea applet frame frameset base portal"
)
VOID_TAGS = _names("area base br col embed hr img input link meta param source track wbr")
HIDDEN_TEXT_TAGS = _names("style script title head template noscript")
MARKUP_TAGS = _names(
    "a b i u p br hr div span img table tr td th tbody thead ul ol li h1 h2 h3 h4 h5 h6 "
    "strong em font center html head body style script blockquote small sup sub code pre "
    "title meta link"
)
URL_ATTRIBUTES = _names(
    "href src background action formaction poster xlink:href lowsrc dynsrc data"
)
NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "silver": (192, 192, 192),
    "yellow": (255, 255, 0),
    "navy": (0, 0, 128),
    "whitesmoke": (245, 245, 245),
}
HEADER_SPAM_NOTES = {
    "Date": " (SpamAssassin MISSING_DATE, 2.7 points)",
    "Message-ID": " (SpamAssassin MISSING_MID)",
}

_ENTITY = re.compile(r"&(?:#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]*)\1\s*\)""", re.IGNORECASE)
_FONT_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(px|pt|em|rem|%)?", re.IGNORECASE)
_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")
_RGB = re.compile(r"rgba?\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})", re.IGNORECASE)
_ANGLE_URLS = re.compile(r"<([^<>]*)>")
_DARK_MODE = re.compile(r"prefers-color-scheme\s*:\s*dark", re.IGNORECASE)
_TEXT_URL = re.compile(r"https?://[^\s<>\"]+")

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Finding:
    """One preflight result: level (error or warning), a stable code, and where + how to fix."""

    level: str
    code: str
    message: str

    def __str__(self) -> str:
        """Show the finding as one line: ``error [code] message``."""
        return f"{self.level} [{self.code}] {self.message}"


class PreflightError(NewsletterError):
    """Preflight found errors: nothing was sent."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        lines = "\n".join(f"  - [{f.code}] {f.message}" for f in self.findings)
        super().__init__(
            f"preflight found {len(self.findings)} error(s), so nothing was sent:\n{lines}\n"
            "Fix them, then run 'newsletter check' again."
        )


def errors(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that stop a send."""
    return [f for f in findings if f.level == ERROR]


def raise_for_errors(findings: Iterable[Finding]) -> None:
    """Raise ``PreflightError`` listing every error, if there is any."""
    found = errors(findings)
    if found:
        raise PreflightError(found)


def sample_subscriber(settings: Settings) -> Subscriber:
    """A made-up subscriber on the sender's domain, to build the sample message for."""
    return Subscriber(
        email=f"preflight.sample@{settings.sender.domain or 'example.org'}",
        name="Sample Reader",
    )


class _Report:
    """Collects findings."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, code: str, message: str) -> None:
        self.findings.append(Finding(ERROR, code, message))

    def warning(self, code: str, message: str) -> None:
        self.findings.append(Finding(WARNING, code, message))


def _show(value: str, limit: int = 80) -> str:
    """A value safe to print: control characters escaped, long values cut."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def _listing(values: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(_show(v) for v in values[:limit])
    return f"{shown} and {len(values) - limit} more" if len(values) > limit else shown


def _normal(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- the HTML walk


@dataclass
class _Style:
    tag: str
    fg: RGB | None
    bg: RGB | None
    tiny: bool = False
    hidden: bool = False


@dataclass
class HtmlFacts:
    """What one walk over the HTML found."""

    lang: str | None = None
    images: list[tuple[str, str | None]] = field(default_factory=list)  # (src, alt)
    links: list[str] = field(default_factory=list)
    urls: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, attribute, value)
    active: list[str] = field(default_factory=list)
    handlers: list[str] = field(default_factory=list)
    stylesheets: list[str] = field(default_factory=list)
    tables: int = 0
    tables_unmarked: int = 0
    css: list[str] = field(default_factory=list)  # <style> blocks and style attributes
    visible_text: list[str] = field(default_factory=list)
    all_text: list[str] = field(default_factory=list)
    low_contrast: list[tuple[str, RGB, RGB]] = field(default_factory=list)
    tiny_text: list[str] = field(default_factory=list)
    has_dark_mode: bool = False


def parse_color(value: str) -> RGB | None:
    """Parse a CSS or attribute colour (hex, rgb(), a few names); None if unknown."""
    value = value.strip().lower()
    if match := _HEX.search(value):
        digits = match.group(1)
        digits = "".join(d * 2 for d in digits) if len(digits) == 3 else digits
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    if match := _RGB.search(value):
        r, g, b = (min(255, int(x)) for x in match.groups())
        return (r, g, b)
    return next((NAMED_COLORS[w] for w in re.split(r"[\s,]+", value) if w in NAMED_COLORS), None)


def contrast_distance(fg: RGB, bg: RGB) -> float:
    """Brightness-weighted colour distance (the measure of SpamAssassin's low-contrast rule)."""
    r, g, b = (fg[0] - bg[0], fg[1] - bg[1], fg[2] - bg[2])
    return float(((0.2126 * r) ** 2 + (0.7152 * g) ** 2 + (0.0722 * b) ** 2) ** 0.5)


def _declarations(style: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in style.split(";"):
        name, sep, value = part.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def _font_px(value: str) -> float | None:
    match = _FONT_SIZE.match(value)
    if not match:
        return None
    unit = (match.group(2) or "px").lower()
    return (
        float(match.group(1)) * {"px": 1.0, "pt": 4 / 3, "em": 16.0, "rem": 16.0, "%": 0.16}[unit]
    )


class _HtmlScan(HTMLParser):
    """Walk the HTML once, keeping a stack of text colours, and collect what the checks need."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = HtmlFacts()
        self.stack = [_Style("#root", (0, 0, 0), (255, 255, 255))]
        self.raw_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        self._record(tag, values)
        if tag not in VOID_TAGS:
            self.stack.append(self._style(tag, values))
            self.raw_depth += tag in HIDDEN_TEXT_TAGS

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, {name.lower(): (value or "") for name, value in attrs})

    def handle_endtag(self, tag: str) -> None:
        if all(s.tag != tag for s in self.stack[1:]):
            return
        while len(self.stack) > 1:
            popped = self.stack.pop()
            self.raw_depth -= popped.tag in HIDDEN_TEXT_TAGS
            if popped.tag == tag:
                break

    def handle_data(self, data: str) -> None:
        top, facts = self.stack[-1], self.facts
        if top.tag == "style":
            facts.css.append(data)
            facts.has_dark_mode = facts.has_dark_mode or bool(_DARK_MODE.search(data))
        if self.raw_depth or not data.strip():
            return
        facts.all_text.append(data)
        if not top.hidden:
            facts.visible_text.append(data)
        if top.fg and top.bg and contrast_distance(top.fg, top.bg) < LOW_CONTRAST_DISTANCE:
            facts.low_contrast.append((_normal(data), top.fg, top.bg))
        if top.tiny:
            facts.tiny_text.append(_normal(data))

    def _style(self, tag: str, values: dict[str, str]) -> _Style:
        parent = self.stack[-1]
        style = _Style(tag, parent.fg, parent.bg, parent.tiny, parent.hidden)
        if "bgcolor" in values:
            style.bg = parse_color(values["bgcolor"]) or style.bg
        if tag in ("font", "body") and (values.get("color") or values.get("text")):
            style.fg = parse_color(values.get("color") or values.get("text", "")) or style.fg
        css = _declarations(values.get("style", ""))
        for name in ("background-color", "background"):
            if name in css:
                style.bg = parse_color(css[name]) or style.bg
        if "color" in css:
            transparent = css["color"].lower().startswith("transparent")
            style.fg = style.bg if transparent else (parse_color(css["color"]) or style.fg)
        if "font-size" in css:
            px = _font_px(css["font-size"])
            style.tiny = px is not None and px < 2
        style.hidden = style.hidden or css.get("display", "").lower().startswith("none")
        return style

    def _record(self, tag: str, values: dict[str, str]) -> None:
        facts = self.facts
        if tag == "html":
            facts.lang = values.get("lang")
        if tag in ACTIVE_TAGS or tag.startswith("mj-"):
            facts.active.append(f"<{tag}>")
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            facts.active.append('<meta http-equiv="refresh">')
        if tag == "link" and "stylesheet" in values.get("rel", "").lower():
            facts.stylesheets.append(values.get("href", ""))
        if tag == "table":
            facts.tables += 1
            facts.tables_unmarked += values.get("role", "").lower() != "presentation"
        if tag == "img":
            facts.images.append((values.get("src", ""), values.get("alt")))
        if tag == "a" and "href" in values:
            facts.links.append(values["href"].strip())
        for name, value in values.items():
            if name.startswith("on"):
                facts.handlers.append(f"<{tag} {name}>")
            elif name in URL_ATTRIBUTES:
                facts.urls.append((tag, name, value.strip()))
        if values.get("style"):
            facts.css.append(values["style"])


def scan_html(document: str) -> HtmlFacts:
    """Walk ``document`` with the stdlib HTML parser and return what it found."""
    scan = _HtmlScan()
    scan.feed(document)
    scan.close()
    return scan.facts


# --------------------------------------------------------------------------- the sample message


@dataclass
class _Sample:
    message: EmailMessage
    html: str | None
    text: str | None

    def header(self, name: str) -> str:
        value = self.message.get(name)
        return "" if value is None else _normal(str(value))

    def count(self, name: str) -> int:
        return len(self.message.get_all(name) or [])

    def unsubscribe_urls(self) -> list[str]:
        return [url.strip() for url in _ANGLE_URLS.findall(self.header("List-Unsubscribe"))]


def _part_text(message: EmailMessage, subtype: str, out: _Report) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    try:
        return str(part.get_content())
    except (LookupError, ValueError) as err:
        out.error(
            f"{subtype}-undecodable",
            f"the text/{subtype} part cannot be decoded ({err}); declare a charset like utf-8",
        )
        return None


def _parse_sample(data: bytes, out: _Report) -> _Sample:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    for defect in parsed.defects:
        out.warning("mime-defect", f"the message structure has a defect: {defect!r}")
    return _Sample(parsed, _part_text(parsed, "html", out), _part_text(parsed, "plain", out))


def _check_raw(data: bytes, out: _Report) -> None:
    lines = data.split(b"\r\n")
    long_lines = [n for n, line in enumerate(lines, 1) if len(line) > MAX_LINE_OCTETS]
    if long_lines:
        out.error(
            "line-too-long",
            f"message line {long_lines[0]} is longer than {MAX_LINE_OCTETS} octets "
            f"({len(long_lines)} such line(s)); servers break or reject it: encode the parts "
            "as quoted-printable or base64",
        )
    if any(b"\n" in line or b"\r" in line for line in lines):
        out.error("bare-line-ending", "the message has a bare LF or CR; SMTP needs CRLF")
    if any(byte > 127 for byte in data.split(b"\r\n\r\n", 1)[0]):
        out.error("header-8bit", "a header has raw non-ASCII bytes; use RFC 2047 encoded words")


def _domain_of(address_header: str) -> str:
    pairs = getaddresses([address_header])
    address = pairs[0][1] if pairs else ""
    return address.rpartition("@")[2].lower() if "@" in address else ""


def _check_headers(sample: _Sample, out: _Report) -> None:
    for name in ("From", "To", "Date", "Message-ID"):
        if not sample.header(name):
            out.error(
                f"{name.lower()}-missing",
                f"the message has no {name} header{HEADER_SPAM_NOTES.get(name, '')}; "
                "the message builder must set it",
            )
        elif sample.count(name) > 1:
            out.error(f"{name.lower()}-repeated", f"the {name} header appears more than once")
    from_domain = _domain_of(sample.header("From"))
    message_id = sample.header("Message-ID")
    id_domain = message_id.rpartition("@")[2].strip("<> ").lower()
    if from_domain and message_id and id_domain != from_domain:
        out.warning(
            "message-id-domain",
            f"the Message-ID domain {id_domain!r} differs from the From domain "
            f"{from_domain!r}; make Message-IDs on the sender's domain ([sender] address)",
        )
    if not sample.header("List-Id"):
        out.warning("list-id-missing", "no List-Id header; set [list] id")


def _check_subject(sample: _Sample, out: _Report) -> None:
    subject = sample.header("Subject")
    if not subject:
        out.error(
            "subject-missing",
            "the message has no subject; set [email] subject or give the lead a headline",
        )
        return
    if len(subject) > SUBJECT_MAX_CHARS:
        out.error(
            "subject-too-long",
            f"the subject has {len(subject)} characters (limit {SUBJECT_MAX_CHARS}); "
            "set a short [email] subject",
        )
    elif len(subject) > SUBJECT_WARN_CHARS:
        out.warning(
            "subject-long",
            f"the subject has {len(subject)} characters; inboxes cut it after about "
            f"{SUBJECT_WARN_CHARS}: {_show(subject)}; set a shorter [email] subject",
        )
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 10 and all(c.isupper() for c in letters):
        out.warning(
            "subject-all-caps",
            "the subject is all capitals (SpamAssassin SUBJ_ALL_CAPS); use sentence case",
        )


def _check_preheader(edition: Edition, facts: HtmlFacts | None, out: _Report) -> None:
    preheader = _normal(edition.preheader)
    if not preheader:
        out.warning(
            "preheader-missing",
            "the edition has no preheader (the inbox preview line); set [email] preheader "
            "or give the lead story a summary",
        )
        return
    if not PREHEADER_MIN_CHARS <= len(preheader) <= PREHEADER_MAX_CHARS:
        out.warning(
            "preheader-length",
            f"the preheader has {len(preheader)} characters; aim for "
            f"{PREHEADER_MIN_CHARS}–{PREHEADER_MAX_CHARS} so the preview line is filled "
            f"but not cut ([email] preheader): {_show(preheader)}",
        )
    if facts is not None and preheader not in _normal(" ".join(facts.all_text)):
        out.warning(
            "preheader-not-in-html",
            "the preheader text is not in the HTML; the template must put it first in <body>",
        )


def _check_unsubscribe(
    sample: _Sample, facts: HtmlFacts | None, settings: Settings, out: _Report
) -> None:
    post = sample.header("List-Unsubscribe-Post")
    if not post:
        out.error(
            "list-unsubscribe-post-missing",
            f"no List-Unsubscribe-Post header; Gmail and Yahoo require '{ONE_CLICK}' "
            "(RFC 8058) on bulk mail",
        )
    elif post != ONE_CLICK:
        out.error(
            "list-unsubscribe-post-value",
            f"List-Unsubscribe-Post is {_show(post)}; it must be exactly '{ONE_CLICK}'",
        )
    if not sample.header("List-Unsubscribe"):
        out.error(
            "list-unsubscribe-missing",
            "no List-Unsubscribe header; set [list] unsubscribe_url (an https:// URL)",
        )
        return
    https = [u for u in sample.unsubscribe_urls() if u.lower().startswith("https://")]
    if not https:
        out.error(
            "list-unsubscribe-https",
            "List-Unsubscribe has no https:// URL; one-click unsubscribe (RFC 8058) needs one",
        )
        return
    url = https[0]
    if url.rstrip("/") == settings.list.unsubscribe_url.rstrip("/"):
        out.warning(
            "unsubscribe-not-personal",
            "the List-Unsubscribe URL is the same for everyone; one-click needs a personal URL",
        )
    if facts is not None and url not in facts.links:
        out.error(
            "unsubscribe-not-in-html",
            f"the HTML part has no link to the personal unsubscribe URL {_show(url)} that "
            "List-Unsubscribe carries; the footer template must link placeholders.UNSUBSCRIBE_URL",
        )
    if sample.text is not None and url not in sample.text:
        out.error(
            "unsubscribe-not-in-text",
            f"the text part lacks the personal unsubscribe URL {_show(url)}; "
            "the text template must print placeholders.UNSUBSCRIBE_URL",
        )


def _check_slots(sample: _Sample, data: bytes, out: _Report) -> None:
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    bodies = (sample.html or "", sample.text or "", head)
    left = sorted({token for token in placeholders.ALL for body in bodies if token in body})
    if left:
        out.error(
            "slot-unfilled",
            f"personal slot(s) {', '.join(left)} are not filled in the sample message; "
            "the message builder must replace every slot",
        )


def _check_size(html_text: str, out: _Report) -> None:
    size = len(html_text.encode("utf-8"))
    if size >= HTML_CLIP_BYTES:
        out.error(
            "html-too-large",
            f"the HTML part is {size:,} bytes; Gmail clips HTML over about "
            f"{HTML_CLIP_BYTES:,} bytes and hides the footer with the unsubscribe link: lower "
            "[selection] trending/opinion or slim the templates",
        )
    elif size >= HTML_WARN_BYTES:
        out.warning(
            "html-large",
            f"the HTML part is {size:,} bytes, near Gmail's clipping limit (about "
            f"{HTML_CLIP_BYTES:,}); keep it under {HTML_WARN_BYTES:,} ([selection] counts)",
        )


def _url_problem(value: str, *, link: bool) -> str | None:
    """Why ``value`` is not acceptable in an email, or None."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return None if parts.hostname else "has no host"
    if link and scheme in ("mailto", "tel"):
        return None
    if scheme in ("javascript", "vbscript", "data"):
        return f"uses {scheme}: (active content)"
    return "is not an absolute http(s) URL"


def _check_urls(facts: HtmlFacts, out: _Report) -> None:
    bad: list[str] = []
    active: list[str] = []
    insecure: list[str] = []
    for tag, attribute, value in facts.urls:
        problem = _url_problem(value, link=tag == "a" and attribute == "href")
        if problem is None:
            if value.lower().startswith("http://"):
                insecure.append(value)
            continue
        entry = f"<{tag} {attribute}={_show(value, 60)}> {problem}"
        (active if "active content" in problem else bad).append(entry)
    for css in facts.css:
        for _quote, value in _CSS_URL.findall(css):
            if _url_problem(value.strip(), link=False) is not None:
                bad.append(f"CSS url({_show(value, 60)}) is not an absolute http(s) URL")
    if bad:
        out.error(
            "url-not-absolute",
            f"{len(bad)} link(s)/image(s) in the HTML are not absolute http(s) URLs: "
            f"{'; '.join(bad[:3])}{' …' if len(bad) > 3 else ''}; write full https:// URLs "
            "(relative URLs have no base in an email)",
        )
    if active:
        out.error("active-url", f"{'; '.join(active[:3])}: remove it from the content")
    if insecure:
        out.warning("insecure-url", f"{len(insecure)} URL(s) use plain http: {_listing(insecure)}")


def _check_images(facts: HtmlFacts, out: _Report) -> None:
    missing = [src for src, alt in facts.images if alt is None]
    empty = [src for src, alt in facts.images if alt is not None and not alt.strip()]
    if missing:
        out.error(
            "image-alt-missing",
            f"{len(missing)} image(s) have no alt attribute: {_listing(missing)}; images are "
            "often blocked, so each needs alt text (the template should fall back to the "
            "headline)",
        )
    if empty:
        out.warning(
            "image-alt-empty",
            f"{len(empty)} image(s) have an empty alt: {_listing(empty)}; fine for "
            "decoration, otherwise describe the image",
        )


def _check_active(facts: HtmlFacts, html_text: str, out: _Report) -> None:
    if "<mj-" in html_text.lower():
        out.error(
            "mjml-leftover",
            "the HTML contains '<mj-' tags MJML did not convert (a misspelt component); "
            "fix the template",
        )
    active = [tag for tag in facts.active if not tag.startswith("<mj-")]
    if active:
        listed = ", ".join(f"{t} ×{n}" if n > 1 else t for t, n in Counter(active).items())
        out.error(
            "active-content",
            f"the HTML contains {listed}; mail clients strip it and filters junk it: "
            "remove it from the templates and content",
        )
    if facts.handlers:
        out.error(
            "event-handler",
            f"the HTML has event handler attribute(s) {_listing(sorted(set(facts.handlers)))}; "
            "remove them",
        )
    if facts.stylesheets:
        out.warning(
            "external-stylesheet",
            f"<link rel=stylesheet> {_listing(facts.stylesheets)} is ignored by mail "
            "clients; inline the CSS instead",
        )


def _check_theme(facts: HtmlFacts, out: _Report) -> None:
    lang = (facts.lang or "").strip()
    if not lang or lang.lower() == "und":
        out.warning(
            "html-lang",
            "<html> has no lang attribute; screen readers need it: set [publication] "
            "language and pass it to <mjml lang>",
        )
    if facts.tables_unmarked:
        out.warning(
            "table-role",
            f'{facts.tables_unmarked} of {facts.tables} table(s) lack role="presentation"; '
            "screen readers announce layout tables as data",
        )
    if not facts.has_dark_mode:
        out.warning(
            "dark-mode-missing",
            "no @media (prefers-color-scheme: dark) rules in the HTML; include the theme's "
            "dark.css",
        )


def _check_hidden_text(facts: HtmlFacts, out: _Report) -> None:
    if facts.low_contrast:
        text, fg, bg = facts.low_contrast[0]
        out.warning(
            "low-contrast",
            f"{len(facts.low_contrast)} text run(s) are coloured almost like their background "
            f"(first: {_show(text, 50)}, {_hex(fg)} on {_hex(bg)}); filters score hidden "
            "text (SpamAssassin HTML_FONT_LOW_CONTRAST): hide the preheader with "
            "display:none;max-height:0;overflow:hidden, not with a colour",
        )
    if facts.tiny_text:
        out.warning(
            "invisible-text",
            f"{len(facts.tiny_text)} text run(s) use a font size under 2px (first: "
            f"{_show(facts.tiny_text[0], 50)}); filters score invisible text "
            "(SpamAssassin __FONT_INVIS): drop the tiny font-size",
        )


def _hex(color: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def _check_image_only(facts: HtmlFacts, html_text: str, out: _Report) -> None:
    if facts.images and len(html_text) <= IMAGE_ONLY_HTML_CHARS:
        out.warning(
            "image-only",
            f"the HTML is only {len(html_text)} characters around {len(facts.images)} "
            f"image(s); filters score short image mail (SpamAssassin HTML_IMAGE_ONLY_*, "
            "up to 2.8 points): add text",
        )


def _check_address_in_urls(sample: _Sample, facts: HtmlFacts | None, out: _Report) -> None:
    recipients = getaddresses([sample.header("To")])
    address = recipients[0][1].lower() if recipients else ""
    if "@" not in address:
        return
    forms = {address, quote(address, safe="").lower(), quote(address, safe="@").lower()}
    urls = [*(facts.links if facts else []), *sample.unsubscribe_urls()]
    urls += _TEXT_URL.findall(sample.text or "")
    leaking = sorted(
        {u for u in urls if u.lower().startswith("http") and any(f in u.lower() for f in forms)}
    )
    if leaking:
        out.warning(
            "address-in-url",
            f"{len(leaking)} URL(s) carry the recipient's address (first: "
            f"{_show(leaking[0])}); filters score it (SpamAssassin GB_CUSTOM_HTM_URI, "
            "1 point) and it leaks into web logs: identify subscribers by an opaque token",
        )


class _TagFinder(HTMLParser):
    """Find HTML tags in text that should be plain."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in MARKUP_TAGS or tag.startswith("mj-"):
            self.found.add(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in MARKUP_TAGS or tag.startswith("mj-"):
            self.found.add(f"</{tag}>")


def markup_tags(text: str) -> list[str]:
    """The HTML tags that appear in ``text`` (ignores ``<https://…>`` and ``a < b``)."""
    finder = _TagFinder()
    finder.feed(text)
    finder.close()
    return sorted(finder.found)


def raw_entities(text: str) -> list[str]:
    """The HTML character references left in ``text`` (``&amp;``, ``&#8217;`` …)."""
    found = {m for m in _ENTITY.findall(text) if m.startswith("&#") or m[1:] in html5_entities}
    return sorted(found)


def _words(text: str) -> Counter[str]:
    return Counter(w for w in text.split() if re.search(r"\w", w))


def _check_text(sample: _Sample, facts: HtmlFacts | None, out: _Report) -> None:
    text = sample.text
    if text is None:
        out.error(
            "text-missing",
            "the message has no text/plain part; send multipart/alternative with a real "
            "text version (SpamAssassin MIME_HTML_ONLY)",
        )
        return
    if not text.strip():
        out.error("text-empty", "the text/plain part is empty; check digest.txt.j2")
        return
    tags = markup_tags(text)
    if tags:
        out.warning(
            "text-markup",
            f"the text part contains HTML markup ({_listing(tags)}); the text template must "
            "print plain text (the plain-text fields, not the HTML summary)",
        )
    entities = raw_entities(text)
    if entities:
        out.warning(
            "text-entities",
            f"the text part contains raw HTML entities ({_listing(entities)}); unescape "
            "them in the text template",
        )
    if facts is not None:
        _check_alternatives(text, facts, out)


def _check_alternatives(text: str, facts: HtmlFacts, out: _Report) -> None:
    """Compare the parts' words the way SpamAssassin's MPART_ALT_DIFF does."""
    html_words = _words(" ".join(facts.visible_text))
    text_words = _words(text)
    if not html_words:
        return
    missing = [w for w, n in html_words.items() if n - text_words.get(w, 0) >= 1]
    percent = 100.0 * len(missing) / len(html_words)
    if percent >= ALT_DIFF_PERCENT or len(text_words) > 3 * len(html_words):
        out.warning(
            "text-differs",
            f"{percent:.0f}% of the HTML's words are missing from the text part; filters "
            "score parts that differ (SpamAssassin MPART_ALT_DIFF, up to 2.2 points): "
            "render the same stories in both",
        )


def _check_dkim(data: bytes, settings: Settings, from_domain: str, out: _Report) -> None:
    dkim_settings: DkimSettings | None = settings.dkim
    if dkim_settings is None:
        out.warning(
            "dkim-missing",
            "messages are not DKIM-signed; Gmail and Yahoo require DKIM on bulk mail: add a "
            "[dkim] table (selector, key_file) unless your relay signs for you",
        )
        return
    if from_domain and not aligned(dkim_settings.domain, from_domain):
        out.error(
            "dkim-alignment",
            f"dkim.domain {dkim_settings.domain!r} does not align with the From domain "
            f"{from_domain!r}, so DMARC fails: sign with the From domain",
        )
    try:
        signed = DkimSigner(dkim_settings).sign(data)
    except DeliveryError as err:
        out.error("dkim-sign", f"signing the sample message failed: {err}")
        return
    ok, covered = verify(signed, dkim_settings)
    missing = [h for h in SIGNED_HEADERS if h.lower() not in covered]
    if not ok:
        out.error(
            "dkim-verify",
            "the sample's DKIM signature does not verify against the key's own public key; "
            f"check {dkim_settings.key_origin}",
        )
    elif missing:
        out.error("dkim-headers", f"the DKIM signature does not cover {', '.join(missing)}")


# --------------------------------------------------------------------------- links


def link_targets(facts: HtmlFacts, skip: Iterable[str] = ()) -> list[str]:
    """The distinct http(s) links and image sources of the HTML, except ``skip``."""
    skipped = set(skip)
    urls = [*facts.links, *(src for src, _alt in facts.images)]
    wanted = (u for u in urls if u.lower().startswith(("http://", "https://")))
    return list(dict.fromkeys(u for u in wanted if u not in skipped))


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s) URLs."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        """Refuse a redirect to anything but http(s)."""
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        _HttpOnlyRedirects(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
    ):
        opener.add_handler(handler)
    return opener


def probe_link(url: str, timeout: float = LINK_TIMEOUT) -> str | None:
    """HEAD ``url`` (GET if HEAD is refused); return the problem, or None if it answers < 400."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return "not an http(s) URL"
    opener = _opener()
    status = 0
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url, method=method, headers={"User-Agent": "newsletter-linkcheck/1"}
        )
        try:
            with opener.open(request, timeout=timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as err:
            status = err.code
            err.close()
            if status < 400:
                return f"a redirect that cannot be followed (HTTP {status}: a loop or not http)"
        except (urllib.error.URLError, HTTPException, OSError, ValueError) as err:
            return f"unreachable ({getattr(err, 'reason', err)})"
        if status not in (405, 501):
            break
    return f"answering HTTP {status}" if status >= 400 else None


def probe_links(
    urls: Sequence[str],
    *,
    timeout: float = LINK_TIMEOUT,
    workers: int = LINK_WORKERS,
    budget: float = LINK_BUDGET,
) -> list[Finding]:
    """Probe each URL with bounded time and concurrency; one warning per broken link."""
    out = _Report()
    targets = list(urls)
    if len(targets) > MAX_LINKS:
        out.warning("links-truncated", f"{len(targets)} links; checked the first {MAX_LINKS}")
        targets = targets[:MAX_LINKS]
    deadline = time.monotonic() + budget

    def probe(url: str) -> str | None:
        return SKIPPED if time.monotonic() > deadline else probe_link(url, timeout)

    results: list[str | None] = []
    if targets:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets)))) as pool:
            results = list(pool.map(probe, targets))
    for url, problem in zip(targets, results, strict=True):
        if problem is not None and problem != SKIPPED:
            out.warning("link-broken", f"{_show(url)} is {problem}; fix or remove the link")
    skipped = results.count(SKIPPED)
    if skipped:
        out.warning("links-truncated", f"{skipped} link(s) were not checked within {budget:.0f} s")
    return out.findings


# --------------------------------------------------------------------------- entry point


def preflight(
    edition: Edition,
    sample_message: bytes,
    settings: Settings,
    *,
    check_links: bool = False,
) -> list[Finding]:
    """Check ``edition`` and a personalized ``sample_message``; return findings, errors first."""
    out = _Report()
    sample = _parse_sample(sample_message, out)
    _check_raw(sample_message, out)
    _check_headers(sample, out)
    _check_subject(sample, out)
    facts = scan_html(sample.html) if sample.html is not None else None
    if sample.html is None or facts is None:
        out.error("html-missing", "the message has no text/html part")
    else:
        _check_size(sample.html, out)
        _check_images(facts, out)
        _check_urls(facts, out)
        _check_active(facts, sample.html, out)
        _check_theme(facts, out)
        _check_hidden_text(facts, out)
        _check_image_only(facts, sample.html, out)
    _check_preheader(edition, facts, out)
    _check_unsubscribe(sample, facts, settings, out)
    _check_slots(sample, sample_message, out)
    _check_text(sample, facts, out)
    _check_address_in_urls(sample, facts, out)
    _check_dkim(sample_message, settings, _domain_of(sample.header("From")), out)
    findings = out.findings
    if check_links and facts is not None:
        findings += probe_links(link_targets(facts, sample.unsubscribe_urls()))
    return sorted(findings, key=lambda f: f.level != ERROR)
