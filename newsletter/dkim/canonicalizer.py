"""A message's canonical header fields and body, its shared pieces prepared once per edition.

A producer that joins each message from pieces (``OutgoingMessage.pieces``) hands them
over: those at even positions are the same for every message of an edition. The first
message of an edition lays them out (which pieces are header, where the body starts,
the canonical form of each shared piece); per message only the personal pieces are
canonicalized and the canonical body joined, as the message itself was. Whatever the
layout cannot vouch for (pieces that do not add up to the data, a personal piece that
is not whole fields or whole lines) is read whole instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from newsletter.dkim.canon import (
    CRLF,
    Field,
    NotAField,
    body_part,
    canonical_fields,
    joined_body,
    on_the_wire,
    relaxed_as_is,
    relaxed_lines,
    split_message,
    whole_crlf_lines,
    without_empty_end,
)
from newsletter.errors import DeliveryError

_LAYOUT_LIMIT = 16  # layouts remembered; a send has one per edition
_BLANK_LINE = b"\r\n\r\n"

Canonical = tuple[list[Field], bytes | memoryview]
"""The header fields in order (lower-case name, relaxed form) and the relaxed body."""


@dataclass(frozen=True)
class _Layout:
    """How every message made of the same shared pieces is laid out, shared parts prepared.

    ``head`` holds, for each piece before the one where the body starts, the fields of a
    shared piece or None for a personal one. That piece is shared and holds ``fields``
    and the body's start; ``body`` is the body's relaxed lines from there on, piece by
    piece, with an empty slot for each personal piece.
    """

    head: tuple[list[Field] | None, ...]
    fields: list[Field]
    body: list[bytes]


class Canonicalizer:
    """The canonical form of messages, remembering the layout of each edition's pieces."""

    def __init__(self) -> None:
        self._layouts: dict[tuple[int, tuple[bytes, ...]], _Layout | None] = {}

    def canonical(self, data: bytes, pieces: Sequence[bytes] = ()) -> Canonical:
        """The fields and body of ``data``; ``pieces``, when given, are what it is joined from.

        Pieces are checked against ``data`` (see ``joined_from``). Raises ``DeliveryError`` for a
        header line that is not a field.
        """
        if pieces:
            found = self._from_pieces(data, pieces)
            if found is not None:
                return found
        return whole(data)

    def _from_pieces(self, data: bytes, pieces: Sequence[bytes]) -> Canonical | None:
        layout = self._layout(pieces)
        if layout is None or not joined_from(data, pieces):
            return None
        fields: list[Field] = []
        for index, known in enumerate(layout.head):
            if known is None:
                personal = _personal_fields(pieces[index])
                if personal is None:
                    return None
                fields += personal
            else:
                fields += known
        fields += layout.fields
        relaxed = _relaxed_personal(pieces[len(layout.head) + 1 :: 2])
        if relaxed is None:
            return None
        body = layout.body.copy()
        body[1::2] = relaxed
        return fields, without_empty_end(b"".join(body))

    def _layout(self, pieces: Sequence[bytes]) -> _Layout | None:
        key = len(pieces), tuple(pieces[::2])
        try:
            return self._layouts[key]
        except KeyError:
            if len(self._layouts) >= _LAYOUT_LIMIT:  # layouts of earlier editions
                self._layouts.clear()
            layout = self._layouts[key] = _lay_out(*key)
            return layout


def whole(data: bytes) -> Canonical:
    """The fields and body of a message given whole (any line ends, as the sender sends them)."""
    head, body = split_message(on_the_wire(data))
    try:
        fields = canonical_fields(head)
    except NotAField as err:
        raise DeliveryError(f"cannot DKIM-sign this message: {err}") from err
    return fields, joined_body([body_part(body)])


def joined_from(data: bytes, pieces: Sequence[bytes]) -> bool:
    """Whether ``data`` is these pieces joined: lengths, and the personal pieces in place.

    The shared pieces, the same for a whole edition, are checked by length only.
    """
    offsets = list(accumulate(map(len, pieces), initial=0))
    return offsets[-1] == len(data) and all(map(data.startswith, pieces[1::2], offsets[1::2]))


def _lay_out(count: int, shared: tuple[bytes, ...]) -> _Layout | None:
    """The layout of messages of ``count`` pieces with these shared ones; None: not usable.

    The body must start in a shared piece; every piece must be whole CRLF lines.
    """
    head: list[list[Field] | None] = []
    for index in range(0, count):
        if index % 2:
            head.append(None)
            continue
        piece = shared[index // 2]
        if not whole_crlf_lines(piece) or piece[:1] in (b" ", b"\t"):
            return None
        if piece.startswith(CRLF):
            top, start = b"", 2
        else:
            end = piece.find(_BLANK_LINE)
            top, start = (piece, -1) if end < 0 else (piece[: end + 2], end + 4)
        try:
            fields = canonical_fields(top)
        except NotAField:
            return None
        if start < 0:
            head.append(fields)
            continue
        rest = shared[index // 2 + 1 :]
        if not all(whole_crlf_lines(part) for part in rest):
            return None
        body = [relaxed_lines(piece[start:])]
        for part in rest:
            body += [b"", relaxed_lines(part)]
        if count % 2 == 0:  # the last piece is a personal one
            body.append(b"")
        return _Layout(tuple(head), fields, body)
    return None


def _personal_fields(piece: bytes) -> list[Field] | None:
    """The fields of a personal header piece; None unless it is whole fields."""
    if not whole_crlf_lines(piece) or piece[:1] in (b" ", b"\t"):
        return None
    try:
        return canonical_fields(piece)
    except NotAField:  # a blank line, or a line that is not a field
        return None


def _relaxed_personal(pieces: Sequence[bytes]) -> list[bytes] | None:
    """The personal pieces of a body, relaxed; None unless each is whole CRLF lines."""
    if not all(piece.endswith(CRLF) or not piece for piece in pieces):
        return None
    joined = b"".join(pieces)  # small: the personal pieces of one body
    if not whole_crlf_lines(joined):
        return None
    if relaxed_as_is(joined):  # nothing to change, as is usual
        return list(pieces)
    return [relaxed_lines(piece) for piece in pieces]
