"""Server replies and errors as one short line of text, with the password scrubbed out."""

from __future__ import annotations

import base64
import smtplib

MAX_REPLY = 500  # a reply or an error longer than this is cut


class Scrubber:
    """Remove the password (and its base64 forms as sent by AUTH) from any text."""

    def __init__(self, username: str, password: str) -> None:
        secrets: set[str] = set()
        if len(password) >= 3:
            secrets.add(password)
            plain = f"\0{username}\0{password}"
            for raw in (password, plain, username + plain):
                secrets.add(base64.b64encode(raw.encode("utf-8")).decode("ascii"))
        self._secrets = sorted(secrets, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def reply_text(code: int, message: bytes | str) -> str:
    """Return a server reply as one line: the code, the text with its spaces collapsed."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    text = " ".join(text.split())
    return f"{code} {text}".strip()[:MAX_REPLY]


def error_text(err: BaseException) -> str:
    """Return an error as one line: the server's reply when it carries one."""
    if isinstance(err, smtplib.SMTPResponseException):
        return reply_text(err.smtp_code, err.smtp_error)
    text = str(err) or type(err).__name__
    return " ".join(text.split())[:MAX_REPLY]
