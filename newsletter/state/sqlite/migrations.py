"""The state file's one schema, as numbered migrations, and ``migrate`` that applies them.

The ``schema_version`` table has a row per migration applied (its number and when). A
file made before versions existed has some or all of the tables but no version:
migration 1 creates only what is missing, so such a file is adopted in place. A file
whose version is newer than this code knows is refused, never written to.

Add a change as a new function at the end of ``MIGRATIONS``; never edit one that has
shipped. Each migration runs once per file, all that are pending in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from newsletter.clock import now_utc
from newsletter.errors import StateError
from newsletter.state.timestamps import STAMP_LENGTH, from_stamp, to_stamp

# The tables as the releases before schema versions made them, statement for statement.
_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS history_editions (
        edition_id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        recorded INTEGER NOT NULL
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS history_editions_created
        ON history_editions (created DESC, recorded DESC)
    """,
    """
    CREATE TABLE IF NOT EXISTS history_articles (
        edition_id TEXT NOT NULL REFERENCES history_editions (edition_id) ON DELETE CASCADE,
        article_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (edition_id, article_id)
    )
    """,
    """
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
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ledger_editions (
        edition_id TEXT PRIMARY KEY,
        subject    TEXT NOT NULL DEFAULT '',
        started    TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ledger_recipients (
        edition_id TEXT NOT NULL,
        email      TEXT NOT NULL,
        message_id TEXT NOT NULL DEFAULT '',
        state      TEXT NOT NULL
                   CHECK (state IN ('pending', 'in_flight', 'sent', 'failed', 'deferred')),
        attempts   INTEGER NOT NULL DEFAULT 0,
        reply      TEXT NOT NULL DEFAULT '',
        updated    TEXT NOT NULL,
        PRIMARY KEY (edition_id, email)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS schedule_slots (
        key         TEXT PRIMARY KEY,
        schedule    TEXT NOT NULL,
        slot_local  TEXT NOT NULL,
        slot_utc    TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('claimed', 'sent', 'skipped', 'failed')),
        reason      TEXT NOT NULL DEFAULT '',
        edition     TEXT NOT NULL DEFAULT '',
        sent        INTEGER NOT NULL DEFAULT 0,
        failed      INTEGER NOT NULL DEFAULT 0,
        deferred    INTEGER NOT NULL DEFAULT 0,
        attempts    INTEGER NOT NULL DEFAULT 0,
        pid         INTEGER,
        claimed_at  TEXT NOT NULL,
        finished_at TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS schedule_slots_by_time ON schedule_slots (schedule, slot_utc)",
)

# Every column holding an instant. ``schedule_slots.slot_local`` is not one: it is the
# slot's wall time in its own zone, as ``schedule list`` shows it.
TIME_COLUMNS = (
    ("history_editions", "created"),
    ("archive_editions", "created"),
    ("archive_editions", "started_at"),
    ("archive_editions", "finished_at"),
    ("ledger_editions", "started"),
    ("ledger_recipients", "updated"),
    ("schedule_slots", "slot_utc"),
    ("schedule_slots", "claimed_at"),
    ("schedule_slots", "finished_at"),
)


def _create_tables(conn: sqlite3.Connection) -> None:
    """1: the tables of history, stored editions, ledger and schedules (those missing)."""
    for statement in _TABLES:
        conn.execute(statement)


def restamp(text: str | None) -> str | None:
    """Rewrite a time stored by an earlier release in the one format (a naive one is UTC).

    Text that is no time is left as it is, for a person to look at, rather than lost.
    """
    if text is None:
        return None
    try:
        return to_stamp(from_stamp(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return to_stamp(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def _one_time_format(conn: sqlite3.Connection) -> None:
    """2: every stored instant in the one format of ``newsletter.state.timestamps``.

    Earlier releases wrote four: microseconds with ``Z`` (history), ``isoformat()`` with
    any offset (stored editions), milliseconds with ``+00:00`` (ledger) and seconds with
    ``+00:00`` (schedules).
    """
    conn.create_function("state_restamp", 1, restamp, deterministic=True)
    for table, column in TIME_COLUMNS:
        conn.execute(
            f"UPDATE {table} SET {column} = state_restamp({column}) "  # noqa: S608 - fixed names
            f"WHERE {column} IS NOT NULL "
            f"AND NOT (length({column}) = {STAMP_LENGTH} AND {column} LIKE '%Z')"
        )


def _recipient_count(conn: sqlite3.Connection) -> None:
    """3: ``ledger_editions.recipients``, how many a send set out to reach (NULL: unknown).

    With it ``status`` counts those not attempted yet, so an interrupted send adds up.
    """
    conn.execute("ALTER TABLE ledger_editions ADD COLUMN recipients INTEGER")


# Who may not be mailed, who the tool holds, and the bounces read from the mailbox.
_LISTS = (
    """
    CREATE TABLE suppressions (
        email_key  TEXT PRIMARY KEY,
        email      TEXT NOT NULL,
        reason     TEXT NOT NULL
                   CHECK (reason IN ('unsubscribe', 'bounce', 'complaint', 'manual')),
        source     TEXT NOT NULL,
        edition_id TEXT NOT NULL DEFAULT '',
        detail     TEXT NOT NULL DEFAULT '',
        at         TEXT NOT NULL,
        seq        INTEGER NOT NULL
    )
    """,
    "CREATE INDEX suppressions_by_seq ON suppressions (seq)",
    """
    CREATE TABLE state_sequences (
        name TEXT PRIMARY KEY,
        last INTEGER NOT NULL
    )
    """,
    "INSERT INTO state_sequences (name, last) VALUES ('suppressions', 0)",
    """
    CREATE TABLE members (
        email_key TEXT PRIMARY KEY,
        email     TEXT NOT NULL,
        name      TEXT NOT NULL DEFAULT '',
        source    TEXT NOT NULL,
        joined_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE bounce_events (
        report_key TEXT NOT NULL,
        email_key  TEXT NOT NULL,
        edition_id TEXT NOT NULL DEFAULT '',
        kind       TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'unsubscribe')),
        status     TEXT NOT NULL DEFAULT '',
        at         TEXT NOT NULL,
        PRIMARY KEY (report_key, email_key)
    )
    """,
    "CREATE INDEX bounce_events_by_address ON bounce_events (email_key, at)",
)


def _suppressions_and_members(conn: sqlite3.Connection) -> None:
    """4: the suppression list, the subscribers the tool holds, and bounce events.

    ``suppressions.seq`` numbers each suppression in the order it was made, so a send
    under way asks only for what is new; ``state_sequences`` keeps the last number
    given, so an address suppressed again after a removal gets a higher one.
    """
    for statement in _LISTS:
        conn.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_tables,
    _one_time_format,
    _recipient_count,
    _suppressions_and_members,
)
LATEST = len(MIGRATIONS)

_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER PRIMARY KEY,
        applied TEXT NOT NULL
    )
"""


def schema_version(conn: sqlite3.Connection) -> int:
    """The number of the last migration applied to the file (0: none, or a new file)."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone():
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def _refuse_newer(path: Path, version: int) -> None:
    if version > LATEST:
        raise StateError(
            f"{path}: made by a newer version of newsletter (schema {version}, this one knows "
            f"{LATEST}); upgrade newsletter or use another state_dir"
        )


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the file at ``path`` up to ``LATEST`` in one transaction; refuse a newer one.

    Returns the version the file had. Raises ``StateError`` for a newer file and
    ``sqlite3.Error`` when the file cannot be read or written (the caller explains those).
    """
    version = schema_version(conn)
    _refuse_newer(path, version)
    if version == LATEST:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)  # another process may have migrated it meanwhile
        _refuse_newer(path, version)
        if version < LATEST:
            conn.execute(_VERSION_TABLE)
            applied = to_stamp(now_utc())
            for number in range(version + 1, LATEST + 1):
                MIGRATIONS[number - 1](conn)
                conn.execute(
                    "INSERT INTO schema_version (version, applied) VALUES (?, ?)",
                    (number, applied),
                )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return version
