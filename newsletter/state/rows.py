"""What every backend stores and reads the same way: columns, rows and back, the claim rule.

Both backends keep the same tables with the same columns and the same text in them
(times in the one format of ``newsletter.state.timestamps``, a selection as JSON), so
a store moved from one backend to the other reads the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from newsletter.clock import now_utc
from newsletter.models import Digest, Edition
from newsletter.state.api import (
    REACHED_STATES,
    STATES,
    ArchivedEdition,
    EditionEntry,
    EditionStatus,
    SlotRecord,
    normalize_email,
)
from newsletter.state.lists import (
    BOUNCE_KINDS,
    SUPPRESSION_REASONS,
    BounceEvent,
    Member,
    Suppression,
)
from newsletter.state.timestamps import from_stamp, to_stamp

EDITION_COLUMNS = (
    "id, created, subject, preheader, html, text, selection, warnings, status, started_at,"
    " finished_at"
)
# The columns of ``edition_row``, in its order.
EDITION_INSERT = "id, created, subject, preheader, html, text, selection, warnings, started_at"
# Storing an edition again keeps it as it is, unless it was abandoned: built again (the
# same content the same day), it is sending again.
EDITION_RESTART = (
    "ON CONFLICT (id) DO UPDATE SET status = 'sending', finished_at = NULL"
    " WHERE archive_editions.status = 'abandoned'"
)
FINISHED = ("done", "abandoned")  # statuses that end a send: never resumed
# The editions that went out: a message of each reached someone, as the ledger shows
# (a test copy's ledger entry has an id of its own, so it never counts), newest first.
_REACHED_LIST = ", ".join(f"'{state}'" for state in REACHED_STATES)
WENT_OUT = (
    "SELECT id, subject, preheader, created, started_at, status FROM archive_editions"  # noqa: S608
    " WHERE EXISTS (SELECT 1 FROM ledger_recipients r WHERE r.edition_id = archive_editions.id"
    f" AND r.state IN ({_REACHED_LIST}))"
    " ORDER BY created DESC, started_at DESC, id DESC"
)

SLOT_COLUMNS = (
    "key, schedule, slot_local, slot_utc, state, reason, edition, sent, failed, deferred,"
    " attempts, claimed_at, finished_at"
)


def edition_row(
    edition: Edition, selection: Mapping[str, Any], started_at: datetime
) -> tuple[str, ...]:
    """The values of ``EDITION_INSERT`` for an edition that starts going out."""
    return (
        edition.id,
        to_stamp(edition.created),
        edition.subject,
        edition.preheader,
        edition.html,
        edition.text,
        json.dumps(selection, ensure_ascii=False, sort_keys=True),
        json.dumps(list(edition.warnings), ensure_ascii=False),
        to_stamp(started_at),
    )


def finished_stamp(status: str, at: datetime) -> str | None:
    """The ``finished_at`` of an edition set to ``status`` at ``at`` (``None``: not finished)."""
    return to_stamp(at) if status in FINISHED else None


def load_edition(row: tuple[Any, ...]) -> ArchivedEdition:
    """Read a row of ``EDITION_COLUMNS`` back into the stored edition."""
    created = from_stamp(row[1])
    edition = Edition(
        id=row[0],
        subject=row[2],
        preheader=row[3],
        html=row[4],
        text=row[5],
        digest=Digest(lead=None, now=created),
        created=created,
        warnings=tuple(json.loads(row[7])),
    )
    return ArchivedEdition(
        edition=edition,
        selection=json.loads(row[6]),
        status=row[8],
        started_at=row[9],
        finished_at=row[10],
    )


def load_entry(row: tuple[Any, ...]) -> EditionEntry:
    """Read a row of ``WENT_OUT`` back into an archive's entry."""
    return EditionEntry(
        id=row[0],
        subject=row[1],
        preheader=row[2],
        created=from_stamp(row[3]),
        started=from_stamp(row[4]),
        status=row[5],
    )


def state_counts(rows: Iterable[tuple[str, int]] = ()) -> dict[str, int]:
    """Recipients per state from ``(state, count)`` rows, every state present (zero if none)."""
    counts = dict.fromkeys(STATES, 0)
    counts.update(rows)
    return counts


