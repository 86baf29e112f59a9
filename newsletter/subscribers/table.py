"""The subscriber table: which column holds what, and the data rows under the header.

Header spellings are matched loosely (``Email Address``, ``E-mail``, ``first_name`` …).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from newsletter.errors import SubscriberError

from .cells import MAX_NAME, clean_cell, quote_value
from .csvfile import csv_records, decoded_lines, preamble

# fmt: off
# Header aliases, most specific first; compared without case, spaces or punctuation.
_EMAIL_HEADERS = (
    "email", "emailaddress", "mail", "emailaddr", "mailaddress", "subscriberemail",
    "contactemail", "primaryemail", "useremail", "emailadresse", "mailadresse",
    "adresseemail", "courriel", "correoelectronico", "correo",
)
_NAME_HEADERS = ("name", "fullname", "displayname", "subscribername", "contactname")
_FIRST_HEADERS = ("firstname", "givenname", "forename", "first", "fname")
_LAST_HEADERS = ("lastname", "familyname", "surname", "last", "lname")
_STATUS_HEADERS = (
    "status", "subscriptionstatus", "subscriberstatus", "memberstatus", "emailstatus",
    "state", "subscribed",
)
# fmt: on
_HEADER_NOISE = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Columns:
    """Where each known value sits in a row, and the header of every other column."""

    headers: tuple[str, ...]
    email: int
    name: int | None
    first: int | None
    last: int | None
    status: int | None
    extra: tuple[tuple[int, str], ...]
    delimiter: str


class Row(NamedTuple):
    """One parsed, non-blank CSV record and the physical lines it spans."""

    columns: Columns
    start: int
    end: int
    cells: list[str]

    def cell(self, index: int | None) -> str:
        """Return the cell at ``index``; missing cells are empty."""
        if index is None or index >= len(self.cells):
            return ""
        return self.cells[index]


def read_table(path: Path, where: str) -> Iterator[Row]:
    """Yield the non-blank data rows of the CSV file, each with the column layout."""
    lines = decoded_lines(path, where)
    skipped, first, delimiter = preamble(lines)
    if first is None:
        raise SubscriberError(
            f"{where} is empty; a subscriber list starts with a header line such as"
            " 'email,name,status'"
        )
    records = csv_records(chain([first], lines), skipped, delimiter, where)
    start, _end, header = next(records, (skipped + 1, skipped + 1, []))
    columns = _columns(header, delimiter, where, start)
    for start, end, cells in records:
        if any(map(str.strip, cells)):
            yield Row(columns, start, end, cells)


def _columns(header: list[str], delimiter: str, where: str, line: int) -> Columns:
    """Find the email, name and status columns in the header row."""
    headers = _header_names(header)
    keys = [_HEADER_NOISE.sub("", h.casefold()) for h in headers]
    email = _find(keys, _EMAIL_HEADERS)
    if email is None:
        raise SubscriberError(_no_email_message(headers, where, line))
    name, first = _find(keys, _NAME_HEADERS), _find(keys, _FIRST_HEADERS)
    last = _find(keys, _LAST_HEADERS)
    status = _find(keys, _STATUS_HEADERS)
    used = {email, name, status}
    extra = tuple((i, h) for i, h in enumerate(headers) if i not in used)
    return Columns(tuple(headers), email, name, first, last, status, extra, delimiter)


def _header_names(header: list[str]) -> list[str]:
    """Clean the header cells; blank ones get a placeholder, repeated ones a suffix."""
    names: list[str] = []
    taken: set[str] = set()
    for index, raw in enumerate(header):
        text, _cut = clean_cell(raw, MAX_NAME)
        text = text or f"column {index + 1}"
        if text in taken:
            text = f"{text} (column {index + 1})"
        taken.add(text)
        names.append(text)
    return names


def _find(keys: list[str], aliases: Iterable[str]) -> int | None:
    """Return the index of the first column matching the earliest alias, if any."""
    for alias in aliases:
        if alias in keys:
            return keys.index(alias)
    return None


def _no_email_message(headers: list[str], where: str, line: int) -> str:
    """Explain that no column holds addresses, listing what the header has."""
    found = ", ".join(quote_value(h) for h in headers[:20])
    if len(headers) > 20:
        found += f", … ({len(headers)} columns)"
    hint = "name the column of addresses 'email'"
    if any("@" in h for h in headers):
        hint = "the first line looks like data: add a header line such as 'email,name,status'"
    return f"{where}:{line}: no email column; the header has {found}; {hint}"
