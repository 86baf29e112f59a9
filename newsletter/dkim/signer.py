"""Sign messages: one DKIM-Signature per configured key, relaxed/relaxed, SHA-256.

What is the same for every message is prepared once: the keys, the constant tags and,
when the producer hands over the pieces a message is joined from, the canonical form
of the pieces shared by the whole edition. Per message, only the personal pieces are
canonicalized; the body is hashed once for all keys. RSA signing runs in OpenSSL
without holding the interpreter lock, so several threads may sign with one signer.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from newsletter.dkim.canon import (
    CRLF,
    BodyPart,
    Field,
    NotAField,
    body_part,
    canonical_fields,
    joined_body,
    on_the_wire,
    relaxed_field,
    split_message,
    whole_crlf_lines,
)
from newsletter.dkim.keys import KeyProblem, PrivateKey, algorithm, load_private_key
from newsletter.dkim.settings import DkimSettings
from newsletter.errors import DeliveryError

SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
"""Always listed in h= (an absent one is signed as absent, so it cannot be added later)."""

SIGNED_IF_PRESENT = ("Reply-To", "MIME-Version", "Content-Type", "Content-Transfer-Encoding")
OVERSIGNED = ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post")
"""Listed once more than they occur, so a copy added in transit breaks the signature."""

FIELD_NAME = "DKIM-Signature"
_HEADER_WIDTH = 78  # preferred longest header line (RFC 5322 2.1.1)
_CACHE_LIMIT = 1024  # shared pieces remembered; an edition has a few dozen
_LOWER_SIGNED = tuple(name.lower().encode() for name in SIGNED_HEADERS)
_LOWER_IF_PRESENT = tuple(name.lower().encode() for name in SIGNED_IF_PRESENT)
_LOWER_OVERSIGNED = tuple(name.lower().encode() for name in OVERSIGNED)

_T = TypeVar("_T")
_HeadPiece = tuple[list[Field], BodyPart | None]


@dataclass(frozen=True)
class _Key:
    """One signing key and the tags that are the same in all its signatures."""

    key: PrivateKey
    tags: tuple[str, ...]


class DkimSigner:
    """Sign messages with every configured key (rsa-sha256 or ed25519-sha256, relaxed)."""

    def __init__(self, settings: DkimSettings) -> None:
        self.settings = settings
        self._keys = tuple(_prepare(key) for key in settings.keys)
        self._head_pieces: dict[bytes, _HeadPiece] = {}
        self._body_pieces: dict[bytes, BodyPart] = {}
        self._h_tags: dict[tuple[int, ...], tuple[str, tuple[bytes, ...]]] = {}
        self._laid_out: list[tuple[tuple[str, str], tuple[str, int]]] = [
            (("", ""), ("", 0)) for _ in self._keys
        ]

    def sign(self, message: bytes) -> bytes:
        """Return ``message`` with its DKIM-Signature fields prepended (line endings kept)."""
        header = self.signature(message)
        if b"\r\n" not in message[:4096]:
            header = header.replace(CRLF, b"\n")
        return header + message

    def signature(self, data: bytes, pieces: Sequence[bytes] = ()) -> bytes:
        """The DKIM-Signature fields (CRLF lines) to put on top of ``data``, one per key.

        ``pieces``, when given, are the parts ``data`` is joined from, each starting at a
        line start; those at even positions are shared by every message of an edition
        and are canonicalized only the first time.
        """
        parsed = self._from_pieces(data, pieces) if pieces else None
        fields, parts = parsed or _whole(data)
        body = hashlib.sha256(joined_body(parts))
        body_hash = base64.b64encode(body.digest()).decode("ascii")
        present: dict[bytes, list[bytes]] = {}
        for name, canonical in fields:
            present.setdefault(name, []).append(canonical)
        if b"from" not in present:
            raise DeliveryError("cannot DKIM-sign a message without a From header")
        h_tag, names = self._h_tag(present)
        signed = b"".join(_selected(present, names))
        stamp = f"t={int(time.time())};"
        return b"".join(
            _sign_one(key, self._laid_out_head(index, stamp, h_tag), body_hash, signed)
            for index, key in enumerate(self._keys)
        )

    def _laid_out_head(self, index: int, stamp: str, h_tag: str) -> tuple[str, int]:
        """Key ``index``'s field laid out up to h= (the same for a second of messages)."""
        last = self._laid_out[index]
        if last[0] == (stamp, h_tag):
            return last[1]
        laid = _fold([*self._keys[index].tags, stamp, h_tag])
        self._laid_out[index] = ((stamp, h_tag), laid)
        return laid

    def _h_tag(self, present: dict[bytes, list[bytes]]) -> tuple[str, tuple[bytes, ...]]:
        """The h= tag for a message with these fields, and its names in lower case."""
        shape = tuple(
            len(present.get(name, ())) for name in (*_LOWER_IF_PRESENT, *_LOWER_OVERSIGNED)
        )
        found = self._h_tags.get(shape)
        if found is None:
            names = [*SIGNED_HEADERS]
            names += [
                n
                for n, lower in zip(SIGNED_IF_PRESENT, _LOWER_IF_PRESENT, strict=True)
                if present.get(lower)
            ]
            listed = Counter(n.lower() for n in names)
            for name, lower in zip(OVERSIGNED, _LOWER_OVERSIGNED, strict=True):
                names += [name] * (len(present.get(lower, ())) + 1 - listed[name.lower()])
            found = "h=" + ":".join(names) + ";", tuple(n.lower().encode() for n in names)
            self._h_tags[shape] = found
        return found

    def _from_pieces(
        self, data: bytes, pieces: Sequence[bytes]
    ) -> tuple[list[Field], list[BodyPart]] | None:
        """Fields and body parts from the pieces, shared ones from the cache; None: not usable."""
        if sum(map(len, pieces)) != len(data):
            return None
        fields: list[Field] = []
        parts: list[BodyPart] = []
        in_head = True
        for index, piece in enumerate(pieces):
            shared = not index % 2
            if in_head:
                head = self._head_pieces.get(piece) if shared else None
                if head is None:
                    head = _head_piece(piece)
                    if head is None:
                        return None
                    if shared:
                        _remember(self._head_pieces, piece, head)
                fields += head[0]
                if head[1] is not None:
                    in_head = False
                    parts.append(head[1])
                continue
            part = self._body_pieces.get(piece) if shared else None
            if part is None:
                if not whole_crlf_lines(piece):
                    return None
                part = body_part(piece)
                if shared:
                    _remember(self._body_pieces, piece, part)
            parts.append(part)
        return None if in_head else (fields, parts)


