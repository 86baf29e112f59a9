"""Personal placeholders: tokens rendered once into an edition, filled per subscriber.

The tokens are plain ASCII letters so they pass Jinja, MRML and premailer untouched.
The renderer puts these tokens where a value goes (a theme writes them as
``slots.greeting``, ``slots.email`` and ``slots.unsubscribe_url``); ``messages``
replaces each with the subscriber's value, escaped for HTML, for text, or as a URL.
The archive's public copy of an edition fills them for nobody in particular, and leaves
out what a theme marks as for the recipient only.
"""

from __future__ import annotations

GREETING = "XNLSLOTGREETINGX"  # "Hello Ana," or, without a name, "Hello,"
EMAIL = "XNLSLOTEMAILX"  # the subscriber's address
UNSUBSCRIBE_URL = "XNLSLOTUNSUBX"  # the personal one-click unsubscribe URL

ALL = (GREETING, EMAIL, UNSUBSCRIBE_URL)

# What a theme marks as for the recipient's eyes only (``email_only.begin`` … ``.end``):
# the "why you get this" lines, the unsubscribe link, the link to the web copy. The
# finished HTML carries these comments around it, and the edition's public copy in the
# archive leaves it out. Comments are invisible in every mail client.
EMAIL_ONLY_BEGIN = "<!--nl:email-only-->"
EMAIL_ONLY_END = "<!--/nl:email-only-->"
