"""DKIM relaxed canonicalization (RFC 6376 3.4.2, 3.4.4): header fields and bodies.

A body can be canonicalized piece by piece when every piece is whole lines: the rules
work within a line, except that empty lines at the very end are dropped, which
``joined_body`` handles across pieces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CRLF = b"\r\n"
ANY_EOL = re.compile(rb"\r\n|\r|\n")  # what the SMTP sender turns into CRLF on the wire
_WSP_RUN = re.compile(rb"\t[ \t]*| [ \t]+")  # runs that are not already one space
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_FOLD = re.compile(rb"\r?\n")
_SPACE = re.compile(r"\s+")

BodyPart = tuple[bytes, int]
"""A piece's canonical lines without their last line ends, and how many line ends it had."""

Field = tuple[bytes, bytes]
"""A header field: its lower-case name and its canonical form (``name:value`` CRLF)."""


class NotAField(ValueError):
    """A header line that is neither a field nor the continuation of one."""


def tags(value: str) -> dict[str, str]:
    """The tag=value list of a DKIM-Signature or key record, whitespace removed from values."""
    found: dict[str, str] = {}
    for item in value.split(";"):
        name, equals, text = item.partition("=")
        if equals:
            found[name.strip()] = _SPACE.sub("", text)
    return found


def on_the_wire(data: bytes) -> bytes:
    """Return ``data`` with CRLF line ends only, as the SMTP sender sends it."""
    if data.count(b"\n") == data.count(CRLF) == data.count(b"\r"):
        return data
    return ANY_EOL.sub(CRLF, data)


def whole_crlf_lines(piece: bytes) -> bool:
    """Whether ``piece`` is empty or CRLF lines only (no bare CR or LF, ends with CRLF)."""
    if not piece:
        return True
    crlf = piece.count(CRLF)
    return piece.endswith(CRLF) and piece.count(b"\n") == crlf == piece.count(b"\r")


def relaxed_field(name: bytes, value: bytes) -> bytes:
    """The relaxed form of one header field: ``name:value`` CRLF, unfolded, spaces squeezed."""
    if b"\n" in value:
        value = _FOLD.sub(b"", value)
    if b"\t" in value or b"  " in value:  # most values need nothing
        value = _WSP_RUN.sub(b" ", value)
    return name.rstrip().lower() + b":" + value.strip() + CRLF


def split_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """The fields of a CRLF header block: (name as written, value with its folding)."""
    fields: list[tuple[bytes, bytes]] = []
    lines = head.split(CRLF)
    if lines and not lines[-1]:
        lines.pop()
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise NotAField("the header starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, value + CRLF + line)
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name.strip(b" \t"):
            raise NotAField("a header line is not a field")
        fields.append((name, value))
    return fields


def canonical_fields(head: bytes) -> list[Field]:
    """Each field of a CRLF header block as (lower-case name, relaxed form)."""
    return [
        (name.rstrip().lower(), relaxed_field(name, value)) for name, value in split_fields(head)
    ]


def split_message(data: bytes) -> tuple[bytes, bytes]:
    """Split CRLF message bytes into the header block (with its last CRLF) and the body."""
    if data.startswith(CRLF):
        return b"", data[2:]
    head, blank, body = data.partition(b"\r\n\r\n")
    return (head + CRLF, body) if blank else (data if data.endswith(CRLF) else data + CRLF, b"")


def relaxed_lines(lines: bytes) -> bytes:
    """Whole CRLF lines of a body, relaxed: spaces squeezed, none at a line's end.

    Empty lines are kept: only those at the very end of a body are dropped (see
    ``without_empty_end``).
    """
    if relaxed_as_is(lines):  # most lines need nothing
        return lines
    return _WSP_RUN.sub(b" ", _TRAILING_WSP.sub(CRLF, lines))


def relaxed_as_is(lines: bytes) -> bool:
    """Whether relaxing leaves these CRLF lines unchanged: no tab, run of spaces or end space."""
    return not (b"  " in lines or b"\t" in lines or b" \r\n" in lines)


def without_empty_end(body: bytes) -> bytes | memoryview:
    """A relaxed body of whole CRLF lines without its empty last lines (not copied)."""
    end = len(body)
    while end >= 4 and body.endswith(b"\r\n\r\n", 0, end):
        end -= 2
    if end == 2 and body.startswith(CRLF):
        end = 0  # nothing but empty lines
    return body if end == len(body) else memoryview(body)[:end]


def body_part(piece: bytes) -> BodyPart:
    """Canonicalize whole CRLF lines; set their last line ends apart (see ``joined_body``)."""
    text = relaxed_lines(piece)
    core = text.rstrip(CRLF)
    return core, (len(text) - len(core)) // 2


def joined_body(parts: Iterable[BodyPart]) -> bytes:
    """The relaxed body made of ``parts`` in order: empty lines at the end are dropped.

    Joined rather than hashed piece by piece: one hash call releases the interpreter
    lock once, where a call per piece would hand it to the sending threads each time.
    """
    chunks: list[bytes] = []
    pending = 0
    for core, line_ends in parts:
        if core:
            if pending:
                chunks.append(CRLF * pending)
            chunks.append(core)
            pending = line_ends
        else:
            pending += line_ends
    if chunks:
        chunks.append(CRLF)
    return b"".join(chunks)
