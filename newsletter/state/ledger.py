"""The delivery ledger: one SQLite row per recipient and edition, written around each send.

States: ``pending`` (known, not tried), ``in_flight`` (claimed: the SMTP transaction may
be under way), ``sent`` (the server accepted it), ``failed`` (a 5xx: final), ``deferred``
(a 4xx, a timeout or a dropped connection: tried again on the next run).

The guarantee, which holds at a crash or ``kill -9`` at any instant:

- a ``claim`` is committed (``synchronous=FULL``) *before* the message data goes out:
  a sender queues it (``claim(..., wait=False)``) and waits for it (``settle``) before
  the data, so every message the server accepted is recorded ``sent`` or ``in_flight``;
- ``finish`` is written *after* the server's reply, so nobody recorded ``sent`` was not
  accepted.

Writes are committed by a background thread within ``COMMIT_INTERVAL`` of being queued,
many per commit (group commit); a thread that needs a write durable sooner (``settle``,
``flush``) commits at once. So a sender waits for the disk only when a claim is not
durable yet by the time the message data is due; a sender that claims a few recipients
ahead rarely waits. A ``finish`` lost at a crash (queued in the last moments) leaves that
recipient ``in_flight``, which is the honest state: the ledger cannot tell "accepted in
the instant before the kill" from "not sent". ``release`` undoes a claim whose message
was not tried after all (the recipient is ``pending`` again).

What a resumed send does with ``in_flight`` recipients is ``smtp.in_flight``:

- ``resend`` (default, at-least-once): they are sent again. A recipient gets the message
  twice only if the server accepted it just before the crash; the copy carries the same
  Message-ID, which many receivers use to drop duplicates.
- ``hold`` (at-most-once): they are left out and listed by ``failures`` (and so by
  ``newsletter status``) for a person to decide; ``finish`` records the decision.

``start`` also records how many recipients a send sets out to reach, so a summary can
count those not attempted yet (an interrupted send adds up).

The tables live in the shared state file and are all prefixed ``ledger_``. The file is
in WAL mode, so ``status`` can read while a send writes. A ``SqliteLedger`` may be shared
by threads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from newsletter.clock import now_utc
from newsletter.errors import DeliveryError
from newsletter.state.api import FINAL_STATES, MAX_REPLY, STATES, EditionStatus, normalize_email
from newsletter.state.connection import connect
from newsletter.state.timestamps import from_stamp, to_stamp

BUSY_TIMEOUT_MS = 10_000
QUEUE_LIMIT = 1024  # a writer that finds this many writes queued commits them itself
COMMIT_INTERVAL = 0.001  # seconds the committer gathers writes before committing them

_CLAIM = """
    INSERT INTO ledger_recipients (edition_id, email, message_id, state, attempts, reply, updated)
    VALUES (?, ?, ?, 'in_flight', 1, '', ?)
    ON CONFLICT (edition_id, email) DO UPDATE SET
        message_id = excluded.message_id,
        state = 'in_flight',
        attempts = ledger_recipients.attempts + 1,
        reply = '',
        updated = excluded.updated
"""

_FINISH = """
    INSERT INTO ledger_recipients (edition_id, email, state, reply, updated)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (edition_id, email) DO UPDATE SET
        state = excluded.state,
        reply = excluded.reply,
        updated = excluded.updated
"""

_RELEASE = """
    UPDATE ledger_recipients
    SET state = 'pending', attempts = MAX(attempts - 1, 0), updated = ?
    WHERE edition_id = ? AND email = ? AND state = 'in_flight'
"""

_START = """
    INSERT INTO ledger_editions (edition_id, subject, started, recipients) VALUES (?, ?, ?, ?)
    ON CONFLICT (edition_id) DO UPDATE SET
        subject = CASE WHEN ledger_editions.subject = '' THEN excluded.subject
                       ELSE ledger_editions.subject END,
        recipients = COALESCE(excluded.recipients, ledger_editions.recipients)
