"""The email itself in a real Chromium (playwright): dark mode, and the email with images blocked.

As in tests/test_preview_browser.py: outside CI these tests skip when playwright or
/usr/bin/chromium is missing; with the CI environment variable set they fail instead.
The page reaches nothing: images get a local placeholder (or are refused, to play a
client that blocks them), every other request is refused. Screenshots land in
tests/artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from browser import launched, route
from test_preview import NOW, make_project
from test_preview_browser import ARTIFACTS

from newsletter.config.load import load_settings
from newsletter.pipeline import BuildOptions, build_edition
from newsletter.rendering.palette import DARK_MUTED, LIGHT_BACKGROUND
from newsletter.rendering.stories import ALT_ICON_PX

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

pytestmark = pytest.mark.browser

TEXT_LINE_PX = 24  # one line of the theme's body text: 16 px at line-height 1.5
MIN_BLOCK_WIDTH_PX = 100
LIGHT_BLOCKS = """([limit, line, minWidth]) => {
  const channel = (c) => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const found = [];
  for (const el of document.querySelectorAll('body, body *')) {
    if (el.tagName === 'IMG') continue;  // the picture covers its own background
    const style = getComputedStyle(el);
    const rgba = (style.backgroundColor.match(/[\\d.]+/g) || []).map(Number);
    if (rgba.length < 3 || (rgba.length > 3 && rgba[3] < 0.5)) continue;
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || box.height <= 2 * line || box.width <= minWidth) continue;
    const luminance = 0.2126 * channel(rgba[0]) + 0.7152 * channel(rgba[1])
      + 0.0722 * channel(rgba[2]);
    if (luminance >= limit) {
      const classes = el.className ? '.' + el.className.split(' ').join('.') : '';
      const size = `${Math.round(box.width)}x${Math.round(box.height)}`;
      found.push(`${el.tagName.toLowerCase()}${classes} ${style.backgroundColor} ${size}`);
    }
  }
  return found;
}"""


ALT_LAYOUT = """(icon) => [...document.querySelectorAll('img.thumb')].map((img) => {
  const style = getComputedStyle(img);
  const pen = document.createElement('canvas').getContext('2d');
  pen.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const box = img.getBoundingClientRect();
  const words = img.alt.split(' ').map((word) => pen.measureText(word).width);
  const space = pen.measureText(' ').width;
  let lines = 1, used = icon, start = icon;  // the first line starts after a client's icon
  for (const word of words) {
    if (used > start && used + space + word > box.width) {
      lines += 1; used = word; start = 0;
    } else {
      used += (used > start ? space : 0) + word;
    }
  }
  const planned = img.getAttribute('height') && img.getAttribute('width')
    ? box.width * img.getAttribute('height') / img.getAttribute('width') : null;
  return {alt: img.alt, width: box.width, height: box.height, planned: planned,
          widest: Math.max(...words), lines: lines, line: parseFloat(style.lineHeight)};
})"""
STYLE = """(selector) => { const s = getComputedStyle(document.querySelector(selector));
  return {color: s.color, size: s.fontSize, family: s.fontFamily, weight: s.fontWeight}; }"""


def rgb(colour: str) -> str:
    """Write a hex colour the way getComputedStyle does."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as started:
        yield started


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The sample publication with its own copy of the default theme."""
    return make_project(tmp_path / "project").parent


def edition_html(config: Path) -> str:
    """Build the edition of a project the way ``newsletter build`` does; return its HTML."""
    result = build_edition(load_settings(config), BuildOptions(now=NOW))
    return result.edition.html


def _block_images(route: Route) -> None:
    """Refuse images, as a client that blocks them does; refuse everything else too."""
    route.abort()


def open_email(
    browser: Browser, html: str, *, dark: bool = False, width: int = 700, images: bool = True
) -> Page:
    """Show an edition's HTML in a fresh tab, in light or dark mode, with or without images."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.route("**/*", route if images else _block_images)
    page = context.new_page()
    page.emulate_media(color_scheme="dark" if dark else "light")
    page.set_content(html, wait_until="load")
    return page


def light_blocks(page: Page) -> list[str]:
    """Every element bigger than a line of text whose background is light."""
    found: Any = page.evaluate(LIGHT_BLOCKS, [LIGHT_BACKGROUND, TEXT_LINE_PX, MIN_BLOCK_WIDTH_PX])
    assert isinstance(found, list)
    return [str(item) for item in found]


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


