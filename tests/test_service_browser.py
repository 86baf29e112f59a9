"""The public service's forms in a real Chromium (playwright), against ``newsletter serve``.

The service runs with its public URL on its own loopback address, so the links in its
emails lead back to it, as they do behind a proxy. Outside CI these tests skip when
playwright or /usr/bin/chromium is missing; in CI they fail instead. The browser
reaches nothing but 127.0.0.1. Every console message and CSP violation is collected:
none may occur (the forms post to themselves, which ``form-action 'self'`` allows).
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import launched, route
from service_process import ServiceProcess, one_click_path, settings_of, write_config
from smtp_server import SMTPServer, free_port

from newsletter.state.openers import open_members, open_suppressions

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

CONFIRM_LINK = re.compile(r"http://127\.0\.0\.1:\d+/subscribe/confirm\?\S+")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as started:
        yield started


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 900, "height": 800})
    context.route("**/*", route)
    tab = context.new_page()
    console: list[str] = []
    tab.on("console", lambda message: console.append(message.text))
    yield tab
    context.close()
    assert console == [], console  # a CSP violation is reported on the console


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServiceProcess, SMTPServer]]:
    port = free_port()
    with SMTPServer() as smtp:
        config = write_config(tmp_path, smtp_port=smtp.port, public=f"http://127.0.0.1:{port}")
        with ServiceProcess(config, port_wanted=port) as service:
            yield service, smtp


def test_subscribing_in_a_browser_from_the_form_to_the_stored_member(
    page: Page, served: tuple[ServiceProcess, SMTPServer]
) -> None:
    service, smtp = served
    address = "reader.browser@example.org"
    page.goto(f"{service.url}/subscribe")
    page.fill("#email", address)
    page.fill("#name", "Rea Browser")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your inbox")

    smtp.wait_for(lambda: smtp.count_for(address) == 1, timeout=20)
    message = email.message_from_bytes(smtp.messages()[0].data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    found = CONFIRM_LINK.search(body.get_content())
    assert found is not None

    page.goto(found.group(0))
    page.wait_for_selector("text=Confirm your subscription")
    with open_members(settings_of(service.config).paths.state) as members:
        assert members.count() == 0  # opening the link alone adds nobody
    page.click("button[type=submit]")
    page.wait_for_selector("text=You are subscribed, Rea Browser")
    with open_members(settings_of(service.config).paths.state) as members:
        stored = members.all()
    assert [(m.email, m.name, m.source) for m in stored] == [(address, "Rea Browser", "web")]


def test_unsubscribing_in_a_browser_then_subscribing_again(
    page: Page, served: tuple[ServiceProcess, SMTPServer]
) -> None:
    service, _ = served
    address = "leaving.reader@example.org"
    state = settings_of(service.config).paths.state
    page.goto(f"{service.url}{one_click_path(service.config, address)}")
    page.wait_for_selector("text=Unsubscribe from Test Daily?")
    page.click("button[type=submit]")
    page.wait_for_selector("text=You are unsubscribed")
    with open_suppressions(state) as store:
        found = store.get(address)
    assert found is not None
    assert found.source == "web"
    page.click("text=Subscribe again")
    page.wait_for_selector("text=You are subscribed again")
    with open_suppressions(state) as store:
        assert store.get(address) is None
