"""Read the subscriber list: a CSV file, validated, deduplicated and streamed.

The file is read twice, each time line by line with flat memory:

1. ``read_subscribers`` itself reads the whole file once before returning. Every
   file-level problem (missing or unreadable file, not UTF-8, a workbook instead of
   CSV, no email column, broken quoting) is raised then, before a single subscriber
   is handed out. This pass also notes every address listed with a non-active status.
2. The returned iterator reads it again and yields ``Subscriber`` objects. Row
   problems (bad address, duplicate, unknown status, stray cells) skip the row with a
   warning in ``SubscriberScan.warnings``; with ``strict=True`` the first one raises.

Encoding: UTF-8 with or without a byte-order mark, or UTF-16 with a byte-order mark
(Excel's "Unicode Text"). Anything else is refused with the line and byte that are
not UTF-8, never guessed: a wrong guess would mail garbled names to the whole list.

Delimiter: taken from an Excel ``sep=;`` first line, else sniffed from the header
line (comma, semicolon, tab or bar). Header spellings are matched loosely
(``Email Address``, ``E-mail``, ``first_name`` …). Every line number in a message is
the physical line on which the row starts.

An address listed twice counts once; if any of its rows has a non-active status,
that status wins and the address is not mailed. When iteration ends without having
yielded anyone, ``SubscriberError`` is raised ("no active subscribers").
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, NamedTuple

from email_validator import EmailNotValidError, validate_email

from newsletter.errors import SubscriberError
from newsletter.models import Subscriber

ACTIVE = "active"
MAX_NAME = 100
MAX_FIELD = 1000
MAX_STATUS = 40
MAX_WARNINGS = 500
MAX_LINE_BYTES = 1 << 20

_DELIMITERS = (",", ";", "\t", "|")
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
# Status values, compared without case, spaces, hyphens or underscores ("Opted-In" → optedin).
_ACTIVE_VALUES = frozenset({
    "", "active", "subscribed", "subscriber", "yes", "y", "true", "1", "confirmed",
    "optedin", "optin", "ok", "on", "enabled",
})
_INACTIVE_VALUES = frozenset({
    "unsubscribed", "unsubscribe", "optedout", "optout", "bounced", "bounce", "hardbounce",
    "softbounce", "cleaned", "complained", "complaint", "spam", "spamcomplaint", "abuse",
    "inactive", "disabled", "deleted", "archived", "blocked", "suppressed", "pending",
    "unconfirmed", "no", "n", "false", "0", "off",
})
# fmt: on
_KEPT_FORMAT_CHARS = frozenset("\u200c\u200d")  # ZWNJ and ZWJ: part of some scripts and emoji
_ADDRESS_MAX_BYTES = 254  # RFC 5321, as email-validator enforces it
_MAX_DOMAINS = 10_000
_SIMPLE_LOCAL = re.compile(r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*")
_EDGE_JUNK = " \t\r\n\u00a0\u200b\u2060\ufeff"
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")
_HEADER_NOISE = re.compile(r"[\W_]+")
_SEP_LINE = re.compile(r"sep=(.)")
_STATUS_NOISE = re.compile(r"[\s_-]+")
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass
class SubscriberScan:
    """What one read of the list found; complete once the iterator is exhausted.

    Every non-blank data row lands in exactly one count: ``active`` (valid, active,
    first of its address), ``skipped_status`` (valid, not active; yielded only with
    ``include_inactive``), ``duplicates`` or ``invalid``.
    """

    path: Path
    rows: int = 0
    active: int = 0
    skipped_status: int = 0
    duplicates: int = 0
    invalid: int = 0
    warnings: list[str] = field(default_factory=list)
    warnings_omitted: int = 0


@dataclass(frozen=True)
class _Columns:
    """Where each known value sits in a row, and the header of every other column."""

    headers: tuple[str, ...]
    email: int
    name: int | None
    first: int | None
    last: int | None
    status: int | None
    extra: tuple[tuple[int, str], ...]
    delimiter: str


class _Row(NamedTuple):
    """One parsed, non-blank CSV record and the physical lines it spans."""

    columns: _Columns
    start: int
    end: int
    cells: list[str]

    def cell(self, index: int | None) -> str:
        """Return the cell at ``index``; missing cells are empty."""
        if index is None or index >= len(self.cells):
            return ""
        return self.cells[index]


class _Addresses:
    """Check addresses with email-validator, reusing its verdict on each domain.

    email-validator checks the part after the @-sign without regard to the part
    before it, and that check is most of its cost. For a plain lower-case local part
    (letters, digits, ``. _ + -``) on a domain it already accepted in this read, its
    result is reproduced exactly: the local part as given, the domain as it normalized
    it, and its 254-byte limit. Every other address goes to email-validator itself.
    """

    def __init__(self) -> None:
        self.domains: dict[str, tuple[str, int]] = {}

    def normalize(self, raw: str) -> str | EmailNotValidError:
        """Return the normalized address in ``raw``, or the validator's complaint."""
        text = raw.strip(_EDGE_JUNK)
        local, _at, domain = text.rpartition("@")
        known = self.domains.get(domain)
        simple = _SIMPLE_LOCAL.fullmatch(local) is not None
        if known is not None and simple and len(local) + 1 + known[1] <= _ADDRESS_MAX_BYTES:
            return f"{local}@{known[0]}"
        try:
            result = validate_email(text, check_deliverability=False)
        except EmailNotValidError as err:
            return err
        if simple and result.local_part == local and len(self.domains) < _MAX_DOMAINS:
            longest = max(
                len(domain.encode()), len(result.domain.encode()), len(result.ascii_domain)
            )
            self.domains[domain] = (result.domain, longest)
        return result.normalized


