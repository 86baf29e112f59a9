"""Reports for the bounce tests: the sample files, and DSNs and unsubscribe mails made to order.

The sample files in ``data/bounces`` follow the documented formats of Postfix, Exim (its
text bounce and its RFC 3464 form), Gmail, Microsoft (Outlook.com, JMRP) and Yahoo, on
example domains. They are about edition ``EDITION`` of The Meridian Post, with the
Message-IDs the message factory gives it, and unsubscribe links signed with ``KEY``.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "bounces"
KEY = b"fixture signing key"
EDITION = "2026-03-04-f11f46ef"
LIST_ID = "daily.meridianpost.example"
SENDER = "newsletter@meridianpost.example"
BOUNCES = "bounces@meridianpost.example"

# The reader each sample is about, its kind and its status.
SAMPLES = {
    "postfix-5.1.1.eml": ("lena.novak@example.com", "hard", "5.1.1"),
    "exim-classic.eml": ("tom.okafor@example.net", "hard", "5.1.1"),
    "exim-dsn.eml": ("rui.costa@example.org", "hard", "5.2.1"),
    "gmail-5.1.1.eml": ("mina.park@example.com", "hard", "5.1.1"),
    "outlook-5.1.10.eml": ("sam.reyes@outlook.example", "hard", "5.1.10"),
    "soft-4.2.2.eml": ("joy.mensah@example.net", "soft", "4.2.2"),
    "policy-5.7.1.eml": ("eli.berg@example.com", "soft", "5.7.1"),
    "delayed-4.4.1.eml": ("ivo.petrov@example.org", "delayed", "4.4.1"),
    "arf-yahoo.eml": ("kai.lund@example.com", "complaint", ""),
    "arf-microsoft-jmrp.eml": ("noor.haddad@example.net", "complaint", ""),
}
OTHERS = ("arf-auth-failure.eml", "out-of-office.eml", "garbage.bin")


def sample(name: str) -> bytes:
    """The bytes of a sample file."""
    return (DATA / name).read_bytes()


def every_sample() -> list[bytes]:
    """Every sample, in a fixed order."""
    return [sample(name) for name in [*SAMPLES, *OTHERS]]


def dsn(
    recipient: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    to: str = BOUNCES,
    report_id: str = "<dsn-1@mx.example.net>",
    date: str = "Wed, 04 Mar 2026 07:30:00 +0000",
    original: str = "",
) -> bytes:
    """A Postfix-style DSN about ``recipient``, sent to ``to``; ``original``: header lines."""
    reply = f"{status[0]}50 {status} <{recipient}>: refused"
    headers = (
        "--b0\nContent-Description: Undelivered Message Headers\n"
        f"Content-Type: text/rfc822-headers\n\n{original}\n"
        if original
        else ""
    )
    text = f"""Return-Path: <>
Delivered-To: {to}
Date: {date}
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b0"
Message-Id: {report_id}

--b0
Content-Type: text/plain; charset=us-ascii

<{recipient}>: host mx.example.net said: {reply}

--b0
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {reply}

{headers}--b0--
"""
    return text.encode()


def unsubscribe_mail(sender: str, token: str, *, message_id: str = "<u-1@example.org>") -> bytes:
    """What a mail client sends for the ``List-Unsubscribe`` mailto."""
    text = f"""From: A Reader <{sender}>
To: unsubscribe@meridianpost.example
Subject: unsubscribe {token}
Date: Thu, 05 Mar 2026 08:00:00 +0000
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

This message will unsubscribe you.
"""
    return text.encode()


def write_mbox(path: Path, messages: list[bytes]) -> Path:
    """An mbox file holding ``messages``."""
    box = mailbox.mbox(path)
    for raw in messages:
        box.add(raw)
    box.close()
    return path


def write_maildir(path: Path, messages: list[bytes]) -> Path:
    """A maildir folder with ``messages`` in ``new/``."""
    box = mailbox.Maildir(path)
    for raw in messages:
        box.add(raw)
    box.close()
    return path
