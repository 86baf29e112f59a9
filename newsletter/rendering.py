"""Render a digest once into an edition: Jinja2 → MJML → HTML with inlined CSS, plus plain text.

The only module that imports jinja2, mjml and premailer. Rendering never touches the
network: MJML gets no web fonts, premailer may not fetch, and theme CSS may not ``@import``.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
import string
import textwrap
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import jinja2
from markupsafe import Markup

from newsletter import placeholders
from newsletter.config.settings import Colors, Settings
from newsletter.errors import ConfigError, RenderError
from newsletter.limits import HTML_CLIP_BYTES, HTML_WARN_BYTES
from newsletter.models import Article, Digest, Edition, Image
from newsletter.sanitize import clean_html, paragraphs_text

MJML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
INLINE_CSS = "theme.css"
HEAD_CSS = ("mobile.css", "dark.css")
MARKUP_EXTENSIONS = ("mjml.j2", "mjml", "html.j2", "html")  # autoescaped; .txt.j2 and .css are not

SUBJECT_MAX = 120
PREHEADER_MIN = 100
PREHEADER_MAX = 130
PREHEADER_PAD = 60
TEXT_WIDTH = 72
CONTENT_WIDTH = 600
THUMB_WIDTH = 88

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_SPACE = re.compile(r"\s+")
_MJ_TAG = re.compile(r"<\s*(mj-[\w-]*)")
_MJML_SPAN = re.compile(r"position (\d+):(\d+)")
_TABLE_WITHOUT_ROLE = re.compile(r"<table(?![^>]*\srole=)")
_BLOCK_END = re.compile(r"(?i)</(p|ul|ol|blockquote)\s*>")  # a blank line after each block
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_PHONE_JUNK = re.compile(r"[^\d+]")
_SUBJECT_FIELDS = ("lead", "date", "publication")


# --------------------------------------------------------------------------- colours


_MRML_PREVIEW_STYLE = (
    'style="display:none;font-size:1px;color:#ffffff;line-height:1px;'
    'max-height:0px;max-width:0px;opacity:0;overflow:hidden;"'
)
_PREVIEW_STYLE = (
    'style="display:none;max-height:0px;max-width:0px;opacity:0;overflow:hidden;mso-hide:all;"'
)


def _rgb(colour: str) -> tuple[float, float, float]:
    """Split ``#rgb`` or ``#rrggbb`` into channels from 0 to 1."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return tuple(int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def _hex(rgb: tuple[float, float, float]) -> str:
    """Join channels from 0 to 1 into ``#rrggbb``."""
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)


def luminance(colour: str) -> float:
    """Return the WCAG relative luminance of a hex colour."""

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    """Return the WCAG contrast ratio between two hex colours (1 to 21)."""
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _mix(colour: str, other: str, share: float) -> str:
    """Blend ``share`` of ``other`` into ``colour``."""
    a, b = _rgb(colour), _rgb(other)
    return _hex(
        (
            a[0] + (b[0] - a[0]) * share,
            a[1] + (b[1] - a[1]) * share,
            a[2] + (b[2] - a[2]) * share,
        )
    )


def readable_on(background: str, colour: str, ratio: float) -> str:
    """Move ``colour`` towards white or black until it reaches ``ratio`` against ``background``."""
    target = "#ffffff" if luminance(background) < 0.18 else "#000000"
    for step in range(21):
        candidate = _mix(colour, target, step / 20)
        if contrast(candidate, background) >= ratio:
            return candidate
    return target


DARK_PAGE = "#0d1117"
DARK_SURFACE = "#161b22"
DARK_TEXT = "#e6edf3"
DARK_MUTED = "#a3adb8"
DARK_RULE = "#30363d"


@dataclass(frozen=True)
class Palette:
    """Every colour the theme uses, for light mode and for dark mode."""

    page: str
    surface: str
    text: str
    muted: str
    primary: str
    accent: str
    rule: str
    on_accent: str
    on_primary: str
    footer_muted: str
    dark_primary: str
    dark_accent: str
    dark_page: str = DARK_PAGE
    dark_surface: str = DARK_SURFACE
    dark_text: str = DARK_TEXT
    dark_muted: str = DARK_MUTED
    dark_rule: str = DARK_RULE


def _tint(colour: str, lightness: float) -> str:
    """Keep the hue of ``colour`` at a new lightness (0 to 1)."""
    hue, _, saturation = colorsys.rgb_to_hls(*_rgb(colour))
    return _hex(colorsys.hls_to_rgb(hue, lightness, saturation))


