"""Read one message of the bounce mailbox into a ``Report``: what it is and whom it is about.

In this order: a feedback report (a complaint, RFC 5965), a delivery status notification
(RFC 3464), an unsubscribe mail (the ``List-Unsubscribe`` mailto: a subject
``unsubscribe TOKEN``), a bounce in a mail server's own words (flufl.bounce), anything
else. A message that cannot be read as any of them (no header lines, a report without
its fields, a parser that trips) is ``UNREADABLE``, with the reason in ``note``: one bad
message never stops the others.
"""

from __future__ import annotations

import email
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr, parsedate_to_datetime

from newsletter.bounces.dsn import delivery_status_parts, dsn_failures, text_failures
from newsletter.bounces.feedback import complaint_failures, feedback_part, is_feedback
from newsletter.bounces.mime import plain_text
from newsletter.bounces.original import original_of
from newsletter.bounces.report import (
    DSN,
    FEEDBACK,
    MAILTO,
    OTHER,
    TEXT_BOUNCE,
    Failure,
    Report,
    Unreadable,
    label_of,
    report_key,
)
from newsletter.tokens import TOKEN_LENGTH

UNREADABLE = "unreadable"
_TOKEN_SUBJECT = re.compile(
    rf"(?<![\w-])unsubscribe\s+([A-Za-z0-9_-]{{{TOKEN_LENGTH}}})(?![A-Za-z0-9_-])", re.IGNORECASE
)


def read_report(raw: bytes) -> Report:
    """Read ``raw`` (one message's bytes) into a report; never raises for a bad message."""
    message = email.message_from_bytes(raw)
    key = report_key(_header(message, "Message-ID"), raw)
    label = label_of(key)
    try:
        return _read(message, raw, key, label)
    except Unreadable as err:
        return Report(key=key, label=label, form=UNREADABLE, note=str(err))


def _read(message: Message, raw: bytes, key: str, label: str) -> Report:
    if not message.keys():
        raise Unreadable("not an email message (it has no header lines)")
    text = raw.decode("utf-8", "replace")
    body = plain_text(message)
    base = Report(
        key=key,
        label=label,
        form=OTHER,
        original=original_of(message, body),
        text=text,
        sender=parseaddr(_header(message, "From"))[1],
        at=_date(message),
    )
    fields = feedback_part(message)
    if fields is not None or is_feedback(message):
        if fields is None:
            raise Unreadable("a feedback report without its message/feedback-report part")
        failures, note = complaint_failures(fields)
        return _with(base, FEEDBACK, failures, note)
    parts = delivery_status_parts(message)
    if parts:
        failures, original_id = dsn_failures(parts)
        if not failures:
            failures = text_failures(message, body)
        if original_id and not base.original.message_id:
            base = _with_original_id(base, original_id)
        note = "" if failures else "a delivery report without a failed or delayed recipient"
        return _with(base, DSN, failures, note)
    token = _TOKEN_SUBJECT.search(_header(message, "Subject"))
    if token is not None:
        return replace(base, form=MAILTO, token=token.group(1))
    failures = text_failures(message, body)
    if failures:
        return _with(base, TEXT_BOUNCE, failures, "")
    automatic = _header(message, "Auto-Submitted").lower() not in ("", "no")
    note = "an automatic reply" if automatic else "not a bounce, a complaint or an unsubscribe"
    return _with(base, OTHER, [], note)


def _with(base: Report, form: str, failures: list[Failure], note: str) -> Report:
    return replace(base, form=form, failures=tuple(failures), note=note)


def _with_original_id(base: Report, message_id: str) -> Report:
    found = re.search(r"<[^<>\s]+>", message_id)
    if found is None:
        return base
    return replace(base, original=replace(base.original, message_id=found.group(0)))


def _header(message: Message, name: str) -> str:
    """A header's value as text (encoded words decoded), "" when absent or unreadable."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError):
        return str(value)


def _date(message: Message) -> datetime | None:
    """The report's Date as an aware time, or ``None``."""
    value = message.get("Date")
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