def _prepare(settings: DkimSettings) -> _Key:
    try:
        key = load_private_key(settings.private_key)
    except KeyProblem as problem:
        raise DeliveryError(f"{settings.key_origin}: {problem}") from None
    tags = (
        "v=1;",
        f"a={algorithm(key)};",
        "c=relaxed/relaxed;",
        f"d={settings.domain};",
        f"s={settings.selector};",
    )
    return _Key(key, tags)


def _remember(cache: dict[bytes, _T], piece: bytes, value: _T) -> None:
    if len(cache) >= _CACHE_LIMIT:  # pieces of an earlier edition
        cache.clear()
    cache[piece] = value


def _whole(data: bytes) -> tuple[list[Field], list[BodyPart]]:
    """Fields and body of a message given whole (any line ends, as the sender sends them)."""
    head, body = split_message(on_the_wire(data))
    try:
        fields = canonical_fields(head)
    except NotAField as err:
        raise DeliveryError(f"cannot DKIM-sign this message: {err}") from err
    return fields, [body_part(body)]


def _head_piece(piece: bytes) -> _HeadPiece | None:
    """The fields of a header piece, and the body it starts if it holds the blank line."""
    if not whole_crlf_lines(piece) or piece[:1] in (b" ", b"\t"):
        return None
    rest: bytes | None = None
    if piece.startswith(CRLF):
        piece, rest = b"", piece[2:]
    else:
        end = piece.find(b"\r\n\r\n")
        if end >= 0:
            piece, rest = piece[: end + 2], piece[end + 4 :]
    try:
        fields = canonical_fields(piece)
    except NotAField:
        return None
    return fields, None if rest is None else body_part(rest)


def _selected(present: dict[bytes, list[bytes]], names: tuple[bytes, ...]) -> Iterator[bytes]:
    """The fields h= names, each name taking its last unused instance (RFC 6376 5.4.2)."""
    used: Counter[bytes] = Counter()
    for name in names:
        instances = present.get(name, ())
        taken = used[name]
        if taken < len(instances):
            used[name] = taken + 1
            yield instances[-1 - taken]


def _sign_one(key: _Key, head: tuple[str, int], body_hash: str, signed: bytes) -> bytes:
    """One DKIM-Signature field over ``signed`` (the selected canonical fields).

    ``head`` is the field laid out up to its h= tag, and the width of its last line.
    """
    text, width = _fold([f"bh={body_hash};", "b="], *head)
    value = text[len(FIELD_NAME) + 1 :].encode("ascii")
    data = signed + relaxed_field(FIELD_NAME.encode("ascii"), value)[:-2]
    if isinstance(key.key, ed25519.Ed25519PrivateKey):
        signature = key.key.sign(hashlib.sha256(data).digest())  # RFC 8463: over the hash
    else:
        signature = key.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    b = base64.b64encode(signature).decode("ascii")
    room = max(_HEADER_WIDTH - width, 0)
    step = _HEADER_WIDTH - 1
    rest = "".join(f"\r\n {b[i : i + step]}" for i in range(room, len(b), step))
    return f"{text}{b[:room]}{rest}\r\n".encode("ascii")


def _fold(tags: list[str], text: str = f"{FIELD_NAME}:", width: int = 0) -> tuple[str, int]:
    """Lay the tags out after ``text`` in lines of at most 78 characters.

    A line breaks between tags, or after a colon inside the h= list; returns the text and
    the width of its last line (``width`` is that of ``text``'s last line, or its length).
    """
    width = width or len(text)
    for tag in tags:
        words = tag.split(":") if tag.startswith("h=") else [tag]
        for index, word in enumerate(words):
            last = index == len(words) - 1
            word = word if last else word + ":"
            gap = " " if index == 0 else ""
            if width + len(gap) + len(word) <= _HEADER_WIDTH:
                text += gap + word
                width += len(gap) + len(word)
            else:
                text += "\r\n " + word
                width = 1 + len(word)
    return text, width
