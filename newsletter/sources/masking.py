"""A source as messages show it: the credentials a feed URL carries are masked.

A feed URL may hold a password (``https://user:secret@host/feed``), a token as the user
name (``https://TOKEN@host/feed``) or a key in its query (``?token=…``). ``masked`` is
how every warning, error, report and file shows a source spec; ``hide`` takes those
secrets out of any text that may have picked them up on the way (an error of the
network library, a redirect target).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
MIN_SECRET = 3  # shorter values are not looked for in free text (they would match anything)
_SECRET_PARAM = re.compile(r"pass|secret|token|key|auth|sig|session|credential", re.IGNORECASE)


def masked(spec: str) -> str:
    """Return ``spec`` with a URL's password (or token user name) and secret query values masked.

    A path, or a URL without credentials, comes back unchanged.
    """
    parts = urlsplit(spec)
    if not parts.scheme or not parts.netloc:
        return spec
    userinfo, at, host = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    query = "&".join(_masked_param(piece) for piece in parts.query.split("&"))
    if netloc == parts.netloc and query == parts.query:
        return spec
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _masked_param(piece: str) -> str:
    name, equals, value = piece.partition("=")
    if equals and value and _SECRET_PARAM.search(unquote(name)):
        return f"{name}={MASK}"
    return piece


def secrets_of(spec: str) -> list[str]:
    """Return the secrets in a source spec as they may appear in text (raw and decoded)."""
    parts = urlsplit(spec.strip())
    if not parts.scheme or not parts.netloc:
        return []
    found: list[str] = []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    for piece in parts.query.split("&"):
        name, equals, value = piece.partition("=")
        if equals and value and _SECRET_PARAM.search(unquote(name)):
            found.append(value)
    forms = {form for raw in found for form in (raw, unquote(raw), quote(unquote(raw), safe=""))}
    return sorted((f for f in forms if len(f) >= MIN_SECRET), key=len, reverse=True)


def hide(text: str, spec: str) -> str:
    """Show ``spec`` masked in ``text`` and take its secrets out of the rest of it."""
    shown = masked(spec)
    if shown == spec:
        return text
    text = text.replace(spec, shown).replace(spec.strip(), shown.strip())
    for secret in secrets_of(spec):
        text = text.replace(secret, MASK)
    return text
