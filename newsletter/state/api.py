"""What the rest of newsletter may ask of the state: one protocol per tenant, plain records.

Callers name these protocols (``History``, ``EditionStore``, ``Ledger``, ``SlotStore``,
``ProcessLock``; the lists of readers in ``state.lists``: ``Suppressions``, ``Members``,
``BounceLog``; senders sharing an edition in ``state.sharing``: ``Crew``) and get them
from ``newsletter.state.openers``, never from a backend's classes: SQLite
(``newsletter.state.sqlite``) and PostgreSQL (``newsletter.state.postgres``) sit behind
the openers. Every backend keeps the promises written here, the ledger's
crash guarantee included (see ``Ledger``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from newsletter.models import Edition
from newsletter.wire import ascii_domain

# --------------------------------------------------------------------------- records

STATES = ("pending", "in_flight", "sent", "failed", "deferred")
FINAL_STATES = ("sent", "failed", "deferred")
ATTENTION_STATES = ("failed", "deferred", "in_flight")
REACHED_STATES = ("sent", "in_flight")  # a message the server took, or may have: it went out
MAX_REPLY = 2000  # characters of a server's reply the ledger keeps


def normalize_email(email: str) -> str:
    """Return the state's key for an address: trimmed, its domain in ASCII, casefolded.

    A send writes the ledger under the address as it goes on the wire (the domain in
    IDNA, ``wire.header_address``), a stored list or a suppression under the address as
    the list has it: one key for both, so ``bücher.example`` and ``xn--bcher-kva.example``
    are one reader everywhere. A domain that is not a valid name is kept as it is.
    """
    text = email.strip()
    local, at, domain = text.rpartition("@")
    if at and not domain.isascii():
        with contextlib.suppress(ValueError):  # not a valid name (IDNAError): kept as it is
            text = f"{local}@{ascii_domain(domain)}"
    return text.casefold()


@dataclass(frozen=True)
class EditionStatus:
    """One edition's delivery at a glance: when it started and how many are in each state.

    ``recipients`` is how many its latest send set out to reach (``None``: not recorded,
    a send by an earlier release); those the ledger does not know yet are not attempted.
    """

    id: str
    subject: str
    started: datetime
    counts: dict[str, int] = field(default_factory=dict)
    recipients: int | None = None

    @property
    def total(self) -> int:
        """Every recipient the ledger knows for this edition."""
        return sum(self.counts.values())

    @property
    def not_attempted(self) -> int | None:
        """Recipients the send set out to reach and has not tried yet (``None``: unknown)."""
        if self.recipients is None:
            return None
        return max(self.recipients - self.total, 0)

    @property
    def needs_attention(self) -> int:
        """Recipients that are not done: failed, deferred or in flight."""
        return sum(self.counts.get(state, 0) for state in ATTENTION_STATES)


@dataclass(frozen=True)
class ArchivedEdition:
    """An edition as stored, with its send status."""

    edition: Edition
    selection: Mapping[str, Any]
    status: str
    started_at: str
    finished_at: str | None


@dataclass(frozen=True)
class EditionEntry:
    """A stored edition that went out, without its parts: what the archive lists."""

    id: str
    subject: str
    preheader: str
    created: datetime  # the edition's own moment (its date in the masthead)
    started: datetime  # when its live send began
    status: str


@dataclass(frozen=True)
class SlotRecord:
    """A recorded slot: ``claimed`` (running or interrupted), ``sent``, ``skipped``, ``failed``."""

    key: str
    schedule: str
    slot_local: str
    slot_utc: str
    state: str
    reason: str
    edition: str
    sent: int
    failed: int
    deferred: int
    attempts: int
    claimed_at: str
    finished_at: str | None

    @property
    def done(self) -> bool:
        """Whether nothing more will happen to this slot on its own."""
        return self.state in ("sent", "skipped", "failed")


@dataclass(frozen=True)
class Claim:
    """What claiming a slot found: ``new``, ``resume``, ``retry``, ``missed`` or ``done``."""

    kind: str
    record: SlotRecord | None = None


class SlotLike(Protocol):
    """What the slot store needs to know of a schedule's slot (``schedule.Slot``)."""

    @property
    def key(self) -> str:
        """The slot's identity: schedule name and local wall time."""

    @property
    def schedule(self) -> str:
        """The schedule's name."""

    @property
    def local(self) -> datetime:
        """When it is due, in the schedule's time zone."""

    @property
    def at(self) -> datetime:
        """When it is due (aware)."""


