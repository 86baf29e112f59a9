"""What the rest of newsletter may ask of the state: one protocol per tenant, plain records.

Callers name these protocols (``History``, ``EditionStore``, ``Ledger``, ``SlotStore``,
``Suppressions``, ``Members``, ``Crew`` (senders sharing an edition, PostgreSQL only),
``ProcessLock``) and get them from ``newsletter.state.openers``, never from a backend's
classes: SQLite (``newsletter.state.sqlite``) and PostgreSQL (``newsletter.state.postgres``)
sit behind the openers. Every backend keeps the promises written here, the ledger's
crash guarantee included (see ``Ledger``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from newsletter.models import Edition, Subscriber

# --------------------------------------------------------------------------- records

STATES = ("pending", "in_flight", "sent", "failed", "deferred")
FINAL_STATES = ("sent", "failed", "deferred")
ATTENTION_STATES = ("failed", "deferred", "in_flight")
REACHED_STATES = ("sent", "in_flight")  # a message the server took, or may have: it went out
MAX_REPLY = 2000  # characters of a server's reply the ledger keeps


def normalize_email(email: str) -> str:
    """Return the ledger's key for an address: trimmed and casefolded."""
    return email.strip().casefold()


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


class _Closing(Protocol):
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


class History(_Closing, Protocol):
    """Which articles went out in which edition, so the next editions do not repeat them."""

    def recent_article_ids(self, editions: int) -> frozenset[str]:
        """The ids of the articles sent in the last ``editions`` editions."""

    def last_edition(self) -> str | None:
        """The id of the most recently created edition on record, if any."""

    def record(self, edition_id: str, created: datetime, article_ids: Sequence[str]) -> None:
        """Record that an edition with these articles went out (again: replaces the record)."""

    def forget(self, edition_id: str) -> None:
        """Drop an edition's record: its articles count as never sent (none if unknown)."""


class EditionStore(_Closing, Protocol):
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


class Ledger(_Closing, Protocol):
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


class SlotStore(_Closing, Protocol):
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


# --------------------------------------------------------------------------- suppressions

SUPPRESSION_REASONS = ("unsubscribe", "bounce", "complaint", "manual")


@dataclass(frozen=True)
class Suppression:
    """An address that no send may mail, with when, why and from where.

    ``reason``: one of ``SUPPRESSION_REASONS``. ``source``: where it came from, such as
    ``one-click``, ``web``, ``mailto``, ``bounces``, ``cli``, ``import``. ``detail``: a
    short note for a person (a DSN status such as ``5.1.1``); never a token.
    """

    email: str  # as first recorded; the key is ``normalize_email(email)``
    reason: str
    source: str
    at: str  # a ``timestamps`` stamp (UTC)
    edition_id: str = ""  # the edition it came from, "" if none
    detail: str = ""


@dataclass(frozen=True)
class SuppressionRequest:
    """One address to suppress, as ``Suppressions.add_many`` takes it."""

    email: str
    reason: str
    source: str
    edition_id: str = ""
    detail: str = ""


class Suppressions(_Closing, Protocol):
    """The suppression list: unsubscribes, hard bounces, complaints and manual entries.

    Keyed by ``normalize_email``. Every send and dry run leaves these addresses out, and a
    send under way checks them when it claims a recipient.
    """

    def add(
        self,
        email: str,
        reason: str,
        source: str,
        *,
        edition_id: str = "",
        detail: str = "",
        at: datetime | None = None,
    ) -> bool:
        """Suppress ``email``; True if it was not suppressed before (a repeat keeps the first)."""

    def add_many(
        self, requests: Sequence[SuppressionRequest], at: datetime | None = None
    ) -> list[bool]:
        """Suppress several addresses in one transaction (one commit); ``add``'s answer each."""

    def remove(self, email: str) -> Suppression | None:
        """Lift the suppression of ``email``; return what was removed, or None."""

    def get(self, email: str) -> Suppression | None:
        """The suppression of ``email``, or None."""

    def among(self, emails: Iterable[str]) -> set[str]:
        """The ``normalize_email`` keys of those of ``emails`` that are suppressed."""

    def changes(self, cursor: int) -> tuple[int, set[str]]:
        """Keys suppressed since ``cursor`` (0: all) and the cursor to pass next time.

        A send under way calls this to learn of new suppressions cheaply; a key may come
        back more than once, never too late.
        """

    def all(self) -> list[Suppression]:
        """Every suppression, oldest first."""

    def count(self) -> int:
        """How many addresses are suppressed."""


# --------------------------------------------------------------------------- members


@dataclass(frozen=True)
class Member:
    """A subscriber the tool holds (confirmed through the subscribe form, or imported)."""

    email: str
    name: str
    source: str  # web | import
    joined_at: str  # a ``timestamps`` stamp (UTC)


class Members(_Closing, Protocol):
    """The subscribers the tool holds, keyed by ``normalize_email``; all are confirmed."""

    def add(
        self, email: str, name: str = "", source: str = "web", at: datetime | None = None
    ) -> bool:
        """Add or update a confirmed subscriber; True if the address was new."""

    def remove(self, email: str) -> bool:
        """Remove a subscriber; True if there was one."""

    def all(self) -> list[Member]:
        """Every member, in the order they joined."""

    def count(self) -> int:
        """How many members there are."""


# --------------------------------------------------------------------------- bounce events

BOUNCE_KINDS = ("hard", "soft", "complaint", "unsubscribe")


