"""The preview page in a real Chromium (playwright), against the real preview server.

Outside CI these tests skip when playwright or /usr/bin/chromium is missing; with the
CI environment variable set they fail instead. The browser reaches nothing but
127.0.0.1: every other request is refused, except images, which get a local placeholder.
Screenshots land in tests/artifacts/; NEWSLETTER_UPDATE_DOCS=1 also rewrites the two
README screenshots in docs/.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browser import launched, route
from test_preview import edit, make_project, options_for, running

from newsletter.config.load import load_settings
from newsletter.pipeline import BuildOptions, build_edition
from newsletter.web.preview.live import PreviewApp
from newsletter.web.preview.serve import PreviewServer
from newsletter.web.preview.static import write_static_preview

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Frame, Page

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"
DOCS = Path(__file__).parent.parent / "docs"
WAIT = 10.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as started:
        yield started


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.route("**/*", route)
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()
    assert dialogs == [], f"script ran in the preview: {dialogs}"


@pytest.fixture
def preview(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PreviewServer, Path]]:
    monkeypatch.setenv("NEWSLETTER_SIGNING_KEY", "browser-test-key-not-secret-0123456789")
    config = make_project(tmp_path / "project")
    app = PreviewApp(options_for(config), poll_seconds=0.1)
    with running(app, watch=True) as server:
        yield server, config.parent


def base_url(server: PreviewServer) -> str:
    return f"http://127.0.0.1:{int(server.server_address[1])}"


def email_frame(page: Page, *, url_part: str = "", text: str = "") -> Frame:
    """Wait until the email iframe shows a loaded document (with ``url_part``, ``text``)."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        handle = page.query_selector("#email-frame")
        frame = handle.content_frame() if handle else None
        if frame is not None and url_part in frame.url and frame.url != "about:blank":
            try:
                frame.wait_for_load_state("load", timeout=2000)
                body = frame.evaluate("document.body ? document.body.innerText : ''")
            except PlaywrightError:  # the frame was replaced while being read: look again
                body = ""
            if body and text in body:
                return frame
        page.wait_for_timeout(100)
    pytest.fail(f"the email frame never showed {url_part!r} / {text!r}")


def trending_boxes(frame: Frame) -> dict[str, Any]:
    """Measure the first trending row's title and thumbnail cells inside the email."""
    found = frame.evaluate(
        """() => {
          const title = document.querySelector('td.tb');
          const thumb = document.querySelector('td.ti');
          const box = (el) => { const r = el.getBoundingClientRect();
            return {x: r.x, y: r.y, w: r.width, h: r.height, right: r.right, bottom: r.bottom}; };
          const root = document.documentElement;
          return {title: box(title), thumb: box(thumb),
                  img: box(thumb.querySelector('img')),
                  scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
                  innerWidth: window.innerWidth};
        }"""
    )
    assert isinstance(found, dict)
    return found


def opinion_columns(frame: Frame) -> list[dict[str, float]]:
    """Measure the first two columns of the opinion grid inside the email."""
    found = frame.evaluate(
        """() => Array.from(document.querySelectorAll('.opc')).slice(0, 2).map((el) => {
             const r = el.getBoundingClientRect();
             return {x: r.x, y: r.y, right: r.right, bottom: r.bottom}; })"""
    )
    assert isinstance(found, list)
    assert len(found) == 2
    return found


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    if os.environ.get("NEWSLETTER_UPDATE_DOCS"):
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / name)
    return path


def pressed(page: Page, key: str, value: str) -> str | None:
    return page.get_attribute(f'button[data-key="{key}"][data-value="{value}"]', "aria-pressed")


# --------------------------------------------------------------------------- layout


def test_mobile_width_fits_without_horizontal_scrolling(
    page: Page, preview: tuple[PreviewServer, Path]
) -> None:
    server, _ = preview
    page.goto(base_url(server) + "/#width=mobile")
    frame = email_frame(page, text="Hello Sample Reader,")
    found = trending_boxes(frame)
    assert found["innerWidth"] == 375
    assert found["scrollWidth"] <= found["clientWidth"]
    title, thumb = found["title"], found["thumb"]
    assert thumb["right"] <= 375
    assert found["img"]["w"] == pytest.approx(72, abs=1), "mobile.css shrinks the thumbnail"
    assert title["w"] >= 150, "the headline keeps a readable column"
    assert thumb["x"] >= title["right"] - 1, "the theme keeps the thumbnail beside the title"
    first, second = opinion_columns(frame)
    assert second["y"] >= first["bottom"] - 1, "the two-column opinion row stacks on a phone"
    assert pressed(page, "width", "mobile") == "true"
    frame.evaluate(
        "window.scrollTo(0, document.querySelector('h2.sh').getBoundingClientRect().top - 160)"
    )
    screenshot(page, "preview-mobile.png")


