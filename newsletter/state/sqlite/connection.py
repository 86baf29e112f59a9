"""Open the SQLite state file: the one place that connects, sets the file up and migrates it.

One file (``<state_dir>/state.sqlite3``) holds every tenant's tables (``history_``,
``archive_``, ``ledger_``, ``schedule_``, ``suppressions``, ``members``, ``bounce_events``).
It is in WAL mode, so a reader (``status``) never waits for a writer (a send), and every
connection waits up to a busy timeout for another writer instead of failing at once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

from newsletter.errors import NewsletterError, StateError
from newsletter.state.sqlite.migrations import migrate

BUSY_TIMEOUT_S = 30.0


def state_error(path: Path, what: str, err: BaseException) -> StateError:
    """Explain a database failure: busy (another run), or unusable (permissions, damage)."""
    if "locked" in str(err) or "busy" in str(err):
        return StateError(
            f"{path}: the state database stayed busy for {BUSY_TIMEOUT_S:g} s "
            "(another newsletter run is using it); try again when that run has finished"
        )
    return StateError(
        f"{path}: {what} the state database ({err}); check that the folder is writable "
        "and the file is not damaged"
    )


class Errors(Protocol):
    """How a tenant explains a failure to open the file (the ledger has its own words)."""

    def folder(self, path: Path, err: OSError) -> NewsletterError:
        """The folder of the file cannot be made."""

    def database(self, path: Path, action: str, err: BaseException) -> NewsletterError:
        """SQLite failed to ``open`` the file or to ``use`` it (set it up, migrate it)."""

    def journal(self, path: Path, mode: str) -> NewsletterError:
        """The file cannot be put in WAL mode (a durable connection needs it)."""


class StateErrors:
    """The state database's explanations (``state_error``)."""

    def folder(self, path: Path, err: OSError) -> NewsletterError:
        """The folder of the file cannot be made."""
        return state_error(path, "cannot open", err)

    def database(self, path: Path, action: str, err: BaseException) -> NewsletterError:
        """SQLite failed to ``open`` the file or to ``use`` it (set it up, migrate it)."""
        return state_error(path, f"cannot {action}", err)

    def journal(self, path: Path, mode: str) -> NewsletterError:
        """The file cannot be put in WAL mode (a durable connection needs it)."""
        return StateError(
            f"{path}: SQLite cannot use write-ahead logging here (journal mode {mode!r}); "
            "put output.state_dir on a local disk"
        )


STATE_ERRORS = StateErrors()


def upgrade(path: Path) -> int:
    """Create the state file at ``path`` or migrate it; return the schema version it had."""
    conn, before = _open(path)
    conn.close()
    return before


def connect(
    path: Path,
    *,
    threads: bool = False,
    durable: bool = False,
    busy_timeout: float = BUSY_TIMEOUT_S,
    errors: Errors = STATE_ERRORS,
) -> sqlite3.Connection:
    """Open (and create) the state file at ``path``, migrated to the current schema.

    The connection is in autocommit mode (a tenant opens its own transactions), waits
    ``busy_timeout`` seconds for another writer and enforces foreign keys. ``threads``
    lets several threads use it (the caller serializes them). ``durable`` is the
    ledger's: a commit is on disk when it returns (``synchronous = FULL``), and a file
    that cannot use WAL is refused. Failures are explained by ``errors``; a file made
    by a newer version of newsletter is refused with a ``StateError``.
    """
    conn, _ = _open(
        path, threads=threads, durable=durable, busy_timeout=busy_timeout, errors=errors
    )
    return conn


def _open(
    path: Path,
    *,
    threads: bool = False,
    durable: bool = False,
    busy_timeout: float = BUSY_TIMEOUT_S,
    errors: Errors = STATE_ERRORS,
) -> tuple[sqlite3.Connection, int]:
    """Open the file as ``connect`` does; also return the schema version it had."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise errors.folder(path, err) from err
    try:
        conn = sqlite3.connect(
            str(path),
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=not threads,
        )
    except (OSError, sqlite3.Error) as err:
        raise errors.database(path, "open", err) from err
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if durable and mode.lower() != "wal":
            raise errors.journal(path, mode)
        if durable:
            conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        before = migrate(conn, path)
    except sqlite3.Error as err:
        conn.close()
        raise errors.database(path, "use", err) from err
    except BaseException:
        conn.close()
        raise
    return conn, before