@dataclass(frozen=True)
class BounceEvent:
    """What one report from the bounce mailbox said of one address.

    ``kind``: one of ``BOUNCE_KINDS``. ``status``: the RFC 3463 code of a bounce
    (``5.1.1``), "" if none. ``edition_id``: the edition the report is about, "" if unknown.
    """

    email: str  # the key is ``normalize_email(email)``
    kind: str
    at: datetime
    edition_id: str = ""
    status: str = ""


class BounceLog(_Closing, Protocol):
    """Every report read from the bounce mailbox, by what it said of each address.

    A report is known by its key (its Message-ID, else a hash of its bytes): one that is
    recorded is never acted on again, so reading a mailbox twice changes nothing the
    second time. Soft bounces are counted per address over a window of time.
    """

    def seen(self, report_key: str) -> bool:
        """Whether a report with this key was recorded."""

    def record(self, report_key: str, events: Sequence[BounceEvent]) -> int:
        """Record what one report said, all in one transaction; return how many were new."""

    def count(self, email: str, kind: str, since: datetime, until: datetime) -> int:
        """How many events of ``kind`` ``email`` had from ``since`` to ``until`` (inclusive)."""

    def history(self, email: str) -> list[BounceEvent]:
        """Every event of ``email``, oldest first."""


# --------------------------------------------------------------------------- shared sends

SENDER_STATES = ("sending", "done", "stopped", "paused", "lost")


@dataclass(frozen=True)
class Worker:
    """One sender of a shared edition, as the state records it.

    ``state``: ``sending`` while it runs, then ``done`` (nothing left for it), ``stopped``
    (a signal), ``paused`` (its relay failed) or ``lost`` (its lease ran out and the
    others took its recipients over). ``live``: sending and its lease runs.
    ``lease_left``: seconds until it runs out (negative: ran out that long ago).
    ``pending`` and ``in_flight``: the recipients it holds, not tried yet or under way.
    """

    id: int
    edition_id: str
    host: str
    pid: int
    started: str  # a ``timestamps`` stamp (UTC)
    state: str
    live: bool
    lease_left: float
    sent: int
    failed: int
    deferred: int
    pending: int
    in_flight: int


@dataclass(frozen=True)
class Claimed:
    """What one claim gave a sender: its next recipients, and how many it found suppressed.

    ``lost``: the sender was taken for dead (its lease ran out); it got nothing.
    """

    subscribers: tuple[Subscriber, ...]
    suppressed: int = 0
    lost: bool = False


@dataclass(frozen=True)
class Outstanding:
    """What is left of a shared edition, seen by one sender.

    ``mine``: recipients it may claim now (never tried, given back, handed over from a
    sender whose lease ran out, or deferred by a sender that started before it).
    ``others``: recipients that live senders hold, or will try again.
    """

    mine: int
    others: int

    @property
    def nothing(self) -> bool:
        """Whether nobody has anything left to do: the edition is done."""
        return not self.mine and not self.others


class Membership(Protocol):
    """A sender's place in a shared edition, as its ledger sees it."""

    @property
    def worker(self) -> int:
        """The sender's number: its ledger writes change only the rows it holds."""

    def hold(self) -> None:
        """Return while the sender's lease holds (waiting while it is being renewed).

        Raises when the lease was lost, or the database did not come back in time: then
        the sender's recipients are no longer its own, and no message may go out.
        """


class Crew(_Closing, Protocol):
    """Senders sharing editions: each edition's recipient list, who holds whom, the leases.

    The first sender of an edition stores its recipient list once (``store_list``);
    every sender, on any host, ``join``s, renews its lease while it runs and claims
    the next recipients in batches (``claim``), as the ledger records them. ``in_flight``
    arguments are the ``smtp.in_flight`` policy: what becomes of a recipient whose
    message was under way when its sender's lease ran out (``resend``: tried again;
    ``hold``: left in flight for a person).
    """

    def list_size(self, edition_id: str) -> int | None:
        """How many recipients the edition's stored list has (``None``: not stored yet)."""

    def store_list(self, edition_id: str, subscribers: Iterable[Subscriber], in_flight: str) -> int:
        """Store the edition's list and its ledger rows (``pending``); return the count.

        The edition's ledger must be started.
        """

    def join(self, edition_id: str, lease_seconds: float) -> int:
        """Register this process as a sender of the edition; return its number."""

    def renew(self, worker: int, lease_seconds: float, counts: Mapping[str, int]) -> bool:
        """Extend the sender's lease and record its counts; False if it was lost."""

    def claim(self, edition_id: str, worker: int, limit: int, in_flight: str) -> Claimed:
        """Claim up to ``limit`` recipients, in list order, for the sender.

        First hands the recipients of senders whose lease ran out back to everyone;
        suppressed recipients are recorded ``failed`` (``suppressed: <reason>``) instead
        of claimed. A sender taken for dead claims nothing (``Claimed.lost``).
        """

    def tidy(self, edition_id: str, worker: int, in_flight: str) -> None:
        """Give back what the sender holds and is not working on (between its rounds)."""

    def outstanding(self, edition_id: str, worker: int, in_flight: str) -> Outstanding:
        """What is left of the edition for this sender and for the others."""

    def leave(self, worker: int, state: str, in_flight: str, counts: Mapping[str, int]) -> None:
        """End the sender's part (``state`` one of ``SENDER_STATES``), giving back what it holds."""

    def finish(self, edition_id: str, at: datetime) -> bool:
        """Mark the edition ``done`` if it is still sending; True if this call did it."""

    def workers(self, edition_id: str) -> list[Worker]:
        """Every sender that joined the edition, in the order they joined."""