"""


_Params = tuple[str | int | None, ...]


def _now() -> str:
    return to_stamp(now_utc())


def _empty_counts() -> dict[str, int]:
    return dict.fromkeys(STATES, 0)


def _error(path: Path, action: str, err: BaseException) -> DeliveryError:
    """Describe a SQLite error: the file, what failed and a next step."""
    hint = (
        "another newsletter process may be using it; wait for it to finish"
        if "locked" in str(err) or "busy" in str(err)
        else "check free disk space and the permissions of the state folder"
    )
    return DeliveryError(f"{path}: the delivery ledger failed to {action}: {err}; {hint}")


class _OpenErrors:
    """How the ledger explains a state file it cannot open (``connection.Errors``)."""

    def folder(self, path: Path, err: OSError) -> DeliveryError:
        """The folder of the file cannot be made."""
        return DeliveryError(
            f"{path.parent}: cannot create the state folder ({err.strerror}); "
            "check output.state_dir in the config and its permissions"
        )

    def database(self, path: Path, action: str, err: BaseException) -> DeliveryError:
        """SQLite failed to open the file or to set it up."""
        return _error(path, "open", err)

    def journal(self, path: Path, mode: str) -> DeliveryError:
        """The file cannot be put in WAL mode, which the crash guarantee needs."""
        return DeliveryError(
            f"{path}: SQLite cannot use write-ahead logging here (journal mode "
            f"{mode!r}); put output.state_dir on a local disk"
        )


class SqliteLedger:
    """The per-recipient delivery record of every edition, in the SQLite state file."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # guards the fields below; commits done
        self._work = threading.Condition(lock)  # the committer's: writes are waiting
        self._queue: list[tuple[str, _Params]] = []
        self._queued = 0  # writes ever queued
        self._durable = 0  # writes ever committed
        self._committing = False
        self._committer: threading.Thread | None = None
        self._closing = False  # the committer stops; writes are refused from here on
        self._broken: DeliveryError | None = None
        self._closed = False
        self._db = threading.RLock()  # guards the connection
        # Every commit is on disk when it returns (synchronous = FULL): the crash guarantee.
        self._conn = connect(
            self.path,
            threads=True,
            durable=True,
            busy_timeout=BUSY_TIMEOUT_MS / 1000,
            errors=_OpenErrors(),
        )

    def _error(self, action: str, err: BaseException) -> DeliveryError:
        """Describe a SQLite error: the file, what failed and a next step."""
        return _error(self.path, action, err)

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn SQLite errors into a ``DeliveryError`` that names the file and a next step."""
        try:
            yield
        except sqlite3.Error as err:
            raise self._error(action, err) from err

    def _transaction(self, writes: list[tuple[str, _Params]]) -> None:
        """Apply ``writes`` in one durable transaction."""
        with self._db:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in writes:
                    self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Commit anything pending, stop the committer and close the file."""
        if self._closed:
            return
        try:
            with self._cond:
                try:
                    if self._broken is None:
                        self._commit_through(self._queued)
                finally:
                    self._closing = True
                    self._work.notify_all()
            if self._committer is not None:
                self._committer.join()
        finally:
            with self._db:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ writes

    def _write(self, sql: str, params: _Params, *, durable: bool) -> int:
        """Queue a write and return its ticket; with ``durable``, return once it is committed.

        Queued writes are committed by the background committer; threads that need a
        commit at once share one (group commit): while one commit runs, the others
        queue, and the next commit takes them all.
        """
        with self._cond:
            if self._broken is not None:
                raise self._broken
            if self._closing:
                raise DeliveryError(f"{self.path}: the delivery ledger is already closed")
            self._queue.append((sql, params))
            self._queued += 1
            ticket = self._queued
            if durable or len(self._queue) >= QUEUE_LIMIT:
                self._commit_through(ticket)
            elif len(self._queue) == 1:
                self._wake_committer()
            return ticket

    def _wake_committer(self) -> None:
        """Start the background committer, or tell it there is work (holding ``_cond``)."""
        if self._committer is None:
            self._committer = threading.Thread(
                target=self._commit_loop, name="ledger-commit", daemon=True
            )
            self._committer.start()
        self._work.notify()

    def _commit_loop(self) -> None:
        """Commit queued writes as they come, until the ledger closes or breaks."""
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
                self._transaction(batch)
            except BaseException as err:  # the batch is lost, so no later write may land
                failure = err
            self._cond.acquire()
            self._committing = False
            self._cond.notify_all()
            if failure is not None:
                self._broken = self._error("record deliveries", failure)
                self._work.notify_all()  # the committer stops too
                if isinstance(failure, sqlite3.Error):
                    raise self._broken from failure
                raise failure
            self._durable = upto

    def start(self, edition_id: str, subject: str, recipients: int | None = None) -> None:
        """Record that an edition's delivery began (idempotent; fills in a blank subject).

        ``recipients``: how many this send sets out to reach, those already in the ledger
        included; replaces an earlier count (``None`` keeps it).
        """
        self._write(_START, (edition_id, subject, _now(), recipients), durable=True)

    def claim(self, edition_id: str, email: str, message_id: str, *, wait: bool = True) -> int:
        """Mark a recipient ``in_flight``; return the write's ticket for ``settle``.

        With ``wait`` (the default) the claim is durable when this returns. Without it,
        the caller must ``settle`` the ticket before the message goes out.
        """
        params = (edition_id, normalize_email(email), message_id, _now())
        return self._write(_CLAIM, params, durable=wait)

    def settle(self, ticket: int) -> None:
        """Return once the write with this ticket (and every one before it) is committed."""
        with self._cond:
            if self._durable < ticket:
                self._commit_through(ticket)
            elif self._broken is not None:
                raise self._broken

    def release(self, edition_id: str, email: str) -> None:
        """Undo a claim whose message was not tried after all: the recipient is ``pending``."""
        self._write(_RELEASE, (_now(), edition_id, normalize_email(email)), durable=False)

    def finish(self, edition_id: str, email: str, state: str, reply: str) -> int:
        """Record the outcome (``sent``, ``failed`` or ``deferred``) and the server's reply.

        The write is committed in the background within moments (or by ``settle`` of the
        returned ticket, or ``flush``).
        """
        if state not in FINAL_STATES:
            raise ValueError(f"finish() takes one of {', '.join(FINAL_STATES)}, not {state!r}")
        params = (edition_id, normalize_email(email), state, reply[:MAX_REPLY], _now())
        return self._write(_FINISH, params, durable=False)

    def flush(self) -> None:
        """Commit every queued write."""
        with self._cond:
            if self._broken is not None:
                raise self._broken
            self._commit_through(self._queued)

    # ------------------------------------------------------------------ reads

    def states(self, edition_id: str) -> dict[str, str]:
        """Map every known recipient (casefolded address) of an edition to its state."""
        self.flush()
        with self._db, self._guard("read"):
            rows = self._conn.execute(
                "SELECT email, state FROM ledger_recipients WHERE edition_id = ?", (edition_id,)
            )
            return dict(rows)

    def summary(self, edition_id: str) -> dict[str, int]:
        """Count an edition's recipients per state (every state present, zero if none)."""
        self.flush()
        with self._db, self._guard("read"):
            counts = _empty_counts()
            rows = self._conn.execute(
                "SELECT state, COUNT(*) FROM ledger_recipients WHERE edition_id = ? GROUP BY state",
                (edition_id,),
            )
            counts.update(dict(rows))
            return counts

    def failures(self, edition_id: str) -> list[tuple[str, str, str]]:
        """List ``(email, state, reply)`` of the failed, the deferred and the in-flight."""
        self.flush()
        with self._db, self._guard("read"):
            rows = self._conn.execute(
                "SELECT email, state, reply FROM ledger_recipients "
                "WHERE edition_id = ? AND state IN ('failed', 'deferred', 'in_flight') "
                "ORDER BY state, email",
                (edition_id,),
            )
            return [(str(e), str(s), str(r)) for e, s, r in rows]

    def editions(self) -> list[EditionStatus]:
        """Every edition in the ledger, newest first, with its counts per state."""
        self.flush()
        with self._db, self._guard("read"):
            heads = self._conn.execute(
                "SELECT edition_id, subject, started, recipients FROM ledger_editions "
                "ORDER BY started DESC, edition_id"
            ).fetchall()
            per_edition: dict[str, dict[str, int]] = {}
            for edition_id, state, count in self._conn.execute(
                "SELECT edition_id, state, COUNT(*) FROM ledger_recipients "
                "GROUP BY edition_id, state"
            ):
                per_edition.setdefault(edition_id, _empty_counts())[state] = count
        return [
            EditionStatus(
                id=edition_id,
                subject=subject,
                started=from_stamp(started),
                counts=per_edition.get(edition_id, _empty_counts()),
                recipients=recipients,
            )
            for edition_id, subject, started, recipients in heads
        ]

    def edition(self, edition_id: str) -> EditionStatus | None:
        """One edition's status (``None`` if the ledger has never seen it)."""
        counts = self.summary(edition_id)
        with self._db, self._guard("read"):
            head = self._conn.execute(
                "SELECT subject, started, recipients FROM ledger_editions WHERE edition_id = ?",
                (edition_id,),
            ).fetchone()
        if head is None:
            return None
        subject, started, recipients = head
        return EditionStatus(edition_id, subject, from_stamp(started), counts, recipients)
