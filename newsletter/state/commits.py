"""Group commit: writes queued by many threads, committed together, each with a ticket.

Writes are committed by a background thread within ``COMMIT_INTERVAL`` of being queued,
many per commit; a thread that needs a write durable sooner (``settle``, ``flush``)
commits at once, and threads that need one at the same time share it: while one commit
runs, the others queue, and the next commit takes them all. A failed commit loses its
batch, so the queue breaks: every later write raises the same error, and nothing
queued after the lost writes can land before them.

``LedgerWrites`` is the write half of every backend's ledger on top of it: each
backend gives its SQL and the transaction that applies a batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from newsletter.clock import now_utc
from newsletter.errors import DeliveryError
from newsletter.state.api import FINAL_STATES, MAX_REPLY, normalize_email
from newsletter.state.timestamps import to_stamp

QUEUE_LIMIT = 1024  # a writer that finds this many writes queued commits them itself
COMMIT_INTERVAL = 0.001  # seconds the committer gathers writes before committing them

Write = tuple[str, tuple[Any, ...]]  # a statement and its parameters


class GroupCommit:
    """A queue of writes committed in batches by ``apply``, in the order they were queued.

    ``apply`` runs one batch as one durable transaction. A failure of a kind in
    ``expected`` (the backend's database errors) becomes the ``DeliveryError`` that
    ``explain`` makes of it; any other failure is raised as it is. ``closed`` is the
    error for a write queued after ``close``.
    """

    def __init__(
        self,
        apply: Callable[[Sequence[Write]], None],
        *,
        explain: Callable[[BaseException], DeliveryError],
        expected: type[BaseException] | tuple[type[BaseException], ...],
        closed: Callable[[], DeliveryError],
    ) -> None:
        self._apply, self._explain, self._expected, self._closed = apply, explain, expected, closed
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # guards the fields below; commits done
        self._work = threading.Condition(lock)  # the committer's: writes are waiting
        self._queue: list[Write] = []
        self._queued = 0  # writes ever queued
        self._durable = 0  # writes ever committed
        self._committing = False
        self._committer: threading.Thread | None = None
        self._closing = False  # the committer stops; writes are refused from here on
        self._broken: DeliveryError | None = None

    def write(self, sql: str, params: tuple[Any, ...], *, durable: bool) -> int:
        """Queue a write and return its ticket; with ``durable``, return once it is committed."""
        with self._cond:
            if self._broken is not None:
                raise self._broken
            if self._closing:
                raise self._closed()
            self._queue.append((sql, params))
            self._queued += 1
            ticket = self._queued
            if durable or len(self._queue) >= QUEUE_LIMIT:
                self._commit_through(ticket)
            elif len(self._queue) == 1:
                self._wake_committer()
            return ticket

    def settle(self, ticket: int) -> None:
        """Return once the write with this ticket (and every one before it) is committed."""
        with self._cond:
            if self._durable < ticket:
                self._commit_through(ticket)
            elif self._broken is not None:
                raise self._broken

    def flush(self) -> None:
        """Commit every queued write."""
        with self._cond:
            if self._broken is not None:
                raise self._broken
            self._commit_through(self._queued)

    def close(self) -> None:
        """Commit anything pending (unless broken), then stop the committer."""
        with self._cond:
            try:
                if self._broken is None:
                    self._commit_through(self._queued)
            finally:
                self._closing = True
                self._work.notify_all()
        if self._committer is not None:
            self._committer.join()

    def _wake_committer(self) -> None:
        """Start the background committer, or tell it there is work (holding ``_cond``)."""
        if self._committer is None:
            self._committer = threading.Thread(
                target=self._commit_loop, name="ledger-commit", daemon=True
            )
            self._committer.start()
        self._work.notify()

    def _commit_loop(self) -> None:
        """Commit queued writes as they come, until the queue closes or breaks."""
        with self._cond:
            while True:
                while not self._queue and not self._closing and self._broken is None:
                    self._work.wait()
                if not self._closing and self._broken is None:
                    self._work.wait(COMMIT_INTERVAL)  # gather more; urgent writers commit
                if self._closing or self._broken is not None:
                    return
                try:
                    self._commit_through(self._queued)
                except BaseException:  # kept in ``_broken``; every later write raises it
                    return

    def _commit_through(self, ticket: int) -> None:
        """Commit until write number ``ticket`` is durable (called holding ``_cond``)."""
        while self._durable < ticket:
            if self._broken is not None:
                raise self._broken
            if self._committing:
                self._cond.wait()
                continue
            batch, upto = self._queue, self._queued
            self._queue, self._committing = [], True
            self._cond.release()
            failure: BaseException | None = None
            try:
                self._apply(batch)
            except BaseException as err:  # the batch is lost, so no later write may land
                failure = err
            self._cond.acquire()
            self._committing = False
            self._cond.notify_all()
            if failure is not None:
                self._broken = self._explain(failure)
                self._work.notify_all()  # the committer stops too
                if isinstance(failure, self._expected):
                    raise self._broken from failure
                raise failure
            self._durable = upto


@dataclass(frozen=True)
class LedgerStatements:
    """A backend's SQL for the ledger's writes, each taking its parameters in this order."""

    start: str  # edition_id, subject, started, recipients
    claim: str  # edition_id, email, message_id, updated
    release: str  # updated, edition_id, email
    finish: str  # edition_id, email, state, reply, updated

    def row(self, write: Write) -> tuple[Any, ...]:
        """The row a write changes: its edition's, or a recipient's of an edition."""
        sql, params = write
        if sql == self.start:
            return (params[0],)
        if sql == self.release:
            return (params[1], params[2])
        return (params[0], params[1])


def _now() -> str:
    return to_stamp(now_utc())


class LedgerWrites:
    """The write half of a ledger: each change queued as its backend's SQL on a group commit."""

    def __init__(self, statements: LedgerStatements, commits: GroupCommit) -> None:
        self._sql = statements
        self._commits = commits

    def start(self, edition_id: str, subject: str, recipients: int | None = None) -> None:
        """Record that an edition's delivery began (idempotent; fills in a blank subject).

        ``recipients``: how many this send sets out to reach, those already in the ledger
        included; replaces an earlier count (``None`` keeps it).
        """
        params = (edition_id, subject, _now(), recipients)
        self._commits.write(self._sql.start, params, durable=True)

    def claim(self, edition_id: str, email: str, message_id: str, *, wait: bool = True) -> int:
        """Mark a recipient ``in_flight``; return the write's ticket for ``settle``.

        With ``wait`` (the default) the claim is durable when this returns. Without it,
        the caller must ``settle`` the ticket before the message goes out.
        """
        params = (edition_id, normalize_email(email), message_id, _now())
        return self._commits.write(self._sql.claim, params, durable=wait)

    def settle(self, ticket: int) -> None:
        """Return once the write with this ticket (and every one before it) is committed."""
        self._commits.settle(ticket)

    def release(self, edition_id: str, email: str) -> None:
        """Undo a claim whose message was not tried after all: the recipient is ``pending``."""
        params = (_now(), edition_id, normalize_email(email))
        self._commits.write(self._sql.release, params, durable=False)

    def finish(self, edition_id: str, email: str, state: str, reply: str) -> int:
        """Record the outcome (``sent``, ``failed`` or ``deferred``) and the server's reply.

        The write is committed in the background within moments (or by ``settle`` of the
        returned ticket, or ``flush``).
        """
        if state not in FINAL_STATES:
            raise ValueError(f"finish() takes one of {', '.join(FINAL_STATES)}, not {state!r}")
        params = (edition_id, normalize_email(email), state, reply[:MAX_REPLY], _now())
        return self._commits.write(self._sql.finish, params, durable=False)

    def flush(self) -> None:
        """Commit every queued write."""
        self._commits.flush()
