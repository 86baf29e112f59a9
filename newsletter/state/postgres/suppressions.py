"""The suppression list in the PostgreSQL state database: addresses no send may mail.

One row per address (``suppressions``, keyed by ``normalize_email``), numbered by the
``seq`` column's own sequence. Numbers are handed out when a row is inserted but the
rows become visible when their transactions commit, which need not be in the same
order: a reader that saw number 11 may later see 10 appear. So ``changes`` reads again
``CHANGES_WINDOW`` numbers behind the cursor. Each ``add`` is one short statement, so
a row committed later than that many others that were numbered after it is out of
reach of any real send. A key may come back more than once, which the protocol allows.

A send under way asks here before each message; when the server goes away, a question
is asked again on a new session (``resilient``, for up to ``patience`` seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from newsletter.state.api import normalize_email
from newsletter.state.lists import Suppression, SuppressionRequest, Suppressions
from newsletter.state.postgres.connection import connect, guard
from newsletter.state.postgres.resilient import Connection, Resilient
from newsletter.state.reads import SuppressionReads
from newsletter.state.rows import (
    SUPPRESSION_COLUMNS,
    SUPPRESSION_INSERT,
    load_suppression,
    suppression_row,
)
from newsletter.state.tenant import Tenant

CHANGES_WINDOW = 1000  # sequence numbers ``changes`` reads again behind its cursor


class PostgresSuppressions(Tenant, SuppressionReads, Suppressions):
    """The ``suppressions`` table of the PostgreSQL state database (may be shared by threads)."""

    _mark = "%s"

    def __init__(self, url: str, patience: float = 0.0) -> None:
        self._url = url
        self._db = Resilient(url, connect(url), patience)

    def add_many(
        self, requests: Sequence[SuppressionRequest], at: datetime | None = None
    ) -> list[bool]:
        """Suppress several addresses in one transaction (one commit); ``add``'s answer each."""
        rows = [
            suppression_row(r.email, r.reason, r.source, r.edition_id, r.detail, at)
            for r in requests
        ]
        sql = (
            f"INSERT INTO suppressions ({SUPPRESSION_INSERT})"  # noqa: S608 - fixed columns
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (email_key) DO NOTHING"
        )

        def insert(conn: Connection) -> list[bool]:  # one transaction, run again if cut off
            return [conn.execute(sql, row).rowcount > 0 for row in rows]

        with guard(self._url, "cannot write to"):
            return self._db.run(insert)

    def remove(self, email: str) -> Suppression | None:
        """Lift the suppression of ``email``; return what was removed, or None."""
        sql = (
            f"DELETE FROM suppressions WHERE email_key = %s"  # noqa: S608 - fixed columns
            f" RETURNING {SUPPRESSION_COLUMNS}"
        )
        key = (normalize_email(email),)
        with guard(self._url, "cannot write to"):
            row = self._db.run(lambda conn: conn.execute(sql, key).fetchone())
        return load_suppression(row) if row else None

    def among(self, emails: Iterable[str]) -> set[str]:
        """The ``normalize_email`` keys of those of ``emails`` that are suppressed."""
        keys = sorted({normalize_email(email) for email in emails})
        if not keys:
            return set()
        rows = self._read("SELECT email_key FROM suppressions WHERE email_key = ANY(%s)", (keys,))
        return {row[0] for row in rows}

    def changes(self, cursor: int) -> tuple[int, set[str]]:
        """Keys suppressed since ``cursor`` (0: all) and the cursor to pass next time."""
        since = max(cursor - CHANGES_WINDOW, 0)
        rows = self._read("SELECT seq, email_key FROM suppressions WHERE seq > %s", (since,))
        return max((int(row[0]) for row in rows), default=cursor), {row[1] for row in rows}

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with guard(self._url, "cannot read"):
            rows: list[tuple[Any, ...]] = self._db.run(
                lambda conn: conn.execute(sql, params).fetchall()
            )
        return rows

    def close(self) -> None:
        """Close the database session."""
        self._db.close()
