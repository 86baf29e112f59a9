"""The PostgreSQL database's schema, as numbered migrations, and ``migrate`` that applies them.

The same tables and columns as the SQLite file (``newsletter.state.sqlite.migrations``),
with the same text in them: times in the one format, which sorts as the times do.
Every text column that is compared or sorted uses the ``C`` collation, so it sorts
byte for byte as in SQLite, whatever the database's locale.

The rules are the SQLite file's: ``schema_version`` has a row per migration applied
(its number and when); tables already there are adopted; a database whose version is
newer than this code knows is refused, never written to. All pending migrations run
in one transaction (PostgreSQL's DDL is transactional), under an advisory lock, so
processes that open a new database at once migrate it once.

Add a change as a new function at the end of ``MIGRATIONS``; never edit one that has
shipped. The numbers are this backend's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from newsletter.clock import now_utc
from newsletter.errors import StateError
from newsletter.state.postgres.lock import advisory_key
from newsletter.state.timestamps import to_stamp

MIGRATION_LOCK = "schema migration"

_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS history_editions (
        edition_id TEXT COLLATE "C" PRIMARY KEY,
        created    TEXT COLLATE "C" NOT NULL,
        recorded   BIGINT NOT NULL
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS history_editions_created
        ON history_editions (created DESC, recorded DESC)
    """,
    """
    CREATE TABLE IF NOT EXISTS history_articles (
        edition_id TEXT COLLATE "C" NOT NULL
                   REFERENCES history_editions (edition_id) ON DELETE CASCADE,
        article_id TEXT COLLATE "C" NOT NULL,
        position   INTEGER NOT NULL,
        PRIMARY KEY (edition_id, article_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS archive_editions (
        id          TEXT COLLATE "C" PRIMARY KEY,
        created     TEXT COLLATE "C" NOT NULL,
        subject     TEXT NOT NULL,
        preheader   TEXT NOT NULL,
        html        TEXT NOT NULL,
        text        TEXT NOT NULL,
        selection   TEXT NOT NULL,
        warnings    TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'sending',
        started_at  TEXT COLLATE "C" NOT NULL,
        finished_at TEXT COLLATE "C"
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ledger_editions (
        edition_id TEXT COLLATE "C" PRIMARY KEY,
        subject    TEXT NOT NULL DEFAULT '',
        started    TEXT COLLATE "C" NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ledger_recipients (
        edition_id TEXT COLLATE "C" NOT NULL,
        email      TEXT COLLATE "C" NOT NULL,
        message_id TEXT NOT NULL DEFAULT '',
        state      TEXT COLLATE "C" NOT NULL
                   CHECK (state IN ('pending', 'in_flight', 'sent', 'failed', 'deferred')),
        attempts   INTEGER NOT NULL DEFAULT 0,
        reply      TEXT NOT NULL DEFAULT '',
        updated    TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (edition_id, email)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS schedule_slots (
        key         TEXT COLLATE "C" PRIMARY KEY,
        schedule    TEXT COLLATE "C" NOT NULL,
        slot_local  TEXT NOT NULL,
        slot_utc    TEXT COLLATE "C" NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('claimed', 'sent', 'skipped', 'failed')),
        reason      TEXT NOT NULL DEFAULT '',
        edition     TEXT NOT NULL DEFAULT '',
        sent        INTEGER NOT NULL DEFAULT 0,
        failed      INTEGER NOT NULL DEFAULT 0,
        deferred    INTEGER NOT NULL DEFAULT 0,
        attempts    INTEGER NOT NULL DEFAULT 0,
        pid         INTEGER,
        claimed_at  TEXT COLLATE "C" NOT NULL,
        finished_at TEXT COLLATE "C"
    )
    """,
    "CREATE INDEX IF NOT EXISTS schedule_slots_by_time ON schedule_slots (schedule, slot_utc)",
)

Connection = psycopg.Connection[tuple[Any, ...]]


def _create_tables(conn: Connection) -> None:
    """1: the tables of history, stored editions, ledger and schedules (those missing)."""
    for statement in _TABLES:
        conn.execute(statement)


def _recipient_count(conn: Connection) -> None:
    """2: ``ledger_editions.recipients``, how many a send set out to reach (NULL: unknown).

    With it ``status`` counts those not attempted yet, so an interrupted send adds up.
    (SQLite's migration 3: its 2 changed the time format, which PostgreSQL had from 1.)
    """
    conn.execute("ALTER TABLE ledger_editions ADD COLUMN recipients INTEGER")


# Who may not be mailed, who the tool holds, and the bounces read from the mailbox.
_LISTS = (
    """
    CREATE TABLE suppressions (
        email_key  TEXT COLLATE "C" PRIMARY KEY,
        email      TEXT NOT NULL,
        reason     TEXT NOT NULL
                   CHECK (reason IN ('unsubscribe', 'bounce', 'complaint', 'manual')),
        source     TEXT NOT NULL,
        edition_id TEXT NOT NULL DEFAULT '',
        detail     TEXT NOT NULL DEFAULT '',
        at         TEXT COLLATE "C" NOT NULL,
        seq        BIGINT GENERATED ALWAYS AS IDENTITY
    )
    """,
    "CREATE INDEX suppressions_by_seq ON suppressions (seq)",
    """
    CREATE TABLE members (
        email_key TEXT COLLATE "C" PRIMARY KEY,
        email     TEXT NOT NULL,
        name      TEXT NOT NULL DEFAULT '',
        source    TEXT NOT NULL,
        joined_at TEXT COLLATE "C" NOT NULL
    )
    """,
    """
    CREATE TABLE bounce_events (
        report_key TEXT COLLATE "C" NOT NULL,
        email_key  TEXT COLLATE "C" NOT NULL,
        edition_id TEXT NOT NULL DEFAULT '',
        kind       TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'unsubscribe')),
        status     TEXT NOT NULL DEFAULT '',
        at         TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (report_key, email_key)
    )
    """,
    "CREATE INDEX bounce_events_by_address ON bounce_events (email_key, at)",
)


