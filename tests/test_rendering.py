"""Rendering: Digest → Edition (HTML from MJML with inlined CSS, and a real plain-text part)."""

from __future__ import annotations

import ast
import html as htmllib
import json
import os
import re
import shutil
import socket
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from browser import chromium_path
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import newsletter
from newsletter import placeholders
from newsletter.config.settings import (
    Colors,
    EmailSettings,
    Link,
    ListSettings,
    Publication,
    Settings,
)
from newsletter.errors import ConfigError, RenderError
from newsletter.limits import HTML_CLIP_BYTES, HTML_WARN_BYTES
from newsletter.models import Article, Digest, Edition, Image
from newsletter.rendering.palette import DARK_SURFACE, DARK_TEXT, contrast, palette
from newsletter.rendering.renderer import Renderer, render_edition, size_warnings
from newsletter.rendering.stories import fit_box, shorten, tag_url
from newsletter.sanitize import clean_html

GOLDEN = Path(__file__).parent / "golden"
KOLKATA = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 3, 4, 12, 30, tzinfo=UTC)  # 18:00 IST
HOSTILE_TITLE = 'Tides <script>alert("x")</script> & "quotes" rise in São Tomé'
URL_LINE = re.compile(r"^\s*(\S+: )?https?://\S+$")
TEMPLATE_LIBRARIES = {"jinja2", "markupsafe", "mjml", "premailer"}


# --------------------------------------------------------------------------- builders


def make_settings(**changes: Any) -> Settings:
    """Settings for a small coastal paper, with every footer field filled."""
    publication = Publication(
        name="The Harbour Ledger",
        site_url="https://ledger.example",
        tagline="Coastal news, weighed and measured",
        language="en",
        timezone=KOLKATA,
        postal_address="Harbour Ledger, 9 Quay Street, Kochi 682001, India",
        contact_email="desk@ledger.example",
        contact_phone="+91 484 555 0100",
        copyright="",
        social=(
            Link("LinkedIn", "https://www.linkedin.com/company/ledger-example"),
            Link("RSS", "https://ledger.example/feed.xml"),
        ),
        links=(
            Link("Feedback", "https://ledger.example/feedback"),
            Link("Terms", "https://ledger.example/terms"),
            Link("Privacy", "https://ledger.example/privacy"),
        ),
    )
    publication = replace(publication, **changes)
    return replace(
        Settings(),
        publication=publication,
        list=ListSettings(
            id="daily.ledger.example",
            name="The Harbour Ledger Daily",
            unsubscribe_url="https://ledger.example/unsubscribe",
        ),
    )


def article(n: int, section: str = "news", **fields: Any) -> Article:
    """One plausible article; ``n`` keeps ids, URLs and times apart."""
    base: dict[str, Any] = {
        "id": f"{section}-{n}",
        "title": f"Harbour story number {n} about the new quay and its ferries",
        "url": f"https://ledger.example/{section}/2026/03/story-{n}",
        "summary": clean_html(f"<p>Summary {n} of the story.</p>"),
        "section": section,
        "regions": ("India",),
        "author": f"Writer {n}",
        "published": NOW - timedelta(hours=n + 2),
        "image": Image(
            url=f"https://ledger.example/img/{n}.jpg",
            alt=f"Picture {n}",
            width=1200,
            height=675,
        ),
    }
    base.update(fields)
    return Article(**base)


