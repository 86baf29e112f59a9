"""Which articles went out in which edition, so the next editions do not repeat them.

Kept in the SQLite state file next to the delivery ledger, in its own ``history_*``
tables. A live send records its edition at the first message the server accepts, not
before, so a send that reached nobody holds no article back. Recording an edition again
replaces what was recorded for it, so a re-run is harmless; ``forget`` drops it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from newsletter.errors import NewsletterError
from newsletter.state.sqlite.connection import connect, state_error
from newsletter.state.tenant import Tenant
from newsletter.state.timestamps import to_stamp


class SqliteHistory(Tenant):
    """The record of sent editions and their articles in the SQLite state file."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        self._conn = connect(self.path)

    def _error(self, what: str, err: BaseException) -> NewsletterError:
        return state_error(self.path, what, err)

    def recent_article_ids(self, editions: int) -> frozenset[str]:
        """The ids of the articles sent in the last ``editions`` editions."""
        if editions <= 0:
            return frozenset()
        try:
            rows = self._conn.execute(
                """SELECT DISTINCT a.article_id FROM history_articles AS a
                   JOIN (SELECT edition_id FROM history_editions
                         ORDER BY created DESC, recorded DESC LIMIT ?) AS e
                   ON a.edition_id = e.edition_id""",
                (editions,),
            ).fetchall()
        except sqlite3.Error as err:
            raise self._error("cannot read", err) from err
        return frozenset(row[0] for row in rows)

    def last_edition(self) -> str | None:
        """The id of the most recently created edition on record, if any."""
        try:
            row = self._conn.execute(
                "SELECT edition_id FROM history_editions ORDER BY created DESC, recorded DESC "
                "LIMIT 1"
            ).fetchone()
        except sqlite3.Error as err:
            raise self._error("cannot read", err) from err
        return str(row[0]) if row else None

    def record(self, edition_id: str, created: datetime, article_ids: Sequence[str]) -> None:
        """Record that an edition with these articles went out (again: replaces the record)."""
        stamp = to_stamp(created)
        unique = list(dict.fromkeys(article_ids))
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                recorded = self._conn.execute(
                    "SELECT COALESCE(MAX(recorded), 0) + 1 FROM history_editions"
                ).fetchone()[0]
                self._conn.execute(
                    """INSERT INTO history_editions (edition_id, created, recorded)
                       VALUES (?, ?, ?)
                       ON CONFLICT (edition_id) DO UPDATE SET created = excluded.created""",
                    (edition_id, stamp, recorded),
                )
                self._conn.execute(
                    "DELETE FROM history_articles WHERE edition_id = ?", (edition_id,)
                )
                self._conn.executemany(
                    "INSERT INTO history_articles (edition_id, article_id, position) "
                    "VALUES (?, ?, ?)",
                    [(edition_id, article, n) for n, article in enumerate(unique)],
                )
        except sqlite3.Error as err:
            raise self._error("cannot write to", err) from err

    def forget(self, edition_id: str) -> None:
        """Drop an edition's record: its articles count as never sent (none if unknown)."""
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "DELETE FROM history_articles WHERE edition_id = ?", (edition_id,)
                )
                self._conn.execute(
                    "DELETE FROM history_editions WHERE edition_id = ?", (edition_id,)
                )
        except sqlite3.Error as err:
            raise self._error("cannot write to", err) from err
