"""Stored editions in the PostgreSQL state database: every edition that started going out.

The ``archive_editions`` table, as in the SQLite file: a live send stores its edition
before the first message, and a send that was killed or paused is resumed from here,
byte for byte the same edition.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from newsletter.models import Edition
from newsletter.state.api import ArchivedEdition, EditionEntry
from newsletter.state.postgres.connection import connect, guard
from newsletter.state.rows import (
    EDITION_COLUMNS,
    EDITION_INSERT,
    EDITION_RESTART,
    WENT_OUT,
    edition_row,
    finished_stamp,
    load_edition,
    load_entry,
)
from newsletter.state.tenant import Tenant


class PostgresEditionStore(Tenant):
    """Store and find editions that started going out, in the ``archive_editions`` table."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn = connect(url)

    def save(self, edition: Edition, selection: Mapping[str, Any], started_at: datetime) -> None:
        """Store ``edition`` as sending (kept as it is when it was stored before).

        An abandoned edition built again (the same content the same day) is sending again.
        """
        with guard(self._url, "cannot write to"):
            self._conn.execute(
                f"INSERT INTO archive_editions ({EDITION_INSERT})"  # noqa: S608 - fixed columns
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) {EDITION_RESTART}",
                edition_row(edition, selection, started_at),
            )

    def set_status(self, edition_id: str, status: str, at: datetime) -> None:
        """Mark an edition ``sending``, ``done`` or ``abandoned`` (the last two finish it at)."""
        with guard(self._url, "cannot write to"):
            self._conn.execute(
                "UPDATE archive_editions SET status = %s, finished_at = %s WHERE id = %s",
                (status, finished_stamp(status, at), edition_id),
            )

    def get(self, edition_id: str) -> ArchivedEdition | None:
        """The stored edition with this id, if any."""
        with guard(self._url, "cannot read"):
            row = self._conn.execute(
                f"SELECT {EDITION_COLUMNS} FROM archive_editions WHERE id = %s",  # noqa: S608
                (edition_id,),
            ).fetchone()
        return load_edition(row) if row else None

    def unfinished(self) -> ArchivedEdition | None:
        """The most recent edition whose send was interrupted (still ``sending``), if any."""
        with guard(self._url, "cannot read"):
            row = self._conn.execute(
                f"SELECT {EDITION_COLUMNS} FROM archive_editions WHERE status = 'sending'"  # noqa: S608
                " ORDER BY started_at DESC, id DESC LIMIT 1"
            ).fetchone()
        return load_edition(row) if row else None

    def last_done(self) -> ArchivedEdition | None:
        """The edition whose send finished (``done``) most recently, if any."""
        with guard(self._url, "cannot read"):
            row = self._conn.execute(
                f"SELECT {EDITION_COLUMNS} FROM archive_editions WHERE status = 'done'"  # noqa: S608
                " ORDER BY finished_at DESC, id DESC LIMIT 1"
            ).fetchone()
        return load_edition(row) if row else None

    def ids(self) -> list[str]:
        """Every stored edition id, newest first."""
        with guard(self._url, "cannot read"):
            rows = self._conn.execute(
                "SELECT id FROM archive_editions ORDER BY started_at DESC, id DESC"
            ).fetchall()
        return [r[0] for r in rows]

    def went_out(self) -> list[EditionEntry]:
        """The editions that reached someone, newest first."""
        with guard(self._url, "cannot read"):
            rows = self._conn.execute(WENT_OUT).fetchall()
        return [load_entry(r) for r in rows]
