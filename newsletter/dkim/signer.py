"""Sign messages: one DKIM-Signature per configured key, relaxed/relaxed, SHA-256.

What is the same for every message is prepared once: the keys, the constant tags, the
layout of each key's field and, when the producer hands over the pieces a message is
joined from, the canonical form of the pieces shared by the whole edition (see
``canonicalizer``). Per message, only the personal pieces are canonicalized; the body
is hashed once for all keys, and each key signs the digest of its own field and the
signed header fields (``keys.sign_digest``). A send runs signers in worker processes
(``processes``), beside the sending one.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from newsletter.dkim.canon import CRLF, relaxed_field
from newsletter.dkim.canonicalizer import Canonicalizer
from newsletter.dkim.keys import (
    KeyProblem,
    PrivateKey,
    algorithm,
    load_private_key,
    sign_digest,
)
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
_LOWER_IF_PRESENT = tuple(name.lower().encode() for name in SIGNED_IF_PRESENT)
_LOWER_OVERSIGNED = tuple(name.lower().encode() for name in OVERSIGNED)

_BH_PLACEHOLDER = "bh=" + "#" * 44 + ";"  # a body hash takes 44 base64 characters
_RECIPE_LIMIT = 64  # header shapes remembered; an edition's messages share a few


@dataclass(frozen=True)
class _Key:
    """One signing key and the tags that are the same in all its signatures."""

    key: PrivateKey
    tags: tuple[str, ...]


@dataclass(frozen=True)
class _Frame:
    """One key's DKIM-Signature field around its bh= value, laid out and canonical.

    ``text`` is the field as written (folded), ``relaxed`` its canonical form as the
    signature covers it (with an empty b=), both split where the body hash goes; ``width``
    is that of the last line, which ends in "b=".
    """

    text: tuple[str, str]
    relaxed: tuple[bytes, bytes]
    width: int


@dataclass(frozen=True)
class _Recipe:
    """For messages whose fields have the same names in the same order: h= and what it signs."""

    h_tag: str
    indexes: tuple[int, ...]  # the fields h= names, in its order (RFC 6376 5.4.2)


class DkimSigner:
    """Sign messages with every configured key (rsa-sha256 or ed25519-sha256, relaxed)."""

    def __init__(self, settings: DkimSettings) -> None:
        self.settings = settings
        self._keys = tuple(_prepare(key) for key in settings.keys)
        self._canonical = Canonicalizer()
        self._recipes: dict[tuple[bytes, ...], _Recipe] = {}
        self._frames: list[tuple[tuple[str, str], _Frame | None]] = [
            (("", ""), None) for _ in self._keys
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
        fields, body = self._canonical.canonical(data, pieces)
        body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        names = tuple([name for name, _canonical in fields])
        recipe = self._recipes.get(names) or self._recipe(names)
        signed = b"".join([fields[index][1] for index in recipe.indexes])
        stamp = f"t={int(time.time())};"
        hash_bytes = body_hash.encode("ascii")
        header = []
        for index, key in enumerate(self._keys):
            frame = self._frame(index, stamp, recipe.h_tag)
            before, after = frame.relaxed
            digest = hashlib.sha256(signed + before + hash_bytes + after).digest()
            header.append(_completed(frame, body_hash, sign_digest(key.key, digest)))
        return b"".join(header)

    def _frame(self, index: int, stamp: str, h_tag: str) -> _Frame:
        """Key ``index``'s field around bh= (the same for a second of messages)."""
        last, frame = self._frames[index]
        if frame is not None and last == (stamp, h_tag):
            return frame
        text, width = _fold([*self._keys[index].tags, stamp, h_tag, _BH_PLACEHOLDER, "b="])
        value = text[len(FIELD_NAME) + 1 :].encode("ascii")
        relaxed = relaxed_field(FIELD_NAME.encode("ascii"), value)[:-2]
        hole = _BH_PLACEHOLDER[3:-1]
        before, after = text.split(hole)
        relaxed_before, relaxed_after = relaxed.split(hole.encode("ascii"))
        frame = _Frame((before, after), (relaxed_before, relaxed_after), width)
        self._frames[index] = ((stamp, h_tag), frame)
        return frame

    def _recipe(self, names: tuple[bytes, ...]) -> _Recipe:
        """h= for messages with fields of these names, and the fields it selects."""
        present: dict[bytes, list[int]] = {}
        for index, lower in enumerate(names):
            present.setdefault(lower, []).append(index)
        if b"from" not in present:
            raise DeliveryError("cannot DKIM-sign a message without a From header")
        listed = [*SIGNED_HEADERS]
        optional = zip(SIGNED_IF_PRESENT, _LOWER_IF_PRESENT, strict=True)
        listed += [name for name, lower_name in optional if lower_name in present]
        counted = Counter(n.lower() for n in listed)
        for name, lower_name in zip(OVERSIGNED, _LOWER_OVERSIGNED, strict=True):
            listed += [name] * (len(present.get(lower_name, ())) + 1 - counted[name.lower()])
        recipe = _Recipe(
            "h=" + ":".join(listed) + ";",
            tuple(_selected(present, [n.lower().encode() for n in listed])),
        )
        if len(self._recipes) >= _RECIPE_LIMIT:
            self._recipes.clear()
        self._recipes[names] = recipe
        return recipe


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


def _completed(frame: _Frame, body_hash: str, signature: bytes) -> bytes:
    """One DKIM-Signature field (CRLF lines), its b= value folded to the line width."""
    b = base64.b64encode(signature).decode("ascii")
    room = max(_HEADER_WIDTH - frame.width, 0)
    step = _HEADER_WIDTH - 1
    rest = "".join([f"\r\n {b[i : i + step]}" for i in range(room, len(b), step)])
    before, after = frame.text
    return f"{before}{body_hash}{after}{b[:room]}{rest}\r\n".encode("ascii")


def _selected(present: dict[bytes, list[int]], names: list[bytes]) -> Iterator[int]:
    """The fields h= names, each name taking its last unused instance (RFC 6376 5.4.2)."""
    used: Counter[bytes] = Counter()
    for name in names:
        instances = present.get(name, ())
        taken = used[name]
        if taken < len(instances):
            used[name] = taken + 1
            yield instances[-1 - taken]


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
