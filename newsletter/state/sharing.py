"""What senders sharing one edition ask of the state (PostgreSQL only): the ``Crew``.

Protocols and records, as in ``state.api``; ``state.postgres.crew`` implements them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from newsletter.models import Subscriber
from newsletter.state.api import Closing

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


class Crew(Closing, Protocol):
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
