"""Failed recipients of a bounce: RFC 3464 fields first, flufl.bounce for the rest.

A delivery status notification's ``message/delivery-status`` part has one block per
recipient with ``Action`` (failed, delayed, delivered …), ``Status`` (RFC 3463),
``Final-Recipient``, ``Original-Recipient`` (the address as we gave it, preferred) and
``Diagnostic-Code`` (the remote server's reply). Bounces in a server's own words (Exim's
classic text, old Exchange, qmail …) are left to flufl.bounce, whose detectors return
the failing addresses (permanent) and the delayed ones (temporary); the status is then
looked for in the text near each address, and only flufl's word decides without one.
"""

from __future__ import annotations

import logging
import re
from email.message import Message
from email.parser import HeaderParser

from flufl.bounce import all_failures

from newsletter.bounces.mime import part_text
from newsletter.bounces.report import DELAYED, HARD, Failure, Unreadable
from newsletter.bounces.severity import find_status, severity, status_from_reply

# flufl.bounce logs each detector that fails with a traceback; such a message is reported
# as unreadable by its report's name instead, so those lines go nowhere.
_flufl_log = logging.getLogger("flufl.bounce")
_flufl_log.addHandler(logging.NullHandler())
_flufl_log.propagate = False

MAX_DIAGNOSTIC = 300  # characters of the remote server's words that are kept
_NEAR = 600  # characters after an address in a text bounce where its status is looked for
_FAILED = ("failed", "error")  # opensmtpd writes "error"
_CONTINUED = re.compile(r"^[245]\d\d[- ](?:[245]\.\d{1,3}\.\d{1,3}\s+)?")
_PARAGRAPH_END = re.compile(r"\n[ \t]*\r?\n")


def delivery_status_parts(message: Message) -> list[Message]:
    """The ``message/delivery-status`` parts of ``message`` (outside attached messages)."""
    found: list[Message] = []
    _walk(message, found)
    return found


def _walk(part: Message, found: list[Message]) -> None:
    kind = part.get_content_type()
    if kind == "message/delivery-status":
        found.append(part)
    elif part.is_multipart() and kind != "message/rfc822":
        for inner in part.get_payload():
            if isinstance(inner, Message):
                _walk(inner, found)


def dsn_failures(parts: list[Message]) -> tuple[list[Failure], str]:
    """The failed and delayed recipients of delivery status parts, and an original's id.

    The id is the per-message ``X-Original-Message-ID`` some servers write ("" if none).
    """
    failures: list[Failure] = []
    original_id = ""
    for part in parts:
        for block in _blocks(part):
            original_id = original_id or str(block.get("X-Original-Message-ID", "")).strip()
            failure = _recipient(block)
            if failure is not None:
                failures.append(failure)
    return failures, original_id


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a delivery status part (per message, then per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = part_text(part).replace("\r\n", "\n")
    return [HeaderParser().parsestr(chunk) for chunk in text.split("\n\n") if chunk.strip()]


def _recipient(block: Message) -> Failure | None:
    """One recipient's block as a failure; ``None`` for the per-message block or a success."""
    action = str(block.get("Action", "")).strip().lower()
    email = _address(block.get("Original-Recipient")) or _address(block.get("Final-Recipient"))
    if not email or not action:
        return None
    diagnostic = _one_line(str(block.get("Diagnostic-Code", "")))
    status = find_status(str(block.get("Status", ""))) or find_status(diagnostic)
    if action.startswith("delayed"):
        return Failure(email, DELAYED, status, diagnostic)
    if not action.startswith(_FAILED):
        return None  # delivered, relayed, expanded: not a failure
    status = status or status_from_reply(diagnostic)
    kind = severity(status, diagnostic) if status else HARD
    return Failure(email, kind, status, diagnostic)


def _address(value: object) -> str:
    """The address of a ``Final-Recipient``/``Original-Recipient`` field (``rfc822; a@b``)."""
    if value is None:
        return ""
    kind, _, address = str(value).partition(";")
    if not address:  # a server that writes the address alone
        address, kind = kind, "rfc822"
    address = address.strip().strip("<>").strip()
    if kind.strip().lower() != "rfc822" or "@" not in address:
        return ""
    return address


def _one_line(text: str) -> str:
    """The diagnostic on one line, at most ``MAX_DIAGNOSTIC`` characters.

    Its type (``smtp;``) is dropped, and so are the codes repeated at the start of each
    line of a multi-line reply (``550-5.1.1``).
    """
    kind, sep, rest = text.partition(";")
    if sep and " " not in kind.strip():
        text = rest
    first, *more = text.strip().splitlines() or [""]
    lines = [first, *(_CONTINUED.sub("", line.strip()) for line in more)]
    return " ".join(" ".join(lines).split())[:MAX_DIAGNOSTIC]


def text_failures(message: Message, text: str) -> list[Failure]:
    """The failures flufl.bounce finds in a bounce without RFC 3464 fields.

    Raises ``Unreadable`` when its detectors fail on the message.
    """
    try:
        delayed, failed = all_failures(message)
    except Exception as err:  # any detector may trip over a malformed message
        raise Unreadable(f"the bounce parser could not read it ({type(err).__name__})") from err
    failures: list[Failure] = []
    for raw in sorted(failed):
        email = raw.decode("ascii", "replace")
        diagnostic = _near(text, email)
        status = find_status(diagnostic) or status_from_reply(diagnostic)
        kind = severity(status, diagnostic) if status else HARD
        failures.append(Failure(email, kind, status, diagnostic))
    for raw in sorted(delayed - failed):
        failures.append(Failure(raw.decode("ascii", "replace"), DELAYED))
    return failures


def _near(text: str, email: str) -> str:
    """The words after the last mention of ``email`` that carries a status, on one line."""
    lowered, needle = text.lower(), email.lower()
    start = lowered.find(needle)
    best = ""
    while start >= 0:
        window = " ".join(_PARAGRAPH_END.split(text[start : start + _NEAR], 1)[0].split())
        if find_status(window) or status_from_reply(window):
            return window[:MAX_DIAGNOSTIC]
        best = best or window
        start = lowered.find(needle, start + len(needle))
    return best[:MAX_DIAGNOSTIC]
