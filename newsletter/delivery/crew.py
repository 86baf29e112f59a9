"""One sender's part in an edition that several share through the state (PostgreSQL).

Any number of senders, on any hosts, send one edition together: the first stored its
recipient list in the database (``newsletter.state.postgres.crew``); each one joins,
holds a lease (``lease``) and works in *rounds*. A round hands the SMTP pool
(``smtp.pool.send_messages``) the recipients it claims batch by batch as the pool asks
for them, in list order, until nothing is left to claim; every message still goes
through the ledger's claim before its data (the sender's ledger writes only rows it
holds). Between rounds the sender gives back what it holds and is not working on, then
looks at what is left:

- something it may claim (never tried, handed over from a sender whose lease ran out,
  deferred by a sender that started before it): another round;
- only what live senders hold: it waits, and looks again (a sender that dies loses its
  lease, and its recipients become claimable); soon at first, as the others are
  most often finishing their last batches, then less and less often;
- nothing: the edition is done; whoever sees it first marks it so.

A stop or a pause ends its part (what it holds goes back to the others). A sender whose
lease was lost (it could not renew in time, say while the database was away) joins
again under a new number; what it held was taken over. Only when the database does
not come back within ``[state] reconnect_seconds`` does the sender give up, saying so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field

from newsletter.clock import now_utc
from newsletter.config.settings import SmtpSettings
from newsletter.config.state import PostgresUrl
from newsletter.delivery.lease import Lease, LeaseLost
from newsletter.delivery.smtp.outcome import SendSummary
from newsletter.delivery.smtp.pool import send_messages
from newsletter.delivery.smtp.run import Suppressed
from newsletter.errors import NewsletterError, StateUnavailable
from newsletter.models import OutgoingMessage, Subscriber
from newsletter.state.api import Ledger
from newsletter.state.openers import open_crew, open_ledger
from newsletter.state.sharing import Crew

log = logging.getLogger(__name__)

BATCH_PER_CONNECTION = 4  # recipients claimed at once, per connection of the pool
MIN_BATCH = 8
LONGEST_LOOK_S = 2.0  # a sender with nothing to do looks again at least this often
SHORT_LOOK_S = 0.05  # after a round that could claim nothing (rows locked for a moment)

Progress = Callable[[str, str], None]
Unusable = Callable[[Subscriber, str], None]
# Makes the messages of the subscribers given, calling back for an address it cannot use.
MessageStream = Callable[[Iterable[Subscriber], Unusable], Generator[OutgoingMessage, None, None]]


@dataclass(frozen=True)
class Joined:
    """A sender's number in a shared edition, and when (``time.monotonic``) it asked to join."""

    worker: int
    asked: float


def join(place: PostgresUrl, edition_id: str) -> Joined:
    """Register this process as a sender of the edition."""
    asked = time.monotonic()
    with open_crew(place) as crew:
        return Joined(crew.join(edition_id, place.sharing.lease_seconds), asked)


@dataclass
class _Tally:
    """The sender's count per final state, over all its rounds; hands each on to ``then``."""

    then: Progress | None
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, email: str, state: str) -> None:
        with self.lock:
            self.counts[state] = self.counts.get(state, 0) + 1
            if self.then is not None:
                self.then(email, state)

    def note(self, state: str, count: int) -> None:
        """Count recipients that never reached the pool (suppressed when claimed)."""
        if count:
            with self.lock:
                self.counts[state] = self.counts.get(state, 0) + count

    def snapshot(self) -> Mapping[str, int]:
        with self.lock:
            return dict(self.counts)


@dataclass(frozen=True)
class SharedSend:
    """What a sender of a shared edition needs: where, which edition, how to make and send."""

    place: PostgresUrl
    edition_id: str
    messages: MessageStream
    smtp: SmtpSettings
    envelope_from: str
    progress: Progress | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    suppressed: Suppressed | None = None  # asked again just before each message


def send_shared(job: SharedSend, joined: Joined) -> SendSummary:
    """Send this sender's part of the edition; return what it did (over all its rounds)."""
    tally = _Tally(job.progress)
    began = time.monotonic()
    rounds: list[SendSummary] = []
    while True:
        lease = _lease(job, joined, tally)
        try:
            with open_ledger(job.place, lease) as ledger, open_crew(job.place) as crew:
                _Sender(job, crew, ledger, lease.worker, tally, rounds).run()
            break
        except LeaseLost as lost:
            log.warning("%s; joining the edition again", lost)
            joined = join(job.place, job.edition_id)
        finally:
            lease.close()
    return _summary(job.edition_id, rounds, tally, time.monotonic() - began)


def _lease(job: SharedSend, joined: Joined, tally: _Tally) -> Lease:
    crew = open_crew(job.place)
    seconds = job.place.sharing.lease_seconds
    return Lease(crew, joined.worker, seconds, joined.asked, tally.snapshot)


