"""What every route of the public service shares: the settings, the pages, the keys.

Routes are plain functions of a request that ask the ``Service`` for a page or an error
page; they never build HTML in code. Pages that carry a token are never cached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from newsletter.config.settings import Settings
from newsletter.rendering.pages import PageRenderer
from newsletter.tokens import DEVELOPMENT_KEY

log = logging.getLogger("newsletter.web")

NO_STORE = {"Cache-Control": "no-store"}


def url_path(url: str) -> str:
    """The path of a public URL, as the service answers it ("/" at least)."""
    return urlsplit(url).path or "/"


@dataclass
class Service:
    """The service's shared parts, made once at start."""

    settings: Settings
    pages: PageRenderer = field(init=False)

    def __post_init__(self) -> None:
        self.pages = PageRenderer(self.settings)

    @property
    def signing_key(self) -> bytes:
        """The key of every token: the real one, or the development key for the sample."""
        return self.settings.signing_key or DEVELOPMENT_KEY

    def page(
        self,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        status: int = 200,
        cache: bool = False,
    ) -> HTMLResponse:
        """A page from the theme; not cached unless ``cache`` (token pages never are)."""
        headers = None if cache else NO_STORE
        return HTMLResponse(self.pages.render(name, context), status_code=status, headers=headers)

    def error(self, status: int, title: str, message: str) -> HTMLResponse:
        """An error page that says what happened and nothing about how."""
        return self.page("error.html", {"title": title, "message": message}, status=status)
