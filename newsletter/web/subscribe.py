"""Subscribing with double opt-in: the form at ``{web.public_url}/subscribe`` and its confirmation.

- ``GET /subscribe``: the form (address, optional name), a signed expiring form token
  (``expiring.FormTokens``) and a honeypot field people never see.
- ``POST /subscribe``: a POST from another site (its ``Origin`` or ``Sec-Fetch-Site``
  says so) is refused (403); more than ``web.subscribes_per_minute`` from one client,
  or more than ``web.confirmations_per_hour`` emails in all, get 429; then the token, the
  honeypot and the address are checked, and the confirmation email goes out in the
  background. The answer is the same page whoever the address belongs to, and takes the
  same time (one read of the state, then the email is queued).
- ``GET /subscribe/confirm?…``: the link in the email; a page with one button (link
  scanners fetch links). ``POST`` adds the member (source ``web``) and lifts an
  ``unsubscribe`` or ``bounce`` suppression of the address: the reader asked again, and
  the email just reached them. A ``complaint`` or ``manual`` suppression stays (the
  publisher lifts it), and such an address is sent no confirmation email at all.
  An expired or altered link gets a page that offers the form again.

Without an SMTP host no email can go out: the form answers 503, saying so.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.subscribers.addresses import check_address
from newsletter.subscribers.cells import MAX_NAME, clean_cell
from newsletter.web.expiring import Expired, FormTokens, Subscription
from newsletter.web.ratelimit import SlidingLimit
from newsletter.web.service import Service, url_path
from newsletter.web.storage import Tenants

HONEYPOT = "website"  # a field hidden from people; a bot that fills it gets the usual answer
MAX_FIELDS = 10
LIFTED_BY_CONFIRMING = ("unsubscribe", "bounce")
NO_CONFIRMATION = ("complaint", "manual")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Subscribe:
    """The subscribe form and its confirmation links."""

    def __init__(self, service: Service) -> None:
        self.service = service
        settings = service.settings
        self.forms = FormTokens(service.signing_key, settings.list.id)
        self.per_client = SlidingLimit(settings.web.subscribes_per_minute, 60.0)
        self.emails = SlidingLimit(settings.web.confirmations_per_hour, 3600.0)
        self.public_origin = _origin(settings.web.public_url)

    def routes(self) -> list[BaseRoute]:
        """The form's route and the confirmation's."""
        web = self.service.settings.web
        return [
            Route(url_path(web.subscribe_url), self.form, methods=["GET", "POST"]),
            Route(url_path(web.confirm_url), self.confirm, methods=["GET", "POST"]),
        ]

    # ------------------------------------------------------------------ the form

    def show(
        self, *, email: str = "", name: str = "", problem: str = "", status: int = 200
    ) -> Response:
        """The form, with a fresh token."""
        context = {
            "token": self.forms.issue(),
            "email": email,
            "name": name,
            "problem": problem,
            "honeypot": HONEYPOT,
        }
        # Same-origin referrers, so that browsers send the form's Origin (never "null").
        policy = {"Referrer-Policy": "same-origin"}
        return self.service.page("subscribe.html", context, status=status, headers=policy)

    async def form(self, request: Request) -> Response:
        """Show the form (GET) or take it (POST)."""
        service = self.service
        if not service.mailer.available:
            return service.page("subscribe_unavailable.html", status=503)
        if request.method != "POST":
            return self.show()
        client = request.client.host if request.client else ""
        if not self.per_client.allow(client):
            return self.too_many(self.per_client.retry_after(client))
        if not self.from_here(request):
            return service.error(
                403,
                "Not sent from this site",
                "This form can only be sent from its own page. Open the subscribe page "
                "and send it from there.",
            )
        async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
            return await self.take(form)

    async def take(self, form: FormData) -> Response:
        """Check a sent form; queue the confirmation email; answer alike for every address."""
        raw_email, raw_name = _text(form, "email"), _text(form, "name")
        name, _ = clean_cell(raw_name, MAX_NAME)
        if not self.forms.valid(_text(form, "form_token")):
            problem = "The form was open too long. Check it and send it again."
            return self.show(email=raw_email, name=name, problem=problem, status=400)
        if _text(form, HONEYPOT):
            return self.sent(raw_email)
        checked = check_address(raw_email)
        if not isinstance(checked, str):
            problem = f"That is not an email address we can use: {checked}"
            return self.show(email=raw_email, name=name, problem=problem, status=400)
        if not self.emails.allow():
            return self.too_many(self.emails.retry_after())
        found = await self.service.storage.call(lambda t: t.suppressions.get(checked))
        if found is None or found.reason not in NO_CONFIRMATION:
            self.service.mailer.submit(checked, name)
        return self.sent(checked)

    def sent(self, email: str) -> Response:
        """The one answer to a form that was taken."""
        hours = self.service.settings.web.confirm_hours
        return self.service.page("subscribe_sent.html", {"email": email, "hours": hours})

    def too_many(self, seconds: int) -> Response:
        """429, with when to try again."""
        return self.service.error(
            429,
            "Too many requests",
            "Too many subscribe requests came from your network just now; try again in a "
            "few minutes.",
            headers={"Retry-After": str(seconds)},
        )

    def from_here(self, request: Request) -> bool:
        """Whether a POST comes from a page of this site, as far as the browser tells.

        ``Sec-Fetch-Site`` (which no page's script can set) decides when the browser sends
        it; else ``Origin``. A client that sends neither is no browser: only the form
        token stands between it and the form, and the rate limits.
        """
        site = request.headers.get("sec-fetch-site")
        if site is not None:
            return site == "same-origin"
        origin = request.headers.get("origin")
        if origin is None:
            return True
        own = f"{request.url.scheme}://{request.url.netloc}".lower()
        return origin.lower() in (self.public_origin, own)

    # ------------------------------------------------------------------ the confirmation

    async def confirm(self, request: Request) -> Response:
        """Ask to confirm (GET) or confirm (POST)."""
        service = self.service
        found = service.links.read(request.query_params)
        if not isinstance(found, Subscription):
            expired = isinstance(found, Expired)
            context = {"expired": expired, "hours": service.settings.web.confirm_hours}
            return service.page("confirm_invalid.html", context, status=410 if expired else 400)
        if request.method != "POST":
            return service.page("confirm.html", {"email": found.email, "name": found.name})
        await service.storage.call(lambda t: _join(t, found))
        return service.page("confirmed.html", {"email": found.email, "name": found.name})


def _join(tenants: Tenants, subscription: Subscription) -> None:
    """Add the member; lift a suppression that a confirmed wish overrides."""
    tenants.members.add(subscription.email, subscription.name, "web")
    found = tenants.suppressions.get(subscription.email)
    if found is not None and found.reason in LIFTED_BY_CONFIRMING:
        tenants.suppressions.remove(subscription.email)


def _text(form: FormData, field: str) -> str:
    value = form.get(field)
    return value if isinstance(value, str) else ""


def routes(service: Service) -> list[BaseRoute]:
    """The subscribe routes of ``service``."""
    return Subscribe(service).routes()
