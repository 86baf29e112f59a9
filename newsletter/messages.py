"""Edition + Subscriber → RFC 5322 bytes, with everything shared encoded once per edition.

A ``MessageFactory`` splits the edition's HTML and text on the personal slot tokens,
quoted-printable encodes every static piece and every shared header once, and per
subscriber encodes only the small personal values (To, Message-ID, List-Unsubscribe,
greeting, address, unsubscribe URL) and joins the pieces. Pieces meet at QP soft line
breaks, so every body line stays within 76 octets; every line ends in CRLF.

Every piece starts at a line start, so the SMTP DATA payload (leading dots doubled) is
made the same way: statics dot-stuffed once, the small values per subscriber.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import hashlib
import hmac
import html
import re
import string
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from operator import itemgetter
from urllib.parse import quote, urlsplit, urlunsplit

import idna

from newsletter import placeholders
from newsletter.config import Settings
from newsletter.errors import ConfigError, DeliveryError
from newsletter.models import Edition, OutgoingMessage, Subscriber

DEVELOPMENT_KEY = b"newsletter development signing key: NOT SECRET, never use for live sends"
TOKEN_LENGTH = 32

_HEADER_WIDTH = 78  # preferred longest header line (RFC 5322 2.1.1)
_LONGEST_WORD = 70  # a plain word longer than this is sent as encoded-words instead
_Q_PAYLOAD = 57  # encoded characters in one encoded-word: "Subject: " + 69 ≤ 78
_B_BYTES = 42  # bytes in one base64 encoded-word (56 characters)
_QP_LINE = 76  # RFC 2045 longest quoted-printable line
_MAX_ADDRESS = 254  # octets in an address (RFC 5321 path limit)
_MAX_URL = 900  # an unsubscribe URL this long would push List-Unsubscribe near 998 octets

_SOFT_BREAK = b"=\r\n"
_END_OF_DATA = b".\r\n"
_CONTROLS = dict.fromkeys((*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029), " ")
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_Q_SAFE = frozenset((string.ascii_letters + string.digits + "!*+-/").encode())
_Q_BYTE = tuple("_" if b == 0x20 else chr(b) if b in _Q_SAFE else f"={b:02X}" for b in range(256))
_BAD_ADDRESS_CHARS = re.compile(r'[\x00-\x20\x7f-\x9f"(),:;<>\[\\\]\u2028\u2029]')
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SLOT_SPLIT = re.compile("(" + "|".join(re.escape(token) for token in placeholders.ALL) + ")")

# Indexes of the per-recipient values in the tuple that ``build`` fills.
_TO, _MESSAGE_ID, _LIST_UNSUBSCRIBE = 0, 1, 2
_HTML_SLOT = {placeholders.GREETING: 3, placeholders.EMAIL: 4, placeholders.UNSUBSCRIBE_URL: 5}
_TEXT_SLOT = {placeholders.GREETING: 6, placeholders.EMAIL: 7, placeholders.UNSUBSCRIBE_URL: 8}


# --------------------------------------------------------------------------- tokens


def unsubscribe_token(key: bytes, list_id: str, email: str) -> str:
    """Sign ``email`` for ``list_id``: HMAC-SHA256, base64url without padding, 32 characters."""
    mac = hmac.new(key, f"{list_id}\n{email.casefold()}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest())[:TOKEN_LENGTH].decode("ascii")


def verify_token(key: bytes, list_id: str, email: str, token: str) -> bool:
    """Check an unsubscribe token in constant time."""
    expected = unsubscribe_token(key, list_id, email).encode("ascii")
    return hmac.compare_digest(expected, token.encode("utf-8", "replace"))


def _url_frame(base_url: str, list_id: str) -> tuple[str, str]:
    """Split the unsubscribe URL into what goes before the quoted address and after the token."""
    parts = urlsplit(base_url)
    extra = "list=" + quote(list_id, safe="")
    query = f"{parts.query}&{extra}" if parts.query else extra
    head = urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")) + "&s="
    tail = f"#{parts.fragment}" if parts.fragment else ""
    return head, tail


def subscriber_ref(email: str) -> str:
    """Encode an address for the unsubscribe URL (base64url), so no plain address is in a URL.

    Plain addresses in URLs are scored by spam filters and end up in web server logs.
    """
    return base64.urlsafe_b64encode(email.encode("utf-8")).rstrip(b"=").decode("ascii")


def read_subscriber_ref(ref: str) -> str:
    """Decode ``subscriber_ref`` (for the web endpoint that handles unsubscribes)."""
    padded = ref + "=" * (-len(ref) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")


def unsubscribe_url(settings: Settings, email: str, key: bytes) -> str:
    """Return the subscriber's personal one-click unsubscribe URL (``…&s=REF&token=HMAC``)."""
    head, tail = _url_frame(settings.list.unsubscribe_url, settings.list.id)
    token = unsubscribe_token(key, settings.list.id, email)
    return f"{head}{subscriber_ref(email)}&token={token}{tail}"