def test_desktop_width_puts_title_and_thumbnail_side_by_side(
    page: Page, preview: tuple[PreviewServer, Path]
) -> None:
    server, _ = preview
    page.goto(base_url(server) + "/?subscriber=ana.silva%40example.com#width=desktop&scheme=dark")
    frame = email_frame(page, url_part="scheme=dark", text="Hello Ana Silva,")
    found = trending_boxes(frame)
    assert found["innerWidth"] == 700
    assert found["scrollWidth"] <= found["clientWidth"]
    title, thumb = found["title"], found["thumb"]
    assert thumb["x"] >= title["right"] - 1
    assert abs(thumb["y"] - title["y"]) < 2, "same row"
    assert found["img"]["w"] == pytest.approx(88, abs=1)
    first, second = opinion_columns(frame)
    assert abs(second["y"] - first["y"]) < 2, "opinion columns sit side by side"
    assert second["x"] >= first["right"] - 1
    assert pressed(page, "width", "desktop") == "true"
    screenshot(page, "preview-desktop.png")


def test_dark_toggle_applies_the_emails_dark_rules(
    page: Page, preview: tuple[PreviewServer, Path]
) -> None:
    server, _ = preview
    page.goto(base_url(server) + "/")
    light = email_frame(page, text="Hello")
    background = "getComputedStyle(document.querySelector('.nl-s')).backgroundColor"
    assert light.evaluate(background) == "rgb(255, 255, 255)"
    page.click('button[data-value="dark"]')
    dark = email_frame(page, url_part="scheme=dark", text="Hello")
    assert dark.evaluate(background) == "rgb(22, 27, 34)"
    assert page.get_attribute("body", "data-scheme") == "dark"


def test_the_text_tab_shows_the_text_part(page: Page, preview: tuple[PreviewServer, Path]) -> None:
    server, _ = preview
    page.goto(base_url(server) + "/")
    email_frame(page, text="Hello")
    assert page.is_visible("#email-frame")
    assert not page.is_visible("#text-part")
    page.click('button[data-value="text"]')
    assert pressed(page, "part", "text") == "true"
    assert page.is_visible("#text-part")
    assert not page.is_visible("#email-frame")
    shown = page.inner_text("#text-part")
    served = page.evaluate("fetch('/email.txt').then(r => r.text())")
    assert shown.strip() == served.replace("\r\n", "\n").strip()
    assert "Hello Sample Reader," in shown
    page.reload()
    assert page.is_visible("#text-part"), "the chosen tab survives a reload"
    assert pressed(page, "part", "text") == "true"


def test_picking_a_subscriber_personalizes_the_email(
    page: Page, preview: tuple[PreviewServer, Path]
) -> None:
    server, _ = preview
    page.goto(base_url(server) + "/")
    page.select_option("#pick-list", "ana.silva@example.com")
    page.click('#pick-list ~ button[type="submit"]')
    frame = email_frame(page, url_part="subscriber=ana.silva", text="Hello Ana Silva,")
    link = frame.get_attribute("a.ll", "href")
    assert link is not None
    assert "token=" in link
    page.fill("#pick-any", "someone.new@example.org")
    page.press("#pick-any", "Enter")
    frame = email_frame(page, url_part="subscriber=someone.new", text="Hello,")
    assert "(not in the list)" in page.inner_text(".card")


# --------------------------------------------------------------------------- live


def test_editing_a_template_reloads_by_itself_keeping_the_chosen_view(
    page: Page, preview: tuple[PreviewServer, Path]
) -> None:
    server, root = preview
    page.goto(base_url(server) + "/#width=desktop&scheme=dark")
    email_frame(page, url_part="scheme=dark", text="Hello")
    page.evaluate("window.keptAcrossUpdates = 'yes'")
    edit(
        root / "templates" / "_masthead.mjml.j2",
        "Here are today’s top stories",
        "Edited while the preview watched",
    )
    frame = email_frame(page, url_part="scheme=dark", text="Edited while the preview watched")
    assert frame.evaluate("window.innerWidth") == 700
    assert page.evaluate("window.keptAcrossUpdates") == "yes", "no full page reload"
    assert page.get_attribute("body", "data-width") == "desktop"
    assert pressed(page, "scheme", "dark") == "true"
    assert "Updated at" in page.inner_text("#live-status")


