"""Personal placeholders: tokens rendered once into an edition, filled per subscriber.

The tokens are plain ASCII letters so they pass Jinja, MRML and premailer untouched.
The renderer puts these tokens where a value goes (a theme writes them as
``slots.greeting``, ``slots.email`` and ``slots.unsubscribe_url``); ``messages``
replaces each with the subscriber's value, escaped for HTML, for text, or as a URL.
"""

from __future__ import annotations

GREETING = "XNLSLOTGREETINGX"  # "Hello Ana," or, without a name, "Hello,"
EMAIL = "XNLSLOTEMAILX"  # the subscriber's address
UNSUBSCRIBE_URL = "XNLSLOTUNSUBX"  # the personal one-click unsubscribe URL

ALL = (GREETING, EMAIL, UNSUBSCRIBE_URL)