def make_digest(trending: int = 4, opinion: int = 4, **lead_fields: Any) -> Digest:
    """A lead with hostile text plus trending and opinion rows."""
    lead_defaults: dict[str, Any] = {
        "title": HOSTILE_TITLE,
        "summary": clean_html(
            "<p>Engineers &amp; divers met at dawn.<script>bad()</script></p>"
            "<p>Second <b>paragraph</b> with a <a href='https://ledger.example/map'>map</a>"
            " and “curly” quotes — plus café.</p>"
        ),
        "author": "Coastal Desk",
        "published": datetime(2026, 3, 4, 5, 35, tzinfo=UTC),
        "updated": datetime(2026, 3, 4, 11, 51, tzinfo=UTC),
        "regions": ("India", "Global"),
        "image": Image(
            url="https://ledger.example/img/lead.jpg",
            alt='Gates "A" & B at dusk',
            caption="The new gates on test.",
            credit="Ledger / R. Nair",
            width=1200,
            height=675,
        ),
    }
    lead_defaults.update(lead_fields)
    regions = ("United States", "India", "United Kingdom", "Global")
    sections = ("opinion", "blog", "interview", "opinion")
    return Digest(
        lead=article(0, **lead_defaults),
        trending=tuple(
            article(i, regions=(regions[i % 4],), image=None if i == 2 else article(i).image)
            for i in range(1, trending + 1)
        ),
        opinion=tuple(article(10 + i, section=sections[i % 4], image=None) for i in range(opinion)),
        now=NOW,
    )


