"""Read the subscriber list: a CSV file, validated, deduplicated and streamed.

The file is read twice, each time line by line with flat memory:

1. ``read_subscribers`` itself reads the whole file once before returning. Every
   file-level problem (missing or unreadable file, not UTF-8, a workbook instead of
   CSV, no email column, broken quoting) is raised then, before a single subscriber
   is handed out. This pass also notes every address listed with a non-active status.
2. The returned iterator reads it again and yields ``Subscriber`` objects. Row
   problems (bad address, duplicate, unknown status, stray cells) skip the row with a
   warning in ``SubscriberScan.warnings``; with ``strict=True`` the first one raises.

How the bytes become rows is in ``csvfile`` (encoding, delimiter) and ``table``
(header spellings). Every line number in a message is the physical line on which the
row starts.

An address listed twice counts once; if any of its rows has a non-active status,
that status wins and the address is not mailed. When iteration ends without having
yielded anyone, ``SubscriberError`` is raised ("no active subscribers").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from newsletter.errors import SubscriberError
from newsletter.models import Subscriber

from .addresses import EDGE_JUNK, Addresses, address_key
from .cells import MAX_FIELD, MAX_NAME, clean_cell, quote_value
from .status import ACTIVE, parse_status
from .table import Row, read_table

MAX_WARNINGS = 500


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


class _Read:
    """The state of one read of the list: counts, warnings, addresses seen."""

    def __init__(self, scan: SubscriberScan, where: str, strict: bool) -> None:
        self.scan = scan
        self.where = where
        self.strict = strict
        self.addresses = Addresses()
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
    allow_empty: bool = False,
) -> Iterator[Subscriber]:
    """Check the list at ``path`` as a whole, then return an iterator over its subscribers.

    File-level problems raise ``SubscriberError`` here; row problems are warnings in
    ``scan`` (errors if ``strict``). The iterator raises ``SubscriberError`` when it
    ends without having yielded anyone, unless ``allow_empty`` (the caller has others).
    """
    path = Path(path)
    read = _Read(scan if scan is not None else SubscriberScan(path), str(path), strict)
    _prescan(path, read)
    return _iterate(path, read, include_inactive, allow_empty)


def count_active(path: Path) -> int:
    """Count the subscribers who would be mailed, streaming the file.

    Raises ``SubscriberError`` like ``read_subscribers``, also when nobody is active.
    """
    return sum(1 for _ in read_subscribers(path))


def _prescan(path: Path, read: _Read) -> None:
    """Read the whole file once, noting the first non-active row of each address."""
    for row in read_table(path, read.where):
        status, _known = parse_status(row.cell(row.columns.status))
        if status == ACTIVE:
            continue
        address = read.addresses.normalize(row.cell(row.columns.email))
        if isinstance(address, str):
            read.inactive.setdefault(address_key(address), (row.start, status))


def _iterate(
    path: Path, read: _Read, include_inactive: bool, allow_empty: bool
) -> Iterator[Subscriber]:
    """Yield each row's subscriber, skipping and reporting bad rows."""
    yielded = 0
    for row in read_table(path, read.where):
        read.scan.rows += 1
        subscriber = _subscriber(row, read)
        if subscriber is None:
            continue
        if subscriber.active or include_inactive:
            yielded += 1
            yield subscriber
    read.finish()
    if not yielded and not allow_empty:
        raise SubscriberError(empty_message(read.scan, read.where, include_inactive))


def _subscriber(row: Row, read: _Read) -> Subscriber | None:
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
    key = address_key(address)
    other = read.inactive.get(key)
    if status == ACTIVE and other is not None:
        scan.duplicates += 1
        read.warn(
            row.start,
            f"{quote_value(address)} is active here but has status {other[1]!r} on line {other[0]};"
            " it is not mailed (a non-active status wins); remove the row that is wrong",
        )
        return None
    if key in seen:
        scan.duplicates += 1
        read.warn(
            row.start,
            f"{quote_value(address)} is a duplicate of line {seen[key]} (addresses are compared"
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


def _address(row: Row, read: _Read) -> str | None:
    """Return the row's normalized address, or ``None`` after reporting why it is unusable."""
    raw = row.cell(row.columns.email)
    if not raw.strip(EDGE_JUNK):
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
        f"{quote_value(raw.strip(EDGE_JUNK))} is not a valid email address ({result}); fix it or"
        " remove the row",
    )
    return None


def _row_status(row: Row, read: _Read) -> str:
    """Return the row's status, warning about values this tool does not know."""
    status, known = parse_status(row.cell(row.columns.status))
    if not known:
        read.warn(
            row.start,
            f"status {quote_value(status)} is not a known value; the address is not mailed; use"
            " 'active' (or subscribed/yes/confirmed) or e.g. 'unsubscribed', 'bounced'",
        )
    return status


def _name(row: Row, read: _Read) -> str:
    """Return the row's display name: the name column, else first and last name."""
    columns = row.columns
    raw = row.cell(columns.name)
    if not raw.strip():
        raw = f"{row.cell(columns.first)} {row.cell(columns.last)}"
    name, cut = clean_cell(raw, MAX_NAME)
    if cut:
        read.warn(row.start, f"the name is longer than {MAX_NAME} characters; it was cut")
    return name


def _fields(row: Row, read: _Read) -> MappingProxyType[str, str]:
    """Return the other columns of the row, header → single-line value."""
    values: dict[str, str] = {}
    for index, header in row.columns.extra:
        value, cut = clean_cell(row.cell(index), MAX_FIELD)
        if cut:
            read.warn(
                row.start,
                f"the value of {header!r} is longer than {MAX_FIELD} characters; it was cut",
            )
        values[header] = value
    return MappingProxyType(values)


def empty_message(scan: SubscriberScan, where: str, include_inactive: bool = False) -> str:
    """Explain why the list at ``where`` yielded nobody."""
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
