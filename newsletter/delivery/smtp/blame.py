"""Whose fault a refused recipient is: the address's, or the relay's (RFC 3463 codes, else words).

A send must pause when the relay refuses everyone (it denies relaying, will not take the
sender or the content), yet go on past any number of unknown users. The reply says which:

- an enhanced status code (RFC 3463) ``X.1.x`` is about the address and ``X.2.x`` about
  the mailbox: the address's fault. ``X.1.7`` and ``X.1.8`` name the *sender's* address:
  the relay's concern. ``X.7.x`` is policy, ``X.4.x`` routing and ``X.0.x`` undefined:
  they may concern one recipient or everyone, so they count against the relay only when
  they repeat across domains (see ``run.RefusalWindow``). Any other class (the mail
  system, the protocol, the content) is the relay's.
- a reply without one is judged by its words, then its code.

Words come first beyond ``X.1.x`` and ``X.2.x``: the sender, relaying or authentication
named make a refusal the relay's on its face, in any domain; "mailbox unavailable" and
its kin make it the address's, whatever the class (servers use ``5.5.0`` for that too).
"""

from __future__ import annotations

import enum
import re

_ENHANCED = re.compile(r"\A(\d{3})[ -]+([245])\.(\d{1,3})\.(\d{1,3})\b")
_CODE = re.compile(r"\A(\d{3})\b")

# What a server says when it does not know the address or cannot deliver to that mailbox.
_ADDRESS_WORDS = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address|account)"
    r"|unknown (?:recipient|mailbox|address|local)|recipient (?:unknown|not found)"
    r"|mailbox (?:unavailable|not found|does not exist|full|disabled|is full|inactive)"
    r"|does ?n[o']t exist|not exist|user not found|invalid (?:recipient|mailbox|address)"
    r"|address (?:unknown|not found)|over ?quota|quota exceeded|account (?:disabled|closed)",
    re.IGNORECASE,
)
# A refusal of the sender (Postfix, for one, gives it only at RCPT) is about us, even when
# it says "user unknown" of the sender's address.
_SENDER_WORDS = re.compile(r"\bsender\b|\bnot owned\b|\bspf\b|\bdmarc\b", re.IGNORECASE)
# What a relay says when it refuses us, whoever the recipient is.
_RELAY_WORDS = re.compile(
    r"relay|authenticat|blocked|block ?list|black ?list|spam|sending limit|rate limit"
    r"|too many",
    re.IGNORECASE,
)


class Blame(enum.Enum):
    """Whom a refusal is about."""

    ADDRESS = "address"  # this recipient: it fails alone and never pauses a send
    POLICY = "policy"  # one recipient or everyone: the relay's if it repeats across domains
    RELAY = "relay"  # the relay refuses us: relaying, the sender, the content, the protocol


def blame(reply: str) -> Blame:
    """Say whom a permanent refusal (a 5xx reply as ``reply_text`` gives it) is about."""
    enhanced = _ENHANCED.match(reply)
    if enhanced is not None:
        subject, detail = int(enhanced.group(3)), int(enhanced.group(4))
        if subject == 1:
            about_sender = detail in (7, 8) or _SENDER_WORDS.search(reply)
            return Blame.RELAY if about_sender else Blame.ADDRESS
        if subject == 2:
            return Blame.ADDRESS
        return _by_words(reply, Blame.POLICY if subject in (0, 4, 7) else Blame.RELAY)
    code = _CODE.match(reply)
    return _by_words(reply, _by_code(int(code.group(1)) if code else 0))


def _by_words(reply: str, otherwise: Blame) -> Blame:
    if _SENDER_WORDS.search(reply):
        return Blame.RELAY
    if _ADDRESS_WORDS.search(reply):
        return Blame.ADDRESS
    if _RELAY_WORDS.search(reply):
        return Blame.RELAY
    return otherwise


def _by_code(code: int) -> Blame:
    if code in (521, 551, 553, 556):  # no mail for this domain, not local, bad mailbox name
        return Blame.ADDRESS
    if code in (530, 535, 538):  # authentication required or refused
        return Blame.RELAY
    return Blame.POLICY
