"""Checks of the HTML part: size, URLs, images, active content, theme and hidden text."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlsplit

from newsletter.limits import HTML_CLIP_BYTES, HTML_WARN_BYTES
from newsletter.preflight.dark import check_dark_mode
from newsletter.preflight.findings import Report, listing, show
from newsletter.preflight.scan import MJML_PREFIX, HtmlFacts, hex_color

IMAGE_ONLY_HTML_CHARS = 3200

_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]*)\1\s*\)""", re.IGNORECASE)


def check_html(html_text: str, facts: HtmlFacts, out: Report) -> None:
    """Run every check of the HTML part, given its text and its scan."""
    _check_size(html_text, out)
    _check_images(facts, out)
    _check_urls(facts, out)
    _check_active(facts, html_text, out)
    _check_theme(facts, out)
    check_dark_mode(facts, out)
    _check_hidden_text(facts, out)
    _check_image_only(facts, html_text, out)


def _check_size(html_text: str, out: Report) -> None:
    """Check the HTML's size against Gmail's clipping limit."""
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


def _check_urls(facts: HtmlFacts, out: Report) -> None:
    """Check that every URL in the HTML and its CSS is absolute, safe and https."""
    bad: list[str] = []
    active: list[str] = []
    insecure: list[str] = []
    for tag, attribute, value in facts.urls:
        problem = _url_problem(value, link=tag == "a" and attribute == "href")
        if problem is None:
            if value.lower().startswith("http://"):
                insecure.append(value)
            continue
        entry = f"<{tag} {attribute}={show(value, 60)}> {problem}"
        (active if "active content" in problem else bad).append(entry)
    for css in facts.css:
        for _quote, value in _CSS_URL.findall(css):
            if _url_problem(value.strip(), link=False) is not None:
                bad.append(f"CSS url({show(value, 60)}) is not an absolute http(s) URL")
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
        out.warning("insecure-url", f"{len(insecure)} URL(s) use plain http: {listing(insecure)}")


def _check_images(facts: HtmlFacts, out: Report) -> None:
    """Check that every image has alt text."""
    missing = [src for src, alt in facts.images if alt is None]
    empty = [src for src, alt in facts.images if alt is not None and not alt.strip()]
    if missing:
        out.error(
            "image-alt-missing",
            f"{len(missing)} image(s) have no alt attribute: {listing(missing)}; images are "
            "often blocked, so each needs alt text (the template should fall back to the "
            "headline)",
        )
    if empty:
        out.warning(
            "image-alt-empty",
            f"{len(empty)} image(s) have an empty alt: {listing(empty)}; fine for "
            "decoration, otherwise describe the image",
        )


def _check_active(facts: HtmlFacts, html_text: str, out: Report) -> None:
    """Check for active content, event handlers, MJML leftovers and linked CSS."""
    if f"<{MJML_PREFIX}" in html_text.lower():
        out.error(
            "mjml-leftover",
            "the HTML contains '<mj-' tags MJML did not convert (a misspelt component); "
            "fix the template",
        )
    active = [tag for tag in facts.active if not tag.startswith(f"<{MJML_PREFIX}")]
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
            f"the HTML has event handler attribute(s) {listing(sorted(set(facts.handlers)))}; "
            "remove them",
        )
    if facts.stylesheets:
        out.warning(
            "external-stylesheet",
            f"<link rel=stylesheet> {listing(facts.stylesheets)} is ignored by mail "
            "clients; inline the CSS instead",
        )


def _check_theme(facts: HtmlFacts, out: Report) -> None:
    """Check the theme's accessibility: lang and layout table roles."""
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


def _check_hidden_text(facts: HtmlFacts, out: Report) -> None:
    """Warn about text hidden by its colour or a tiny font."""
    if facts.low_contrast:
        text, fg, bg = facts.low_contrast[0]
        out.warning(
            "low-contrast",
            f"{len(facts.low_contrast)} text run(s) are coloured almost like their background "
            f"(first: {show(text, 50)}, {hex_color(fg)} on {hex_color(bg)}); filters score hidden "
            "text (SpamAssassin HTML_FONT_LOW_CONTRAST): hide the preheader with "
            "display:none;max-height:0;overflow:hidden, not with a colour",
        )
    if facts.tiny_text:
        out.warning(
            "invisible-text",
            f"{len(facts.tiny_text)} text run(s) use a font size under 2px (first: "
            f"{show(facts.tiny_text[0], 50)}); filters score invisible text "
            "(SpamAssassin __FONT_INVIS): drop the tiny font-size",
        )


def _check_image_only(facts: HtmlFacts, html_text: str, out: Report) -> None:
    """Warn about short HTML around images."""
    if facts.images and len(html_text) <= IMAGE_ONLY_HTML_CHARS:
        out.warning(
            "image-only",
            f"the HTML is only {len(html_text)} characters around {len(facts.images)} "
            f"image(s); filters score short image mail (SpamAssassin HTML_IMAGE_ONLY_*, "
            "up to 2.8 points): add text",
        )
