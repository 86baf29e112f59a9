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
from typing import Any

from newsletter.errors import DeliveryError
from newsletter.state.commits import GroupCommit, LedgerStatements, LedgerWrites, Write
from newsletter.state.reads import LedgerReads
from newsletter.state.sqlite.connection import connect

BUSY_TIMEOUT_MS = 10_000

_SQL = LedgerStatements(
    start="""
    INSERT INTO ledger_editions (edition_id, subject, started, recipients) VALUES (?, ?, ?, ?)
    ON CONFLICT (edition_id) DO UPDATE SET
        subject = CASE WHEN ledger_editions.subject = '' THEN excluded.subject
                       ELSE ledger_editions.subject END,
        recipients = COALESCE(excluded.recipients, ledger_editions.recipients)
""",
    claim="""
    INSERT INTO ledger_recipients (edition_id, email, message_id, state, attempts, reply, updated)
    VALUES (?, ?, ?, 'in_flight', 1, '', ?)
    ON CONFLICT (edition_id, email) DO UPDATE SET
        message_id = excluded.message_id,
        state = 'in_flight',
        attempts = ledger_recipients.attempts + 1,
        reply = '',
        updated = excluded.updated
""",
    release="""
    UPDATE ledger_recipients
    SET state = 'pending', attempts = MAX(attempts - 1, 0), updated = ?
    WHERE edition_id = ? AND email = ? AND state = 'in_flight'
""",
    finish="""
    INSERT INTO ledger_recipients (edition_id, email, state, reply, updated)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (edition_id, email) DO UPDATE SET
        state = excluded.state,
        reply = excluded.reply,
        updated = excluded.updated
""",
)


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


class SqliteLedger(LedgerWrites, LedgerReads):
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
        commits = GroupCommit(
            self._transaction,
            explain=lambda err: self._error("record deliveries", err),
            expected=sqlite3.Error,
            closed=lambda: DeliveryError(f"{self.path}: the delivery ledger is already closed"),
        )
        super().__init__(_SQL, commits)

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

    # ------------------------------------------------------------------ reads

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read after the queued writes are committed; every row."""
        self.flush()
        with self._db, self._guard("read"):
            return list(self._conn.execute(sql, params).fetchall())
