"""Cut a sanitized summary to a length, keeping it valid HTML.

One huge article must not push an edition over Gmail's clip (``limits.HTML_CLIP_BYTES``):
a summary longer than ``email.summary_max_chars`` characters of text is cut at a word
boundary, an ellipsis marks the cut and the open tags are closed. Markup counts too, so
a summary of empty paragraphs or of links around every word cannot grow without bound:
the cut also comes once the HTML reaches ``MARKUP_PER_CHAR`` bytes per allowed character.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from newsletter.sanitize import clean_html, plain_text

MARKUP_PER_CHAR = 20  # a link around every word is about this much markup per character
ELLIPSIS = "…"
_VOID = frozenset({"br"})
_BLOCKS = frozenset({"p", "br", "li", "ul", "ol", "blockquote"})  # plain text puts a space
_SPACE = re.compile(r"\s+")
_TRAILING = " ,;:.-–—"

_START, _END, _TEXT = "start", "end", "text"


class _Stop(Exception):
    """The cut is made: nothing more is read."""


class _Cutter(HTMLParser):
    """Copy sanitized HTML until the text or markup budget runs out, then close the tags."""

    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.left = limit - len(ELLIPSIS)  # the ellipsis is part of the length
        self.markup_left = limit * MARKUP_PER_CHAR
        self.pieces: list[tuple[str, str]] = []
        self.open: list[str] = []
        self.wrote_text = False
        self.gap = False  # a block began or ended since the last text: plain text has a space
        self.result = ""

    def emit(self, kind: str, piece: str) -> None:
        """Keep ``piece``, or cut here when the markup budget would run out."""
        self.markup_left -= len(piece)
        if self.markup_left < 0:
            self.finish()
        self.pieces.append((kind, piece))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Copy an opening tag (a ``br`` has no end tag to wait for)."""
        self.gap = self.gap or tag in _BLOCKS
        shown = "".join(
            f' {name}="{html.escape(value or "", quote=True)}"' for name, value in attrs
        )
        self.emit(_START, f"<{tag}{shown}>")
        if tag not in _VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Copy a self-closed tag as an opening and a closing tag."""
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        """Copy the closing tag of an open element (and of any left open inside it)."""
        if tag not in self.open:
            return
        self.gap = self.gap or tag in _BLOCKS
        while self.open:
            name = self.open.pop()
            self.emit(_END, f"</{name}>")
            if name == tag:
                return

    def handle_data(self, data: str) -> None:
        """Copy text while the budget lasts."""
        text = _SPACE.sub(" ", data)
        if not self.wrote_text:
            text = text.lstrip()
        elif self.gap and text.strip() and not text.startswith(" "):
            self.spend(" ")
        if text.strip():
            self.gap = False
        if text:
            self.spend(text)
            self.wrote_text = self.wrote_text or bool(text.strip())
            self.emit(_TEXT, html.escape(text, quote=False))

    def spend(self, text: str) -> None:
        """Count ``text`` against the budget; past it, keep what fits up to a word boundary."""
        if len(text) <= self.left:
            self.left -= len(text)
            return
        allowed = text[: self.left + 1]
        space = allowed.rfind(" ")
        if space > 0:
            kept = allowed[:space]
        elif self.wrote_text:
            kept = ""  # the word began before the budget ran out: cut before it
        else:
            kept = text[: self.left]
        if kept:
            self.pieces.append((_TEXT, html.escape(kept.rstrip(_TRAILING), quote=False)))
        self.finish()

    def finish(self) -> None:
        """End the copy: drop tags left empty, put an ellipsis after the last word, close."""
        pieces = self.pieces
        closing: list[str] = []  # end tags copied after the last word, kept after the ellipsis
        while pieces and pieces[-1][0] != _TEXT:
            kind, piece = pieces.pop()
            if kind == _END:
                closing.insert(0, piece)
                continue
            tag = _tag(piece)
            if closing and closing[0] == f"</{tag}>":
                closing.pop(0)  # an element left empty (closed): dropped whole
            elif self.open and self.open[-1] == tag:
                self.open.pop()  # an element opened last, still empty: dropped
        # the text is escaped by now: a ";" may end an entity such as &amp;
        body = "".join(piece for _, piece in pieces).rstrip(_TRAILING.replace(";", ""))
        tail = "".join(f"</{name}>" for name in reversed(self.open))
        self.result = body + ELLIPSIS + "".join(closing) + tail
        raise _Stop


def _tag(start: str) -> str:
    """The name of the element an opening tag such as ``<a href="…">`` opens."""
    return start[1:].split(">", 1)[0].split(" ", 1)[0]


def cut_summary(fragment: str, limit: int) -> str:
    """Return sanitized HTML ``fragment`` cut to ``limit`` characters of text, still valid."""
    if len(plain_text(fragment)) <= limit and len(fragment) <= limit * MARKUP_PER_CHAR:
        return fragment
    cutter = _Cutter(limit)
    try:
        cutter.feed(fragment)
        cutter.close()
    except _Stop:
        return clean_html(cutter.result)
    return fragment
