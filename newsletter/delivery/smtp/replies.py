"""Server replies and errors as one short line of text, with the password scrubbed out."""

from __future__ import annotations

import base64
import smtplib
import urllib.parse
from collections.abc import Callable

MAX_REPLY = 500  # a reply or an error longer than this is cut


class Scrubber:
    """Remove the password from any text: as is, escaped, and in the forms AUTH sends it.

    AUTH LOGIN sends the password in base64, AUTH PLAIN "NUL user NUL password" (or
    "user NUL user NUL password") in base64; a server may echo any of them, with or
    without the ``=`` padding. A server (or an error) may also show it URL-quoted or
    backslash-escaped. Scrub before cutting a text short: a cut secret is not found.
    """

    def __init__(self, username: str, password: str) -> None:
        secrets: set[str] = set()
        if len(password) >= 3:
            secrets.update(_escaped(password))
            plain = f"\0{username}\0{password}"
            for raw in (password, plain, username + plain):
                encoded = base64.b64encode(raw.encode("utf-8")).decode("ascii")
                secrets.update((encoded, encoded.rstrip("=")))
        self._secrets = sorted(secrets, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _escaped(password: str) -> set[str]:
    """Return the password as is, URL-quoted and as ``repr`` shows it (str and bytes)."""
    shown = repr(password)[1:-1]
    as_bytes = repr(password.encode("utf-8"))[2:-1]
    return {password, urllib.parse.quote(password, safe=""), shown, as_bytes}


def _unchanged(text: str) -> str:
    return text


def reply_text(code: int, message: bytes | str, scrub: Callable[[str], str] = _unchanged) -> str:
    """Return a server reply as one line: the code, the text with its spaces collapsed.

    ``scrub`` (a ``Scrubber``) runs on the whole reply, before it is cut to ``MAX_REPLY``.
    """
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    text = scrub(" ".join(scrub(text).split()))  # before and after spaces are collapsed
    return f"{code} {text}".strip()[:MAX_REPLY]


def error_text(err: BaseException, scrub: Callable[[str], str] = _unchanged) -> str:
    """Return an error as one line, scrubbed then cut: the server's reply when it has one."""
    if isinstance(err, smtplib.SMTPResponseException):
        return reply_text(err.smtp_code, err.smtp_error, scrub)
    text = str(err) or type(err).__name__
    return scrub(" ".join(scrub(text).split()))[:MAX_REPLY]
