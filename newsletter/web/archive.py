"""The archive on the service: ``{base}/archive/``, ``…/feed.xml`` and ``…/<edition id>/``.

Each answer is a document of ``archive.site`` (the bytes ``archive export`` writes),
cacheable by anyone for a few minutes, with an ETag so a repeat costs a 304. An
edition's page is only looked up for an id of the renderer's form; anything else, or
an edition that did not go out, is the service's 404 page. Nothing in a URL names a
file: the pages come from the state.
"""

from __future__ import annotations

import hashlib

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.archive.feed import FEED_NAME
from newsletter.archive.feed import MEDIA_TYPE as FEED_TYPE
from newsletter.archive.published import is_edition_id
from newsletter.archive.site import ArchiveSite
from newsletter.web.service import Service, url_path

CACHE_SECONDS = 300
HTML_TYPE = "text/html; charset=utf-8"


def entity_tag(body: bytes) -> str:
    """A strong ETag for ``body``: a hash of its bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(request: Request, tag: str) -> bool:
    given = request.headers.get("if-none-match", "")
    candidates = {part.strip().removeprefix("W/") for part in given.split(",")}
    return "*" in candidates or tag in candidates


def cached(request: Request, body: bytes, media_type: str) -> Response:
    """Answer ``body`` as public and cacheable; 304 when the client already has it."""
    tag = entity_tag(body)
    headers = {"Cache-Control": f"public, max-age={CACHE_SECONDS}", "ETag": tag}
    if _matches(request, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def archive_routes(service: Service) -> list[BaseRoute]:
    """The archive's routes under the path of ``[web] public_url``."""
    site = ArchiveSite(service.settings, service.pages)
    base = url_path(service.settings.web.archive_url)  # ends in a slash

    def index(request: Request) -> Response:
        return cached(request, site.current_index(), HTML_TYPE)

    def feed(request: Request) -> Response:
        return cached(request, site.current_feed(), f"{FEED_TYPE}; charset=utf-8")

    def page(request: Request) -> Response:
        edition_id = request.path_params["edition_id"]
        body = site.current_page(edition_id) if is_edition_id(edition_id) else None
        if body is None:
            raise HTTPException(404)
        return cached(request, body, HTML_TYPE)

    return [
        Route(base, index, methods=["GET", "HEAD"]),
        Route(base + FEED_NAME, feed, methods=["GET", "HEAD"]),
        Route(base + "{edition_id}/", page, methods=["GET", "HEAD"]),
    ]
