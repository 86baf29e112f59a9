"""The delivery ledger in the PostgreSQL state database: one row per recipient and edition.

The states, the crash guarantee and the in-flight policy: ``newsletter.state.api.Ledger``.
Here a commit is durable when it returns (``synchronous_commit = on`` on the session),
and the writes are committed in groups (``newsletter.state.commits``): the claims
of a group are one set-based statement over arrays (``unnest``), and so are its
outcomes (more only when it names a recipient twice), the begin, the statements and
the commit sent in one pipeline, so a group costs the server a few statements, one
round trip and one flush to disk. The tables are the ``ledger_`` ones of the shared
state database. A ``PostgresLedger`` may be shared by threads; they take turns on its
one connection. When the server goes away, a batch is committed again on a new
session (``resilient``): every write here may land twice (a claim then counts one
attempt more).

The ledger of a sender that shares an edition (``member``) writes only the rows that
sender claimed (``newsletter.state.postgres.crew``): once its lease has lapsed and
another took the rows over, its late writes change nothing. And before any message
data goes out (``settle``), it makes sure the lease still holds (``Membership.hold``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import psycopg

from newsletter.config.state import mask_url
from newsletter.errors import DeliveryError, NewsletterError, StateUnavailable
from newsletter.state.commits import GroupCommit, LedgerStatements, LedgerWrites, Write
from newsletter.state.postgres.connection import connect, explain
from newsletter.state.postgres.resilient import Connection, Resilient
from newsletter.state.reads import LedgerReads
from newsletter.state.sharing import Membership

# The claims and outcomes of a group at once: the same writes, one array per parameter.
_CLAIMS = "unnest(%s::text[], %s::text[], %s::text[], %s::text[])"
_OUTCOMES = "unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
_UPSERT_ALL = """
    INSERT INTO ledger_recipients ({columns})
    SELECT {values} FROM {arrays} AS v ({names})
    ON CONFLICT (edition_id, email) DO UPDATE SET {changes}
"""
_CLAIM_ALL = _UPSERT_ALL.format(
    columns="edition_id, email, message_id, state, attempts, reply, updated",
    values="v.edition_id, v.email, v.message_id, 'in_flight', 1, '', v.updated",
    arrays=_CLAIMS,
    names="edition_id, email, message_id, updated",
    changes="""message_id = excluded.message_id, state = 'in_flight',
        attempts = ledger_recipients.attempts + 1, reply = '', updated = excluded.updated""",
)
_FINISH_ALL = _UPSERT_ALL.format(
    columns="edition_id, email, state, reply, updated",
    values="v.edition_id, v.email, v.state, v.reply, v.updated",
    arrays=_OUTCOMES,
    names="edition_id, email, state, reply, updated",
    changes="state = excluded.state, reply = excluded.reply, updated = excluded.updated",
)

_SQL = LedgerStatements(
    start="""
    INSERT INTO ledger_editions (edition_id, subject, started, recipients)
    VALUES (%s, %s, %s, %s)
    ON CONFLICT (edition_id) DO UPDATE SET
        subject = CASE WHEN ledger_editions.subject = '' THEN excluded.subject
                       ELSE ledger_editions.subject END,
        recipients = COALESCE(excluded.recipients, ledger_editions.recipients)
""",
    claim=_CLAIM_ALL,
    release="""
    UPDATE ledger_recipients
    SET state = 'pending', attempts = GREATEST(attempts - 1, 0), updated = %s
    WHERE edition_id = %s AND email = %s AND state = 'in_flight'
""",
    finish=_FINISH_ALL,
)


def _member_sql(worker: int) -> LedgerStatements:
    """The writes of sender ``worker``: each changes a row only while that sender holds it."""
    mine = f"ledger_recipients.worker = {int(worker)}"
    return LedgerStatements(
        start=_SQL.start,
        claim=f"""
    UPDATE ledger_recipients SET
        message_id = v.message_id,
        state = 'in_flight',
        attempts = ledger_recipients.attempts + 1,
        reply = '',
        updated = v.updated
    FROM {_CLAIMS} AS v (edition_id, email, message_id, updated)
    WHERE ledger_recipients.edition_id = v.edition_id AND ledger_recipients.email = v.email
      AND {mine}
""",  # noqa: S608 - a number
        release=f"""
    UPDATE ledger_recipients
    SET state = 'pending', worker = NULL, attempts = GREATEST(attempts - 1, 0), updated = %s
    WHERE edition_id = %s AND email = %s AND state = 'in_flight' AND {mine}