class Tags(HTMLParser):
    """Collect start tags with their attributes (comments, i.e. MSO blocks, are skipped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def of(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def tags(markup: str) -> Tags:
    parser = Tags()
    parser.feed(markup)
    return parser


def styles(markup: str) -> list[str]:
    return re.findall(r"<style[^>]*>(.*?)</style>", markup, re.S)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(make_settings())


@pytest.fixture(scope="module")
def edition(renderer: Renderer) -> Edition:
    return renderer.render(make_digest())


# --------------------------------------------------------------------------- HTML


def test_html_is_a_complete_standards_mode_document(edition: Edition) -> None:
    assert edition.html.startswith("<!DOCTYPE html>")
    assert '<html lang="en"' in edition.html
    assert "<mj-" not in edition.html
    assert "<script" not in edition.html.lower()
    assert '<meta name="color-scheme" content="light dark"' in edition.html
    assert "data-premailer" not in edition.html


def test_language_comes_from_settings() -> None:
    settings = make_settings(language="pt-BR")
    out = render_edition(settings, make_digest())
    assert '<html lang="pt-BR"' in out.html


def test_every_image_has_alt_text_and_size(edition: Edition) -> None:
    images = tags(edition.html).of("img")
    assert len(images) >= 4  # lead + three trending thumbnails (one row has none)
    for img in images:
        assert (img.get("alt") or "").strip(), img
        assert img.get("width"), img
    lead = next(i for i in images if i["src"] == "https://ledger.example/img/lead.jpg")
    assert lead["alt"] == 'Gates "A" & B at dusk'
    assert (lead["width"], lead["height"]) == ("600", "338")


def test_alt_text_falls_back_to_the_headline() -> None:
    digest = make_digest(image=Image(url="https://ledger.example/img/x.jpg"), title="Quay opens")
    images = tags(render_edition(make_settings(), digest).html).of("img")
    lead = next(i for i in images if i["src"] == "https://ledger.example/img/x.jpg")
    assert lead["alt"] == "Quay opens"
    assert "height" not in lead


def test_thumbnail_alt_is_cut_at_a_word_to_fit_its_box() -> None:
    long_alt = "A farmer in a straw hat looks up at dark rain clouds over green paddy fields"
    row = article(1, image=Image(url="https://ledger.example/img/t.jpg", alt=long_alt))
    lead_image = Image(url="https://ledger.example/img/l.jpg", alt=long_alt, width=1200)
    digest = replace(make_digest(image=lead_image), trending=(row,))
    images = tags(render_edition(make_settings(), digest).html).of("img")
    thumb = next(i for i in images if i["src"] == "https://ledger.example/img/t.jpg")
    lead = next(i for i in images if i["src"] == "https://ledger.example/img/l.jpg")
    assert lead["alt"] == long_alt, "the lead's wide box holds the whole description"
    alt = thumb["alt"] or ""
    assert alt.endswith("…")
    assert long_alt.startswith(alt[:-1])
    assert long_alt[len(alt) - 1] == " ", "cut between words"
    assert 4 <= len(alt) <= 24


def test_fit_box_keeps_whole_words_and_marks_the_cut() -> None:
    assert fit_box("Picture 1", 72, 28, 11, 14) == "Picture 1"
    assert fit_box("Tall blue container cranes lifting boxes", 72, 28, 11, 14) == "Tall blue…"
    assert fit_box("Tall blue container cranes lifting boxes", 88, 42, 11, 14) == (
        "Tall blue container cranes…"
    )
    assert fit_box("Donaudampfschifffahrtsgesellschaft", 72, 28, 11, 14) == "Donaud…"
    assert fit_box("Ab Donaudampfschifffahrtsgesellschaft ab", 72, 28, 11, 14) == "Ab…"
    assert fit_box("  spaced\n  out  ", 72, 28, 11, 14) == "spaced out"


def test_images_style_their_alt_text_for_when_they_are_blocked() -> None:
    settings = make_settings(logo_url="https://ledger.example/logo.png")
    images = tags(render_edition(settings, make_digest()).html).of("img")
    logo = next(i for i in images if i["src"] == "https://ledger.example/logo.png")
    assert "font-family:Georgia" in (logo["style"] or "")
    assert "color:#12355b" in (logo["style"] or "")
    for img in images:
        style = img["style"] or ""
        assert "font-size:" in style, img
        assert "color:#" in style, img
        assert "font-family:" in style, img


def test_layout_tables_are_presentational(edition: Edition) -> None:
    tables = tags(edition.html).of("table")
    assert tables
    assert all(t.get("role") == "presentation" for t in tables)
    everywhere = re.findall(r"<table\b[^>]*>", edition.html)  # Outlook-only blocks too
    assert all('role="presentation"' in t for t in everywhere)


def test_sample_sized_edition_is_lean(edition: Edition) -> None:
    assert edition.html_size < HTML_WARN_BYTES
    assert edition.warnings == ()


def test_media_queries_survive_inlining_with_important(edition: Edition) -> None:
    blocks = [s for s in styles(edition.html) if "@media" in s]
    assert sum(s.count("@media") for s in blocks) >= 3
    assert any("min-width:480px" in s and "!important" in s for s in blocks)  # MRML columns
    ours = [s for s in blocks if "prefers-color-scheme: dark" in s or "max-width: 479px" in s]
    assert len(ours) == 2
    for block in ours:
        declarations = re.findall(r"[\w-]+\s*:\s*[^;{}]+;", block.split("{", 1)[1])
        assert declarations
        assert all("!important" in d for d in declarations), block


def test_dark_mode_keeps_text_readable(edition: Edition) -> None:
    dark = next(s for s in styles(edition.html) if "prefers-color-scheme: dark" in s)
    surface = re.search(r"\.nl-s, \.nl-s > table \{ background: (#\w+) !important", dark)
    text = re.search(r"\.nl-s div, [^{]*\{ color: (#\w+) !important", dark)
    assert surface
    assert text
    assert contrast(text.group(1), surface.group(1)) >= 4.5
    for colour in re.findall(r"(?<![\w-])color: (#\w+) !important", dark):
        assert contrast(colour, DARK_SURFACE) >= 4.5 or colour == palette(Colors()).on_accent


def test_light_mode_body_text_contrast() -> None:
    colors = Colors()
    assert contrast(colors.text, colors.surface) >= 4.5
    assert contrast(colors.muted, colors.surface) >= 4.5


@hsettings(max_examples=60, deadline=None)
@given(
    st.from_regex(r"#[0-9a-f]{6}", fullmatch=True), st.from_regex(r"#[0-9a-f]{6}", fullmatch=True)
)
def test_derived_colours_are_readable_for_any_brand(primary: str, accent: str) -> None:
    derived = palette(replace(Colors(), primary=primary, accent=accent))
    assert contrast(derived.dark_primary, DARK_SURFACE) >= 7.0
    assert contrast(derived.dark_accent, DARK_SURFACE) >= 4.5
    assert contrast(derived.on_accent, accent) >= 4.5
    assert contrast(derived.on_primary, primary) >= 4.5
    assert contrast(derived.footer_muted, primary) >= 4.5
    assert contrast(DARK_TEXT, DARK_SURFACE) >= 4.5


def test_poor_contrast_colours_are_reported() -> None:
    settings = make_settings(colors=replace(Colors(), text="#bbbbbb"))
    out = render_edition(settings, make_digest())
    assert any("publication.colors: text #bbbbbb" in w for w in out.warnings)


def test_no_web_fonts_links_or_imports(edition: Edition) -> None:
    assert "fonts.googleapis" not in edition.html
    assert "<link" not in edition.html
    assert "@import" not in edition.html


def test_hostile_text_is_escaped_in_html(edition: Edition) -> None:
    assert "&lt;script&gt;alert" in edition.html
    assert "<script>" not in edition.html
    assert "bad()" not in edition.html
    title = re.search(r"<title>(.*?)</title>", edition.html, re.S)
    assert title
    assert htmllib.unescape(title.group(1)) == HOSTILE_TITLE
    assert "São Tomé" in edition.html


def test_lead_story_shape(edition: Edition) -> None:
    page = edition.html
    assert "The new gates on test." in page
    assert "Photo: Ledger / R. Nair" in page
    assert "Coastal Desk | Updated: 04-03-2026 17:21 IST | Created: 04-03-2026 11:05 IST" in page
    assert "India · Global" in page
    assert "Read the full story" in page
    assert '<a href="https://ledger.example/map"' in page  # the summary's own markup is kept
    assert "<b>paragraph</b>" in page


def test_trending_is_numbered_with_region_tags(edition: Edition) -> None:
    text = re.sub(r"<[^>]+>", " ", edition.html)
    numbers = re.findall(r"\s(\d)\s+Harbour story number (\d)", text)
    assert numbers == [("1", "1"), ("2", "2"), ("3", "3"), ("4", "4")]
    for region in ("United States", "United Kingdom", "Global"):
        assert region in edition.html


def test_opinion_heading_names_the_sections_present(edition: Edition) -> None:
    assert ">Opinion / Blog / Interview</h2>" in edition.html
    only_blog = replace(make_digest(opinion=0), opinion=(article(20, section="blog"),))
    out = render_edition(make_settings(), only_blog)
    assert ">Blog</h2>" in out.html
    assert "BLOG\n" in out.text


def test_footer_has_contact_links_and_legal(edition: Edition) -> None:
    page = edition.html
    hrefs = [a.get("href") for a in tags(page).of("a")]
    positions = [hrefs.index(link.url) for link in make_settings().publication.links]
    assert positions == sorted(positions)
    assert "mailto:desk@ledger.example" in hrefs
    assert "tel:+914845550100" in hrefs
    assert "https://www.linkedin.com/company/ledger-example" in hrefs
    assert "Harbour Ledger, 9 Quay Street, Kochi 682001, India" in page
    assert "© 2026 The Harbour Ledger" in page
    assert "The Harbour Ledger Daily" in page
    assert "share" not in " ".join(h or "" for h in hrefs)


def test_masthead_uses_logo_with_publication_name_as_alt() -> None:
    settings = make_settings(logo_url="https://ledger.example/logo.png")
    out = render_edition(settings, make_digest())
    logo = next(
        i for i in tags(out.html).of("img") if i["src"] == "https://ledger.example/logo.png"
    )
    assert logo["alt"] == "The Harbour Ledger"
    assert "Wednesday, 4 March 2026" in out.html


def test_masthead_without_logo_shows_the_name(edition: Edition) -> None:
    assert 'class="mh-name"' in edition.html
    assert "Coastal news, weighed and measured" in edition.html


def test_personal_slots_are_in_both_parts(edition: Edition) -> None:
    for token in placeholders.ALL:
        assert token in edition.html, token
        assert token in edition.text, token
    unsubscribe = [
        a for a in tags(edition.html).of("a") if a.get("href") == placeholders.UNSUBSCRIBE_URL
    ]
    assert len(unsubscribe) == 1
    assert re.search(rf"^{placeholders.UNSUBSCRIBE_URL}$", edition.text, re.M)


def test_preheader_is_hidden_and_padded(edition: Edition) -> None:
    assert 0 < len(edition.preheader) <= 130
    start = edition.html.index("<body")
    hidden = re.search(r'<div style="display:none;[^"]*">(.*?)</div>', edition.html[start:], re.S)
    assert hidden
    assert hidden.group(1).startswith(htmllib.escape(edition.preheader, quote=False)[:40])
    assert hidden.group(1).count("\u200c\u00a0") >= 40


def test_preheader_cut_at_a_word_boundary() -> None:
    words = " ".join(f"word{i}" for i in range(60))
    out = render_edition(make_settings(), make_digest(summary=f"<p>{words}</p>"))
    assert out.preheader.endswith("…")
    assert 100 <= len(out.preheader) <= 130
    assert out.preheader[:-1] in words
    assert words[len(out.preheader) - 1] == " "


def test_preheader_from_settings() -> None:
    settings = replace(make_settings(), email=EmailSettings(preheader="Your morning tide table"))
    assert render_edition(settings, make_digest()).preheader == "Your morning tide table"


def test_subject_defaults_to_the_lead_title_trimmed() -> None:
    long_title = "Council " + "approves the long harbour plan " * 8
    out = render_edition(make_settings(), make_digest(title=long_title))
    assert len(out.subject) <= 120
    assert out.subject.endswith("…")
    assert "\n" not in out.subject
    assert long_title.startswith(out.subject[:-1])
    assert render_edition(make_settings(), make_digest()).subject == HOSTILE_TITLE


def test_subject_pattern_and_its_errors() -> None:
    pattern = replace(
        make_settings(), email=EmailSettings(subject="{publication}: {lead} ({date})")
    )
    out = render_edition(pattern, make_digest(title="Quay opens"))
    assert out.subject == "The Harbour Ledger: Quay opens (Wednesday, 4 March 2026)"
    bad = replace(make_settings(), email=EmailSettings(subject="{lead.__class__} {oops}"))
    with pytest.raises(ConfigError, match=r"email\.subject: unknown placeholder"):
        render_edition(bad, make_digest())


def test_edition_id_created_and_date_in_publication_zone() -> None:
    late = datetime(2026, 3, 4, 20, 0, tzinfo=UTC)  # already 5 March in Kolkata
    out = render_edition(make_settings(), replace(make_digest(), now=late))
    assert re.fullmatch(r"2026-03-05-[0-9a-f]{8}", out.id)
    assert out.created == late
    assert "Thursday, 5 March 2026" in out.html


def test_rendering_is_deterministic(renderer: Renderer, edition: Edition) -> None:
    again = renderer.render(make_digest())
    fresh = Renderer(make_settings()).render(make_digest())
    assert again.html == edition.html == fresh.html
    assert again.text == edition.text == fresh.text
    assert again.id == edition.id == fresh.id
    changed = renderer.render(make_digest(title="Another headline"))
    assert changed.id != edition.id


def test_empty_sections_disappear() -> None:
    out = render_edition(make_settings(), make_digest(trending=0, opinion=0))
    assert "Trending" not in out.html
    assert "TRENDING" not in out.text
    assert "Opinion" not in out.html
    assert "OPINION" not in out.text
    assert "Read the full story" in out.html


def test_lead_without_image_summary_or_dates_still_renders() -> None:
    digest = make_digest(image=None, summary="", published=None, updated=None, author="")
    out = render_edition(make_settings(), digest)
    assert "lead.jpg" not in out.html
    assert 'class="by"' not in out.html
    assert out.preheader.startswith("Also today: Harbour story number 1")


def test_empty_digest_is_an_error() -> None:
    with pytest.raises(RenderError, match="nothing to render"):
        render_edition(make_settings(), Digest(lead=None, now=NOW))


def test_utm_tags_article_links_only() -> None:
    utm = (("utm_source", "newsletter"), ("utm_medium", "email"))
    settings = replace(make_settings(), email=EmailSettings(utm=utm))
    out = render_edition(settings, make_digest())
    tagged = "https://ledger.example/news/2026/03/story-1?utm_source=newsletter&utm_medium=email"
    assert f'href="{htmllib.escape(tagged)}"' in out.html
    assert tagged in out.text
    assert "https://ledger.example/feedback?" not in out.html + out.text
    untagged = render_edition(make_settings(), make_digest())
    assert "utm_" not in untagged.html + untagged.text


def test_tag_url_keeps_query_fragment_and_existing_keys() -> None:
    utm = (("utm_source", "nl"), ("utm_campaign", "daily news"))
    assert tag_url("https://a.example/x?id=3#top", utm) == (
        "https://a.example/x?id=3&utm_source=nl&utm_campaign=daily+news#top"
    )
    assert tag_url("https://a.example/x?utm_source=rss", utm) == (
        "https://a.example/x?utm_source=rss&utm_campaign=daily+news"
    )
    assert tag_url("https://a.example/x", ()) == "https://a.example/x"


def test_shorten_cuts_at_words() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("alpha beta gamma delta", 15) == "alpha beta…"
    assert shorten("a\nb   c", 10) == "a b c"


def test_size_warnings_thresholds() -> None:
    assert size_warnings(HTML_WARN_BYTES - 1) == []
    assert "Gmail clips at 102 KB" in size_warnings(HTML_WARN_BYTES)[0]
    assert "clipped" in size_warnings(HTML_CLIP_BYTES)[0]


def test_big_edition_warns_about_clipping() -> None:
    out = render_edition(make_settings(), make_digest(trending=60, opinion=50))
    assert out.html_size >= HTML_WARN_BYTES
    assert any("Gmail clips at 102 KB" in w for w in out.warnings)
    assert out.html_size < 3 * HTML_CLIP_BYTES  # rows stay cheap


def test_given_warnings_are_kept(renderer: Renderer) -> None:
    out = renderer.render(make_digest(), warnings=["feed.xml: item 3 skipped"])
    assert out.warnings[0] == "feed.xml: item 3 skipped"


# --------------------------------------------------------------------------- text part


def test_text_part_is_plain_readable_text(edition: Edition) -> None:
    text = edition.text.replace(HOSTILE_TITLE, "")
    assert not re.search(r"<[a-zA-Z/!]", text)
    assert not re.search(r"&(#\d+|[a-z]+);", text)
    assert "Engineers & divers met at dawn." in text
    assert "Second paragraph with a map and “curly” quotes — plus café." in text
    assert "bad()" not in text
    assert HOSTILE_TITLE in edition.text


def test_text_part_lists_every_article_url(edition: Edition) -> None:
    for item in make_digest().articles():
        assert item.url in edition.text


def test_text_part_structure(edition: Edition) -> None:
    text = edition.text
    assert text.startswith("THE HARBOUR LEDGER\n")
    assert "\nTRENDING\n" in text
    assert "\nOPINION / BLOG / INTERVIEW\n" in text
    assert re.search(r"^1\. Harbour story number 1", text, re.M)
    assert re.search(r"^4\. Harbour story number 4", text, re.M)
    assert "   United States\n" in text
    assert "Email: desk@ledger.example" in text
    assert "Phone: +91 484 555 0100" in text
    assert "Harbour Ledger, 9 Quay Street" in text
    assert "Privacy: https://ledger.example/privacy" in text
    assert text.index("TRENDING") < text.index("OPINION") < text.index("Unsubscribe")


def test_text_lines_are_wrapped_but_urls_whole(edition: Edition) -> None:
    for line in edition.text.splitlines():
        assert len(line) <= 72 or URL_LINE.match(line), line


# --------------------------------------------------------------------------- errors


@pytest.fixture
def theme(tmp_path: Path) -> Path:
    """A private copy of the default theme to break."""
    folder = tmp_path / "templates"
    shutil.copytree(make_settings().paths.templates, folder)
    return folder


def render_with(folder: Path) -> None:
    settings = make_settings()
    settings = replace(settings, paths=replace(settings.paths, templates=folder))
    Renderer(settings).render(make_digest())


def break_file(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` in ``path``; return its line number."""
    source = path.read_text("utf-8")
    assert old in source
    path.write_text(source.replace(old, new, 1), "utf-8")
    return source[: source.index(old)].count("\n") + 1


