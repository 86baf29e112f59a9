"""Personal slots: tokens rendered once into an edition, filled per subscriber.

The tokens are plain ASCII letters so they pass Jinja, MRML and premailer untouched.
The renderer puts ``SLOT_*`` where a value goes; ``messages`` replaces each with
the subscriber's value, escaped for HTML, for text, or as a URL.
"""

from __future__ import annotations

GREETING = "XNLSLOTGREETINGX"  # "Hello Ana," or, without a name, "Hello,"
EMAIL = "XNLSLOTEMAILX"  # the subscriber's address
UNSUBSCRIBE_URL = "XNLSLOTUNSUBX"  # the personal one-click unsubscribe URL

ALL = (GREETING, EMAIL, UNSUBSCRIBE_URL)
