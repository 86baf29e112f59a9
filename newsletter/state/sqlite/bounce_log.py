"""The bounce events in the SQLite state file: what each report from the mailbox said.

One row per report and address (``bounce_events``); a report recorded once is known for
good. Soft bounces are counted per address over a window (the index on address and time).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from newsletter.errors import NewsletterError
from newsletter.state.api import normalize_email
from newsletter.state.lists import BounceEvent
from newsletter.state.rows import BOUNCE_COLUMNS, bounce_row, load_bounce
from newsletter.state.sqlite.connection import connect, state_error
from newsletter.state.tenant import Tenant
from newsletter.state.timestamps import to_stamp


class SqliteBounceLog(Tenant):
    """The ``bounce_events`` table of the SQLite state file."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        self._conn = connect(self.path)

    def _error(self, what: str, err: BaseException) -> NewsletterError:
        return state_error(self.path, what, err)

    def seen(self, report_key: str) -> bool:
        """Whether a report with this key was recorded."""
        return bool(self._read("SELECT 1 FROM bounce_events WHERE report_key = ?", (report_key,)))

    def record(self, report_key: str, events: Sequence[BounceEvent]) -> int:
        """Record what one report said, all in one transaction; return how many were new."""
        rows = [bounce_row(report_key, event) for event in events]
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                before = self._conn.total_changes
                self._conn.executemany(
                    f"INSERT INTO bounce_events ({BOUNCE_COLUMNS})"  # noqa: S608 - fixed columns
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (report_key, email_key) DO NOTHING",
                    rows,
                )
                return int(self._conn.total_changes - before)
        except sqlite3.Error as err:
            raise self._error("cannot write to", err) from err

    def count(self, email: str, kind: str, since: datetime, until: datetime) -> int:
        """How many events of ``kind`` ``email`` had from ``since`` to ``until`` (inclusive)."""
        rows = self._read(
            "SELECT COUNT(*) FROM bounce_events"
            " WHERE email_key = ? AND at >= ? AND at <= ? AND kind = ?",
            (normalize_email(email), to_stamp(since), to_stamp(until), kind),
        )
        return int(rows[0][0])

    def history(self, email: str) -> list[BounceEvent]:
        """Every event of ``email``, oldest first."""
        rows = self._read(
            f"SELECT {BOUNCE_COLUMNS} FROM bounce_events"  # noqa: S608 - fixed columns
            " WHERE email_key = ? ORDER BY at, report_key",
            (normalize_email(email),),
        )
        return [load_bounce(row) for row in rows]

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            rows: list[tuple[Any, ...]] = self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise self._error("cannot read", err) from err
        return rows
