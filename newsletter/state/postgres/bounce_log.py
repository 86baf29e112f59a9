"""The bounce events in the PostgreSQL state database: what each report from the mailbox said.

One row per report and address (``bounce_events``), as in the SQLite file; a report
recorded once is known for good, whichever host read it. Soft bounces are counted per
address over a window (the index on address and time).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from newsletter.state.api import normalize_email
from newsletter.state.lists import BounceEvent
from newsletter.state.postgres.connection import connect, guard
from newsletter.state.rows import BOUNCE_COLUMNS, bounce_row, load_bounce
from newsletter.state.tenant import Tenant
from newsletter.state.timestamps import to_stamp


class PostgresBounceLog(Tenant):
    """The ``bounce_events`` table of the PostgreSQL state database."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn = connect(url)

    def seen(self, report_key: str) -> bool:
        """Whether a report with this key was recorded."""
        return bool(self._read("SELECT 1 FROM bounce_events WHERE report_key = %s", (report_key,)))

    def record(self, report_key: str, events: Sequence[BounceEvent]) -> int:
        """Record what one report said, all in one transaction; return how many were new."""
        rows = [bounce_row(report_key, event) for event in events]
        added = 0
        with guard(self._url, "cannot write to"), self._conn.transaction():
            for row in rows:
                cursor = self._conn.execute(
                    f"INSERT INTO bounce_events ({BOUNCE_COLUMNS})"  # noqa: S608 - fixed columns
                    " VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (report_key, email_key) DO NOTHING",
                    row,
                )
                added += max(cursor.rowcount, 0)
        return added

    def count(self, email: str, kind: str, since: datetime, until: datetime) -> int:
        """How many events of ``kind`` ``email`` had from ``since`` to ``until`` (inclusive)."""
        rows = self._read(
            "SELECT COUNT(*) FROM bounce_events"
            " WHERE email_key = %s AND at >= %s AND at <= %s AND kind = %s",
            (normalize_email(email), to_stamp(since), to_stamp(until), kind),
        )
        return int(rows[0][0])

    def history(self, email: str) -> list[BounceEvent]:
        """Every event of ``email``, oldest first."""
        rows = self._read(
            f"SELECT {BOUNCE_COLUMNS} FROM bounce_events"  # noqa: S608 - fixed columns
            " WHERE email_key = %s ORDER BY at, report_key",
            (normalize_email(email),),
        )
        return [load_bounce(row) for row in rows]

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with guard(self._url, "cannot read"):
            rows: list[tuple[Any, ...]] = self._conn.execute(sql, params).fetchall()
        return rows
