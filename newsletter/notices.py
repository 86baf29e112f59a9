"""One message to one reader outside an edition, such as the subscription confirmation.

Plain text (UTF-8, quoted-printable, CRLF lines) with the edition's From and Reply-To,
a fresh Message-ID on the sender's domain and ``Auto-Submitted: auto-generated``
(RFC 3834), so auto-responders leave it alone. It carries no List-Unsubscribe: the
reader is not on the list. The text comes from a template; it is only encoded here.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from email.utils import format_datetime

from newsletter.config.settings import Settings
from newsletter.errors import ConfigError, DeliveryError
from newsletter.models import OutgoingMessage
from newsletter.wire import (
    fold,
    header_address,
    header_text,
    mailbox,
    qp_block,
    unstructured_tokens,
)


def _configured(address: str, key: str, settings: Settings) -> str:
    try:
        return header_address(address)
    except ValueError as err:
        raise ConfigError(
            f"{key}: {address!r} cannot be used: {err}", settings.paths.config_file
        ) from err


def notice(
    settings: Settings, to: str, name: str, subject: str, text: str, *, at: datetime
) -> OutgoingMessage:
    """Build a plain-text message to ``to``; ``DeliveryError`` if it is no usable address."""
    try:
        recipient = header_address(to)
    except ValueError as err:
        raise DeliveryError(f"not a usable email address: {err}") from err
    sender = _configured(settings.sender.address, "sender.address", settings)
    domain = sender.rpartition("@")[2]
    message_id = f"<notice.{secrets.token_hex(12)}@{domain}>"
    when = at if at.tzinfo else at.replace(tzinfo=UTC)
    head = fold("From", mailbox(settings.sender.name, sender))
    if settings.sender.reply_to:
        reply_to = _configured(settings.sender.reply_to, "sender.reply_to", settings)
        head += f"Reply-To: {reply_to}\r\n"
    head += fold("To", mailbox(name, recipient))
    head += fold("Subject", unstructured_tokens(header_text(subject)))
    head += f"Date: {format_datetime(when)}\r\n"
    head += f"Message-ID: {message_id}\r\n"
    head += "Auto-Submitted: auto-generated\r\n"
    head += "MIME-Version: 1.0\r\n"
    head += 'Content-Type: text/plain; charset="utf-8"\r\n'
    head += "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    body = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") + "\n"
    data = head.encode("utf-8") + qp_block(body, open_end=False)
    return OutgoingMessage(recipient, message_id, data)