class DeliveryCounts(Protocol):
    """What a slot's send did, as the slot store records it (``schedule.Delivery``)."""

    @property
    def sent(self) -> int:
        """Messages the server accepted."""

    @property
    def failed(self) -> int:
        """Messages refused for good."""

    @property
    def deferred(self) -> int:
        """Messages to try again later."""


# --------------------------------------------------------------------------- tenants


class Closing(Protocol):
    """A store that holds a connection until closed; also a context manager."""

    def close(self) -> None:
        """Close the connection (after committing anything pending)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...


class History(Closing, Protocol):
    """Which articles went out in which edition, so the next editions do not repeat them."""

    def recent_article_ids(self, editions: int) -> frozenset[str]:
        """The ids of the articles sent in the last ``editions`` editions."""

    def last_edition(self) -> str | None:
        """The id of the most recently created edition on record, if any."""

    def record(self, edition_id: str, created: datetime, article_ids: Sequence[str]) -> None:
        """Record that an edition with these articles went out (again: replaces the record)."""

    def forget(self, edition_id: str) -> None:
        """Drop an edition's record: its articles count as never sent (none if unknown)."""


class EditionStore(Closing, Protocol):
    """Every edition that started going out, stored whole so a send can be resumed."""

    def save(self, edition: Edition, selection: Mapping[str, Any], started_at: datetime) -> None:
        """Store ``edition`` as sending (kept as it is when it was stored before).

        An abandoned edition built again (the same content the same day) is sending again.
        """

    def set_status(self, edition_id: str, status: str, at: datetime) -> None:
        """Mark an edition ``sending``, ``done`` or ``abandoned`` (the last two finish it at)."""

    def get(self, edition_id: str) -> ArchivedEdition | None:
        """The stored edition with this id, if any."""

    def unfinished(self) -> ArchivedEdition | None:
        """The most recent edition whose send was interrupted (still ``sending``), if any."""

    def last_done(self) -> ArchivedEdition | None:
        """The edition whose send finished (``done``) most recently, if any."""

    def ids(self) -> list[str]:
        """Every stored edition id, newest first."""

    def went_out(self) -> list[EditionEntry]:
        """The editions that reached someone (a message ``REACHED_STATES`` in the ledger).

        Newest first (by the edition's moment, then its start). A test copy or a dry run
        is never among them (neither is stored), nor an edition that reached nobody.
        """