""",  # noqa: S608 - a number
        finish=f"""
    UPDATE ledger_recipients SET state = v.state, reply = v.reply, updated = v.updated
    FROM {_OUTCOMES} AS v (edition_id, email, state, reply, updated)
    WHERE ledger_recipients.edition_id = v.edition_id AND ledger_recipients.email = v.email
      AND {mine}
""",  # noqa: S608 - a number
    )


def _in_rounds(
    writes: Sequence[Write], key: Callable[[Write], tuple[Any, ...]]
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The writes as statements: per round, each statement once with all its rows.

    A write's round is how many writes before it name the same row (``key``), so each
    row is named at most once in a round and its writes land in the order queued.
    Writes to different rows do not depend on each other, so a round may run them in
    any order: each statement's rows together, in the order the statements first came.
    """
    seen: dict[tuple[Any, ...], int] = {}
    rounds: dict[tuple[int, str], list[tuple[Any, ...]]] = {}
    for write in writes:
        row = key(write)
        number = seen.get(row, 0)
        seen[row] = number + 1
        rounds.setdefault((number, write[0]), []).append(write[1])
    return [(sql, rows) for (_, sql), rows in sorted(rounds.items(), key=lambda i: i[0][0])]


HINT = "check that the PostgreSQL server is running and reachable"


def _error(url: str, action: str, err: BaseException) -> DeliveryError:
    """Describe a database error: the (masked) URL, what failed and a next step."""
    if isinstance(err, StateUnavailable):  # it says where, what and what to do
        return DeliveryError(f"the delivery ledger failed to {action}: {err}")
    return DeliveryError(
        explain(url, f"the delivery ledger failed to {action}: {str(err).strip()}; {HINT}")
    )


class _OpenErrors:
    """How the ledger explains a database it cannot open (``connection.Errors``)."""

    def database(self, url: str, action: str, err: BaseException) -> NewsletterError:
        """PostgreSQL failed to connect to the database or to set it up."""
        return _error(url, "open", err)


class PostgresLedger(LedgerWrites, LedgerReads):
    """The per-recipient delivery record of every edition, in the PostgreSQL state database.

    ``patience``: seconds to wait for the server when it goes away. ``member``: the
    sender sharing an edition whose ledger this is (``None``: a sender alone).
    """

    _mark = "%s"

    def __init__(self, url: str, patience: float = 0.0, member: Membership | None = None) -> None:
        self._url = url
        self._closed = False
        self._member = member
        self._db = Resilient(url, connect(url, errors=_OpenErrors()), patience)
        commits = GroupCommit(
            self._transaction,
            explain=lambda err: _error(self._url, "record deliveries", err),
            expected=(psycopg.Error, StateUnavailable),
            closed=lambda: DeliveryError(
                f"{mask_url(self._url)}: the delivery ledger is already closed"
            ),
        )
        statements = _SQL if member is None else _member_sql(member.worker)
        super().__init__(statements, commits)
        self._set_based = {statements.claim, statements.finish}

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn database errors into a ``DeliveryError`` that names the URL and a next step."""
        try:
            yield
        except (psycopg.Error, StateUnavailable) as err:
            raise _error(self._url, action, err) from err

    def _transaction(self, writes: Sequence[Write]) -> None:
        """Apply ``writes`` in one durable transaction, sent as one pipeline.

        Per round (``_in_rounds``) the claims are one statement over arrays, and so are
        the outcomes (so that each write lands as it would alone); another statement is
        one batch.
        """

        def apply(conn: Connection) -> None:
            with conn.cursor() as cursor:
                for sql, rows in _in_rounds(writes, self._sql.row):
                    if sql in self._set_based:
                        cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
                    else:
                        cursor.executemany(sql, rows)

        self._db.run(apply, pipeline=True)

    def settle(self, ticket: int) -> None:
        """Return once the write with this ticket (and every one before it) is committed.

        For a sender sharing an edition, also once its lease holds: message data may go.
        """
        super().settle(ticket)
        if self._member is not None:
            self._member.hold()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Commit anything pending, stop the committer and close the connection."""
        if self._closed:
            return
        try:
            self._commits.close()
        finally:
            self._closed = True
            self._db.close()

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
        with self._guard("read"):
            return self._db.run(lambda conn: list(conn.execute(sql, params).fetchall()))
