"""Edition + Subscriber → RFC 5322 bytes, with everything shared encoded once per edition.

A ``MessageFactory`` splits the edition's HTML and text on the personal slot tokens,
quoted-printable encodes every static piece and every shared header once, and per
subscriber encodes only the small personal values (To, Message-ID, List-Unsubscribe,
greeting, address, unsubscribe URL) and joins the pieces. Pieces meet at QP soft line
breaks, so every body line stays within 76 octets; every line ends in CRLF.

Every piece starts at a line start, so the SMTP DATA payload (leading dots doubled) is
made the same way: statics dot-stuffed once, the small values per subscriber. The
encodings themselves are in ``wire``, the unsubscribe tokens in ``tokens``.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import re
import string
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from operator import itemgetter
from urllib.parse import quote, urlsplit, urlunsplit

from newsletter import placeholders
from newsletter.config.settings import Settings
from newsletter.errors import ConfigError, DeliveryError
from newsletter.limits import MAX_LINE_OCTETS
from newsletter.models import Edition, OutgoingMessage, Subscriber
from newsletter.tokens import (
    DEVELOPMENT_KEY,
    ReturnPath,
    Signer,
    subscriber_ref,
    unsubscribe_token,
)
from newsletter.wire import (
    END_OF_DATA,
    blank_controls,
    dot_stuff,
    fold,
    header_address,
    header_text,
    mailbox,
    phrase_tokens,
    qp_block,
    qp_value,
    unstructured_tokens,
)

_MAX_URL = MAX_LINE_OCTETS - 98  # 900: longer would push List-Unsubscribe near the line limit
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SLOT_SPLIT = re.compile("(" + "|".join(re.escape(token) for token in placeholders.ALL) + ")")

# Indexes of the per-recipient values in the tuple that ``build`` fills.
_TO, _MESSAGE_ID, _LIST_UNSUBSCRIBE = 0, 1, 2
_HTML_SLOT = {placeholders.GREETING: 3, placeholders.EMAIL: 4, placeholders.UNSUBSCRIBE_URL: 5}
_TEXT_SLOT = {placeholders.GREETING: 6, placeholders.EMAIL: 7, placeholders.UNSUBSCRIBE_URL: 8}


# --------------------------------------------------------------------------- unsubscribe URLs


def _url_frame(base_url: str, list_id: str) -> tuple[str, str]:
    """Split the unsubscribe URL into what goes before the quoted address and after the token."""
    parts = urlsplit(base_url)
    extra = "list=" + quote(list_id, safe="")
    query = f"{parts.query}&{extra}" if parts.query else extra
    head = urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")) + "&s="
    tail = f"#{parts.fragment}" if parts.fragment else ""
    return head, tail


def unsubscribe_url(settings: Settings, email: str, key: bytes) -> str:
    """Return the subscriber's personal one-click unsubscribe URL (``…&s=REF&token=HMAC``)."""
    head, tail = _url_frame(settings.list.unsubscribe_url, settings.list.id)
    token = unsubscribe_token(key, settings.list.id, email)
    return f"{head}{subscriber_ref(email)}&token={token}{tail}"


# --------------------------------------------------------------------------- Message-IDs


def message_id_left(edition_id: str) -> str:
    """The edition's part of its Message-IDs: the id, unusable characters replaced."""
    left = _MSGID_UNSAFE.sub("-", edition_id).strip(".-") or "edition"
    return re.sub(r"\.{2,}", ".", left)


