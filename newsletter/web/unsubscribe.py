"""The unsubscribe link of every message: RFC 8058 one-click POST, and a page that asks.

The service answers the path of ``list.unsubscribe_url``; the link's query carries
``list`` (the list id), ``s`` (the address, base64url) and ``token`` (its HMAC):

- ``POST`` unsubscribes at once: the body ``List-Unsubscribe=One-Click`` that mail
  providers send (form-urlencoded or multipart), source ``one-click``; or the page's
  button (``action=unsubscribe``), source ``web``. No cookie, no login, no redirect;
  a repeat is answered the same (200). ``action=resubscribe`` lifts the address's
  ``unsubscribe`` suppression (and no other kind).
- ``GET`` only asks, with one button: link scanners fetch links, so a GET changes nothing.

A link that is not ours (no or a wrong token, another list, an address that does not
decode) gets one and the same 400 page and changes nothing.
"""

from __future__ import annotations

import binascii

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.state.lists import Suppression, SuppressionRequest
from newsletter.tokens import Signer, read_subscriber_ref
from newsletter.web.service import Service, url_path
from newsletter.web.storage import Tenants

ONE_CLICK = "one-click"
WEB = "web"
MAX_FIELDS = 20  # a form with more is refused (400) before it is read


class Unsubscribe:
    """Answer one list's unsubscribe links."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.list_id = service.settings.list.id
        self.signer = Signer(service.signing_key, self.list_id)

    def routes(self) -> list[BaseRoute]:
        """The route of ``list.unsubscribe_url``'s path."""
        path = url_path(self.service.settings.list.unsubscribe_url)
        return [Route(path, self.answer, methods=["GET", "POST"], name="unsubscribe")]

    def reader(self, request: Request) -> str | None:
        """The address a link is for, if the link is ours; else ``None``."""
        query = request.query_params
        ref, token = query.get("s", ""), query.get("token", "")
        if query.get("list") != self.list_id or not ref or not token:
            return None
        try:
            email = read_subscriber_ref(ref)
        except (binascii.Error, UnicodeError, ValueError):
            return None
        return email if self.signer.verify(email, token) else None

    def not_ours(self) -> Response:
        """The one answer to every link that is not ours: it says nothing more."""
        return self.service.error(
            400,
            "This link does not work",
            "The unsubscribe link is incomplete or was changed. Open the link from the "
            "email again (all of it), or use the unsubscribe link of a newer email.",
        )

    async def answer(self, request: Request) -> Response:
        """Ask (GET) or act (POST)."""
        email = self.reader(request)
        if email is None:
            return self.not_ours()
        if request.method != "POST":
            return self.service.page("unsubscribe.html", {"email": email})
        async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
            action = form.get("action")
        if action == "resubscribe":
            lifted = await self.service.storage.call(lambda t: _resubscribe(t, email))
            return self.service.page("resubscribed.html", {"email": email, "lifted": lifted})
        source = WEB if action == "unsubscribe" else ONE_CLICK
        await self.service.storage.suppress(SuppressionRequest(email, "unsubscribe", source))
        return self.service.page("unsubscribed.html", {"email": email})


def _resubscribe(tenants: Tenants, email: str) -> bool:
    """Lift an ``unsubscribe`` suppression of ``email``; False if another kind stays."""
    found: Suppression | None = tenants.suppressions.get(email)
    if found is None:
        return True
    if found.reason != "unsubscribe":
        return False
    tenants.suppressions.remove(email)
    return True


def routes(service: Service) -> list[BaseRoute]:
    """The unsubscribe routes of ``service``."""
    return Unsubscribe(service).routes()
