"""What every route of the public service shares: the settings, the pages, the keys, the state.

Routes are plain functions of a request that ask the ``Service`` for a page or an error
page; they never build HTML in code. Pages that carry a token are never cached. The
state is reached through ``storage`` (threads of their own, never the event loop) and
confirmation emails go out through ``mailer`` (in the background); ``close`` stops both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from newsletter.config.settings import Settings
from newsletter.config.state import PostgresUrl
from newsletter.rendering.pages import PageRenderer
from newsletter.state.openers import open_members, open_suppressions
from newsletter.tokens import DEVELOPMENT_KEY
from newsletter.web.expiring import ConfirmLinks
from newsletter.web.mailer import Mailer
from newsletter.web.storage import POSTGRES_THREADS, Openers, Storage

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
    links: ConfirmLinks = field(init=False)
    mailer: Mailer = field(init=False)
    storage: Storage = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.pages = PageRenderer(settings)
        web = settings.web
        self.links = ConfirmLinks(
            self.signing_key, settings.list.id, web.confirm_url, web.confirm_hours
        )
        self.mailer = Mailer(settings, self.pages, self.links)
        place = settings.paths.state
        threads = POSTGRES_THREADS if isinstance(place, PostgresUrl) else 1
        openers = Openers(partial(open_suppressions, place), partial(open_members, place))
        self.storage = Storage(openers, threads)

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
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        """A page from the theme; not cached unless ``cache`` (token pages never are)."""
        extra = {} if cache else dict(NO_STORE)
        extra.update(headers or {})
        return HTMLResponse(self.pages.render(name, context), status_code=status, headers=extra)

    def error(
        self, status: int, title: str, message: str, headers: dict[str, str] | None = None
    ) -> HTMLResponse:
        """An error page that says what happened and nothing about how."""
        context = {"title": title, "message": message}
        return self.page("error.html", context, status=status, headers=headers)

    def close(self) -> None:
        """Let the emails and state calls under way finish, then let go of the state."""
        self.mailer.close()
        self.storage.close()
