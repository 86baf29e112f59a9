"""The state database: one SQLite file (WAL) shared by history, ledger, archive and schedules.

Each user keeps its own tables (``history_``, ``ledger_``, ``archive_``, ``schedule_``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from newsletter.errors import StateError

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


def open_state(path: Path, *, schema: str = "", threads: bool = False) -> sqlite3.Connection:
    """Open (and create) the state database in WAL mode with a busy timeout and ``schema``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path),
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=not threads,
        )
    except (OSError, sqlite3.Error) as err:
        raise state_error(path, "cannot open", err) from err
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        if schema:
            conn.executescript(schema)
    except sqlite3.Error as err:
        conn.close()
        raise state_error(path, "cannot use", err) from err
    return conn
