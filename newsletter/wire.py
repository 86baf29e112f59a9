"""Text → the octets an email carries: RFC 2047 headers, quoted-printable, dot-stuffing.

Shared by the message factory and the SMTP client. Every piece here starts and ends
at a line start, so pieces encoded once can be joined with small values encoded per
subscriber; every line ends in CRLF.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import string

import idna

_HEADER_WIDTH = 78  # preferred longest header line (RFC 5322 2.1.1)
_LONGEST_WORD = 70  # a plain word longer than this is sent as encoded-words instead
_Q_PAYLOAD = 57  # encoded characters in one encoded-word: "Subject: " + 69 ≤ 78
_B_BYTES = 42  # bytes in one base64 encoded-word (56 characters)
_QP_LINE = 76  # RFC 2045 longest quoted-printable line
_MAX_ADDRESS = 254  # octets in an address (RFC 5321 path limit)

END_OF_DATA = b".\r\n"  # ends the SMTP DATA payload (RFC 5321 4.1.1.4)
_ANY_EOL = re.compile(rb"\r\n|\r|\n")
_SOFT_BREAK = b"=\r\n"
_CONTROLS = dict.fromkeys((*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029), " ")
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_Q_SAFE = frozenset((string.ascii_letters + string.digits + "!*+-/").encode())
_Q_BYTE = tuple("_" if b == 0x20 else chr(b) if b in _Q_SAFE else f"={b:02X}" for b in range(256))
_BAD_ADDRESS_CHARS = re.compile(r'[\x00-\x20\x7f-\x9f"(),:;<>\[\\\]\u2028\u2029]')


# --------------------------------------------------------------------------- headers


def blank_controls(text: str) -> str:
    """Turn control characters and line or paragraph separators into spaces."""
    return text.translate(_CONTROLS)


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


def ascii_domain(domain: str) -> str:
    """Return ``domain`` in ASCII (IDNA, UTS 46); raise ``idna.IDNAError`` if it is not valid."""
    if domain.isascii():
        return domain
    return _idna(domain)


@functools.lru_cache(maxsize=4096)
def _idna(domain: str) -> str:
    # A list has few domains, each met again and again: the ledger keys every write.
    return idna.encode(domain, uts46=True).decode("ascii")


def header_address(address: str) -> str:
    """Return ``address`` with its domain in ASCII (IDNA); raise ``ValueError`` if unusable."""
    problem = _address_problem(address)
    if problem:
        raise ValueError(problem)
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return f"{local}@{ascii_domain(domain)}"
    except idna.IDNAError as err:
        raise ValueError(f"its domain is not a valid internationalized name ({err})") from err


def mailbox(name: str, address: str) -> list[str]:
    """Return the tokens of ``Name <address>``, or the bare address without a name."""
    tokens = phrase_tokens(header_text(name))
    return [*tokens, f"<{address}>"] if tokens else [address]


# --------------------------------------------------------------------------- bodies


def dot_stuff(piece: bytes) -> bytes:
    """Double the "." that opens any line of ``piece``, which starts at a line start."""
    stuffed = piece.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed[:1] == b"." else stuffed


def data_payload(data: bytes) -> bytes:
    """Return a message's DATA bytes: CRLF line ends only, leading dots doubled, the end."""
    if not data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r"):
        data = _ANY_EOL.sub(b"\r\n", data)
    data = dot_stuff(data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + END_OF_DATA


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