def palette(colors: Colors) -> Palette:
    """Derive the light and dark palettes from the publication's colours."""
    on_accent = max(("#ffffff", "#000000"), key=lambda c: contrast(c, colors.accent))
    on_primary = max(("#ffffff", "#000000"), key=lambda c: contrast(c, colors.primary))
    return Palette(
        page=colors.background,
        surface=colors.surface,
        text=colors.text,
        muted=colors.muted,
        primary=colors.primary,
        accent=colors.accent,
        rule=_mix(colors.surface, colors.text, 0.14),
        on_accent=on_accent,
        on_primary=on_primary,
        footer_muted=readable_on(colors.primary, _mix(on_primary, colors.primary, 0.25), 4.5),
        dark_primary=readable_on(DARK_SURFACE, _tint(colors.primary, 0.78), 7.0),
        dark_accent=readable_on(DARK_SURFACE, _tint(colors.accent, 0.72), 4.5),
    )


def colour_warnings(colors: Colors) -> list[str]:
    """Name every theme colour pair whose contrast is below WCAG AA for text."""
    pairs = (
        ("text", colors.text, "surface", colors.surface),
        ("muted", colors.muted, "surface", colors.surface),
        ("primary", colors.primary, "surface", colors.surface),
        ("accent", colors.accent, "surface", colors.surface),
    )
    found = []
    for name, fg, bg_name, bg in pairs:
        ratio = contrast(fg, bg)
        if ratio < 4.5:
            found.append(
                f"publication.colors: {name} {fg} on {bg_name} {bg} has contrast "
                f"{ratio:.1f}:1; text needs at least 4.5:1 (choose a darker {name})"
            )
    return found


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class Picture:
    """An image as the templates place it."""

    src: str
    alt: str
    width: int
    height: int | None
    caption: str = ""
    credit: str = ""


@dataclass(frozen=True)
class Story:
    """An article prepared for the templates: links tagged, times local, text plain."""

    title: str
    url: str
    label: str
    kicker: str
    regions: str
    author: str
    byline_parts: tuple[str, ...]
    summary_html: str
    summary_text: str
    picture: Picture | None
    thumb: Picture | None


def _local(moment: datetime, zone: tzinfo) -> datetime:
    """Convert to the publication's zone; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def stamp(moment: datetime, zone: tzinfo) -> str:
    """Format a time like ``04-03-2026 17:21 IST`` in the publication's zone."""
    local = _local(moment, zone)
    return f"{local:%d-%m-%Y %H:%M} {local.tzname() or local.strftime('%z')}".strip()


def long_date(moment: datetime, zone: tzinfo) -> str:
    """Format a date like ``Wednesday, 4 March 2026`` whatever the process locale."""
    local = _local(moment, zone)
    return f"{_DAYS[local.weekday()]}, {local.day} {_MONTHS[local.month - 1]} {local.year}"


def tag_url(url: str, utm: Sequence[tuple[str, str]]) -> str:
    """Append UTM parameters the URL does not already carry; keep its fragment last."""
    if not utm:
        return url
    parts = urlsplit(url)
    present = {pair.split("=", 1)[0] for pair in parts.query.split("&") if pair}
    extra = urlencode([(k, v) for k, v in utm if k not in present])
    if not extra:
        return url
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def one_line(text: str) -> str:
    """Fold all whitespace (newlines included) into single spaces."""
    return _SPACE.sub(" ", text).strip()