class _Claims:
    """The recipients one round claims, a batch at a time, as the message stream asks."""

    def __init__(self, sender: _Sender) -> None:
        self._sender = sender
        self.claimed = 0

    def __iter__(self) -> Iterator[Subscriber]:
        sender = self._sender
        while True:
            got = sender.crew.claim(sender.edition_id, sender.worker, sender.batch, sender.policy)
            if got.lost:
                raise LeaseLost(
                    f"sender {sender.worker}: its lease ran out ([state] lease_seconds) and the "
                    "other senders took its recipients over"
                )
            self.claimed += len(got.subscribers)
            sender.tally.note("suppressed", got.suppressed)
            if not got.subscribers and not got.suppressed:
                return
            yield from got.subscribers


class _Sender:
    """One membership of the edition: rounds until nothing is left, a stop or a pause."""

    def __init__(
        self,
        job: SharedSend,
        crew: Crew,
        ledger: Ledger,
        worker: int,
        tally: _Tally,
        rounds: list[SendSummary],
    ) -> None:
        self.job, self.crew, self.ledger, self.worker = job, crew, ledger, worker
        self.tally, self.rounds = tally, rounds
        self.edition_id = job.edition_id
        self.policy = job.smtp.in_flight
        self.batch = max(MIN_BATCH, BATCH_PER_CONNECTION * job.smtp.pool)
        self.look = min(LONGEST_LOOK_S, max(0.2, job.place.sharing.lease_seconds / 4))

    def run(self) -> None:
        """Work until the edition is done, or this sender stops or pauses; then leave."""
        outcome: str | None = "paused"
        try:
            outcome = self._work()
        except LeaseLost:
            outcome = None  # it was taken for dead: nothing of it is left to give back
            raise
        except StateUnavailable:
            outcome = None  # the database is gone: its lease runs out there on its own
            raise
        finally:
            if outcome is not None:
                self._leave(outcome)

    def _work(self) -> str:
        """Rounds, waits and the end: how this sender's part ended (``SENDER_STATES``)."""
        stop = self.job.stop
        wait = SHORT_LOOK_S  # while only live senders hold what is left; doubled each time
        while True:
            left = self.crew.outstanding(self.edition_id, self.worker, self.policy)
            if left.nothing:
                if self.crew.finish(self.edition_id, now_utc()):
                    log.info("edition %s: done", self.edition_id)
                return "done"
            if left.mine:
                summary, claimed = self._round()
                if summary.paused:
                    return "stopped" if stop.is_set() else "paused"
                pause = 0.0 if claimed else SHORT_LOOK_S  # rows locked by a claim just now
                wait = SHORT_LOOK_S
            else:  # only what live senders hold: look again soon, then less often
                pause, wait = wait, min(wait * 2, self.look)
            if pause and stop.wait(pause):
                self.rounds.append(_stopped(self.edition_id))
                return "stopped"

    def _round(self) -> tuple[SendSummary, int]:
        """Give back what this sender holds idle, then send what it can claim."""
        self.ledger.flush()  # what it recorded lands before it gives anything back
        self.crew.tidy(self.edition_id, self.worker, self.policy)
        claims = _Claims(self)
        job = self.job
        with closing(job.messages(claims, self._unusable)) as stream:
            summary = send_messages(
                stream,
                job.smtp,
                self.ledger,
                self.edition_id,
                envelope_from=job.envelope_from,
                progress=self.tally,
                stop=job.stop,
                suppressed=job.suppressed,
                known={},  # what it claimed is due; the claim looked at the ledger
            )
        self.rounds.append(summary)
        return summary, claims.claimed

    def _unusable(self, subscriber: Subscriber, reason: str) -> None:
        """An address no message can be made for: failed, with the reason (never tried)."""
        self.ledger.finish(self.edition_id, subscriber.email, "failed", reason)
        self.tally(subscriber.email, "failed")

    def _leave(self, outcome: str) -> None:
        try:
            self.ledger.flush()
            self.crew.leave(self.worker, outcome, self.policy, self.tally.snapshot())
        except NewsletterError as err:  # the lease runs out on its own; the others take over
            log.info("sender %d could not leave the edition cleanly: %s", self.worker, err)


def _stopped(edition_id: str) -> SendSummary:
    return SendSummary(edition_id, 0, 0, 0, 0, 0, 0.0, paused=True, pause_reason="")


def _summary(
    edition_id: str, rounds: list[SendSummary], tally: _Tally, seconds: float
) -> SendSummary:
    """This sender's summary: its counts over every round; paused as its last round was."""
    counts = tally.snapshot()
    last = rounds[-1] if rounds else None
    paused = last is not None and last.paused
    reason = (last.pause_reason if last else "") or (
        "stopped before the end; run send again to resume" if paused else ""
    )
    return SendSummary(
        edition_id=edition_id,
        sent=counts.get("sent", 0),
        failed=counts.get("failed", 0),
        deferred=counts.get("deferred", 0),
        skipped=counts.get("skipped", 0),
        held=counts.get("held", 0),
        seconds=seconds,
        paused=paused,
        pause_reason=reason,
        suppressed=counts.get("suppressed", 0),
    )
