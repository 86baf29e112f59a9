"""The public service as an ASGI application: ``create_app()`` for any ASGI server.

``newsletter serve`` runs it under uvicorn; to run it under your own server, point it at
the factory, e.g. ``uvicorn --factory newsletter.web.app:create_app`` (the config comes
from $NEWSLETTER_CONFIG or ./newsletter.toml, as for every command).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from newsletter.config.load import load_settings
from newsletter.config.settings import Settings
from newsletter.web import subscribe, unsubscribe
from newsletter.web.archive import archive_routes
from newsletter.web.security import AccessLog, Answered, ASGIApp, BodyLimit, SecurityHeaders
from newsletter.web.service import Service

log = logging.getLogger("newsletter.web")

_TITLES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "This request is not allowed."),
    404: ("Page not found", "There is no page at this address."),
    405: ("Not allowed", "This page does not answer that kind of request."),
    413: ("Too large", "The request was too large."),
    429: ("Too many requests", "Too many requests from your address; try again in a minute."),
}


class PublicApp(Starlette):
    """Starlette, with ``Answered`` outside its error handling (no tracebacks in the log)."""

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack, wrapped."""
        return Answered(super().build_middleware_stack())


def routes(service: Service) -> list[BaseRoute]:
    """Every route of the public service."""
    return [*unsubscribe.routes(service), *subscribe.routes(service), *archive_routes(service)]


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the public service for ``settings`` (default: the config the CLI would load)."""
    service = Service(settings if settings is not None else load_settings())

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        title, message = _TITLES.get(status, ("Error", "The request could not be answered."))
        response = service.error(status, title, message)
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        # The type and place only: an exception's text may hold an address or a token.
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        log.error(
            "%s %s failed: %s at %s", request.method, request.url.path, type(exc).__name__, where
        )
        return service.error(
            500, "Something went wrong", "The request could not be answered; try again later."
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()

    return PublicApp(
        routes=routes(service),
        lifespan=lifespan,
        middleware=[
            Middleware(AccessLog),
            Middleware(SecurityHeaders),
            Middleware(BodyLimit, limit=service.settings.web.max_body_bytes),
        ],
        exception_handlers={HTTPException: http_error, 500: server_error},
    )
