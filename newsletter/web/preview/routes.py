"""The preview as a Starlette app: a fixed set of paths, nothing read from disk by URL.

Every path answers GET and HEAD only, and no request body is ever read. The page and
the email each carry their own Content-Security-Policy (the email's forbids scripts
and sandboxes it), everything else the plain one; nothing is cached. ``/events``
streams the snapshot's version as server-sent events, with a comment every
``KEEPALIVE_SECONDS``, until the client leaves or the preview stops.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Collection
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from newsletter.errors import NewsletterError
from newsletter.web.host_check import HostCheck
from newsletter.web.preview import page
from newsletter.web.preview.darkmode import force_dark
from newsletter.web.preview.live import PreviewApp
from newsletter.web.preview.personal import SAMPLE, Personal
from newsletter.web.preview.problems import problem
from newsletter.web.preview.snapshots import Snapshot
from newsletter.web.preview.view import PageView
from newsletter.web.security import AccessLog, SecurityHeaders

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
PLAIN_CSP = "default-src 'none'; frame-ancestors 'self'; sandbox"
KEEPALIVE_SECONDS = 15.0
MAX_QUERY = 2048
MAX_FIELDS = 8
HOST_HINT = "unknown Host header; open the preview at the address it printed"
PRIVATE = {"Cache-Control": "no-store", "Cross-Origin-Resource-Policy": "same-origin"}
ALLOW = "GET, HEAD"
EVENT_STREAM = "text/event-stream; charset=utf-8"

_REFUSALS = {
    400: "bad query",
    404: "not found",
    405: "the preview only answers GET and HEAD",
    500: "the preview hit a bug; the terminal shows where",
}

Query = dict[str, str]


def plain(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    """A short plain-text answer, ending in a newline."""
    return PlainTextResponse(
        f"{text}\n", status_code=status, headers={**PRIVATE, **(headers or {})}
    )


def _html(text: str, csp: str, headers: dict[str, str] | None = None) -> Response:
    extra = {"Content-Security-Policy": csp, **(headers or {})}
    return HTMLResponse(text, headers={**PRIVATE, **extra})


def _query(request: Request) -> Query:
    """The query's first value per name; 404 when too long, 400 with too many fields."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    if len(raw) > MAX_QUERY:
        raise HTTPException(404)
    try:
        parsed = parse_qs(raw, max_num_fields=MAX_FIELDS)
    except ValueError as err:
        raise HTTPException(400) from err
    return {name: values[0] for name, values in parsed.items() if values}