# --------------------------------------------------------------------------- dark mode


def test_dark_mode_leaves_no_light_block(browser: Browser, project: Path) -> None:
    page = open_email(browser, edition_html(project / "newsletter.toml"), dark=True)
    try:
        screenshot(page, "email-dark.png")
        assert light_blocks(page) == []
        assert page.evaluate(
            "getComputedStyle(document.querySelector('.opr')).backgroundColor"
        ) == ("rgb(22, 27, 34)"), "the opinion grid is a dark section like the others"
    finally:
        page.context.close()


def test_a_section_the_dark_rules_miss_is_caught(browser: Browser, project: Path) -> None:
    """The walk above sees a light section: a theme whose opinion rows lose the class."""
    opinion = project / "templates" / "_opinion.mjml.j2"
    text = opinion.read_text(encoding="utf-8")
    opinion.write_text(text.replace('css-class="nl-s opr"', 'css-class="opr"'), encoding="utf-8")
    page = open_email(browser, edition_html(project / "newsletter.toml"), dark=True)
    try:
        found = light_blocks(page)
    finally:
        page.context.close()
    assert found
    assert all(
        item.startswith(("div.opr rgb(255, 255, 255)", "table rgb(255, 255, 255)"))
        for item in found
    )
    light = open_email(browser, edition_html(project / "newsletter.toml"))
    try:
        assert light_blocks(light), "in light mode the page is light, as it should be"
    finally:
        light.context.close()


# --------------------------------------------------------------------------- images blocked


@pytest.mark.parametrize("width", [375, 700])
def test_with_images_blocked_the_alt_text_reads_as_part_of_the_design(
    browser: Browser, project: Path, width: int
) -> None:
    settings = load_settings(project / "newsletter.toml")
    colors = settings.publication.colors
    page = open_email(browser, edition_html(project / "newsletter.toml"), width=width, images=False)
    try:
        screenshot(page, f"email-images-blocked-{width}.png")
        logo = page.evaluate(STYLE, ".logo-img")
        masthead = page.evaluate(
            "(() => { const img = document.querySelector('.logo-img');"
            " return {alt: img.alt, height: img.getBoundingClientRect().height}; })()"
        )
        lead = page.evaluate(STYLE, ".lead-img")
        thumbs = cast(list[dict[str, Any]], page.evaluate(ALT_LAYOUT, ALT_ICON_PX))
        underlined = page.evaluate(
            "[...document.images].filter((img) => img.closest('a') &&"
            " getComputedStyle(img.closest('a')).textDecorationLine !== 'none').length"
        )
    finally:
        page.context.close()
    # The masthead reads without its logo: the publication's name in its own serif and colour.
    assert masthead["alt"] == settings.publication.name
    assert masthead["height"] >= 30, "the name shows in the logo's place"
    assert logo["family"].startswith("Georgia")
    assert (logo["size"], logo["weight"], logo["color"]) == ("30px", "700", rgb(colors.primary))
    assert (lead["size"], lead["color"]) == ("14px", rgb(colors.muted))
    assert underlined == 0, "alt text inside links is not underlined"
    assert len(thumbs) == 4
    for thumb in thumbs:  # the alt text fits the box the picture would fill
        assert thumb["widest"] <= thumb["width"], f"a word of {thumb['alt']!r} is cut mid-way"
        assert thumb["planned"] is not None
        room = int(thumb["planned"] // thumb["line"])
        assert thumb["lines"] <= room, f"{thumb['alt']!r} needs {thumb['lines']} lines"
        assert thumb["height"] <= thumb["planned"] + 1, "the row keeps its height"


def test_with_images_blocked_in_dark_mode_the_alt_text_is_light(
    browser: Browser, project: Path
) -> None:
    html = edition_html(project / "newsletter.toml")
    page = open_email(browser, html, dark=True, width=375, images=False)
    try:
        screenshot(page, "email-images-blocked-dark.png")
        lead = page.evaluate(STYLE, ".lead-img")
        thumb = page.evaluate(STYLE, ".thumb")
        found = light_blocks(page)
    finally:
        page.context.close()
    assert lead["color"] == thumb["color"] == rgb(DARK_MUTED)
    assert found == [], "only the logo's own plate may be light, and it is an image"
