"""Render a digest once into an edition: Jinja2 → MJML → HTML with inlined CSS, plus plain text.

The only module that imports jinja2, mjml and premailer. Rendering never touches the
network: MJML gets no web fonts, premailer may not fetch, and theme CSS may not ``@import``.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from newsletter import placeholders
from newsletter.config.settings import Settings
from newsletter.errors import RenderError
from newsletter.limits import HTML_CLIP_BYTES, HTML_WARN_BYTES
from newsletter.models import Article, Digest, Edition
from newsletter.rendering.dates import local_time, long_date
from newsletter.rendering.palette import colour_warnings, palette
from newsletter.rendering.plaintext import join_fit, underline, wrap
from newsletter.rendering.stories import (
    CONTENT_WIDTH,
    PREHEADER_PAD,
    THUMB_ALT_LINE_PX,
    THUMB_ALT_PX,
    THUMB_WIDTH,
    THUMB_WIDTH_PHONE,
    one_line,
    opinion_heading,
    preheader_text,
    story,
    subject_text,
)

MJML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
INLINE_CSS = "theme.css"
HEAD_CSS = ("mobile.css", "dark.css")
MARKUP_EXTENSIONS = ("mjml.j2", "mjml", "html.j2", "html")  # autoescaped; .txt.j2 and .css are not

_MJ_TAG = re.compile(r"<\s*(mj-[\w-]*)")
_MJML_SPAN = re.compile(r"position (\d+):(\d+)")
_TABLE_WITHOUT_ROLE = re.compile(r"<table(?![^>]*\srole=)")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_PHONE_JUNK = re.compile(r"[^\d+]")
_MRML_PREVIEW_STYLE = (
    'style="display:none;font-size:1px;color:#ffffff;line-height:1px;'
    'max-height:0px;max-width:0px;opacity:0;overflow:hidden;"'
)
_PREVIEW_STYLE = (
    'style="display:none;max-height:0px;max-width:0px;opacity:0;overflow:hidden;mso-hide:all;"'
)

# An edition's id: its local date and a hash of its parts.
EDITION_ID_PATTERN = r"\d{4}-\d{2}-\d{2}-[0-9a-f]{8}"
# Stand-ins while rendering, replaced in the finished parts: the edition's id (known only
# once the parts are hashed, so its web address is written in afterwards) and the marks
# around what is for the recipient only (MJML drops comments, so they are put in after).
_EDITION_ID = "XNLEDITIONIDX"
_EMAIL_ONLY = {"begin": "XNLMARKEMAILONLYX", "end": "XNLMARKENDEMAILONLYX"}
_HTML_MARKS = {
    _EMAIL_ONLY["begin"]: placeholders.EMAIL_ONLY_BEGIN,
    _EMAIL_ONLY["end"]: placeholders.EMAIL_ONLY_END,
}


def _phone_href(phone: str) -> str:
    """Return a ``tel:`` link to the first listed phone number, or nothing."""
    digits = _PHONE_JUNK.sub("", phone.split(",")[0])
    return f"tel:{digits}" if digits.strip("+") else ""


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
        local = local_time(now, self.settings.publication.timezone)
        digest_hash = hashlib.sha256((html + text).encode("utf-8")).hexdigest()[:8]
        edition_id = f"{local:%Y-%m-%d}-{digest_hash}"
        html = _finish(html, edition_id, _HTML_MARKS)
        text = _finish(text, edition_id, dict.fromkeys(_EMAIL_ONLY.values(), ""))
        found = [*warnings, *colour_warnings(self.settings.publication.colors)]
        found.extend(size_warnings(len(html.encode("utf-8"))))
        return Edition(
            id=edition_id,
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
        theme = {
            "colors": self.palette,
            "content_width": CONTENT_WIDTH,
            "thumb": THUMB_WIDTH,
            "thumb_phone": THUMB_WIDTH_PHONE,
            "thumb_alt": {"size": THUMB_ALT_PX, "line": THUMB_ALT_LINE_PX},
        }
        preheader = preheader_text(settings, lead, trending)
        return {
            **theme,
            "pub": pub,
            "list_name": settings.list.name or pub.name,
            "site_host": urlsplit(pub.site_url).hostname or pub.site_url,
            "date": date,
            "year": local_time(now, zone).year,
            "copyright": pub.copyright or f"© {local_time(now, zone).year} {pub.name}",
            "phone_href": _phone_href(pub.contact_phone),
            "lead": lead,
            "trending": trending,
            "opinion": opinion,
            "opinion_heading": opinion_heading(opinion, settings.selection.opinion_sections),
            "subject": subject_text(settings, lead, date),
            "preheader": preheader,
            "preheader_pad": PREHEADER_PAD,
            "view_online_url": settings.web.edition_url(_EDITION_ID),
            "email_only": _EMAIL_ONLY,
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


def _finish(part: str, edition_id: str, marks: Mapping[str, str]) -> str:
    """Write the edition's id and the marks in place of their stand-ins."""
    part = part.replace(_EDITION_ID, edition_id)
    for stand_in, mark in marks.items():
        part = part.replace(stand_in, mark)
    return part


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
