"""The HTML scan: one walk over a message's HTML, with the colours and sizes text is shown in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from newsletter.preflight.findings import normal

RGB = tuple[int, int, int]

LOW_CONTRAST_DISTANCE = 12.0
MJML_PREFIX = "mj-"  # a tag MJML left unconverted (a misspelt component)


def tag_names(text: str) -> frozenset[str]:
    """The space-separated names in ``text``, as a set."""
    return frozenset(text.split())


ACTIVE_TAGS = tag_names(
    "script iframe object embed form input button select textarea applet frame frameset base portal"
)
VOID_TAGS = tag_names("area base br col embed hr img input link meta param source track wbr")
HIDDEN_TEXT_TAGS = tag_names("style script title head template noscript")
BLOCK_TAGS = tag_names("div p table h1 h2 h3 h4 h5 h6 ul ol blockquote img")
URL_ATTRIBUTES = tag_names(
    "href src background action formaction poster xlink:href lowsrc dynsrc data"
)
NAMED_COLORS: dict[str, RGB] = {
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

_FONT_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(px|pt|em|rem|%)?", re.IGNORECASE)
_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")
_RGB = re.compile(r"rgba?\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})", re.IGNORECASE)
_DARK_MODE = re.compile(r"prefers-color-scheme\s*:\s*dark", re.IGNORECASE)


Step = tuple[str, frozenset[str]]  # an element as selectors see it: its tag and its classes


@dataclass
class Box:
    """A visible element with a background colour of its own, and where it sits."""

    path: tuple[Step, ...]  # from the outermost element down to this one
    color: RGB
    holds_blocks: bool = False  # a section or a frame around other blocks, not a chip or a link


@dataclass
class _Style:
    tag: str
    fg: RGB | None
    bg: RGB | None
    tiny: bool = False
    hidden: bool = False
    classes: frozenset[str] = frozenset()
    box: Box | None = None


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
    style_blocks: list[str] = field(default_factory=list)  # the <style> blocks alone
    boxes: list[Box] = field(default_factory=list)
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


def hex_color(color: RGB) -> str:
    """Write ``color`` as CSS hex, ``#rrggbb``."""
    return "#{:02x}{:02x}{:02x}".format(*color)


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
            facts.style_blocks.append(data)
            facts.has_dark_mode = facts.has_dark_mode or bool(_DARK_MODE.search(data))
        if self.raw_depth or not data.strip():
            return
        facts.all_text.append(data)
        if not top.hidden:
            facts.visible_text.append(data)
        if top.fg and top.bg and contrast_distance(top.fg, top.bg) < LOW_CONTRAST_DISTANCE:
            facts.low_contrast.append((normal(data), top.fg, top.bg))
        if top.tiny:
            facts.tiny_text.append(normal(data))

    def _style(self, tag: str, values: dict[str, str]) -> _Style:
        parent = self.stack[-1]
        classes = tag_names(values.get("class", ""))
        style = _Style(tag, parent.fg, parent.bg, parent.tiny, parent.hidden, classes)
        own_bg = parse_color(values["bgcolor"]) if "bgcolor" in values else None
        if tag in ("font", "body") and (values.get("color") or values.get("text")):
            style.fg = parse_color(values.get("color") or values.get("text", "")) or style.fg
        css = _declarations(values.get("style", ""))
        for name in ("background-color", "background"):
            if name in css:
                own_bg = parse_color(css[name]) or own_bg
        style.bg = own_bg or style.bg
        if "color" in css:
            transparent = css["color"].lower().startswith("transparent")
            style.fg = style.bg if transparent else (parse_color(css["color"]) or style.fg)
        if "font-size" in css:
            px = _font_px(css["font-size"])
            style.tiny = px is not None and px < 2
        style.hidden = style.hidden or css.get("display", "").lower().startswith("none")
        if own_bg is not None and not style.hidden:
            path = (*((s.tag, s.classes) for s in self.stack[1:]), (tag, classes))
            style.box = Box(path, own_bg)
            self.facts.boxes.append(style.box)
        return style

    def _record(self, tag: str, values: dict[str, str]) -> None:
        facts = self.facts
        if tag in BLOCK_TAGS:
            for outer in self.stack:
                if outer.box is not None:
                    outer.box.holds_blocks = True
        if tag == "html":
            facts.lang = values.get("lang")
        if tag in ACTIVE_TAGS or tag.startswith(MJML_PREFIX):
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