class _Read:
    """The state of one read of the list: counts, warnings, addresses seen."""

    def __init__(self, scan: SubscriberScan, where: str, strict: bool) -> None:
        self.scan = scan
        self.where = where
        self.strict = strict
        self.addresses = _Addresses()
        self.inactive: dict[int, tuple[int, str]] = {}
        self.seen: dict[int, int] = {}

    def warn(self, line: int, message: str) -> None:
        """Record ``message`` for ``line``; in strict mode raise it instead."""
        text = f"{self.where}:{line}: {message}"
        if self.strict:
            raise SubscriberError(f"{text} (strict mode stops at the first problem)")
        if len(self.scan.warnings) < MAX_WARNINGS:
            self.scan.warnings.append(text)
        else:
            self.scan.warnings_omitted += 1

    def finish(self) -> None:
        """Note how many warnings were left out of the list."""
        if self.scan.warnings_omitted:
            self.scan.warnings.append(
                f"{self.where}: … and {self.scan.warnings_omitted} more warnings not shown"
            )


def read_subscribers(
    path: Path,
    *,
    strict: bool = False,
    scan: SubscriberScan | None = None,
    include_inactive: bool = False,
) -> Iterator[Subscriber]:
    """Check the list at ``path`` as a whole, then return an iterator over its subscribers.

    File-level problems raise ``SubscriberError`` here; row problems are warnings in
    ``scan`` (errors if ``strict``). The iterator raises ``SubscriberError`` when it
    ends without having yielded anyone.
    """
    path = Path(path)
    read = _Read(scan if scan is not None else SubscriberScan(path), str(path), strict)
    _prescan(path, read)
    return _iterate(path, read, include_inactive)