# --------------------------------------------------------------------------- headers


def header_text(text: str) -> str:
    """Make ``text`` safe for one header line: controls become spaces, spaces collapse."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join(part for part in text.translate(_CONTROLS).split(" ") if part)


def _plain(text: str) -> bool:
    """Tell whether ``text`` can go into a header as it is, without encoded-words."""
    return (
        text.isascii()
        and text.isprintable()
        and "=?" not in text
        and all(len(word) <= _LONGEST_WORD for word in text.split(" "))
    )


def _q_words(text: str) -> list[str]:
    """Encode ``text`` as "Q" encoded-words, splitting only between characters."""
    words: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        encoded = "".join(_Q_BYTE[b] for b in char.encode())
        if current and size + len(encoded) > _Q_PAYLOAD:
            words.append("".join(current))
            current, size = [], 0
        current.append(encoded)
        size += len(encoded)
    words.append("".join(current))
    return [f"=?utf-8?q?{word}?=" for word in words]


def _b_words(text: str) -> list[str]:
    """Encode ``text`` as "B" (base64) encoded-words, splitting only between characters."""
    chunks: list[bytes] = []
    current = b""
    for char in text:
        encoded = char.encode()
        if current and len(current) + len(encoded) > _B_BYTES:
            chunks.append(current)
            current = b""
        current += encoded
    chunks.append(current)
    return [f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=" for chunk in chunks]


def encoded_words(text: str) -> list[str]:
    """Encode ``text`` as RFC 2047 UTF-8 encoded-words, each short enough to fold."""
    if not text:
        return []
    q, b = _q_words(text), _b_words(text)
    return q if sum(map(len, q)) <= sum(map(len, b)) else b


def phrase_tokens(name: str, *, always_quote: bool = False) -> list[str]:
    """Encode a cleaned display name as atoms, one quoted string, or encoded-words.

    Plain ASCII words stay atoms between encoded-words, so the spaces next to them
    survive every decoder; only runs of words that need encoding become encoded-words.
    """
    if not name:
        return []
    if _plain(name):
        words = name.split(" ")
        if not always_quote and all(_ATEXT.issuperset(word) for word in words):
            return words
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(quoted) <= _LONGEST_WORD:
            return [quoted]
    tokens: list[str] = []
    run: list[str] = []
    for word in name.split(" "):
        if _ATEXT.issuperset(word) and "=?" not in word and len(word) <= _LONGEST_WORD:
            tokens += encoded_words(" ".join(run))
            tokens.append(word)
            run = []
        else:
            run.append(word)
    return tokens + encoded_words(" ".join(run))


def unstructured_tokens(text: str) -> list[str]:
    """Encode unstructured header text (already cleaned), e.g. a subject."""
    return text.split(" ") if _plain(text) else encoded_words(text)


def fold(name: str, tokens: list[str]) -> str:
    """Write one header, folding between tokens to keep lines within 78 characters."""
    line = f"{name}: {' '.join(tokens)}"
    if len(line) <= _HEADER_WIDTH:
        return line + "\r\n"
    line = f"{name}:"
    lines: list[str] = []
    for token in tokens:
        if len(line) + 1 + len(token) > _HEADER_WIDTH and len(line) > len(name) + 1:
            lines.append(line)
            line = " " + token
        else:
            line = f"{line} {token}"
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _address_problem(address: str) -> str | None:
    """Say why ``address`` cannot be one header address, or ``None`` when it can."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in local:
        return "it needs exactly one @ with text on both sides"
    if _BAD_ADDRESS_CHARS.search(address):
        return 'it contains spaces, control characters or one of " ( ) , : ; < > [ \\ ]'
    try:
        size = len(address.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode text"
    if size > _MAX_ADDRESS:
        return f"it is longer than {_MAX_ADDRESS} octets"
    return None


def header_address(address: str) -> str:
    """Return ``address`` with its domain in ASCII (IDNA); raise ``ValueError`` if unusable."""
    problem = _address_problem(address)
    if problem:
        raise ValueError(problem)
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as err:
        raise ValueError(f"its domain is not a valid internationalized name ({err})") from err
    return f"{local}@{ascii_domain}"


def _mailbox(name: str, address: str) -> list[str]:
    """Return the tokens of ``Name <address>``, or the bare address without a name."""
    tokens = phrase_tokens(header_text(name))
    return [*tokens, f"<{address}>"] if tokens else [address]


# --------------------------------------------------------------------------- bodies


def dot_stuff(piece: bytes) -> bytes:
    """Double the "." that opens any line of ``piece``, which starts at a line start."""
    stuffed = piece.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed[:1] == b"." else stuffed


def _soft_end(encoded: bytes) -> bytes:
    """End QP ``encoded`` with a soft line break, splitting a full last line first."""
    start = encoded.rfind(b"\n") + 1
    if len(encoded) - start >= _QP_LINE:
        cut = start + _QP_LINE - 1
        while b"=" in encoded[cut - 2 : cut]:
            cut -= 1
        encoded = encoded[:cut] + _SOFT_BREAK + encoded[cut:]
    return encoded + _SOFT_BREAK


def _qp_line(data: bytes) -> bytes:
    """QP-encode bytes that hold no line break; soft breaks are CRLF."""
    encoded = binascii.b2a_qp(data, istext=False)
    return encoded.replace(b"=\n", _SOFT_BREAK) if b"\n" in encoded else encoded


def qp_value(text: str) -> bytes:
    """QP-encode one personal value so it starts and ends at a line start."""
    if not text:
        return b""
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=False)
    if len(encoded) < _QP_LINE:
        return encoded + _SOFT_BREAK
    return _soft_end(encoded.replace(b"=\n", _SOFT_BREAK))


