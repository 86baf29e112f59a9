"""The suppression list in the SQLite state file: addresses no send may mail.

One row per address (``suppressions``, keyed by ``normalize_email``), numbered in the
order the suppressions were made (``seq``, from ``state_sequences``). SQLite has one
writer at a time and numbers each row inside its write, so the numbers are committed in
order and ``changes`` needs no window. A store may be shared by threads (a send's
sending threads ask it what is new); they take turns on its connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from newsletter.errors import NewsletterError
from newsletter.state.api import normalize_email
from newsletter.state.lists import Suppression, SuppressionRequest, Suppressions
from newsletter.state.reads import SuppressionReads
from newsletter.state.rows import (
    SUPPRESSION_COLUMNS,
    SUPPRESSION_INSERT,
    load_suppression,
    suppression_row,
)
from newsletter.state.sqlite.connection import connect, state_error
from newsletter.state.tenant import Tenant

BATCH = 500  # addresses per query of ``among`` (SQLite's parameter limit is far above)
_NEXT_SEQ = "UPDATE state_sequences SET last = last + 1 WHERE name = 'suppressions' RETURNING last"


class SqliteSuppressions(Tenant, SuppressionReads, Suppressions):
    """The ``suppressions`` table of the SQLite state file."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        self._conn = connect(self.path, threads=True)
        self._lock = threading.Lock()

    def _error(self, what: str, err: BaseException) -> NewsletterError:
        return state_error(self.path, what, err)

    def add_many(
        self, requests: Sequence[SuppressionRequest], at: datetime | None = None
    ) -> list[bool]:
        """Suppress several addresses in one transaction (one commit); ``add``'s answer each."""
        rows = [
            suppression_row(r.email, r.reason, r.source, r.edition_id, r.detail, at)
            for r in requests
        ]
        added: list[bool] = []
        try:
            with self._lock, self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                for row in rows:
                    if self._conn.execute(
                        "SELECT 1 FROM suppressions WHERE email_key = ?", (row[0],)
                    ).fetchone():
                        added.append(False)
                        continue
                    seq = self._conn.execute(_NEXT_SEQ).fetchone()[0]
                    self._conn.execute(
                        f"INSERT INTO suppressions ({SUPPRESSION_INSERT}, seq)"  # noqa: S608
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (*row, seq),
                    )
                    added.append(True)
        except sqlite3.Error as err:
            raise self._error("cannot write to", err) from err
        return added

    def remove(self, email: str) -> Suppression | None:
        """Lift the suppression of ``email``; return what was removed, or None."""
        try:
            with self._lock, self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                row = self._conn.execute(
                    f"DELETE FROM suppressions WHERE email_key = ?"  # noqa: S608 - fixed columns
                    f" RETURNING {SUPPRESSION_COLUMNS}",
                    (normalize_email(email),),
                ).fetchone()
        except sqlite3.Error as err:
            raise self._error("cannot write to", err) from err
        return load_suppression(row) if row else None

    def among(self, emails: Iterable[str]) -> set[str]:
        """The ``normalize_email`` keys of those of ``emails`` that are suppressed."""
        keys = iter({normalize_email(email) for email in emails})
        found: set[str] = set()
        while batch := list(islice(keys, BATCH)):
            marks = ", ".join("?" * len(batch))
            rows = self._read(
                f"SELECT email_key FROM suppressions WHERE email_key IN ({marks})",  # noqa: S608
                tuple(batch),
            )
            found.update(row[0] for row in rows)
        return found

    def changes(self, cursor: int) -> tuple[int, set[str]]:
        """Keys suppressed since ``cursor`` (0: all) and the cursor to pass next time."""
        rows = self._read("SELECT seq, email_key FROM suppressions WHERE seq > ?", (cursor,))
        return max((int(row[0]) for row in rows), default=cursor), {str(row[1]) for row in rows}

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                rows: list[tuple[Any, ...]] = self._conn.execute(sql, params).fetchall()
                return rows
        except sqlite3.Error as err:
            raise self._error("cannot read", err) from err
