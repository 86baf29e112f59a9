"""Find what a report carries of the message it is about: its Message-ID, List-Id, recipients.

Where reports put it: a ``message/rfc822`` part (the whole message), a
``text/rfc822-headers`` part (its headers, RFC 6522), or, in a mail server's own text
bounce (Exim's "This is a copy of the message, including all the headers"), a header
block inside the text. Without any of these, the report's own ``In-Reply-To`` or the
``X-Original-Message-ID`` some servers add name the message.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from newsletter.bounces.mime import part_text
from newsletter.bounces.report import Original

_HEADERS_TYPES = ("text/rfc822-headers", "message/rfc822-headers")
_MESSAGE_ID_LINE = re.compile(r"^message-id:[ \t]*<", re.IGNORECASE | re.MULTILINE)
_ANGLE = re.compile(r"<([^<>\s]+)>")
# Where receivers keep the address a message was delivered to (Microsoft's complaints).
_RECIPIENT_FIELDS = ("to", "x-hmxmroriginalrecipient", "x-original-to", "delivered-to")


def original_of(message: Message, fallback_text: str = "") -> Original:
    """The original message's headers as ``message`` (a report) carries them."""
    headers = _original_headers(message, fallback_text)
    if headers is None:
        referred = message.get("X-Original-Message-ID") or message.get("In-Reply-To") or ""
        return Original(message_id=_message_id(str(referred)))
    recipients: list[str] = []
    for field in _RECIPIENT_FIELDS:
        for _, address in getaddresses([str(v) for v in headers.get_all(field, [])]):
            if "@" in address and address not in recipients:
                recipients.append(address)
    return Original(
        message_id=_message_id(str(headers.get("Message-ID", ""))),
        list_id=_list_id(str(headers.get("List-Id", ""))),
        list_unsubscribe=" ".join(str(headers.get("List-Unsubscribe", "")).split()),
        recipients=tuple(recipients),
    )


def _original_headers(message: Message, fallback_text: str) -> Message | None:
    """The header block of the original message, wherever the report keeps it."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind in _HEADERS_TYPES:
            text = part_text(part)
            if text.strip():
                return HeaderParser().parsestr(text.lstrip("\r\n"), headersonly=True)
    return _header_block_in(fallback_text)


def _header_block_in(text: str) -> Message | None:
    """A header block with a Message-ID inside a text bounce (after a blank line)."""
    found = _MESSAGE_ID_LINE.search(text)
    if found is None:
        return None
    start = max(text.rfind("\n\n", 0, found.start()), text.rfind("\r\n\r\n", 0, found.start()))
    block = text[start:].lstrip("\r\n") if start >= 0 else text
    return HeaderParser().parsestr(block, headersonly=True)


def _message_id(value: str) -> str:
    found = _ANGLE.search(value)
    return f"<{found.group(1)}>" if found else ""


def _list_id(value: str) -> str:
    found = _ANGLE.search(value)
    return found.group(1).strip().lower() if found else value.strip().lower()
