"""The delivery ledger in the PostgreSQL state database: one row per recipient and edition.

The states, the crash guarantee and the in-flight policy: ``newsletter.state.api.Ledger``.
Here a commit is durable when it returns (``synchronous_commit = on`` on the session),
and the writes are committed in groups (``newsletter.state.commits``), each run of
one statement sent as one batch. The tables are the ``ledger_`` ones of the shared
state database. A ``PostgresLedger`` may be shared by threads; they take turns on its
one connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from types import TracebackType
from typing import Any

import psycopg

from newsletter.config.state import mask_url
from newsletter.errors import DeliveryError, NewsletterError
from newsletter.state.commits import GroupCommit, LedgerStatements, LedgerWrites, Write
from newsletter.state.postgres.connection import connect, explain
from newsletter.state.reads import LedgerReads

_SQL = LedgerStatements(
    start="""
    INSERT INTO ledger_editions (edition_id, subject, started, recipients)
    VALUES (%s, %s, %s, %s)
    ON CONFLICT (edition_id) DO UPDATE SET
        subject = CASE WHEN ledger_editions.subject = '' THEN excluded.subject
                       ELSE ledger_editions.subject END,
        recipients = COALESCE(excluded.recipients, ledger_editions.recipients)
""",
    claim="""
    INSERT INTO ledger_recipients (edition_id, email, message_id, state, attempts, reply, updated)
    VALUES (%s, %s, %s, 'in_flight', 1, '', %s)
    ON CONFLICT (edition_id, email) DO UPDATE SET
        message_id = excluded.message_id,
        state = 'in_flight',
        attempts = ledger_recipients.attempts + 1,
        reply = '',
        updated = excluded.updated
""",
    release="""
    UPDATE ledger_recipients
    SET state = 'pending', attempts = GREATEST(attempts - 1, 0), updated = %s
    WHERE edition_id = %s AND email = %s AND state = 'in_flight'
""",
    finish="""
    INSERT INTO ledger_recipients (edition_id, email, state, reply, updated)
    VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (edition_id, email) DO UPDATE SET
        state = excluded.state,
        reply = excluded.reply,
        updated = excluded.updated
""",
)

HINT = "check that the PostgreSQL server is running and reachable"


def _error(url: str, action: str, err: BaseException) -> DeliveryError:
    """Describe a database error: the (masked) URL, what failed and a next step."""
    return DeliveryError(
        explain(url, f"the delivery ledger failed to {action}: {str(err).strip()}; {HINT}")
    )


class _OpenErrors:
    """How the ledger explains a database it cannot open (``connection.Errors``)."""

    def database(self, url: str, action: str, err: BaseException) -> NewsletterError:
        """PostgreSQL failed to connect to the database or to set it up."""
        return _error(url, "open", err)


class PostgresLedger(LedgerWrites, LedgerReads):
    """The per-recipient delivery record of every edition, in the PostgreSQL state database."""

    _mark = "%s"

    def __init__(self, url: str) -> None:
        self._url = url
        self._closed = False
        self._db = threading.RLock()  # guards the connection
        self._conn = connect(url, errors=_OpenErrors())
        commits = GroupCommit(
            self._transaction,
            explain=lambda err: _error(self._url, "record deliveries", err),
            expected=psycopg.Error,
            closed=lambda: DeliveryError(
                f"{mask_url(self._url)}: the delivery ledger is already closed"
            ),
        )
        super().__init__(_SQL, commits)

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn database errors into a ``DeliveryError`` that names the URL and a next step."""
        try:
            yield
        except psycopg.Error as err:
            raise _error(self._url, action, err) from err

    def _transaction(self, writes: Sequence[Write]) -> None:
        """Apply ``writes`` in one durable transaction, each run of one statement as a batch."""
        with self._db, self._conn.transaction(), self._conn.cursor() as cursor:
            for sql, run in groupby(writes, key=lambda write: write[0]):
                cursor.executemany(sql, [params for _, params in run])

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Commit anything pending, stop the committer and close the connection."""
        if self._closed:
            return
        try:
            self._commits.close()
        finally:
            with self._db:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> PostgresLedger:
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