def test_template_syntax_error_names_file_and_line(theme: Path) -> None:
    line = break_file(theme / "_lead.mjml.j2", "{% endif %}", "{% endiff %}")
    with pytest.raises(RenderError, match=rf"_lead\.mjml\.j2:{line}: template syntax error"):
        render_with(theme)


def test_unknown_variable_names_file_and_line(theme: Path) -> None:
    line = break_file(theme / "_trending.mjml.j2", "{{ item.title }}", "{{ item.titel }}")
    with pytest.raises(RenderError, match=rf"_trending\.mjml\.j2:{line}: .*titel"):
        render_with(theme)


def test_unknown_mjml_tag_names_the_file(theme: Path) -> None:
    path = theme / "_opinion.mjml.j2"
    break_file(path, "<mj-column>", "<mj-colum>")
    break_file(path, "</mj-column>", "</mj-colum>")
    with pytest.raises(RenderError, match=r"_opinion\.mjml\.j2:\d+: unknown MJML tag <mj-colum>"):
        render_with(theme)


def test_mjml_parse_error_names_the_template(theme: Path) -> None:
    break_file(theme / "_masthead.mjml.j2", '<p class="greet">', '<p class="greet"> 1 < 2')
    with pytest.raises(RenderError, match=r"digest\.mjml\.j2: MJML could not be converted"):
        render_with(theme)


