"""The canonical form of a message from its pieces equals that of the message read whole."""

from __future__ import annotations

import pytest

from newsletter.dkim import canonicalizer as canonicalizer_module
from newsletter.dkim.canonicalizer import Canonicalizer, whole

HEAD = (
    b"From: News <news@meridianpost.example>\r\n",
    b"To: Ana  Souza <ana@example.org>\r\n",
    b"Subject: Metro\r\n  rail\texpansion\r\nDate: Wed, 04 Mar 2026 18:00:00 +0530\r\n",
    b"Message-ID: <1@x>\r\n",
    b"MIME-Version: 1.0\r\n\r\nHello  there,\r\n\r\n",
)
BODY = (
    b"Ana\r\n",
    b"\tStory one \r\n  indented\r\n",
    b"ana@example.org\r\n",
    b"Bye\r\n\r\n\r\n",
)


def _pieces(*personal: bytes) -> tuple[bytes, ...]:
    """Shared pieces at even positions, ``personal`` ones at odd positions."""
    shared = [HEAD[0], HEAD[2], HEAD[4], BODY[1], BODY[3]]
    pieces: list[bytes] = []
    for index, piece in enumerate(shared):
        pieces.append(piece)
        if index < len(personal):
            pieces.append(personal[index])
    return tuple(pieces)


def _same_as_whole(canonicalizer: Canonicalizer, pieces: tuple[bytes, ...]) -> None:
    data = b"".join(pieces)
    fields, body = canonicalizer.canonical(data, pieces)
    expected_fields, expected_body = whole(data)
    assert fields == expected_fields
    assert bytes(body) == bytes(expected_body)


@pytest.mark.parametrize(
    "personal",
    [
        (HEAD[1], HEAD[3], BODY[0], BODY[2]),
        (b"To: b@example.org\r\n", b"Message-ID: <2@x>\r\n", b"Bo\r\n", b"b@example.org\r\n"),
        (b"To:\tc@example.org \r\n", b"", b"  C  \r\n", b"\r\n\r\n"),  # to relax; empty
        (b"To: d@example.org\r\nCc: e@example.org\r\n", b"X: y\r\n", b"", b""),
        (HEAD[1], HEAD[3], BODY[0], BODY[2], b"P.S. \r\n\r\n"),  # a personal piece ends it
    ],
)
def test_pieces_give_the_canonical_form_of_the_whole_message(
    personal: tuple[bytes, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_read_whole(data: bytes) -> None:
        raise AssertionError("read whole")

    monkeypatch.setattr(canonicalizer_module, "whole", not_read_whole)
    canonicalizer = Canonicalizer()
    _same_as_whole(canonicalizer, _pieces(*HEAD[1::2], *BODY[0::2]))  # lays the edition out
    _same_as_whole(canonicalizer, _pieces(*personal))


@pytest.mark.parametrize(
    "personal",
    [
        (b"To: a@example.org\r\n\r\n", HEAD[3], BODY[0], BODY[2]),  # ends the header early
        (b" continued\r\n", HEAD[3], BODY[0], BODY[2]),  # not a field of its own
        (b"To: a@example.org", HEAD[3], BODY[0], BODY[2]),  # not whole lines
        (HEAD[1], HEAD[3], b"Ana\n", BODY[2]),  # a bare line feed
        (HEAD[1], HEAD[3], b"Ana", BODY[2]),  # not whole lines
    ],
)
def test_pieces_the_layout_cannot_vouch_for_are_read_whole(personal: tuple[bytes, ...]) -> None:
    canonicalizer = Canonicalizer()
    _same_as_whole(canonicalizer, _pieces(*HEAD[1::2], *BODY[0::2]))
    _same_as_whole(canonicalizer, _pieces(*personal))


def test_pieces_of_another_message_are_not_trusted() -> None:
    canonicalizer = Canonicalizer()
    ana = _pieces(b"To: ana@example.org\r\n", HEAD[3], BODY[0], BODY[2])
    bob = _pieces(b"To: bob@example.org\r\n", HEAD[3], BODY[0], BODY[2])  # the same lengths
    data = b"".join(ana)
    assert canonicalizer.canonical(data, bob)[0] == whole(data)[0]


def test_a_header_that_ends_in_a_personal_piece_is_read_whole() -> None:
    pieces = (b"From: a@meridianpost.example\r\n", b"To: b@example.org\r\n\r\n", b"Hi\r\n")
    _same_as_whole(Canonicalizer(), pieces)