def qp_block(text: str, *, open_end: bool) -> bytes:
    """QP-encode static text (``\\n`` line breaks) into CRLF lines.

    With ``open_end`` the result ends at a line start, ready for a personal value.
    """
    lines = text.split("\n")
    encoded = b"\r\n".join(_qp_line(line.encode("utf-8")) for line in lines)
    return _soft_end(encoded) if open_end and lines[-1] else encoded


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
    return tuple(piece.translate(_CONTROLS) for piece in pieces)


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
        self._mac = hmac.new(self.signing_key, f"{settings.list.id}\n".encode(), hashlib.sha256)
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
        self._anonymous = settings.email.greeting_anonymous.translate(_CONTROLS)
        self._sender = self._config_address(settings.sender.address, "sender.address")
        self._domain = self._sender.rpartition("@")[2]
        self._id_left = _MSGID_UNSAFE.sub("-", edition.id).strip(".-") or "edition"
        self._id_left = re.sub(r"\.{2,}", ".", self._id_left)
        self._statics, self._refs = self._layout()
        self._pick = itemgetter(*self._refs)
        self._slots = [b""] * (2 * len(self._refs) + 1)
        self._slots[0::2] = self._statics
        self._stuffed_slots = [b""] * len(self._slots)
        self._stuffed_slots[0::2] = [dot_stuff(static) for static in self._statics]
        self._stuffed_slots[-1] += _END_OF_DATA

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
        top = fold("From", _mailbox(settings.sender.name, self._sender))
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
        digest = hashlib.sha256((email.casefold() + self.edition.id).encode()).hexdigest()[:16]
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

    def build(self, subscriber: Subscriber, *, payload: bool = False) -> OutgoingMessage:
        """Fill the edition for one subscriber; raise ``DeliveryError`` for an unusable address.

        With ``payload`` the message also carries its SMTP DATA payload, made from pieces.
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
        mac = self._mac.copy()
        mac.update(email.casefold().encode())
        token = base64.urlsafe_b64encode(mac.digest())[:TOKEN_LENGTH].decode("ascii")
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
        if not payload:
            return OutgoingMessage(address, message_id, data, pieces=tuple(pieces))
        stuffed = self._stuffed_slots.copy()
        stuffed[1::2] = self._pick(tuple(map(dot_stuff, values)))
        return OutgoingMessage(address, message_id, data, b"".join(stuffed), tuple(pieces))
