"""The delivery ledger in the SQLite state file: one row per recipient and edition.

The states, the crash guarantee and the in-flight policy: ``newsletter.state.api.Ledger``.
Here a commit is on disk when it returns (``synchronous=FULL``), and the writes are
committed in groups (``newsletter.state.commits``). The tables live in the shared state
file and are all prefixed ``ledger_``. The file is in WAL mode, so ``status`` can read
while a send writes. A ``SqliteLedger`` may be shared by threads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from newsletter.clock import now_utc
from newsletter.errors import DeliveryError
from newsletter.state.api import FINAL_STATES, MAX_REPLY, STATES, EditionStatus, normalize_email
from newsletter.state.commits import GroupCommit, Write
from newsletter.state.sqlite.connection import connect
from newsletter.state.timestamps import from_stamp, to_stamp

BUSY_TIMEOUT_MS = 10_000

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
    INSERT INTO ledger_editions (edition_id, subject, started) VALUES (?, ?, ?)
    ON CONFLICT (edition_id) DO UPDATE SET subject = excluded.subject
    WHERE ledger_editions.subject = '' AND excluded.subject != ''
"""


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
        self._commits = GroupCommit(
            self._transaction,
            explain=lambda err: self._error("record deliveries", err),
            expected=sqlite3.Error,
            closed=lambda: DeliveryError(f"{self.path}: the delivery ledger is already closed"),
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

    def _transaction(self, writes: Sequence[Write]) -> None:
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
            self._commits.close()
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

    def start(self, edition_id: str, subject: str) -> None:
        """Record that an edition's delivery began (idempotent; fills in a blank subject)."""
        self._commits.write(_START, (edition_id, subject, _now()), durable=True)

    def claim(self, edition_id: str, email: str, message_id: str, *, wait: bool = True) -> int:
        """Mark a recipient ``in_flight``; return the write's ticket for ``settle``.

        With ``wait`` (the default) the claim is durable when this returns. Without it,
        the caller must ``settle`` the ticket before the message goes out.
        """
        params = (edition_id, normalize_email(email), message_id, _now())
        return self._commits.write(_CLAIM, params, durable=wait)

    def settle(self, ticket: int) -> None:
        """Return once the write with this ticket (and every one before it) is committed."""
        self._commits.settle(ticket)

    def release(self, edition_id: str, email: str) -> None:
        """Undo a claim whose message was not tried after all: the recipient is ``pending``."""
        self._commits.write(_RELEASE, (_now(), edition_id, normalize_email(email)), durable=False)

    def finish(self, edition_id: str, email: str, state: str, reply: str) -> int:
        """Record the outcome (``sent``, ``failed`` or ``deferred``) and the server's reply.

        The write is committed in the background within moments (or by ``settle`` of the
        returned ticket, or ``flush``).
        """
        if state not in FINAL_STATES:
            raise ValueError(f"finish() takes one of {', '.join(FINAL_STATES)}, not {state!r}")
        params = (edition_id, normalize_email(email), state, reply[:MAX_REPLY], _now())
        return self._commits.write(_FINISH, params, durable=False)

    def flush(self) -> None:
        """Commit every queued write."""
        self._commits.flush()

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
                "SELECT edition_id, subject, started FROM ledger_editions "
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
            )
            for edition_id, subject, started in heads
        ]
