"""Open a tenant of the state: the one place that picks the backend, SQLite or PostgreSQL.

Callers pass where the state lives (``settings.paths.state``: a ``SqliteFile`` or a
``PostgresUrl``; a bare path is a SQLite file) and get the protocols of
``newsletter.state.api``, so they never depend on a backend's classes. Each opener
creates what is missing (the file and its folder, the tables) and brings the schema up
to date before it returns.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from newsletter.config.state import PostgresUrl, SqliteFile, StateLocation
from newsletter.errors import StateError
from newsletter.locks import FileLock
from newsletter.state.api import (
    EditionStore,
    History,
    Ledger,
    ProcessLock,
    SchemaUpgrade,
    SlotStore,
)
from newsletter.state.lists import BounceLog, Members, Suppressions
from newsletter.state.postgres import connection as postgres
from newsletter.state.postgres import migrations as postgres_migrations
from newsletter.state.postgres.bounce_log import PostgresBounceLog
from newsletter.state.postgres.crew import PostgresCrew
from newsletter.state.postgres.editions import PostgresEditionStore
from newsletter.state.postgres.history import PostgresHistory
from newsletter.state.postgres.ledger import PostgresLedger
from newsletter.state.postgres.lock import AdvisoryLock
from newsletter.state.postgres.members import PostgresMembers
from newsletter.state.postgres.slots import PostgresSlotStore
from newsletter.state.postgres.suppressions import PostgresSuppressions
from newsletter.state.sharing import Crew, Membership
from newsletter.state.sqlite import connection as sqlite
from newsletter.state.sqlite import migrations as sqlite_migrations
from newsletter.state.sqlite.bounce_log import SqliteBounceLog
from newsletter.state.sqlite.editions import SqliteEditionStore
from newsletter.state.sqlite.history import SqliteHistory
from newsletter.state.sqlite.ledger import SqliteLedger
from newsletter.state.sqlite.members import SqliteMembers
from newsletter.state.sqlite.slots import SqliteSlotStore
from newsletter.state.sqlite.suppressions import SqliteSuppressions

Place = StateLocation | Path  # a path: a SQLite file


def _location(place: Place) -> StateLocation:
    return SqliteFile(place) if isinstance(place, Path) else place


def open_history(place: Place) -> History:
    """Open the record of sent editions and their articles."""
    match _location(place):
        case SqliteFile(path):
            return SqliteHistory(path)
        case PostgresUrl(url):
            return PostgresHistory(url)


def open_editions(place: Place) -> EditionStore:
    """Open the store of editions that started going out (for resuming a send)."""
    match _location(place):
        case SqliteFile(path):
            return SqliteEditionStore(path)
        case PostgresUrl(url):
            return PostgresEditionStore(url)


def open_ledger(place: Place, member: Membership | None = None) -> Ledger:
    """Open the per-recipient delivery ledger (may be shared by threads).

    ``member``: the ledger of one sender sharing an edition (PostgreSQL only), which
    writes only the rows it claimed, and only while its lease holds.
    """
    match _location(place):
        case SqliteFile(path):
            if member is not None:
                raise StateError(_ALONE.format(path=path))
            return SqliteLedger(path)
        case PostgresUrl(url, sharing):
            return PostgresLedger(url, sharing.reconnect_seconds, member)


_ALONE = (
    "{path}: senders share an edition only through a PostgreSQL state ([state] url); "
    "a SQLite state has one sender at a time"
)


def open_crew(place: Place) -> Crew:
    """Open the record of senders sharing editions: lists, leases, claims (PostgreSQL only)."""
    match _location(place):
        case SqliteFile(path):
            raise StateError(_ALONE.format(path=path))
        case PostgresUrl(url, sharing):
            return PostgresCrew(url, sharing.reconnect_seconds)


def open_slots(place: Place) -> SlotStore:
    """Open the record of schedule slots."""
    match _location(place):
        case SqliteFile(path):
            return SqliteSlotStore(path)
        case PostgresUrl(url):
            return PostgresSlotStore(url)


def open_suppressions(place: Place) -> Suppressions:
    """Open the suppression list (may be shared by threads)."""
    match _location(place):
        case SqliteFile(path):
            return SqliteSuppressions(path)
        case PostgresUrl(url, sharing):
            return PostgresSuppressions(url, sharing.reconnect_seconds)


def open_members(place: Place) -> Members:
    """Open the subscribers the tool holds."""
    match _location(place):
        case SqliteFile(path):
            return SqliteMembers(path)
        case PostgresUrl(url):
            return PostgresMembers(url)


def open_bounce_log(place: Place) -> BounceLog:
    """Open the record of reports read from the bounce mailbox."""
    match _location(place):
        case SqliteFile(path):
            return SqliteBounceLog(path)
        case PostgresUrl(url):
            return PostgresBounceLog(url)


def open_lock(place: Place, name: str) -> ProcessLock:
    """The lock called ``name`` for one process at a time per state (not yet taken).

    For a SQLite file, a file lock in its folder (one process per state folder); for
    PostgreSQL, an advisory lock in the database (one process per database, whichever
    host it runs on).
    """
    match _location(place):
        case SqliteFile(path):
            return FileLock(path.parent / name)
        case PostgresUrl(url):
            return AdvisoryLock(partial(postgres.open_session, url), name)


def migrate(place: Place) -> SchemaUpgrade:
    """Create the state's tables, or upgrade them to the current schema; say what changed."""
    location = _location(place)
    match location:
        case SqliteFile(path):
            before = sqlite.upgrade(path)
            return SchemaUpgrade(str(location), before, sqlite_migrations.LATEST)
        case PostgresUrl(url):
            before = postgres.upgrade(url)
            return SchemaUpgrade(str(location), before, postgres_migrations.LATEST)