def test_missing_template_is_reported(theme: Path) -> None:
    (theme / "_footer.mjml.j2").unlink()
    with pytest.raises(RenderError, match=r"'_footer\.mjml\.j2' not found"):
        render_with(theme)


def test_theme_css_may_not_import_or_use_angle_brackets(theme: Path) -> None:
    css = theme / "theme.css"
    css.write_text("@import url(https://fonts.example/x.css);\n" + css.read_text("utf-8"))
    with pytest.raises(RenderError, match=r"theme\.css: @import is not allowed"):
        render_with(theme)
    dark = theme / "dark.css"
    dark.write_text("/* a < b */\n" + dark.read_text("utf-8"))
    css.write_text(css.read_text("utf-8").split("\n", 1)[1])
    with pytest.raises(RenderError, match=r"dark\.css: '<' is not allowed"):
        render_with(theme)


def test_templates_cannot_reach_secrets(theme: Path) -> None:
    break_file(theme / "_footer.mjml.j2", "{{ copyright }}", "{{ settings.smtp.password }}")
    with pytest.raises(RenderError, match=r"_footer\.mjml\.j2:\d+: 'settings' is undefined"):
        render_with(theme)


def test_render_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendering opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    settings = make_settings(logo_url="https://ledger.example/logo.png")
    out = Renderer(settings).render(make_digest())
    assert out.html_size > 0


