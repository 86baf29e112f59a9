"""An edition as an anonymous reader sees it on the web: nobody's name, address or token.

The stored edition still holds the personal slots of ``placeholders``. Its public copy

- leaves out what the theme marks as for the recipient only (``EMAIL_ONLY_BEGIN`` …
  ``EMAIL_ONLY_END``): the link to the web copy, why you get this, the unsubscribe link;
- greets nobody in particular (``[email] greeting_anonymous``);
- fills any slot left outside the marks (a theme copied before them) with nobody's
  data: the address reads "a subscriber", the unsubscribe link goes to the subscribe
  form; so no placeholder, address or token can reach the page;
- opens with a banner (the theme's ``web/archive_banner.html``): which edition this
  is, how to subscribe, and the way to every edition.
"""

from __future__ import annotations

import html
import re

from newsletter import placeholders
from newsletter.config.settings import Settings
from newsletter.wire import blank_controls

ANONYMOUS_ADDRESS = "a subscriber"  # "This email was sent to a subscriber."

_EMAIL_ONLY = re.compile(
    re.escape(placeholders.EMAIL_ONLY_BEGIN) + ".*?" + re.escape(placeholders.EMAIL_ONLY_END),
    re.S,
)
_BODY = re.compile(r"<body\b[^>]*>", re.I)


def anonymous_values(settings: Settings) -> dict[str, str]:
    """What each personal slot reads on the web, escaped for HTML."""
    return {
        placeholders.GREETING: html.escape(blank_controls(settings.email.greeting_anonymous)),
        placeholders.EMAIL: ANONYMOUS_ADDRESS,
        placeholders.UNSUBSCRIBE_URL: html.escape(settings.web.subscribe_url),
    }


def public_html(edition_html: str, settings: Settings, banner: str) -> str:
    """The edition's HTML for anyone: no recipient-only part, no slot, ``banner`` on top."""
    page = _EMAIL_ONLY.sub("", edition_html)
    for token, value in anonymous_values(settings).items():
        page = page.replace(token, value)
    body = _BODY.search(page)
    at = body.end() if body else 0
    return f"{page[:at]}{banner}{page[at:]}"
