"""Checks of the text/plain part: present, free of HTML leftovers, and close to the HTML."""

from __future__ import annotations

import re
from collections import Counter
from html.entities import html5 as html5_entities
from html.parser import HTMLParser

from newsletter.preflight.findings import Report, listing
from newsletter.preflight.sample import Sample
from newsletter.preflight.scan import MJML_PREFIX, HtmlFacts, tag_names

ALT_DIFF_PERCENT = 50.0
MARKUP_TAGS = tag_names(
    "a b i u p br hr div span img table tr td th tbody thead ul ol li h1 h2 h3 h4 h5 h6 "
    "strong em font center html head body style script blockquote small sup sub code pre "
    "title meta link"
)

_ENTITY = re.compile(r"&(?:#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")


class _TagFinder(HTMLParser):
    """Find HTML tags in text that should be plain."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in MARKUP_TAGS or tag.startswith(MJML_PREFIX):
            self.found.add(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in MARKUP_TAGS or tag.startswith(MJML_PREFIX):
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


def check_text(sample: Sample, facts: HtmlFacts | None, out: Report) -> None:
    """Check the text/plain part: present, not empty, plain, and saying what the HTML says."""
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
            f"the text part contains HTML markup ({listing(tags)}); the text template must "
            "print plain text (the plain-text fields, not the HTML summary)",
        )
    entities = raw_entities(text)
    if entities:
        out.warning(
            "text-entities",
            f"the text part contains raw HTML entities ({listing(entities)}); unescape "
            "them in the text template",
        )
    if facts is not None:
        _check_alternatives(text, facts, out)


def _check_alternatives(text: str, facts: HtmlFacts, out: Report) -> None:
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
