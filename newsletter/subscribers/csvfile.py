"""Read a CSV file as text records, line by line with flat memory.

Encoding: UTF-8 with or without a byte-order mark, or UTF-16 with a byte-order mark
(Excel's "Unicode Text"). Anything else is refused with the line and byte that are
not UTF-8, never guessed: a wrong guess would mail garbled names to the whole list.

Delimiter: taken from an Excel ``sep=;`` first line, else sniffed from the header
line (comma, semicolon, tab or bar). Every line number is the physical line on which
a record starts.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from newsletter.errors import SubscriberError

MAX_LINE_BYTES = 1 << 20

_DELIMITERS = (",", ";", "\t", "|")
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")
_SEP_LINE = re.compile(r"sep=(.)")
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decoded_lines(path: Path, where: str) -> Iterator[str]:
    """Yield the decoded physical lines of the file, line endings kept."""
    try:
        raw = path.open("rb")
    except FileNotFoundError as err:
        raise SubscriberError(f"{where}: no such file; check the subscriber list path") from err
    except OSError as err:
        raise SubscriberError(f"{where}: cannot open the subscriber list ({err.strerror})") from err
    with raw:
        try:
            head = raw.peek(4)[:4]
            if head.startswith(_WORKBOOK_MAGIC):
                raise SubscriberError(
                    f"{where} is a spreadsheet workbook, not a CSV file;"
                    " export it as 'CSV UTF-8' and use that file"
                )
            if head.startswith(_UTF16_BOMS):
                yield from _utf16_lines(raw, where)
            else:
                yield from _utf8_lines(raw, where)
        except OSError as err:
            raise SubscriberError(f"{where}: cannot read the subscriber list ({err})") from err


def _utf8_lines(raw: BinaryIO, where: str) -> Iterator[str]:
    """Yield UTF-8 lines (a leading BOM dropped), naming the first byte that is not UTF-8."""
    number = 0
    while chunk := raw.readline(MAX_LINE_BYTES + 1):
        if number == 0:
            chunk = chunk.removeprefix(codecs.BOM_UTF8)
            if b"\x00" in chunk:
                raise SubscriberError(
                    f"{where}:1: the file contains NUL bytes, so it is not UTF-8 text (UTF-16"
                    " without a byte-order mark?); save it as 'CSV UTF-8'"
                )
        if len(chunk) > MAX_LINE_BYTES:
            raise _too_long(where, number + 1)
        plain = chunk.count(b"\r") == int(chunk.endswith(b"\r\n"))
        pieces = [chunk] if plain else _LONE_CR.split(chunk)
        for piece in pieces:
            if piece:
                number += 1
                yield _decoded(piece, where, number)


def _decoded(piece: bytes, where: str, number: int) -> str:
    """Decode one line as UTF-8 or explain which byte is wrong and how to fix the file."""
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError as err:
        column = len(piece[: err.start].decode("utf-8", "replace")) + 1
        raise SubscriberError(
            f"{where}:{number}: byte 0x{piece[err.start]:02X} at character {column} is not"
            " UTF-8 (the file was probably saved as Windows-1252 or Latin-1); save it as"
            " UTF-8, e.g. 'CSV UTF-8' in Excel or character set 'Unicode (UTF-8)' in LibreOffice"
        ) from err


def _utf16_lines(raw: BinaryIO, where: str) -> Iterator[str]:
    """Yield the lines of a UTF-16 file that starts with a byte-order mark."""
    text = io.TextIOWrapper(raw, encoding="utf-16", newline="")
    number = 0
    try:
        while line := text.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES:
                raise _too_long(where, number)
            yield line
    except UnicodeDecodeError as err:
        raise SubscriberError(
            f"{where}:{number + 1}: the UTF-16 text is broken near this line ({err.reason});"
            " save the file as 'CSV UTF-8'"
        ) from err
    finally:
        text.detach()


def _too_long(where: str, number: int) -> SubscriberError:
    """Build the error for a line too long to be a CSV row."""
    return SubscriberError(
        f"{where}:{number}: the line is longer than {MAX_LINE_BYTES // 1024} KB; this does not"
        " look like a subscriber list; check that it is the right file, saved as CSV"
    )


def preamble(lines: Iterator[str]) -> tuple[int, str | None, str]:
    """Skip blank lines and an Excel ``sep=`` line; return count, header line and delimiter."""
    skipped = 0
    separator: str | None = None
    for line in lines:
        text = line.rstrip("\r\n")
        sep = _SEP_LINE.fullmatch(text.strip())
        if separator is None and sep:
            separator = sep[1]
        elif text.strip("".join(_DELIMITERS) + " "):
            return skipped, line, separator or _sniff(text)
        skipped += 1
    return skipped, None, ","


def _sniff(header: str) -> str:
    """Return the delimiter used most often outside quotes in the header line."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=counts.__getitem__)
    return best if counts[best] else ","


def csv_records(
    lines: Iterator[str], offset: int, delimiter: str, where: str
) -> Iterator[tuple[int, int, list[str]]]:
    """Yield each CSV record with its first and last physical line."""
    reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True)
    while True:
        start = offset + reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise SubscriberError(
                f"{where}:{start}: the CSV cannot be read from here on ({err}); a double"
                " quote that is never closed is the usual cause; fix the quoting"
            ) from err
        yield start, offset + reader.line_num, cells
