"""Live delivery: a pool of reused SMTP connections, one shared rate limit, retries, a ledger.

``send_messages`` hands finished messages to a relay. How each reply is treated:

- 2xx after the data: ``sent`` (the reply is stored).
- 5xx to RCPT or DATA: ``failed`` for that recipient, with the reply; final, never retried
  (unless the relay turns out to refuse everyone: then ``deferred``, see below).
- 4xx to RCPT or DATA: retried later with exponential backoff and jitter, up to
  ``smtp.retries`` times, then ``deferred`` (tried again by the next run).
- 421, timeouts, dropped connections, 4xx to MAIL: the connection is dropped, the
  worker backs off and reconnects, the message is retried like a 4xx.
- A run-level problem pauses the run instead of failing anyone: the server refuses the
  sender (5xx to MAIL: no recipient is at fault), the login is refused (tried once per
  run: relays lock accounts out), the TLS certificate fails, STARTTLS is not offered,
  nothing listens at host:port (at once, with one message), the server cannot be reached
  after ``smtp.retries`` tries, ``BREAKER_THRESHOLD`` connection-level failures happen in
  a row, or the relay seems to refuse everyone (see ``run.RefusalWindow``: judged by what
  the refusals blame and their share of the last outcomes, so unknown users only fail
  one by one). Nothing left is marked failed; running the send again resumes.

One message per transaction (see ``transaction``). The password is never logged and is
scrubbed from every reply, reason and error this package produces.

The ledger is written around every transaction (see ``newsletter.state.api.Ledger`` for
the crash guarantee and the ``smtp.in_flight`` policy): each recipient is claimed before
the message data goes out. Under ``resend`` each connection claims the next
``CLAIM_AHEAD`` messages ahead, so their claims are on disk by the time they are sent
(at a crash they are simply sent on the next run; at a stop they are handed back);
under ``hold`` each is claimed just before its transaction. When the connection drops
after the whole message was sent but before the server's answer, the outcome is unknown:
under ``resend`` the message is retried, under ``hold`` it stays ``in_flight`` (held).

A send under way honours the suppression list: just before a recipient is claimed for
its transaction, ``suppressed(email)`` (a ``state.watch.SuppressionWatch``, at most
moments old) is asked; a recipient suppressed since the send began is not mailed (a
claim made ahead is replaced) and is recorded ``failed`` with the reply ``suppressed:
<reason>``.

``progress(email, state)`` is called once per recipient with ``sent``, ``failed``,
``deferred``, ``skipped``, ``held`` or ``suppressed``. It runs on the worker threads, one
call at a time (calls are serialized by a lock), so it needs no locking of its own; it
must return quickly and must not call back into this package. An exception it raises stops the run
and is re-raised by ``send_messages``.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from newsletter.config.settings import SmtpSettings
from newsletter.delivery.smtp.backlog import Backlog, Item
from newsletter.delivery.smtp.connection import ConnectFailed, Connection, Fatal, Relay
from newsletter.delivery.smtp.outcome import Kind, Result, SendSummary
from newsletter.delivery.smtp.ratelimit import RateLimiter
from newsletter.delivery.smtp.replies import Scrubber
from newsletter.delivery.smtp.run import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    BREAKER_THRESHOLD,
    Progress,
    Run,
    Suppressed,
)
from newsletter.delivery.smtp.settings import (
    check_envelope_from,
    check_smtp_settings,
    tls_context,
    usable_address,
)
from newsletter.delivery.smtp.transaction import UNUSABLE_ADDRESS, transact, utf8_problem
from newsletter.models import OutgoingMessage
from newsletter.redaction import mask_address
from newsletter.state.api import Ledger
from newsletter.state.watch import suppressed_reply

log = logging.getLogger(__name__)

SLEEP_SLICE = 0.1  # waits are cut into slices this long to notice a stop quickly
CLAIM_AHEAD = 4  # under in_flight = "resend", messages each connection claims ahead
UNRECORDED = 3  # accepted messages per connection that may lack their "sent" record


# --------------------------------------------------------------------------- workers


class _Worker:
    """One thread: one connection, taking messages until none are left or the run halts."""

    def __init__(self, run: Run, backlog: Backlog, limiter: RateLimiter) -> None:
        self._run = run
        self._relay = run.relay
        self._backlog = backlog
        self._limiter = limiter
        self._conn = Connection(run.relay, run.connected)
        self._trouble = 0  # this worker's connection-level failures in a row
        self._ahead: collections.deque[Item] = collections.deque()  # claimed, not tried
        self._lookahead = CLAIM_AHEAD if run.relay.smtp.in_flight == "resend" else 0
        # The ledger tickets of this connection's last "sent" records: the oldest is durable
        # before the next message data goes out, so at most UNRECORDED accepted messages
        # per connection lack their record at any instant.
        self._sent: collections.deque[int] = collections.deque(maxlen=UNRECORDED)

    def __call__(self) -> None:
        try:
            while not self._run.halted():
                item = self._next()
                if item is None:
                    break
                self._attempt(item)
            self._release_ahead()
        except Exception as err:  # re-raised by send_messages in the calling thread
            # Perhaps in the middle of a transaction (the ledger failed before the data):
            # no QUIT, which the server would read as message data and wait for the end.
            self._conn.discard()
            self._run.fail(err)
        finally:
            self._conn.close()

    def _release_ahead(self) -> None:
        """Hand back the claims made ahead for messages this run will not try (it halted)."""
        while self._ahead:
            self._leave(self._ahead.popleft())

    def _claim_ahead(self) -> None:
        """Claim the next few fresh messages now, so their claims are durable when due."""
        run = self._run
        want = self._lookahead - len(self._ahead)
        if want <= 0:
            return
        for item in self._backlog.take_fresh(want):
            if usable_address(item.message.recipient):
                message = item.message
                item.ticket = run.ledger.claim(
                    run.edition_id, message.recipient, message.message_id, wait=False
                )
            self._ahead.append(item)

    def _next(self) -> Item | None:
        if self._ahead:
            return self._ahead.popleft()
        while not self._run.halted():
            item, wait = self._backlog.take()
            if item is not None:
                return item
            if not wait or not self._wait_until(self._run.clock() + wait):
                return None
        return None

    def _wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` in short slices; ``False`` if the run halted meanwhile."""
        run = self._run
        while not run.halted():
            left = deadline - run.clock()
            if left <= 0:
                return True
            run.sleep(min(left, SLEEP_SLICE))
        return False

    def _attempt(self, item: Item) -> None:
        run, message = self._run, item.message
        if not usable_address(message.recipient):
            self._record(item, UNUSABLE_ADDRESS, claimed=False)
            return
        if not self._wait_until(self._limiter.reserve()):
            self._leave(item)
            return
        try:
            client = self._conn.client()
        except Fatal as err:
            run.pause(str(err))
            self._leave(item)
            return
        except ConnectFailed as err:
            self._transient(item, str(err), connection=True, recorded=False)
            return
        problem = utf8_problem(client, message, self._relay)
        if problem is not None:
            self._record(item, problem, claimed=False)
            return
        if self._suppressed(item):
            return
        ticket = item.ticket or run.ledger.claim(
            run.edition_id, message.recipient, message.message_id, wait=False
        )
        item.ticket = 0  # a retry claims again
        self._claim_ahead()
        self._conn.used_once()
        if len(self._sent) == UNRECORDED:
            ticket = max(ticket, self._sent[0])
        result = transact(client, message, ticket, self._relay, run.ledger.settle)
        self._record(item, result, claimed=True)

    def _suppressed(self, item: Item) -> bool:
        """Leave out a recipient suppressed since the send began: recorded, not mailed."""
        run, email = self._run, item.message.recipient
        reason = run.suppressed(email) if run.suppressed is not None else None
        if reason is None:
            return False
        item.ticket = 0  # a claim made ahead is replaced by the outcome
        run.ledger.finish(run.edition_id, email, "failed", suppressed_reply(reason))
        log.info("%s: suppressed (%s) since the send began; not sent", mask_address(email), reason)
        run.outcome(email, "suppressed")
        return True

    def _record(self, item: Item, result: Result, *, claimed: bool) -> None:
        run, email = self._run, item.message.recipient
        kind, reply = result.kind, result.reply
        if kind is Kind.SENT:
            self._sent.append(run.ledger.finish(run.edition_id, email, "sent", reply))
            self._trouble = 0
            run.went_well(email)
            run.outcome(email, "sent")
        elif kind is Kind.FAILED and claimed:
            run.refused(email, reply)  # the server's refusal: judged by the refusal breaker
        elif kind is Kind.FAILED:
            run.ledger.finish(run.edition_id, email, "failed", reply)
            run.outcome(email, "failed")
        elif kind is Kind.FATAL:
            run.pause(reply)
            if claimed:
                run.ledger.finish(run.edition_id, email, "deferred", reply)
                run.outcome(email, "deferred")
            else:
                self._leave(item)
        elif kind is Kind.UNKNOWN and self._relay.smtp.in_flight == "hold":
            self._conn.discard()
            log.warning("%s: %s; held as in flight", mask_address(email), reply)
            run.outcome(email, "held")
            run.connection_failed(reply)
        else:
            run.ledger.finish(run.edition_id, email, "deferred", reply)
            connection = kind is not Kind.RETRY
            if connection:
                self._conn.discard()
            self._transient(item, reply, connection=connection, recorded=True)

    def _transient(self, item: Item, reply: str, *, connection: bool, recorded: bool) -> None:
        """Schedule another try after a backoff, or give up on it for this run."""
        run = self._run
        item.failures += 1
        item.reply, item.recorded, item.ticket = reply, recorded, 0
        if connection:
            self._trouble += 1
            run.connection_failed(reply)
        if item.failures > self._relay.smtp.retries:
            _give_up(run, item)
            if connection and not run.connected.is_set():
                run.pause(
                    f"cannot reach {self._relay.where} after {item.failures} tries ({reply}); "
                    "check smtp.host, smtp.port and smtp.security, and that the server is up; "
                    "run send again to resume"
                )
            return
        log.debug("%s: %s; retry %d", mask_address(item.message.recipient), reply, item.failures)
        self._backlog.retry(item, run.clock() + run.backoff(item.failures))
        if connection:
            self._wait_until(run.clock() + run.backoff(self._trouble))

    def _leave(self, item: Item) -> None:
        """Let go of an untried message at a halt; one that failed before is deferred."""
        run = self._run
        if item.failures:
            _give_up(run, item)
        elif item.ticket:
            run.ledger.release(run.edition_id, item.message.recipient)
            item.ticket = 0


