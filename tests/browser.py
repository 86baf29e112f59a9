"""Debian's Chromium for the browser tests, driven by playwright: one way to find and launch it.

Outside CI a missing browser skips the test with the reason; in CI it fails it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
PLACEHOLDER = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="675">'
    b'<rect width="100%" height="100%" fill="#9fb3c8"/>'
    b'<path d="M0 675 L420 300 L700 520 L880 380 L1200 675 Z" fill="#6b8aa8"/>'
    b'<circle cx="930" cy="170" r="70" fill="#e8eef4"/></svg>'
)


def missing(reason: str) -> None:
    """Skip the test for ``reason``, or fail it in CI, where every browser test must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def chromium_path() -> Path:
    """Debian's Chromium, or skip (fail in CI) when it is not installed."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    return CHROMIUM


@contextmanager
def launched() -> Iterator[Browser]:
    """Start headless Chromium through playwright (no browser download) and stop it after."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        missing("playwright is not installed: .venv/bin/pip install playwright")
    path = chromium_path()
    with sync_playwright() as driver:
        try:
            browser = driver.chromium.launch(executable_path=str(path), args=CHROMIUM_ARGS)
        except Error as err:
            missing(f"Chromium would not start: {err}")
        yield browser
        browser.close()


def route(route: Route) -> None:
    """Let loopback through; answer images with a placeholder; refuse the rest."""
    request = route.request
    if re.match(r"(http://127\.0\.0\.1[:/]|file:|about:|data:)", request.url):
        route.continue_()
    elif request.resource_type == "image":
        route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER)
    else:
        route.abort()
