"""Stored editions: every edition that started going out, kept whole in the state file.

A live send stores its edition before the first message. A send that was killed or
paused is resumed from here, byte for byte the same edition, even when the content has
moved on since. (Not the public archive of past issues: this is the sender's own copy.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from newsletter.models import Edition
from newsletter.state.api import ArchivedEdition, EditionEntry
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
from newsletter.state.sqlite.connection import connect
from newsletter.state.tenant import Tenant


class SqliteEditionStore(Tenant):
    """Store and find editions that started going out, in the ``archive_editions`` table."""

    def __init__(self, db_path: Path) -> None:
        self._conn = connect(Path(db_path))

    def save(self, edition: Edition, selection: Mapping[str, Any], started_at: datetime) -> None:
        """Store ``edition`` as sending (kept as it is when it was stored before).

        An abandoned edition built again (the same content the same day) is sending again.
        """
        self._conn.execute(
            f"INSERT INTO archive_editions ({EDITION_INSERT})"  # noqa: S608 - fixed columns
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) {EDITION_RESTART}",
            edition_row(edition, selection, started_at),
        )

    def set_status(self, edition_id: str, status: str, at: datetime) -> None:
        """Mark an edition ``sending``, ``done`` or ``abandoned`` (the last two finish it at)."""
        self._conn.execute(
            "UPDATE archive_editions SET status = ?, finished_at = ? WHERE id = ?",
            (status, finished_stamp(status, at), edition_id),
        )

    def get(self, edition_id: str) -> ArchivedEdition | None:
        """The stored edition with this id, if any."""
        row = self._conn.execute(
            f"SELECT {EDITION_COLUMNS} FROM archive_editions WHERE id = ?",  # noqa: S608 - fixed columns
            (edition_id,),
        ).fetchone()
        return load_edition(row) if row else None

    def unfinished(self) -> ArchivedEdition | None:
        """The most recent edition whose send was interrupted (still ``sending``), if any."""
        row = self._conn.execute(
            f"SELECT {EDITION_COLUMNS} FROM archive_editions WHERE status = 'sending'"  # noqa: S608
            " ORDER BY started_at DESC, id DESC LIMIT 1"
        ).fetchone()
        return load_edition(row) if row else None

    def last_done(self) -> ArchivedEdition | None:
        """The edition whose send finished (``done``) most recently, if any."""
        row = self._conn.execute(
            f"SELECT {EDITION_COLUMNS} FROM archive_editions WHERE status = 'done'"  # noqa: S608
            " ORDER BY finished_at DESC, id DESC LIMIT 1"
        ).fetchone()
        return load_edition(row) if row else None

    def ids(self) -> list[str]:
        """Every stored edition id, newest first."""
        rows = self._conn.execute(
            "SELECT id FROM archive_editions ORDER BY started_at DESC, id DESC"
        ).fetchall()
        return [r[0] for r in rows]

    def went_out(self) -> list[EditionEntry]:
        """The editions that reached someone, newest first."""
        return [load_entry(r) for r in self._conn.execute(WENT_OUT).fetchall()]