# The columns of a ``ledger_editions`` row that ``edition_statuses`` reads, in its order.
LEDGER_HEAD = "edition_id, subject, started, recipients"


def edition_statuses(
    heads: Iterable[tuple[str, str, str, int | None]], counts: Iterable[tuple[str, str, int]]
) -> list[EditionStatus]:
    """The ledger's editions from rows of ``LEDGER_HEAD``, in their order, with
    ``(edition_id, state, count)`` rows as each one's counts."""
    per_edition: dict[str, dict[str, int]] = {}
    for edition_id, state, count in counts:
        per_edition.setdefault(edition_id, state_counts())[state] = count
    return [
        EditionStatus(
            id=edition_id,
            subject=subject,
            started=from_stamp(started),
            counts=per_edition.get(edition_id, state_counts()),
            recipients=recipients,
        )
        for edition_id, subject, started, recipients in heads
    ]


def claim_kind(record: SlotRecord | None, *, in_grace: bool, retry_failed: bool) -> str:
    """Decide what claiming a slot with this record does (the ``kind`` of its ``Claim``).

    A slot sent or skipped is done, and one that failed unless ``retry_failed``; one
    claimed before (running or interrupted) is resumed; past its grace it is missed;
    otherwise it is claimed again (``retry``) or for the first time (``new``).
    """
    if record is not None and record.state in ("sent", "skipped"):
        return "done"
    if record is not None and record.state == "failed" and not retry_failed:
        return "done"
    if record is not None and record.state == "claimed":
        return "resume"
    if not in_grace:
        return "missed"
    return "new" if record is None else "retry"


# The columns of a ``Suppression``, in its order; and those ``suppression_row`` fills.
SUPPRESSION_COLUMNS = "email, reason, source, at, edition_id, detail"
SUPPRESSION_INSERT = "email_key, email, reason, source, at, edition_id, detail"


def suppression_row(
    email: str, reason: str, source: str, edition_id: str, detail: str, at: datetime | None
) -> tuple[str, ...]:
    """The values of ``SUPPRESSION_INSERT``; a reason not in ``SUPPRESSION_REASONS`` is refused."""
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(
            f"suppression reason {reason!r} is not one of {', '.join(SUPPRESSION_REASONS)}"
        )
    stamp = to_stamp(at if at is not None else now_utc())
    return (normalize_email(email), email.strip(), reason, source, stamp, edition_id, detail)


def load_suppression(row: Sequence[Any]) -> Suppression:
    """Read a row of ``SUPPRESSION_COLUMNS`` back into a suppression."""
    return Suppression(*row)


# The columns of a ``Member``, in its order; and those ``member_row`` fills.
MEMBER_COLUMNS = "email, name, source, joined_at"
MEMBER_INSERT = "email_key, email, name, source, joined_at"


def member_row(email: str, name: str, source: str, at: datetime | None) -> tuple[str, ...]:
    """The values of ``MEMBER_INSERT`` for a subscriber who joins at ``at`` (default: now)."""
    stamp = to_stamp(at if at is not None else now_utc())
    return (normalize_email(email), email.strip(), name, source, stamp)


def load_member(row: Sequence[Any]) -> Member:
    """Read a row of ``MEMBER_COLUMNS`` back into a member."""
    return Member(*row)


# The columns of a bounce event as ``bounce_row`` fills them and ``load_bounce`` reads them.
BOUNCE_COLUMNS = "report_key, email_key, kind, at, edition_id, status"


def bounce_row(report_key: str, event: BounceEvent) -> tuple[str, ...]:
    """The values of ``BOUNCE_COLUMNS``; a kind not in ``BOUNCE_KINDS`` is refused."""
    if event.kind not in BOUNCE_KINDS:
        raise ValueError(f"bounce kind {event.kind!r} is not one of {', '.join(BOUNCE_KINDS)}")
    email = normalize_email(event.email)
    return (report_key, email, event.kind, to_stamp(event.at), event.edition_id, event.status)


def load_bounce(row: Sequence[Any]) -> BounceEvent:
    """Read a row of ``BOUNCE_COLUMNS`` back into an event."""
    _, email, kind, at, edition_id, status = row
    return BounceEvent(email, kind, from_stamp(at), edition_id, status)