def test_a_broken_template_shows_its_error_and_a_fix_recovers(
    page: Page, preview: tuple[PreviewServer, Path]
) -> None:
    server, root = preview
    lead = root / "templates" / "_lead.mjml.j2"
    original = lead.read_text(encoding="utf-8")
    lines = original.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "<h1" in line)
    page.goto(base_url(server) + "/")
    email_frame(page, text="Hello")
    lines[number - 1] += "{{ lead.title | nosuchfilter }}"
    lead.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.wait_for_selector(".problem", timeout=WAIT * 1000)
    where = page.inner_text(".problem .where")
    assert "_lead.mjml.j2" in where
    assert f"line {number}" in where
    assert "nosuchfilter" in page.inner_text(".problem .message")
    assert page.query_selector("#email-frame") is None
    assert page.title().startswith("Preview: A template could not be rendered")
    lead.write_text(original, encoding="utf-8")
    page.wait_for_selector(".problem", state="detached", timeout=WAIT * 1000)
    email_frame(page, text="Hello Sample Reader,")


# --------------------------------------------------------------------------- keyboard


def test_the_toolbar_works_by_keyboard(page: Page, preview: tuple[PreviewServer, Path]) -> None:
    server, _ = preview
    page.goto(base_url(server) + "/")
    email_frame(page, text="Hello")
    target = 'button[data-key="width"][data-value="desktop"]'
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement === document.querySelector('{target}')"):
            break
    else:
        pytest.fail("Tab never reached the Desktop toggle")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus is visible"
    assert pressed(page, "width", "desktop") == "false"
    page.keyboard.press("Enter")
    assert pressed(page, "width", "desktop") == "true"
    assert pressed(page, "width", "mobile") == "false"
    assert page.get_attribute("body", "data-width") == "desktop"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.value") == "dark"
    page.keyboard.press("Space")
    assert pressed(page, "scheme", "dark") == "true"
    email_frame(page, url_part="scheme=dark", text="Hello")
    labels = page.eval_on_selector_all(
        "[role=group]",
        "els => els.map(e => document.getElementById("
        "e.getAttribute('aria-labelledby')).textContent)",
    )
    assert labels == ["Width", "Colours", "Part"]


# --------------------------------------------------------------------------- safety


def test_hostile_content_never_runs_script(browser: Browser, tmp_path: Path) -> None:
    hostile = '</title><script>alert(1)</script>"><img src=x onerror=alert(2)>'
    config = make_project(tmp_path / "p", subject=hostile + " {lead}")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.route("**/*", route)
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    app = PreviewApp(options_for(config))
    try:
        with running(app) as server:
            tab.goto(base_url(server) + "/?subscriber=%3Cimg%20src%3Dx%20onerror%3Dalert(3)%3E")
            email_frame(tab, text="Hello")
            assert hostile.split(">")[0] in tab.inner_text("#panels")
            tab.wait_for_timeout(300)
    finally:
        context.close()
    assert dialogs == []


# --------------------------------------------------------------------------- static


def test_the_static_preview_works_without_a_server(
    page: Page, tmp_path: Path, preview: tuple[PreviewServer, Path]
) -> None:
    _, root = preview
    settings = load_settings(root / "newsletter.toml")
    result = build_edition(settings, BuildOptions(now=options_for(root).build.now))
    path = write_static_preview(result, settings, tmp_path / "out")
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(path.as_uri())
    frame = email_frame(page, url_part="about:srcdoc", text="Hello Sample Reader,")
    background = "getComputedStyle(document.querySelector('.nl-s')).backgroundColor"
    assert frame.evaluate(background) == "rgb(255, 255, 255)"
    page.click('button[data-value="dark"]')
    deadline = time.monotonic() + WAIT
    while email_frame(page, url_part="about:srcdoc").evaluate(background) != "rgb(22, 27, 34)":
        assert time.monotonic() < deadline, "dark mode never applied"
        page.wait_for_timeout(100)
    page.click('button[data-value="text"]')
    assert "Hello Sample Reader," in page.inner_text("#text-part")
    assert page.query_selector("#live-status") is None
    assert not [e for e in errors if "Content Security Policy" in e], errors
