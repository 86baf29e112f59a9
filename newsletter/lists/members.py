"""The subscribers the tool holds, from and to CSV: ``subscribers import`` and ``export``.

Import reads a subscriber list with the list's own reader (any encoding, delimiter and
header spelling it takes; bad rows named by line and skipped, or with ``strict`` the
first one stops it before anything is stored):

- an active row makes a member (source ``import``; ``joined_at`` kept when the file has
  it, as an export writes it);
- a row whose status means "never mail again" (unsubscribed, bounced, complained,
  suppressed …; see ``subscribers.status``) is added to the suppression list with the
  matching reason; other non-active rows (inactive, pending …) are skipped and counted.

Export writes every member as such a list (``email,name,status,source,joined_at``); a
suppressed member's status says why (unsubscribed, bounced, complained, suppressed),
so importing the export gives the same members and suppressions back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from newsletter.errors import SubscriberError
from newsletter.lists.csvio import write_rows
from newsletter.models import Subscriber
from newsletter.state.api import normalize_email
from newsletter.state.openers import Place, open_members, open_suppressions
from newsletter.state.timestamps import from_stamp
from newsletter.subscribers.reader import SubscriberScan, read_subscribers
from newsletter.subscribers.status import ACTIVE, STATUS_FOR_REASON, suppression_reason

HEADER = ("email", "name", "status", "source", "joined_at")
SOURCE = "import"


@dataclass
class Imported:
    """What an import did: members added or updated, suppressions added, rows skipped."""

    scan: SubscriberScan
    members_added: int = 0
    members_updated: int = 0
    suppressed: int = 0  # added to the suppression list
    already_suppressed: int = 0
    skipped: int = 0  # valid rows not imported: a non-active status that suppresses nothing
    problems: list[str] = field(default_factory=list)  # rows left out, and why

    @property
    def bad_rows(self) -> int:
        """Rows the list's reader could not use (invalid, duplicate) and rows with problems."""
        return self.scan.invalid + self.scan.duplicates + len(self.problems)


def import_subscribers(place: Place, path: Path, *, strict: bool = False) -> Imported:
    """Store the list at ``path``: active rows as members, unsubscribed (…) ones as suppressed."""
    if strict:  # all or nothing: read it through once before storing anything
        for _ in _rows(Imported(SubscriberScan(path=path)), strict=True):
            pass
    outcome = Imported(SubscriberScan(path=path))
    with open_members(place) as members, open_suppressions(place) as suppressions:
        for subscriber, joined in _rows(outcome, strict=strict):
            if subscriber.active:
                if members.add(subscriber.email, subscriber.name, SOURCE, at=joined):
                    outcome.members_added += 1
                else:
                    outcome.members_updated += 1
                continue
            reason = suppression_reason(subscriber.status)
            if reason is None:
                outcome.skipped += 1
            elif suppressions.add(
                subscriber.email, reason, SOURCE, detail=f"status {subscriber.status}"
            ):
                outcome.suppressed += 1
            else:
                outcome.already_suppressed += 1
    return outcome


def export_subscribers(place: Place, out: TextIO) -> int:
    """Write every member as a subscriber list (``HEADER``); a suppressed one's status why."""
    with open_members(place) as members, open_suppressions(place) as suppressions:
        everyone = members.all()
        reasons = {normalize_email(s.email): s.reason for s in suppressions.all()}
    rows = (
        (m.email, m.name, _status(reasons.get(normalize_email(m.email))), m.source, m.joined_at)
        for m in everyone
    )
    return write_rows(out, HEADER, rows)


def _status(reason: str | None) -> str:
    return ACTIVE if reason is None else STATUS_FOR_REASON[reason]


def _rows(outcome: Imported, *, strict: bool) -> Iterator[tuple[Subscriber, datetime | None]]:
    """Each usable row with when it joined (``None``: now); the others in problems."""
    path = outcome.scan.path
    listed = read_subscribers(
        path, scan=outcome.scan, strict=strict, include_inactive=True, allow_empty=True
    )
    for subscriber in listed:
        stamp = subscriber.fields.get("joined_at", "").strip()
        if not stamp:
            yield subscriber, None
            continue
        try:
            yield subscriber, from_stamp(stamp)
        except ValueError:
            message = (
                f"{path}:{subscriber.line}: joined_at {stamp!r} is not a time such as "
                "2026-03-04T12:30:00.000000Z; fix it or leave it empty"
            )
            if strict:
                raise SubscriberError(
                    f"{message} (strict mode stops at the first problem)"
                ) from None
            outcome.problems.append(message)