def _suppressions_and_members(conn: Connection) -> None:
    """3: the suppression list, the subscribers the tool holds, and bounce events.

    ``suppressions.seq`` comes from the column's own sequence, so an address suppressed
    again after a removal gets a higher number. (SQLite's migration 4.)
    """
    for statement in _LISTS:
        conn.execute(statement)


# Senders sharing an edition: its list, stored once; who sends it; who holds which row.
_SHARING = (
    """
    CREATE TABLE send_list (
        edition_id TEXT COLLATE "C" NOT NULL,
        position   INTEGER NOT NULL,
        email_key  TEXT COLLATE "C" NOT NULL,
        email      TEXT NOT NULL,
        name       TEXT NOT NULL DEFAULT '',
        fields     TEXT NOT NULL DEFAULT '{}',
        line       INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (edition_id, position)
    )
    """,
    """
    CREATE TABLE send_workers (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        edition_id  TEXT COLLATE "C" NOT NULL,
        host        TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        started     TIMESTAMPTZ NOT NULL DEFAULT now(),
        renewed     TIMESTAMPTZ NOT NULL DEFAULT now(),
        lease_until TIMESTAMPTZ NOT NULL,
        state       TEXT NOT NULL DEFAULT 'sending'
                    CHECK (state IN ('sending', 'done', 'stopped', 'paused', 'lost')),
        sent        INTEGER NOT NULL DEFAULT 0,
        failed      INTEGER NOT NULL DEFAULT 0,
        deferred    INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX send_workers_by_edition ON send_workers (edition_id, id)",
    "ALTER TABLE ledger_recipients ADD COLUMN position INTEGER, ADD COLUMN worker BIGINT",
    """
    CREATE INDEX ledger_recipients_open ON ledger_recipients (edition_id, position)
        WHERE state IN ('pending', 'in_flight', 'deferred')
    """,
    """
    CREATE INDEX ledger_recipients_held ON ledger_recipients (edition_id, worker)
        WHERE worker IS NOT NULL
    """,
)


def _shared_sends(conn: Connection) -> None:
    """4: senders sharing an edition (``newsletter.state.postgres.crew``).

    ``send_list`` is an edition's recipient list, stored once by its first sender;
    ``send_workers`` every sender that joined, with its lease (the server's clock);
    ``ledger_recipients`` gains each row's place in the list and the sender that holds
    it, an index of the rows not done yet and one of the rows a sender holds. (No
    SQLite counterpart: a SQLite state has one sender at a time.)
    """
    for statement in _SHARING:
        conn.execute(statement)


def _held_while_open(conn: Connection) -> None:
    """5: the index of the rows a sender holds keeps only those not done yet.

    A row keeps its sender once it is done; an index of every row with a sender made
    each claim (which looks for the rows of senders gone) read the whole part of the
    list already sent.
    """
    conn.execute("DROP INDEX ledger_recipients_held")
    conn.execute(
        "CREATE INDEX ledger_recipients_held ON ledger_recipients (edition_id, worker)"
        " WHERE worker IS NOT NULL AND state IN ('pending', 'in_flight')"
    )


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (
    _create_tables,
    _recipient_count,
    _suppressions_and_members,
    _shared_sends,
    _held_while_open,
)
LATEST = len(MIGRATIONS)

_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER PRIMARY KEY,
        applied TEXT NOT NULL
    )
"""


def schema_version(conn: Connection) -> int:
    """The number of the last migration applied to the database (0: none, or a new one)."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    return _applied(conn) if row and row[0] else 0


def _applied(conn: Connection) -> int:
    found = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(found[0]) if found else 0


def _refuse_newer(where: str, version: int) -> None:
    if version > LATEST:
        raise StateError(
            f"{where}: made by a newer version of newsletter (schema {version}, this one knows "
            f"{LATEST}); upgrade newsletter or use another database"
        )


def migrate(conn: Connection, where: str) -> int:
    """Bring the database up to ``LATEST`` in one transaction; return the version it had.

    ``where`` names the database in messages (its URL, masked). Raises ``StateError``
    for a newer database and ``psycopg.Error`` when it cannot be read or written (the
    caller explains those).
    """
    version = schema_version(conn)
    _refuse_newer(where, version)
    if version == LATEST:
        return version
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", advisory_key(MIGRATION_LOCK))
        # Another process may have migrated it meanwhile. Read the table itself: opening
        # it brings this session's catalog up to date, which the advisory lock does not.
        conn.execute(_VERSION_TABLE)
        version = _applied(conn)
        _refuse_newer(where, version)
        applied = to_stamp(now_utc())
        for number in range(version + 1, LATEST + 1):
            MIGRATIONS[number - 1](conn)
            conn.execute(
                "INSERT INTO schema_version (version, applied) VALUES (%s, %s)", (number, applied)
            )
    return version
