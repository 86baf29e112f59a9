"""Which articles went out in which edition, in the PostgreSQL state database.

The ``history_*`` tables, as in the SQLite file. A live send records its edition at the
first message the server accepts, not before, so a send that reached nobody holds no
article back. Recording an edition again replaces what was recorded for it, so a re-run
is harmless; ``forget`` drops it. Recordings are numbered in the order they happen, one
at a time (a table lock), whichever host records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from newsletter.state.postgres.connection import connect, guard
from newsletter.state.tenant import Tenant
from newsletter.state.timestamps import to_stamp


class PostgresHistory(Tenant):
    """The record of sent editions and their articles in the PostgreSQL state database."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn = connect(url)

    def recent_article_ids(self, editions: int) -> frozenset[str]:
        """The ids of the articles sent in the last ``editions`` editions."""
        if editions <= 0:
            return frozenset()
        with guard(self._url, "cannot read"):
            rows = self._conn.execute(
                """SELECT DISTINCT a.article_id FROM history_articles AS a
                   JOIN (SELECT edition_id FROM history_editions
                         ORDER BY created DESC, recorded DESC LIMIT %s) AS e
                   ON a.edition_id = e.edition_id""",
                (editions,),
            ).fetchall()
        return frozenset(row[0] for row in rows)

    def last_edition(self) -> str | None:
        """The id of the most recently created edition on record, if any."""
        with guard(self._url, "cannot read"):
            row = self._conn.execute(
                "SELECT edition_id FROM history_editions ORDER BY created DESC, recorded DESC "
                "LIMIT 1"
            ).fetchone()
        return str(row[0]) if row else None

    def record(self, edition_id: str, created: datetime, article_ids: Sequence[str]) -> None:
        """Record that an edition with these articles went out (again: replaces the record)."""
        stamp = to_stamp(created)
        unique = list(dict.fromkeys(article_ids))
        with guard(self._url, "cannot write to"), self._conn.transaction():
            self._conn.execute("LOCK TABLE history_editions IN SHARE ROW EXCLUSIVE MODE")
            found = self._conn.execute(
                "SELECT COALESCE(MAX(recorded), 0) + 1 FROM history_editions"
            ).fetchone()
            recorded = int(found[0]) if found else 1
            self._conn.execute(
                """INSERT INTO history_editions (edition_id, created, recorded)
                   VALUES (%s, %s, %s)
                   ON CONFLICT (edition_id) DO UPDATE SET created = excluded.created""",
                (edition_id, stamp, recorded),
            )
            self._conn.execute("DELETE FROM history_articles WHERE edition_id = %s", (edition_id,))
            with self._conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO history_articles (edition_id, article_id, position) "
                    "VALUES (%s, %s, %s)",
                    [(edition_id, article, n) for n, article in enumerate(unique)],
                )

    def forget(self, edition_id: str) -> None:
        """Drop an edition's record: its articles count as never sent (none if unknown)."""
        with guard(self._url, "cannot write to"), self._conn.transaction():
            self._conn.execute("DELETE FROM history_articles WHERE edition_id = %s", (edition_id,))
            self._conn.execute("DELETE FROM history_editions WHERE edition_id = %s", (edition_id,))
