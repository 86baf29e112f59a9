"""Complaints: feedback reports (RFC 5965, ARF) such as Yahoo's and Microsoft's (JMRP).

A ``message/feedback-report`` part says what the report is (``Feedback-Type``); only
``abuse`` (the reader pressed "this is spam") is a complaint. Other types (``auth-
failure`` DMARC reports, ``fraud``, ``virus``, ``not-spam``, ``other``) ask nothing of the
list. The reader is named by ``Original-Rcpt-To`` when the receiver gives it; many
withhold it, and the attached original then tells who it was (see ``match``).
"""

from __future__ import annotations

from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from newsletter.bounces.mime import part_text
from newsletter.bounces.report import COMPLAINT, Failure, Unreadable

COMPLAINT_TYPE = "abuse"


def feedback_part(message: Message) -> Message | None:
    """The fields of the report's ``message/feedback-report`` part, if it has one."""
    for part in message.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        return HeaderParser().parsestr(part_text(part).lstrip("\r\n"), headersonly=True)
    return None


def is_feedback(message: Message) -> bool:
    """Whether ``message`` says it is a feedback report (``report-type=feedback-report``)."""
    return message.get_content_type() == "multipart/report" and (
        str(message.get_param("report-type", "")).lower() == "feedback-report"
    )


def complaint_failures(fields: Message) -> tuple[list[Failure], str]:
    """The complaint of a feedback report; or no failures and a note saying what it is.

    Raises ``Unreadable`` when the report does not say its type.
    """
    kind = str(fields.get("Feedback-Type", "")).strip().lower()
    if not kind:
        raise Unreadable("a feedback report without a Feedback-Type")
    if kind != COMPLAINT_TYPE:
        return [], f"a feedback report of type {kind!r}, not a complaint"
    pairs = getaddresses([str(v) for v in fields.get_all("Original-Rcpt-To", [])])
    addresses = list(dict.fromkeys(address for _, address in pairs if "@" in address))
    if not addresses:
        return [Failure("", COMPLAINT, diagnostic="abuse")], ""  # withheld: see the original
    return [Failure(address, COMPLAINT, diagnostic="abuse") for address in addresses], ""