class Ledger(Closing, Protocol):
    """The per-recipient delivery record of every edition; may be shared by threads.

    States: ``pending`` (known, not tried), ``in_flight`` (claimed: the SMTP transaction
    may be under way), ``sent`` (the server accepted it), ``failed`` (a 5xx: final),
    ``deferred`` (a 4xx, a timeout or a dropped connection: tried again on the next run).

    The guarantee, which holds at a crash or ``kill -9`` at any instant:

    - a ``claim`` is committed *before* the message data goes out: a sender queues it
      (``claim(..., wait=False)``) and waits for it (``settle``) before the data, so
      every message the server accepted is recorded ``sent`` or ``in_flight``;
    - ``finish`` is written *after* the server's reply, so nobody recorded ``sent`` was
      not accepted.

    Writes are committed in groups (``newsletter.state.commits``): a sender waits for
    the database only when a claim is not durable yet by the time the message data is
    due; a sender that claims a few recipients ahead rarely waits. A ``finish`` lost at a
    crash (queued in the last moments) leaves that recipient ``in_flight``, which is the
    honest state: the ledger cannot tell "accepted in the instant before the kill" from
    "not sent". ``release`` undoes a claim whose message was not tried after all (the
    recipient is ``pending`` again).

    What a resumed send does with ``in_flight`` recipients is ``smtp.in_flight``:

    - ``resend`` (default, at-least-once): they are sent again. A recipient gets the
      message twice only if the server accepted it just before the crash; the copy
      carries the same Message-ID, which many receivers use to drop duplicates.
    - ``hold`` (at-most-once): they are left out and listed by ``failures`` (and so by
      ``newsletter status``) for a person to decide; ``finish`` records the decision.

    ``start`` also records how many recipients a send sets out to reach, so a summary can
    count those not attempted yet (an interrupted send adds up).
    """

    def start(self, edition_id: str, subject: str, recipients: int | None = None) -> None:
        """Record that an edition's delivery began (idempotent; fills in a blank subject).

        ``recipients``: how many this send sets out to reach, those already in the ledger
        included; replaces an earlier count (``None`` keeps it).
        """

    def claim(self, edition_id: str, email: str, message_id: str, *, wait: bool = True) -> int:
        """Mark a recipient ``in_flight``; return the write's ticket for ``settle``."""

    def settle(self, ticket: int) -> None:
        """Return once the write with this ticket (and every one before it) is committed."""

    def release(self, edition_id: str, email: str) -> None:
        """Undo a claim whose message was not tried after all: the recipient is ``pending``."""

    def finish(self, edition_id: str, email: str, state: str, reply: str) -> int:
        """Record the outcome (``sent``, ``failed`` or ``deferred``) and the server's reply."""

    def flush(self) -> None:
        """Commit every queued write."""

    def states(self, edition_id: str) -> dict[str, str]:
        """Map every known recipient (casefolded address) of an edition to its state."""

    def summary(self, edition_id: str) -> dict[str, int]:
        """Count an edition's recipients per state (every state present, zero if none)."""

    def failures(self, edition_id: str) -> list[tuple[str, str, str]]:
        """List ``(email, state, reply)`` of the failed, the deferred and the in-flight."""

    def editions(self) -> list[EditionStatus]:
        """Every edition in the ledger, newest first, with its counts per state."""

    def edition(self, edition_id: str) -> EditionStatus | None:
        """One edition's status (``None`` if the ledger has never seen it)."""


class ProcessLock(Protocol):
    """One process at a time per state (a file lock, or a database's advisory lock).

    Released when the holder lets go or dies, never left behind by a crash.
    """

    def acquire(self, wait: float | None = 0.0, stop: threading.Event | None = None) -> bool:
        """Take the lock; wait up to ``wait`` seconds (``None``: until ``stop`` is set)."""

    def release(self) -> None:
        """Let go of the lock."""

    def holder(self) -> str:
        """Who holds it, as ``newsletter`` process id (and host), or ``unknown``."""


@dataclass(frozen=True)
class SchemaUpgrade:
    """What ``migrate`` did to a state store: its schema version before and after."""

    where: str  # the store, as messages show it (a URL's password masked)
    before: int  # 0: a new store (or one made before schema versions)
    after: int

    @property
    def changed(self) -> bool:
        """Whether any migration ran."""
        return self.after != self.before

    def describe(self) -> str:
        """One line for a person: what the store's schema was and is."""
        if not self.changed:
            return f"{self.where}: schema {self.after}, already up to date"
        if self.before == 0:
            return f"{self.where}: schema {self.after} (tables created, or adopted as they were)"
        return f"{self.where}: upgraded from schema {self.before} to {self.after}"


class SlotStore(Closing, Protocol):
    """One record per schedule slot that was claimed or skipped."""

    def get(self, key: str) -> SlotRecord | None:
        """The record of one slot."""

    def latest(self, schedule: str) -> SlotRecord | None:
        """The schedule's most recent recorded slot."""

    def claim(
        self, slot: SlotLike, now: datetime, *, in_grace: bool, retry_failed: bool, reason: str = ""
    ) -> Claim:
        """Claim ``slot`` for sending, or record it as missed; atomically."""

    def set_edition(self, key: str, edition: str) -> None:
        """Record which edition the slot sends (before sending it)."""

    def finish(
        self,
        key: str,
        state: str,
        now: datetime,
        delivery: DeliveryCounts | None = None,
        reason: str = "",
    ) -> None:
        """Record the end of a slot (``claimed`` keeps it open for a resume)."""