def message_id_digest(edition_id: str, email: str) -> str:
    """The recipient's part of a Message-ID: a hash of the address and the edition id."""
    return hashlib.sha256((email.casefold() + edition_id).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- the body layout


def _part_items(text: str, refs: dict[str, int]) -> list[bytes | int]:
    """Split a part on the slot tokens into encoded static pieces and value indexes."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    chunks = _SLOT_SPLIT.split(text)
    items: list[bytes | int] = []
    for index, chunk in enumerate(chunks):
        if index % 2:
            items.append(refs[chunk])
        else:
            items.append(qp_block(chunk, open_end=index + 1 < len(chunks)))
    return items


def _alternate(items: list[bytes | int]) -> tuple[list[bytes], list[int]]:
    """Merge adjacent static pieces so statics and value indexes alternate."""
    statics: list[bytes] = [b""]
    refs: list[int] = []
    for item in items:
        if isinstance(item, int):
            refs.append(item)
            statics.append(b"")
        else:
            statics[-1] += item
    return statics, refs


def _boundary(edition: Edition, pieces: list[bytes]) -> str:
    """Return a boundary that cannot occur in QP data ("=_" never does), checked anyway."""
    seed = hashlib.sha256(f"{edition.id}\0{edition.html}\0{edition.text}".encode()).hexdigest()
    for attempt in range(100):
        boundary = f"=_nl{hashlib.sha256(f'{seed}{attempt}'.encode()).hexdigest()[:28]}"
        marker = f"--{boundary}".encode("ascii")
        if not any(marker in piece for piece in pieces):
            return boundary
    raise DeliveryError(f"edition {edition.id}: no MIME boundary avoids the content")


# --------------------------------------------------------------------------- the factory


def _greeting_pieces(template: str, settings: Settings) -> tuple[str, ...]:
    """Split a greeting template on ``{name}``; any other field is a config error."""
    where = settings.paths.config_file
    hint = "use {name} for the subscriber's name and {{ or }} for a literal brace"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ConfigError(
            f"email.greeting: {template!r} is not valid ({err}); {hint}", where
        ) from err
    pieces: list[str] = []
    current = ""
    for literal, field, spec, conversion in parsed:
        current += literal
        if field is None:
            continue
        if field != "name" or spec or conversion:
            raise ConfigError(f"email.greeting: {{{field}}} is not allowed; {hint}", where)
        pieces.append(current)
        current = ""
    pieces.append(current)
    return tuple(blank_controls(piece) for piece in pieces)


EXAMPLE_READER = Subscriber(email="reader@example.com")  # shows an edition as read, unnamed


class MessageFactory:
    """Build each subscriber's message bytes from one edition, encoded once."""

    def __init__(
        self,
        edition: Edition,
        settings: Settings,
        *,
        signing_key: bytes | None = None,
        date: datetime | None = None,
    ) -> None:
        key = settings.signing_key if signing_key is None else signing_key
        self.date = date or edition.created
        self.uses_development_key = not key
        self.edition = edition
        self.settings = settings
        self.signing_key = key or DEVELOPMENT_KEY
        self._token = Signer(self.signing_key, settings.list.id).token
        if not settings.list.unsubscribe_url:
            raise ConfigError(
                "list.unsubscribe_url: required for List-Unsubscribe (an https:// URL)",
                settings.paths.config_file,
            )
        self._url_head, self._url_tail = _url_frame(settings.list.unsubscribe_url, settings.list.id)
        self._html_url_head = html.escape(self._url_head)
        self._html_url_tail = html.escape(self._url_tail)
        mailto = settings.list.unsubscribe_mailto
        self._mailto = (
            f"<mailto:{quote(self._config_address(mailto, 'list.unsubscribe_mailto'), safe='@')}"
            if mailto
            else ""
        )
        self._greeting = _greeting_pieces(settings.email.greeting, settings)
        self._anonymous = blank_controls(settings.email.greeting_anonymous)
        self._sender = self._config_address(settings.sender.address, "sender.address")
        self._domain = self._sender.rpartition("@")[2]
        self._id_left = message_id_left(edition.id)
        self._return_path = (
            ReturnPath(self.signing_key, settings.list.id, settings.return_path).edition(edition.id)
            if settings.bounces.verp
            else None
        )
        self._statics, self._refs = self._layout()
        self._pick = itemgetter(*self._refs)
        self._slots = [b""] * (2 * len(self._refs) + 1)
        self._slots[0::2] = self._statics
        self._stuffed_slots = [b""] * len(self._slots)
        self._stuffed_slots[0::2] = [dot_stuff(static) for static in self._statics]
        self._stuffed_slots[-1] += END_OF_DATA

    def _config_address(self, address: str, key: str) -> str:
        """Return a configured address in header form, or raise a ``ConfigError`` naming the key."""
        try:
            return header_address(address)
        except ValueError as err:
            raise ConfigError(
                f"{key}: {address!r} cannot be used: {err}", self.settings.paths.config_file
            ) from err

    def _layout(self) -> tuple[list[bytes], list[int]]:
        """Encode every shared header and body piece once; return statics and value indexes."""
        edition, settings = self.edition, self.settings
        created = self.date if self.date.tzinfo else self.date.replace(tzinfo=UTC)
        top = fold("From", mailbox(settings.sender.name, self._sender))
        if settings.sender.reply_to:
            reply_to = self._config_address(settings.sender.reply_to, "sender.reply_to")
            top += f"Reply-To: {reply_to}\r\n"
        middle = fold("Subject", unstructured_tokens(header_text(edition.subject)))
        middle += f"Date: {format_datetime(created)}\r\n"
        list_name = phrase_tokens(header_text(settings.list.name), always_quote=True)
        after_id = "MIME-Version: 1.0\r\n" + fold("List-Id", [*list_name, f"<{settings.list.id}>"])
        text_items = _part_items(edition.text, _TEXT_SLOT)
        html_items = _part_items(edition.html, _HTML_SLOT)
        boundary = _boundary(edition, [i for i in text_items + html_items if isinstance(i, bytes)])
        delimiter = f"--{boundary}\r\n"
        part_head = (
            'Content-Type: text/{}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        bottom = (
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
            + delimiter
            + part_head.format("plain")
        )
        items: list[bytes | int] = [
            top.encode(),
            _TO,
            middle.encode(),
            _MESSAGE_ID,
            after_id.encode(),
            _LIST_UNSUBSCRIBE,
            bottom.encode(),
            *text_items,
            f"\r\n{delimiter}{part_head.format('html')}".encode(),
            *html_items,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
        return _alternate(items)

    def message_id(self, email: str) -> str:
        """Return the Message-ID for ``email`` in this edition: stable across runs."""
        digest = message_id_digest(self.edition.id, email)
        return f"<{self._id_left}.{digest}@{self._domain}>"

    def greeting(self, name: str) -> str:
        """Return the greeting for a subscriber's (cleaned) name."""
        return name.join(self._greeting) if name else self._anonymous

    def parts(self, subscriber: Subscriber) -> tuple[str, str]:
        """Return the HTML and text one subscriber sees, decoded from the built message."""
        message = email.message_from_bytes(self.build(subscriber).data, policy=email.policy.default)
        html_part = message.get_body(("html",))
        text_part = message.get_body(("plain",))
        assert isinstance(html_part, EmailMessage)
        assert isinstance(text_part, EmailMessage)
        html_text, plain = str(html_part.get_content()), str(text_part.get_content())
        return html_text.replace("\r\n", "\n"), plain.replace("\r\n", "\n")

    def build(
        self, subscriber: Subscriber, *, payload: bool = False, token: str | None = None
    ) -> OutgoingMessage:
        """Fill the edition for one subscriber; raise ``DeliveryError`` for an unusable address.

        With ``payload`` the message also carries its SMTP DATA payload, made from pieces.
        ``token`` stands in for the signed unsubscribe token (a preview of an address that
        is not in the list gets no valid one).
        """
        email = subscriber.email
        try:
            address = header_address(email)
        except ValueError as err:
            where = f" (line {subscriber.line})" if subscriber.line else ""
            raise DeliveryError(
                f"subscriber {email!r}{where}: not a usable email address: {err}; "
                "fix or remove the row"
            ) from err
        token = self._token(email) if token is None else token
        quoted = subscriber_ref(email)
        url = f"{self._url_head}{quoted}&token={token}{self._url_tail}"
        if len(url) > _MAX_URL:
            raise DeliveryError(
                f"subscriber {email!r}: the unsubscribe URL would be {len(url)} characters; "
                "shorten list.unsubscribe_url"
            )
        html_url = f"{self._html_url_head}{quoted}&amp;token={token}{self._html_url_tail}"
        name = header_text(subscriber.name) if subscriber.name else ""
        greeting = self.greeting(name)
        html_greeting = html.escape(greeting)
        html_email = html.escape(email)
        text_greeting, text_email = qp_value(greeting), qp_value(email)
        message_id = self.message_id(email)
        unsubscribe = (
            [f"<{url}>,", f"{self._mailto}?subject=unsubscribe%20{token}>"]
            if self._mailto
            else [f"<{url}>"]
        )
        values = (
            fold("To", [*phrase_tokens(name), f"<{address}>"] if name else [address]).encode(),
            f"Message-ID: {message_id}\r\n".encode(),
            fold("List-Unsubscribe", unsubscribe).encode(),
            text_greeting if html_greeting == greeting else qp_value(html_greeting),
            text_email if html_email == email else qp_value(html_email),
            qp_value(html_url),
            text_greeting,
            text_email,
            qp_value(url),
        )
        pieces = self._slots.copy()
        pieces[1::2] = self._pick(values)
        data = b"".join(pieces)
        envelope = self._return_path.address(address) if self._return_path is not None else ""
        if not payload:
            return OutgoingMessage(
                address, message_id, data, pieces=tuple(pieces), envelope_from=envelope
            )
        stuffed = self._stuffed_slots.copy()
        stuffed[1::2] = self._pick(tuple(map(dot_stuff, values)))
        return OutgoingMessage(
            address, message_id, data, b"".join(stuffed), tuple(pieces), envelope_from=envelope
        )