def shorten(text: str, limit: int, floor: int = 0) -> str:
    """Cut ``text`` to at most ``limit`` characters at a word boundary, ending with an ellipsis."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= max(floor, limit // 2):
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


def _section_label(section: str) -> str:
    section = one_line(section)
    return section[:1].upper() + section[1:]


def _picture(image: Image | None, fallback_alt: str, width: int) -> Picture | None:
    """Size an image for a slot ``width`` pixels wide; alt text falls back to the headline."""
    if image is None or not image.url:
        return None
    shown = min(image.width, width) if image.width else width
    height = None
    if image.width and image.height:
        height = max(1, round(image.height * shown / image.width))
    return Picture(
        src=image.url,
        alt=one_line(image.alt) or one_line(fallback_alt),
        width=shown,
        height=height,
        caption=one_line(image.caption),
        credit=one_line(image.credit),
    )


def _byline(article: Article, zone: tzinfo) -> tuple[str, ...]:
    """Return the parts of ``Author | Updated: … | Created: …``, leaving out what is unknown."""
    parts = [one_line(article.author)] if article.author.strip() else []
    created = stamp(article.published, zone) if article.published else ""
    updated = stamp(article.updated, zone) if article.updated else ""
    if updated and updated != created:
        parts.append(f"Updated: {updated}")
    if created:
        parts.append(f"Created: {created}")
    elif updated:
        parts.append(f"Updated: {updated}")
    return tuple(parts)


def story(article: Article, settings: Settings, *, thumb: bool = False) -> Story:
    """Prepare one article for the templates."""
    summary = clean_html(article.summary)
    regions = " · ".join(one_line(r) for r in article.regions[:2] if r.strip())
    label = _section_label(article.section)
    return Story(
        title=one_line(article.title),
        url=tag_url(article.url, settings.email.utm),
        label=label,
        kicker=regions or label,
        regions=regions,
        author=one_line(article.author),
        byline_parts=_byline(article, settings.publication.timezone),
        summary_html=summary,
        summary_text=paragraphs_text(_BLOCK_END.sub(r"\g<0><br>", summary)),
        picture=None if thumb else _picture(article.image, article.title, CONTENT_WIDTH),
        thumb=_picture(article.image, article.title, THUMB_WIDTH) if thumb else None,
    )


def opinion_heading(stories: Sequence[Story], order: Sequence[str]) -> str:
    """Name the opinion block after the sections in it, e.g. ``Opinion / Blog / Interview``."""
    rank = {_section_label(name).casefold(): i for i, name in enumerate(order)}
    labels = sorted({s.label for s in stories}, key=lambda x: (rank.get(x.casefold(), 99), x))
    return " / ".join(labels)


# --------------------------------------------------------------------------- text helpers


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """Wrap each line of ``text`` at ``width``; long words (URLs) stay whole; blank lines stay."""
    out: list[str] = []
    for number, line in enumerate(str(text).split("\n")):
        lead = indent if first is None or number else first
        if not line.strip():
            out.append("")
            continue
        out.extend(
            textwrap.wrap(
                line,
                width=width,
                initial_indent=lead,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(out)


def join_fit(parts: Sequence[str], separator: str, width: int = TEXT_WIDTH) -> str:
    """Join ``parts`` on one line if it fits in ``width``, else one part per line."""
    joined = separator.join(parts)
    return joined if len(joined) <= width else "\n".join(parts)


def underline(text: str, char: str = "-") -> str:
    """Return a rule as long as ``text`` (capped at the text width)."""
    return char * min(len(text), TEXT_WIDTH)


def _phone_href(phone: str) -> str:
    digits = _PHONE_JUNK.sub("", phone.split(",")[0])
    return f"tel:{digits}" if digits.strip("+") else ""


def preheader_text(settings: Settings, lead: Story, trending: Sequence[Story]) -> str:
    """Return the inbox preview line: configured, else the lead's summary, else the headlines."""
    if settings.email.preheader:
        return shorten(settings.email.preheader, PREHEADER_MAX, PREHEADER_MIN)
    source = one_line(lead.summary_text)
    if not source and trending:
        source = "Also today: " + " · ".join(s.title for s in trending)
    return shorten(source or lead.title, PREHEADER_MAX, PREHEADER_MIN)


def subject_text(settings: Settings, lead: Story, date: str) -> str:
    """Return the subject line: the configured pattern, else the lead's headline."""
    pattern = settings.email.subject
    if not pattern:
        return shorten(lead.title, SUBJECT_MAX)
    values = {"lead": lead.title, "date": date, "publication": settings.publication.name}
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as err:
        raise ConfigError(
            f"email.subject: {err}; write placeholders like {{lead}} and a literal brace as {{{{",
            settings.paths.config_file,
        ) from err
    for name in fields:
        if name not in values:
            raise ConfigError(
                f"email.subject: unknown placeholder {{{name}}}; use {{lead}}, {{date}} "
                "or {publication}",
                settings.paths.config_file,
            )
    return shorten(pattern.format_map(values), SUBJECT_MAX)


# --------------------------------------------------------------------------- errors


def _template_frame(err: BaseException, root: Path) -> tuple[str, int] | None:
    """Find the innermost traceback frame inside a template file: (path, line)."""
    found = None
    for frame in traceback.extract_tb(err.__traceback__):
        path = Path(frame.filename)
        if path.suffix != ".py" and path.is_relative_to(root):
            found = (frame.filename, frame.lineno or 0)
    return found


