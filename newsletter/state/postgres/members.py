"""The subscribers the tool holds, in the PostgreSQL state database: one row per address.

Keyed by ``normalize_email``. Adding an address again keeps when and how it first
joined and takes the new name (when one is given).
"""

from __future__ import annotations

from datetime import datetime

from newsletter.state.api import normalize_email
from newsletter.state.lists import Member
from newsletter.state.postgres.connection import connect, guard
from newsletter.state.rows import MEMBER_COLUMNS, MEMBER_INSERT, load_member, member_row
from newsletter.state.tenant import Tenant


class PostgresMembers(Tenant):
    """The ``members`` table of the PostgreSQL state database."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn = connect(url)

    def add(
        self, email: str, name: str = "", source: str = "web", at: datetime | None = None
    ) -> bool:
        """Add or update a confirmed subscriber; True if the address was new."""
        row = member_row(email, name, source, at)
        with guard(self._url, "cannot write to"):
            # xmax is 0 for a row this statement inserted, not for one it updated.
            found = self._conn.execute(
                f"INSERT INTO members ({MEMBER_INSERT}) VALUES (%s, %s, %s, %s, %s)"  # noqa: S608
                " ON CONFLICT (email_key) DO UPDATE SET name = CASE WHEN excluded.name <> ''"
                " THEN excluded.name ELSE members.name END RETURNING xmax = 0",
                row,
            ).fetchone()
        return bool(found and found[0])

    def remove(self, email: str) -> bool:
        """Remove a subscriber; True if there was one."""
        with guard(self._url, "cannot write to"):
            gone = self._conn.execute(
                "DELETE FROM members WHERE email_key = %s", (normalize_email(email),)
            )
        return bool(gone.rowcount > 0)

    def all(self) -> list[Member]:
        """Every member, in the order they joined."""
        with guard(self._url, "cannot read"):
            rows = self._conn.execute(
                f"SELECT {MEMBER_COLUMNS} FROM members ORDER BY joined_at, email_key"  # noqa: S608
            ).fetchall()
        return [load_member(row) for row in rows]

    def count(self) -> int:
        """How many members there are."""
        with guard(self._url, "cannot read"):
            found = self._conn.execute("SELECT COUNT(*) FROM members").fetchone()
        return int(found[0]) if found else 0