def count_active(path: Path) -> int:
    """Count the subscribers who would be mailed, streaming the file.

    Raises ``SubscriberError`` like ``read_subscribers``, also when nobody is active.
    """
    return sum(1 for _ in read_subscribers(path))


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` (1 ≤ K ≤ N, e.g. ``2/4``) into ``(K, N)``."""
    match = re.fullmatch(r"\s*([0-9]{1,9})\s*/\s*([0-9]{1,9})\s*", text)
    if not match:
        raise ValueError(f"shard {text!r} is not of the form K/N; {_SHARD_HINT}")
    k, n = int(match[1]), int(match[2])
    if not _shard_ok(k, n):
        raise ValueError(f"shard {text!r} is out of range; {_SHARD_HINT}")
    return k, n


def in_shard(email: str, shard: tuple[int, int] | None) -> bool:
    """Tell whether ``email`` belongs to part K of N; every address is in exactly one part.

    The split hashes the case-folded address with SHA-256, so it is the same on every
    machine and run. ``None`` means no sharding: every address belongs.
    """
    if shard is None:
        return True
    k, n = shard
    if not _shard_ok(k, n):
        raise ValueError(f"shard {k}/{n} is out of range; {_SHARD_HINT}")
    digest = hashlib.sha256(email.casefold().encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest, "big") % n == k - 1


_SHARD_HINT = "write K/N with K between 1 and N, e.g. 2/4 for the second of four parts"


def _shard_ok(k: int, n: int) -> bool:
    """Tell whether part ``k`` of ``n`` exists."""
    return 1 <= k <= n


def _prescan(path: Path, read: _Read) -> None:
    """Read the whole file once, noting the first non-active row of each address."""
    for row in _table(path, read.where):
        status, _known = _status(row.cell(row.columns.status))
        if status == ACTIVE:
            continue
        address = read.addresses.normalize(row.cell(row.columns.email))
        if isinstance(address, str):
            read.inactive.setdefault(_key(address), (row.start, status))


def _iterate(path: Path, read: _Read, include_inactive: bool) -> Iterator[Subscriber]:
    """Yield each row's subscriber, skipping and reporting bad rows."""
    yielded = 0
    for row in _table(path, read.where):
        read.scan.rows += 1
        subscriber = _subscriber(row, read)
        if subscriber is None:
            continue
        if subscriber.active or include_inactive:
            yielded += 1
            yield subscriber
    read.finish()
    if not yielded:
        raise SubscriberError(_empty_message(read.scan, read.where, include_inactive))


def _subscriber(row: _Row, read: _Read) -> Subscriber | None:
    """Turn one row into a subscriber, or count and report why it is skipped."""
    scan, columns, seen = read.scan, row.columns, read.seen
    if len(row.cells) > len(columns.headers):
        shown = "tab" if columns.delimiter == "\t" else repr(columns.delimiter)
        read.warn(
            row.start,
            f"the row has {len(row.cells)} cells but the header has {len(columns.headers)};"
            f" the extra cells are ignored (put a value containing {shown} in double quotes)",
        )
    if row.end > row.start:
        read.warn(
            row.start,
            f"the row runs on to line {row.end} because a quoted value holds line breaks (they"
            " become spaces); if that is not intended, a double quote is missing: fix the quoting",
        )
    address = _address(row, read)
    if address is None:
        scan.invalid += 1
        return None
    status = _row_status(row, read)
    key = _key(address)
    other = read.inactive.get(key)
    if status == ACTIVE and other is not None:
        scan.duplicates += 1
        read.warn(
            row.start,
            f"{_shown(address)} is active here but has status {other[1]!r} on line {other[0]};"
            " it is not mailed (a non-active status wins); remove the row that is wrong",
        )
        return None
    if key in seen:
        scan.duplicates += 1
        read.warn(
            row.start,
            f"{_shown(address)} is a duplicate of line {seen[key]} (addresses are compared"
            " ignoring case); this row is skipped; remove one of the rows",
        )
        return None
    seen[key] = row.start
    if status == ACTIVE:
        scan.active += 1
    else:
        scan.skipped_status += 1
    return Subscriber(
        email=address,
        name=_name(row, read),
        status=status,
        fields=_fields(row, read),
        line=row.start,
    )


def _address(row: _Row, read: _Read) -> str | None:
    """Return the row's normalized address, or ``None`` after reporting why it is unusable."""
    raw = row.cell(row.columns.email)
    if not raw.strip(_EDGE_JUNK):
        header = row.columns.headers[row.columns.email]
        read.warn(
            row.start,
            f"the row has no email address in column {header!r}; fill it in or remove the row",
        )
        return None
    result = read.addresses.normalize(raw)
    if isinstance(result, str):
        return result
    read.warn(
        row.start,
        f"{_shown(raw.strip(_EDGE_JUNK))} is not a valid email address ({result}); fix it or"
        " remove the row",
    )
    return None


def _key(address: str) -> int:
    """Return a compact, case-insensitive identity for a normalized address (one process only)."""
    return hash(address.casefold())


def _status(raw: str) -> tuple[str, bool]:
    """Return the normalized status of a cell and whether it is a known value."""
    if raw.casefold() in _ACTIVE_VALUES:
        return ACTIVE, True
    text, _cut = _clean(raw, MAX_STATUS)
    value = _STATUS_NOISE.sub(" ", text.casefold()).strip()
    key = value.replace(" ", "")
    if key in _ACTIVE_VALUES:
        return ACTIVE, True
    return value, key in _INACTIVE_VALUES


def _row_status(row: _Row, read: _Read) -> str:
    """Return the row's status, warning about values this tool does not know."""
    status, known = _status(row.cell(row.columns.status))
    if not known:
        read.warn(
            row.start,
            f"status {_shown(status)} is not a known value; the address is not mailed; use"
            " 'active' (or subscribed/yes/confirmed) or e.g. 'unsubscribed', 'bounced'",
        )
    return status


def _name(row: _Row, read: _Read) -> str:
    """Return the row's display name: the name column, else first and last name."""
    columns = row.columns
    raw = row.cell(columns.name)
    if not raw.strip():
        raw = f"{row.cell(columns.first)} {row.cell(columns.last)}"
    name, cut = _clean(raw, MAX_NAME)
    if cut:
        read.warn(row.start, f"the name is longer than {MAX_NAME} characters; it was cut")
    return name


def _fields(row: _Row, read: _Read) -> MappingProxyType[str, str]:
    """Return the other columns of the row, header → single-line value."""
    values: dict[str, str] = {}
    for index, header in row.columns.extra:
        value, cut = _clean(row.cell(index), MAX_FIELD)
        if cut:
            read.warn(
                row.start,
                f"the value of {header!r} is longer than {MAX_FIELD} characters; it was cut",
            )
        values[header] = value
    return MappingProxyType(values)


def _clean(text: str, limit: int) -> tuple[str, bool]:
    """Make ``text`` one safe line: no control or invisible characters, spaces folded, capped.

    Returns the text and whether it was cut to ``limit`` characters.
    """
    if text.isascii() and text.isprintable():
        if text == text.strip() and "  " not in text and len(text) <= limit:
            return text, False
    elif not text.isprintable():
        text = "".join(_safe_char(ch) for ch in text)
    text = " ".join(unicodedata.normalize("NFC", text).split())
    if len(text) <= limit:
        return text, False
    return text[:limit].rstrip(), True


def _safe_char(ch: str) -> str:
    """Map a control or line-break character to a space and a format character to nothing."""
    category = unicodedata.category(ch)
    if category in ("Cc", "Zl", "Zp"):
        return " "
    if category in ("Cf", "Cs") and ch not in _KEPT_FORMAT_CHARS:
        return ""
    return ch


def _shown(text: str) -> str:
    """Quote a value from the file for a message, escaped and shortened."""
    return repr(text if len(text) <= 80 else text[:79] + "…")


def _empty_message(scan: SubscriberScan, where: str, include_inactive: bool) -> str:
    """Explain why the list yielded nobody."""
    if scan.rows == 0:
        return (
            f"no subscribers in {where}: the file has a header but no rows;"
            " add one row per subscriber"
        )
    kind = "subscribers" if include_inactive else "active subscribers"
    return (
        f"no {kind} in {where}: {scan.rows} rows, {scan.skipped_status} not active,"
        f" {scan.invalid} invalid, {scan.duplicates} duplicates; add subscribers with status"
        " 'active' (or an empty status) and see the warnings for the skipped rows"
    )


def _table(path: Path, where: str) -> Iterator[_Row]:
    """Yield the non-blank data rows of the CSV file, each with the column layout."""
    lines = _lines(path, where)
    skipped, first, delimiter = _preamble(lines)
    if first is None:
        raise SubscriberError(
            f"{where} is empty; a subscriber list starts with a header line such as"
            " 'email,name,status'"
        )
    records = _records(chain([first], lines), skipped, delimiter, where)
    start, _end, header = next(records, (skipped + 1, skipped + 1, []))
    columns = _columns(header, delimiter, where, start)
    for start, end, cells in records:
        if any(map(str.strip, cells)):
            yield _Row(columns, start, end, cells)


def _preamble(lines: Iterator[str]) -> tuple[int, str | None, str]:
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


def _records(
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


def _columns(header: list[str], delimiter: str, where: str, line: int) -> _Columns:
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
    return _Columns(tuple(headers), email, name, first, last, status, extra, delimiter)


def _header_names(header: list[str]) -> list[str]:
    """Clean the header cells; blank ones get a placeholder, repeated ones a suffix."""
    names: list[str] = []
    taken: set[str] = set()
    for index, raw in enumerate(header):
        text, _cut = _clean(raw, MAX_NAME)
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
    found = ", ".join(_shown(h) for h in headers[:20])
    if len(headers) > 20:
        found += f", … ({len(headers)} columns)"
    hint = "name the column of addresses 'email'"
    if any("@" in h for h in headers):
        hint = "the first line looks like data: add a header line such as 'email,name,status'"
    return f"{where}:{line}: no email column; the header has {found}; {hint}"


def _lines(path: Path, where: str) -> Iterator[str]:
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
