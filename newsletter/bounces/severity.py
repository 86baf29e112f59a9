"""Hard or soft: the one rule that decides whether a failed delivery is the address's fault.

A hard bounce says the address cannot receive mail (no such user, no such domain, the
mailbox closed): it is suppressed at once. A soft bounce is about the moment, the
message or the sender (a full mailbox, a message too big, a server down, a policy or
spam refusal of our mail): the address is kept until soft bounces repeat.

By the RFC 3463 status ``class.subject.detail``: class 4 is soft. In class 5, by
subject: addressing (``5.1.x``) is hard; mailbox (``5.2.x``) is hard except full
(``5.2.2``, often temporary despite its class) and too big (``5.2.3``); mail system
(``5.3.x``), protocol (``5.5.x``) and content (``5.6.x``) are soft; network and routing
(``5.4.x``) is soft except "unable to route" (``5.4.4``: the domain has no mail server);
security and policy (``5.7.x``) is soft, because a receiver refusing *our* mail (a
block list, DMARC, spam) says nothing about the address, unless the server's words say
the user does not exist; ``5.0.0`` (undefined) is hard unless its words point at a full
mailbox, a policy or spam.
"""

from __future__ import annotations

import re

from newsletter.bounces.report import HARD, SOFT

STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
REPLY_CODE = re.compile(r"(?<!\d)([45])\d\d(?=[\s-])")

_UNKNOWN_USER = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|account)|does ?n[o']t exist"
    r"|recipient not found|unknown recipient|mailbox not found|invalid recipient"
    r"|address (is )?unknown|account (has been )?(disabled|closed|deactivated)",
    re.IGNORECASE,
)
_NOT_THE_ADDRESS = re.compile(
    r"quota|mailbox (is )?full|insufficient (system )?storage|try again|temporar|spam"
    r"|block ?list|black ?list|blocked|policy|reputation|rate limit|too many|dmarc"
    r"|retry timeout exceeded",
    re.IGNORECASE,
)
_SOFT_MAILBOX = {"2", "3"}  # 5.2.2 mailbox full, 5.2.3 message too big
_HARD_ROUTING = {"4"}  # 5.4.4 unable to route


def find_status(text: str) -> str:
    """The first RFC 3463 status code in ``text`` (``5.1.1``), or ""."""
    found = STATUS.search(text)
    return ".".join(found.groups()) if found else ""


def status_from_reply(text: str) -> str:
    """A status for a reply that has only an SMTP code: ``5.0.0`` or ``4.0.0``, or ""."""
    found = REPLY_CODE.search(text)
    return f"{found.group(1)}.0.0" if found else ""


def severity(status: str, diagnostic: str = "") -> str:
    """Say whether a failure with this status (and the server's words) is hard or soft.

    ``status`` is an RFC 3463 code; without one the caller decides (see module notes).
    """
    klass, subject, detail = [*status.split("."), "", ""][:3]
    if klass != "5":
        return SOFT
    if subject == "1":
        return HARD
    if subject == "2":
        return SOFT if detail in _SOFT_MAILBOX else HARD
    if subject == "4":
        return HARD if detail in _HARD_ROUTING else SOFT
    if subject == "7":
        return HARD if _UNKNOWN_USER.search(diagnostic) else SOFT
    if subject in ("3", "5", "6"):
        return SOFT
    if _UNKNOWN_USER.search(diagnostic):
        return HARD
    return SOFT if _NOT_THE_ADDRESS.search(diagnostic) else HARD
