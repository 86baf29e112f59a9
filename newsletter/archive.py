"""The edition archive: every edition that started going out, stored whole.

A live send stores its edition before the first message. A send that was
killed or paused is resumed from here, byte for byte the same edition, even
when the content has moved on since.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from newsletter.models import Digest, Edition
from newsletter.state import open_state

_SCHEMA = """
CREATE TABLE IF NOT EXISTS archive_editions (
    id          TEXT PRIMARY KEY,
    created     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    preheader   TEXT NOT NULL,
    html        TEXT NOT NULL,
    text        TEXT NOT NULL,
    selection   TEXT NOT NULL,
    warnings    TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'sending',
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
"""


@dataclass(frozen=True)
class ArchivedEdition:
    """An edition as stored, with its send status."""

    edition: Edition
    selection: Mapping[str, Any]
    status: str
    started_at: str
    finished_at: str | None


class Archive:
    """Store and find editions that started going out."""

    def __init__(self, db_path: Path) -> None:
        self._conn = open_state(db_path, schema=_SCHEMA)

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def save(self, edition: Edition, selection: Mapping[str, Any], started_at: datetime) -> None:
        """Store ``edition`` as sending (kept as it is when it was stored before)."""
        self._conn.execute(
            "INSERT OR IGNORE INTO archive_editions (id, created, subject, preheader, html, text,"
            " selection, warnings, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                edition.id,
                edition.created.isoformat(),
                edition.subject,
                edition.preheader,
                edition.html,
                edition.text,
                json.dumps(selection, ensure_ascii=False, sort_keys=True),
                json.dumps(list(edition.warnings), ensure_ascii=False),
                started_at.isoformat(),
            ),
        )

    def set_status(self, edition_id: str, status: str, at: datetime) -> None:
        """Mark an edition ``sending`` or ``done``."""
        finished = at.isoformat() if status == "done" else None
        self._conn.execute(
            "UPDATE archive_editions SET status = ?, finished_at = ? WHERE id = ?",
            (status, finished, edition_id),
        )

    def get(self, edition_id: str) -> ArchivedEdition | None:
        """The stored edition with this id, if any."""
        row = self._conn.execute(
            "SELECT id, created, subject, preheader, html, text, selection, warnings, status,"
            " started_at, finished_at FROM archive_editions WHERE id = ?",
            (edition_id,),
        ).fetchone()
        return _load(row) if row else None

    def unfinished(self) -> ArchivedEdition | None:
        """The most recent edition whose send was interrupted, if any."""
        row = self._conn.execute(
            "SELECT id, created, subject, preheader, html, text, selection, warnings, status,"
            " started_at, finished_at FROM archive_editions WHERE status = 'sending'"
            " ORDER BY started_at DESC, id DESC LIMIT 1"
        ).fetchone()
        return _load(row) if row else None

    def ids(self) -> list[str]:
        """Every archived edition id, newest first."""
        rows = self._conn.execute(
            "SELECT id FROM archive_editions ORDER BY started_at DESC, id DESC"
        ).fetchall()
        return [r[0] for r in rows]


def _load(row: tuple[Any, ...]) -> ArchivedEdition:
    created = datetime.fromisoformat(row[1])
    edition = Edition(
        id=row[0],
        subject=row[2],
        preheader=row[3],
        html=row[4],
        text=row[5],
        digest=Digest(lead=None, now=created),
        created=created,
        warnings=tuple(json.loads(row[7])),
    )
    return ArchivedEdition(
        edition=edition,
        selection=json.loads(row[6]),
        status=row[8],
        started_at=row[9],
        finished_at=row[10],
    )
