"""The subscribers the tool holds, in the SQLite state file: one row per confirmed address.

Keyed by ``normalize_email``. Adding an address again keeps when and how it first
joined and takes the new name (when one is given).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from newsletter.errors import NewsletterError
from newsletter.state.api import normalize_email
from newsletter.state.lists import Member
from newsletter.state.rows import MEMBER_COLUMNS, MEMBER_INSERT, load_member, member_row
from newsletter.state.sqlite.connection import connect, state_error
from newsletter.state.tenant import Tenant


class SqliteMembers(Tenant):
    """The ``members`` table of the SQLite state file."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        self._conn = connect(self.path)

    def _error(self, what: str, err: BaseException) -> NewsletterError:
        return state_error(self.path, what, err)

    def add(
        self, email: str, name: str = "", source: str = "web", at: datetime | None = None
    ) -> bool:
        """Add or update a confirmed subscriber; True if the address was new."""
        row = member_row(email, name, source, at)
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                known = self._conn.execute(
                    "SELECT 1 FROM members WHERE email_key = ?", (row[0],)
                ).fetchone()
                self._conn.execute(
                    f"INSERT INTO members ({MEMBER_INSERT}) VALUES (?, ?, ?, ?, ?)"  # noqa: S608
                    " ON CONFLICT (email_key) DO UPDATE SET name = excluded.name"
                    " WHERE excluded.name <> ''",
                    row,
                )
        except sqlite3.Error as err:
            raise self._error("cannot write to", err) from err
        return known is None

    def remove(self, email: str) -> bool:
        """Remove a subscriber; True if there was one."""
        try:
            with self._conn:
                gone = self._conn.execute(
                    "DELETE FROM members WHERE email_key = ?", (normalize_email(email),)
                )
        except sqlite3.Error as err:
            raise self._error("cannot write to", err) from err
        return bool(gone.rowcount > 0)

    def all(self) -> list[Member]:
        """Every member, in the order they joined."""
        try:
            rows = self._conn.execute(
                f"SELECT {MEMBER_COLUMNS} FROM members ORDER BY joined_at, email_key"  # noqa: S608
            ).fetchall()
        except sqlite3.Error as err:
            raise self._error("cannot read", err) from err
        return [load_member(row) for row in rows]

    def count(self) -> int:
        """How many members there are."""
        try:
            return int(self._conn.execute("SELECT COUNT(*) FROM members").fetchone()[0])
        except sqlite3.Error as err:
            raise self._error("cannot read", err) from err