def test_only_the_renderer_and_the_pages_import_the_template_libraries() -> None:
    """Palette, stories, dates and text helpers stay usable without Jinja, MJML or premailer.

    The email is rendered by the renderer; the public service's pages by ``pages``.
    """
    package = Path(newsletter.__file__).parent
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(n.split(".")[0] in TEMPLATE_LIBRARIES for n in names):
                found.add(path.relative_to(package).as_posix())
    assert found == {"rendering/renderer.py", "rendering/pages.py"}


# --------------------------------------------------------------------------- golden files


def test_golden_edition() -> None:
    """Compare with tests/golden; regenerate with NEWSLETTER_REGEN_GOLDEN=1 and review by eye."""
    settings = make_settings(logo_url="https://ledger.example/logo.png")
    settings = replace(settings, email=EmailSettings(utm=(("utm_source", "newsletter"),)))
    out = Renderer(settings).render(make_digest())
    files = {"edition.html": out.html, "edition.txt": out.text}
    if os.environ.get("NEWSLETTER_REGEN_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        for name, content in files.items():
            (GOLDEN / name).write_bytes(content.encode("utf-8"))
    for name, content in files.items():
        expected = (GOLDEN / name).read_bytes().decode("utf-8")
        assert content == expected, (
            f"{name} differs from tests/golden; if the change is intended, run "
            "NEWSLETTER_REGEN_GOLDEN=1 pytest tests/test_rendering.py and review the diff"
        )


# --------------------------------------------------------------------------- browser


PROBE = """<script>addEventListener('load', () => {
  const pad = getComputedStyle(document.querySelector('td.px')).paddingLeft;
  const right = Math.max(0, ...[...document.querySelectorAll('img, td, a')].map(
    e => e.getBoundingClientRect().right));
  parent.postMessage(JSON.stringify({width: innerWidth, pad: pad, right: right,
    scroll: document.documentElement.scrollWidth}), '*');
});</script>"""
FRAME = """<!DOCTYPE html><html><head><title>waiting</title></head><body style="margin:0">
<script>addEventListener('message', e => { document.title = e.data; });</script>
<iframe src="SRC" style="border:0;width:WIDTHpx;height:3000px"></iframe></body></html>"""


@pytest.fixture(scope="module")
def stress_edition(renderer: Renderer) -> Edition:
    """An edition with unbreakable words and URLs, the usual cause of sideways scrolling."""
    word = "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherung"
    digest = make_digest(title=f"{word} {word}", summary=f"<p>https://ledger.example/{word}</p>")
    long_row = article(1, title=word, regions=("Trinidad and Tobago", "Bosnia and Herzegovina"))
    return renderer.render(replace(digest, trending=(long_row, *digest.trending[1:])))


@pytest.mark.browser
@pytest.mark.parametrize(("width", "padding"), [(375, "16px"), (700, "24px")])
def test_layout_in_a_real_browser(
    stress_edition: Edition, tmp_path: Path, width: int, padding: str
) -> None:
    """At 375 px nothing overflows and the phone styles apply; at 700 px the desktop ones do."""
    edition = stress_edition
    page = tmp_path / "edition.html"
    page.write_text(edition.html.replace("</body>", PROBE + "</body>"), "utf-8")
    frame = tmp_path / "frame.html"
    frame.write_text(FRAME.replace("SRC", page.as_uri()).replace("WIDTH", str(width)), "utf-8")
    command = [
        str(chromium_path()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'p'}",
        "--blink-settings=imagesEnabled=false", "--virtual-time-budget=5000",
        "--window-size=900,1000", "--dump-dom", frame.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=True)
    found = re.search(r"<title>(\{.*?\})</title>", htmllib.unescape(result.stdout))
    assert found, result.stdout[:300]
    probe = json.loads(found.group(1))
    assert probe["width"] == width
    assert probe["scroll"] <= width
    assert probe["right"] <= width
    assert probe["pad"] == padding