def _jinja_error(err: Exception, name: str, root: Path) -> RenderError:
    """Turn a Jinja error into a RenderError naming the template file and line."""
    if isinstance(err, jinja2.TemplateNotFound):
        return RenderError(
            f"{root}: template {err.name!r} not found (needed by {name}); "
            "copy it from the default theme or fix the template name"
        )
    if isinstance(err, jinja2.TemplateSyntaxError):
        where = f"{err.filename or root / (err.name or name)}:{err.lineno}"
        return RenderError(f"{where}: template syntax error: {err.message}")
    frame = _template_frame(err, root)
    where = f"{frame[0]}:{frame[1]}" if frame else str(root / name)
    if isinstance(err, jinja2.UndefinedError):
        return RenderError(
            f"{where}: {err.message}; check the variable name against the default theme"
        )
    return RenderError(f"{where}: template error: {err}")


def _mjml_error(err: ValueError, source: str, name: str) -> RenderError:
    """Turn MRML's bare ValueError into a RenderError that points into the rendered MJML."""
    found = _MJML_SPAN.search(str(err))
    where = ""
    if found:
        data = source.encode("utf-8")
        start, end = int(found.group(1)), int(found.group(2))
        line = data.count(b"\n", 0, start) + 1
        snippet = one_line(data[start : min(end, start + 80)].decode("utf-8", "replace"))
        where = f" at line {line} of the rendered MJML: {snippet!r}"
    return RenderError(
        f"{name}: MJML could not be converted: {err}{where}; look for an unclosed tag, "
        "a raw '<' in text, or a '<' inside <mj-style>"
    )


def _find_tag(root: Path, tag: str) -> str:
    """Return ``file:line`` of the first template line with ``<tag``, else the folder."""
    pattern = re.compile("<" + re.escape(tag) + r"(?![\w-])")
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in (".j2", ".mjml"):
            continue
        for number, line in enumerate(path.read_text("utf-8", "replace").splitlines(), 1):
            if pattern.search(line):
                return f"{path}:{number}"
    return str(root / MJML_TEMPLATE)


# --------------------------------------------------------------------------- renderer


