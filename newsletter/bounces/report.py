"""What a report in the bounce mailbox says, read into plain records (no mailbox, no state).

A ``Report`` is one message of the mailbox: a delivery status notification (RFC 3464, or
a mail server's own text form), a feedback report (RFC 5965, a complaint), an unsubscribe
mail sent to the ``List-Unsubscribe`` mailto, or something else. Its ``failures`` name
the recipients it is about and what happened to each; ``original`` is what it carries of
the message it is about.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

HARD, SOFT, DELAYED, COMPLAINT, UNSUBSCRIBE = "hard", "soft", "delayed", "complaint", "unsubscribe"

# The forms of report, as the summary names them.
DSN = "delivery status notification"
TEXT_BOUNCE = "bounce in a mail server's own words"
FEEDBACK = "feedback report"
MAILTO = "unsubscribe mail"
OTHER = "other mail"

_LABEL_LIMIT = 120


class Unreadable(Exception):
    """A message that cannot be read as a report; the text says why."""


@dataclass(frozen=True)
class Failure:
    """One recipient a report is about: ``hard``, ``soft``, ``delayed``, ``complaint`` …

    ``email`` is the address as the report gives it ("" when it is withheld, as in
    redacted complaints); ``status`` the RFC 3463 code (``5.1.1``) when there is one;
    ``diagnostic`` the remote server's words, on one line.
    """

    email: str
    kind: str
    status: str = ""
    diagnostic: str = ""


@dataclass(frozen=True)
class Original:
    """The headers a report carries of the message it is about ("" when absent).

    ``recipients`` are the addresses those headers claim it went to: only trusted when
    the Message-ID or the unsubscribe token confirms them (complaints often redact them).
    """

    message_id: str = ""
    list_id: str = ""
    list_unsubscribe: str = ""
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """One message of the bounce mailbox, read.

    ``key`` identifies it for good (its Message-ID, else a hash of its bytes); ``label``
    names it in messages. ``text`` is the whole message as text, where return paths are
    looked for. ``note`` says why a report without failures asks for nothing.
    """

    key: str
    label: str
    form: str
    failures: tuple[Failure, ...] = ()
    original: Original = Original()
    text: str = ""
    sender: str = ""  # the From address (of an unsubscribe mail)
    token: str = ""  # the token in an unsubscribe mail's subject
    at: datetime | None = None  # the report's Date, when it has a readable one
    note: str = ""


def report_key(message_id: str, raw: bytes) -> str:
    """Identify a report: its Message-ID, else a hash of its bytes (line ends normalized)."""
    message_id = " ".join(message_id.split())
    if message_id:
        return message_id[:500]
    body = raw.replace(b"\r\n", b"\n")
    return "sha256:" + hashlib.sha256(body).hexdigest()


def label_of(key: str) -> str:
    """How messages name a report: its key, printable and short (a hash shortened)."""
    if key.startswith("sha256:"):
        return f"message {key[:19]}"
    shown = "".join(ch if ch.isprintable() else "?" for ch in key)
    return shown if len(shown) <= _LABEL_LIMIT else shown[: _LABEL_LIMIT - 1] + "…"
