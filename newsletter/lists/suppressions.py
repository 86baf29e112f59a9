"""The suppression list by hand: list, add, remove, export to CSV and add from one.

The export's columns are ``email,reason,source,at,edition,detail``; ``add --from`` reads
such a file back (with the subscriber list's reader: any encoding and delimiter it
takes, bad rows named by line and skipped), keeping each row's reason, source, time,
edition and detail. Only ``email`` is needed; a row without a reason takes the one given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from newsletter.errors import SubscriberError
from newsletter.lists.csvio import write_rows
from newsletter.models import Subscriber
from newsletter.state.lists import SUPPRESSION_REASONS, Suppression, Suppressions
from newsletter.state.openers import Place, open_suppressions
from newsletter.state.timestamps import from_stamp
from newsletter.subscribers.addresses import check_address
from newsletter.subscribers.reader import SubscriberScan, read_subscribers

HEADER = ("email", "reason", "source", "at", "edition", "detail")
BY_HAND = "cli"  # the source of a suppression added with the command
FROM_FILE = "import"  # ... and of one added from a file that names none


@dataclass
class Added:
    """What adding to the suppression list did: counts, and each problem in words."""

    added: int = 0
    already: list[Suppression] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # addresses or rows left out, and why
    scan: SubscriberScan | None = None  # reading a file: its counts and row warnings


def listed(place: Place, reason: str | None = None) -> list[Suppression]:
    """Every suppression, oldest first; only those with ``reason`` when given."""
    with open_suppressions(place) as suppressions:
        found = suppressions.all()
    return [s for s in found if reason is None or s.reason == reason]


def suppress(place: Place, addresses: Iterable[str], reason: str, note: str = "") -> Added:
    """Suppress each valid address (source ``cli``); name each one that is not an address."""
    outcome = Added()
    with open_suppressions(place) as suppressions:
        for raw in addresses:
            address = check_address(raw)
            if not isinstance(address, str):
                outcome.problems.append(
                    f"{raw!r} is not a valid email address ({address}); fix it and add it again"
                )
                continue
            _add(suppressions, outcome, address, reason, BY_HAND, detail=note)
    return outcome


def lift(place: Place, addresses: Iterable[str]) -> tuple[list[Suppression], list[str]]:
    """Lift the suppression of each address: what was removed, and those not on the list."""
    removed: list[Suppression] = []
    missing: list[str] = []
    with open_suppressions(place) as suppressions:
        for address in addresses:
            gone = suppressions.remove(address)
            if gone is None:
                missing.append(address)
            else:
                removed.append(gone)
    return removed, missing


def export(place: Place, out: TextIO) -> int:
    """Write the suppression list as CSV (``HEADER``), oldest first; count the rows."""
    rows = ((s.email, s.reason, s.source, s.at, s.edition_id, s.detail) for s in listed(place))
    return write_rows(out, HEADER, rows)


def suppress_from(
    place: Place, path: Path, reason: str, note: str = "", *, strict: bool = False
) -> Added:
    """Add every row of a CSV file such as ``export`` writes; bad rows are named and skipped.

    With ``strict`` the first bad row stops it before anything is added.
    """
    if strict:  # all or nothing: read it through once before adding anything
        for _ in _rows(path, Added(scan=SubscriberScan(path=path)), reason, strict=True):
            pass
    outcome = Added(scan=SubscriberScan(path=path))
    with open_suppressions(place) as suppressions:
        for row in _rows(path, outcome, reason, strict=strict):
            email, why, source, at, edition, detail = row
            _add(suppressions, outcome, email, why, source, at, edition, detail or note)
    return outcome


Row = tuple[str, str, str, datetime | None, str, str]


def _rows(path: Path, outcome: Added, reason: str, *, strict: bool) -> Iterator[Row]:
    """Each usable row of the file as the values of a suppression; the others in problems."""
    subscribers = read_subscribers(
        path, scan=outcome.scan, strict=strict, include_inactive=True, allow_empty=True
    )
    for subscriber in subscribers:
        row = _row(subscriber, reason)
        if isinstance(row, str):
            message = f"{path}:{subscriber.line}: {row}"
            if strict:
                raise SubscriberError(f"{message} (strict mode stops at the first problem)")
            outcome.problems.append(message)
            continue
        yield row


def _row(subscriber: Subscriber, default_reason: str) -> Row | str:
    """The suppression one row stands for, or what is wrong with it."""
    fields: Mapping[str, str] = {k.strip().casefold(): v for k, v in subscriber.fields.items()}
    why = fields.get("reason", "").strip().casefold() or default_reason
    if why not in SUPPRESSION_REASONS:
        return f"reason {why!r} is not one of {', '.join(SUPPRESSION_REASONS)}; fix the row"
    stamp = fields.get("at", "").strip()
    at = None
    if stamp:
        try:
            at = from_stamp(stamp)
        except ValueError:
            return f"at {stamp!r} is not a time such as 2026-03-04T12:30:00.000000Z; fix the row"
    source = fields.get("source", "").strip() or FROM_FILE
    return (subscriber.email, why, source, at, fields.get("edition", ""), fields.get("detail", ""))


def _add(
    suppressions: Suppressions,
    outcome: Added,
    email: str,
    reason: str,
    source: str,
    at: datetime | None = None,
    edition: str = "",
    detail: str = "",
) -> None:
    if suppressions.add(email, reason, source, edition_id=edition, detail=detail, at=at):
        outcome.added += 1
        return
    found = suppressions.get(email)
    if found is not None:
        outcome.already.append(found)