class Renderer:
    """Renders digests with one Jinja environment; templates compile on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.paths.templates)
        self.palette = palette(settings.publication.colors)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.root),
            autoescape=jinja2.select_autoescape(MARKUP_EXTENSIONS, default_for_string=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["wrap"] = wrap
        self.env.filters["underline"] = underline
        self.env.filters["join_fit"] = join_fit
        self._parsed_css: dict[tuple[str, int], Any] = {}

    def render(self, digest: Digest, *, warnings: Sequence[str] = ()) -> Edition:
        """Render ``digest`` once into an edition with personal slots left in place."""
        if digest.lead is None:
            raise RenderError("nothing to render: the digest has no lead story")
        now = _edition_time(digest)
        context = self._context(digest, digest.lead, now)
        mjml_source = self._template(MJML_TEMPLATE, context)
        html = self._inline(self._mjml(mjml_source), context["theme_css"])
        text = self._template(TEXT_TEMPLATE, context)
        local = _local(now, self.settings.publication.timezone)
        digest_hash = hashlib.sha256((html + text).encode("utf-8")).hexdigest()[:8]
        found = [*warnings, *colour_warnings(self.settings.publication.colors)]
        found.extend(size_warnings(len(html.encode("utf-8"))))
        return Edition(
            id=f"{local:%Y-%m-%d}-{digest_hash}",
            subject=context["subject"],
            preheader=context["preheader"],
            html=html,
            text=text,
            digest=digest,
            created=now,
            warnings=tuple(dict.fromkeys(found)),
        )

    # -- steps

    def _context(self, digest: Digest, lead_article: Article, now: datetime) -> dict[str, Any]:
        settings = self.settings
        pub = settings.publication
        zone = pub.timezone
        lead = story(lead_article, settings)
        trending = [story(a, settings, thumb=True) for a in digest.trending]
        opinion = [story(a, settings) for a in digest.opinion]
        date = long_date(now, zone)
        theme = {"colors": self.palette, "content_width": CONTENT_WIDTH, "thumb": THUMB_WIDTH}
        preheader = preheader_text(settings, lead, trending)
        return {
            **theme,
            "pub": pub,
            "list_name": settings.list.name or pub.name,
            "site_host": urlsplit(pub.site_url).hostname or pub.site_url,
            "date": date,
            "year": _local(now, zone).year,
            "copyright": pub.copyright or f"© {_local(now, zone).year} {pub.name}",
            "phone_href": _phone_href(pub.contact_phone),
            "lead": lead,
            "trending": trending,
            "opinion": opinion,
            "opinion_heading": opinion_heading(opinion, settings.selection.opinion_sections),
            "subject": subject_text(settings, lead, date),
            "preheader": preheader,
            "preheader_pad": PREHEADER_PAD,
            "slots": {
                "greeting": placeholders.GREETING,
                "email": placeholders.EMAIL,
                "unsubscribe_url": placeholders.UNSUBSCRIBE_URL,
            },
            "head_styles": [Markup(self._head_css(name, theme)) for name in HEAD_CSS],  # noqa: S704
            "theme_css": self._css(INLINE_CSS, theme),
        }

    def _template(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateError as err:
            raise _jinja_error(err, name, self.root) from err
        except (TypeError, ValueError, AttributeError, LookupError) as err:
            if _template_frame(err, self.root) is None:
                raise
            raise _jinja_error(err, name, self.root) from err

    def _head_css(self, name: str, context: Mapping[str, Any]) -> str:
        """Render a stylesheet for <mj-style>, where MJML cannot parse a '<'."""
        css = self._css(name, context)
        if "<" in css:
            raise RenderError(
                f"{self.root / name}: '<' is not allowed in a stylesheet kept in the head "
                "(MJML cannot parse it); remove it, also from comments"
            )
        return css

    def _css(self, name: str, context: Mapping[str, Any]) -> str:
        """Render a theme stylesheet; refuse @import, which would reach the network."""
        css = self._template(name, context)
        if "@import" in _CSS_COMMENT.sub("", css).lower():
            raise RenderError(
                f"{self.root / name}: @import is not allowed: rendering never fetches from the "
                "network; put the rules in this file"
            )
        return css

    def _mjml(self, source: str) -> str:
        from mjml import mjml2html

        try:
            html: str = mjml2html(source, disable_comments=True, fonts={})
        except ValueError as err:
            raise _mjml_error(err, source, str(self.root / MJML_TEMPLATE)) from err
        left = _MJ_TAG.search(html)
        if left:
            raise RenderError(
                f"{_find_tag(self.root, left.group(1))}: unknown MJML tag "
                f"<{left.group(1)}> (a typo?); see https://documentation.mjml.io for the tag names"
            )
        # MRML hides the preheader with white 1px text, which spam filters score as
        # invisible text; hiding it by size and opacity alone reads the same to people.
        return html.replace(_MRML_PREVIEW_STYLE, _PREVIEW_STYLE, 1)

    def _inline(self, html: str, css: str) -> str:
        """Inline the theme CSS; leave MRML's own and the head stylesheet as they are."""
        from premailer import Premailer

        html = html.replace("<!doctype html>", "<!DOCTYPE html>", 1)
        html = _TABLE_WITHOUT_ROLE.sub('<table role="presentation"', html)
        html = html.replace("<style", '<style data-premailer="ignore"')
        inliner = Premailer(
            css_text=css,
            keep_style_tags=True,
            strip_important=False,
            remove_classes=False,
            allow_network=False,
            disable_validation=True,
            disable_leftover_css=True,
            align_floating_images=False,
            disable_basic_attributes=["width", "height", "align", "valign", "bgcolor"],
        )
        parse = inliner._parse_style_rules

        def parse_once(css_body: str, index: int) -> Any:
            key = (css_body, index)
            if key not in self._parsed_css:
                self._parsed_css = {key: parse(css_body, index)}
            return self._parsed_css[key]

        inliner._parse_style_rules = parse_once
        out: str = inliner.transform(html, pretty_print=False)
        return out.replace(' data-premailer="ignore"', "")


def render_edition(settings: Settings, digest: Digest, *, warnings: Sequence[str] = ()) -> Edition:
    """Render one digest with a fresh renderer."""
    return Renderer(settings).render(digest, warnings=warnings)


def size_warnings(size: int) -> list[str]:
    """Warn when the HTML nears or passes Gmail's clipping size."""
    kb, clip = size / 1000, HTML_CLIP_BYTES // 1000
    if size >= HTML_CLIP_BYTES:
        return [
            f"edition HTML is {kb:.0f} KB; Gmail clips at {clip} KB, so readers will see "
            "'[Message clipped]': lower selection.trending or selection.opinion"
        ]
    if size >= HTML_WARN_BYTES:
        return [f"edition HTML is {kb:.0f} KB; Gmail clips at {clip} KB"]
    return []


def _edition_time(digest: Digest) -> datetime:
    """The edition's moment: the digest's ``now``, else its newest article time."""
    if digest.now is not None:
        return digest.now
    stamps = [a.last_changed for a in digest.articles() if a.last_changed is not None]
    if not stamps:
        raise RenderError(
            "cannot date the edition: the digest has no 'now' and no article has a date"
        )
    return max(stamps)