class Pages:
    """The answers of the preview, each from the latest snapshot of one ``PreviewApp``."""

    def __init__(self, app: PreviewApp) -> None:
        self.app = app

    def view(self, query: Query) -> PageView:
        """What the page shows for this query: the chosen subscriber, or why not."""
        snapshot = self.app.snapshot
        wanted = query.get("subscriber", "")
        personal, trouble = None, None
        if snapshot.ok:
            try:
                personal = self.app.personal(snapshot, wanted)
            except NewsletterError as err:
                trouble = problem(
                    f"Cannot show the message for {wanted.strip()[:80]!r}", str(err), "subscriber"
                )
                personal = self._fallback(snapshot)
        return PageView(
            version=snapshot.version,
            settings=snapshot.settings,
            result=snapshot.result,
            problem=snapshot.problem,
            warnings=snapshot.warnings,
            personal=personal,
            personal_problem=trouble,
            wanted=wanted,
            choices=snapshot.choices,
            choices_note=snapshot.choices_note,
            watched=tuple(snapshot.watch.paths()),
            built_at=snapshot.built_at,
            lead_url=self.app.options.build.lead_url or "",
        )

    def _fallback(self, snapshot: Snapshot) -> Personal | None:
        """The sample subscriber's message, shown when the requested one cannot be built."""
        try:
            return self.app.personal(snapshot, SAMPLE)
        except NewsletterError:
            return None

    def _personal(self, query: Query) -> Personal | Response:
        """The requested subscriber's message, or the answer that says why there is none."""
        snapshot = self.app.snapshot
        if not snapshot.ok:
            return plain(503, "the edition could not be built; the preview page shows why")
        try:
            return self.app.personal(snapshot, query.get("subscriber", ""))
        except NewsletterError as err:
            return plain(400, str(err))

    def page(self, query: Query) -> Response:
        """The preview page."""
        return _html(page.live_page(self.view(query)), PAGE_CSP)

    def panels(self, query: Query) -> Response:
        """The part of the page that changes when the edition is rebuilt."""
        return _html(page.panels(self.view(query)), PAGE_CSP)

    def email_html(self, query: Query) -> Response:
        """The personalized HTML part, as sent; ``scheme=dark`` applies its dark rules."""
        made = self._personal(query)
        if isinstance(made, Response):
            return made
        body = force_dark(made.html) if query.get("scheme") == "dark" else made.html
        return _html(body, EMAIL_CSP, {"X-Frame-Options": "SAMEORIGIN"})

    def email_text(self, query: Query) -> Response:
        """The personalized plain-text part, as sent."""
        made = self._personal(query)
        if isinstance(made, Response):
            return made
        return PlainTextResponse(made.text, headers=PRIVATE)

    def eml(self, query: Query) -> Response:
        """The exact message bytes, as a download."""
        made = self._personal(query)
        if isinstance(made, Response):
            return made
        disposition = f'attachment; filename="{made.filename}"'
        return Response(
            made.data,
            media_type="message/rfc822",
            headers={**PRIVATE, "Content-Disposition": disposition},
        )

    def status(self, _query: Query) -> Response:
        """The current version and problem, as JSON."""
        snapshot = self.app.snapshot
        found = snapshot.problem
        data = {
            "version": snapshot.version,
            "ok": snapshot.ok,
            "subject": snapshot.result.edition.subject if snapshot.result else None,
            "problem": None
            if found is None
            else {
                "kind": found.kind,
                "title": found.title,
                "message": found.message,
                "file": str(found.location.path) if found.location else None,
                "line": found.location.line if found.location else None,
            },
        }
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return Response(body, media_type="application/json; charset=utf-8", headers=PRIVATE)

    def asset(self, name: str) -> Callable[[Query], Response]:
        """The answer for one of the page's own files, from the package."""
        kind = "text/css" if name.endswith(".css") else "text/javascript"

        def answer(_query: Query) -> Response:
            return Response(page.asset(name), media_type=f"{kind}; charset=utf-8", headers=PRIVATE)

        return answer

    async def events(self, request: Request) -> Response:
        """Server-sent events: the current version now, then each new one as it comes."""
        _query(request)
        if request.method == "HEAD":
            return Response(media_type=EVENT_STREAM, headers=PRIVATE)
        return StreamingResponse(
            self._versions(self.app.snapshot.version), media_type=EVENT_STREAM, headers=PRIVATE
        )

    async def _versions(self, version: str) -> AsyncIterator[str]:
        yield f"retry: 1000\nevent: version\ndata: {version}\n\n"
        while not self.app.closed:
            snapshot = await self.app.changed(version, KEEPALIVE_SECONDS)
            if snapshot.version != version:
                version = snapshot.version
                yield f"event: version\ndata: {version}\n\n"
            elif not self.app.closed:
                yield ": still here\n\n"


def _get(path: str, answer: Callable[[Query], Response]) -> Route:
    def endpoint(request: Request) -> Response:
        return answer(_query(request))

    return Route(path, endpoint, methods=["GET"])


def routes(pages: Pages) -> list[BaseRoute]:
    """Every path the preview answers."""
    return [
        _get("/", pages.page),
        _get("/panels", pages.panels),
        _get("/email.html", pages.email_html),
        _get("/email.txt", pages.email_text),
        _get("/message.eml", pages.eml),
        _get("/status.json", pages.status),
        *(_get(f"/{name}", pages.asset(name)) for name in page.ASSETS),
        Route("/events", pages.events, methods=["GET"]),
    ]


async def _refuse(_request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = {"Allow": ALLOW} if status == 405 else None
    return plain(status, _REFUSALS.get(status, "the request could not be answered"), headers)


def create_preview_app(app: PreviewApp, allowed_hosts: Collection[str] | None) -> Starlette:
    """The preview of ``app`` as an ASGI app; ``allowed_hosts`` ``None``: any Host header."""
    guard = (
        []
        if allowed_hosts is None
        else [Middleware(HostCheck, allowed=allowed_hosts, message=HOST_HINT)]
    )
    web = Starlette(
        routes=routes(Pages(app)),
        middleware=[
            Middleware(AccessLog),
            Middleware(SecurityHeaders, csp=PLAIN_CSP),
            *guard,
        ],
        exception_handlers={HTTPException: _refuse, 500: _refuse},
    )
    web.router.redirect_slashes = False
    return web
