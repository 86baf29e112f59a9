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
from typing import TYPE_CHECKING, Any

import pytest
from test_preview import NOW, make_project
from test_preview_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _missing, _route

from newsletter.config.load import load_settings
from newsletter.pipeline import BuildOptions, build_edition
from newsletter.rendering.palette import LIGHT_BACKGROUND

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _missing("playwright is not installed: .venv/bin/pip install playwright")
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as driver:
        try:
            launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Error as err:
            _missing(f"Chromium would not start: {err}")
        yield launched
        launched.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The sample publication with its own copy of the default theme."""
    return make_project(tmp_path / "project").parent


def edition_html(config: Path) -> str:
    """Build the edition of a project the way ``newsletter build`` does; return its HTML."""
    result = build_edition(load_settings(config), BuildOptions(now=NOW))
    return result.edition.html


def open_email(browser: Browser, html: str, *, dark: bool = False, width: int = 700) -> Page:
    """Show an edition's HTML in a fresh tab, in light or dark mode."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.route("**/*", _route)
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