def _give_up(run: Run, item: Item) -> None:
    """Record a message as deferred for this run (it is tried again by the next one)."""
    if not item.recorded:
        run.ledger.finish(run.edition_id, item.message.recipient, "deferred", item.reply)
        item.recorded = True
    run.outcome(item.message.recipient, "deferred")


# --------------------------------------------------------------------------- entry point


def send_messages(
    messages: Iterable[OutgoingMessage],
    smtp: SmtpSettings,
    ledger: Ledger,
    edition_id: str,
    *,
    envelope_from: str,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    suppressed: Suppressed | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    backoff_base: float = BACKOFF_BASE,
    backoff_cap: float = BACKOFF_CAP,
    breaker: int = BREAKER_THRESHOLD,
    known: Mapping[str, str] | None = None,
) -> SendSummary:
    """Send every message not yet done for this edition through ``smtp`` and record each outcome.

    ``messages`` is consumed lazily, once. Recipients the ledger has as ``sent`` or
    ``failed``, and repeats of an address, are skipped; ``in_flight`` ones follow
    ``smtp.in_flight``. ``known``: the recipients' states to go by instead of the
    ledger's (``{}``: every message is due, as when they were claimed for this run).
    Setting ``stop`` lets the transactions under way finish, records them and returns a
    paused summary. ``suppressed`` tells why an address may not be mailed any more
    (asked just before each claim). Raises ``ConfigError`` for unusable settings.
    """
    check_smtp_settings(smtp)
    check_envelope_from(envelope_from)
    began = clock()
    relay = Relay(
        smtp=smtp,
        envelope_from=envelope_from,
        scrub=Scrubber(smtp.username, smtp.password),
        clock=clock,
        context=tls_context(smtp),
        local_hostname=socket.getfqdn(),
    )
    run = Run(
        edition_id=edition_id,
        relay=relay,
        ledger=ledger,
        stop=stop if stop is not None else threading.Event(),
        progress=progress,
        sleep=sleep,
        clock=clock,
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        breaker=max(1, breaker),
        suppressed=suppressed,
    )
    ledger.start(edition_id, "")
    states = ledger.states(edition_id) if known is None else known
    backlog = Backlog(messages, states, run)
    limiter = RateLimiter(smtp.rate, clock)
    threads = [
        threading.Thread(target=_Worker(run, backlog, limiter), name=f"smtp-{n}", daemon=True)
        for n in range(smtp.pool)
    ]
    for thread in threads:
        thread.start()
    _join(threads, run)
    for item in backlog.drain():
        _give_up(run, item)
    ledger.flush()
    if run.error is not None:
        raise run.error
    if run.stop.is_set() and not run.pause_reason:
        run.pause_reason = "stopped before the end; run send again to resume"
    return SendSummary(
        edition_id=edition_id,
        sent=run.counts.get("sent", 0),
        failed=run.counts.get("failed", 0),
        deferred=run.counts.get("deferred", 0),
        skipped=run.counts.get("skipped", 0),
        held=run.counts.get("held", 0),
        seconds=clock() - began,
        paused=bool(run.pause_reason),
        pause_reason=run.pause_reason,
        suppressed=run.counts.get("suppressed", 0),
    )


def _join(threads: list[threading.Thread], run: Run) -> None:
    """Wait for the workers; a first Ctrl-C lets the transactions under way finish."""
    interrupted = False
    for thread in threads:
        while thread.is_alive():
            try:
                thread.join(timeout=0.5)
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                run.pause(
                    "interrupted; the transactions under way were finished and recorded; "
                    "run send again to resume"
                )
