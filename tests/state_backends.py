"""The state backends the state tests run against, and how a test reaches into each.

A backend is its openers (each takes the place of one state store as a path: for
SQLite the file itself; for PostgreSQL the path names a schema of its own in the test
server's database, so each test starts empty and a path opened twice is the same
store) and ``peek_states``, which reads the ledger through a connection of its own, as
another process would. Tests written against ``StateBackend`` run on every backend in
``BACKENDS`` (the ``state`` fixture of ``conftest``); the few that look inside an SQLite
file name ``SQLITE``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from pg_server import PostgresServer

from newsletter.config.state import PostgresUrl
from newsletter.state import openers
from newsletter.state.api import EditionStore, History, Ledger, SlotStore
from newsletter.state.lists import BounceLog, Members, Suppressions

BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class StateBackend:
    """One backend under test: open each tenant at a place, peek at the ledger from outside."""

    name: str
    place: Callable[[Path], Path | PostgresUrl]  # where a store is, for the functions over it
    open_history: Callable[[Path], History]
    open_editions: Callable[[Path], EditionStore]
    open_ledger: Callable[[Path], Ledger]
    open_slots: Callable[[Path], SlotStore]
    open_suppressions: Callable[[Path], Suppressions]
    open_members: Callable[[Path], Members]
    open_bounce_log: Callable[[Path], BounceLog]
    peek_states: Callable[[Path, str], dict[str, str]]

    def __str__(self) -> str:
        return self.name


def _sqlite_states(db: Path, edition: str) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT email, state FROM ledger_recipients WHERE edition_id = ?", (edition,)
        )
        return dict(rows)
    finally:
        conn.close()


SQLITE = StateBackend(
    name="sqlite",
    place=lambda path: path,
    open_history=openers.open_history,
    open_editions=openers.open_editions,
    open_ledger=openers.open_ledger,
    open_slots=openers.open_slots,
    open_suppressions=openers.open_suppressions,
    open_members=openers.open_members,
    open_bounce_log=openers.open_bounce_log,
    peek_states=_sqlite_states,
)


def schema_for(path: Path) -> str:
    """The schema that stands for the store at ``path`` (the same path, the same schema)."""
    return "t_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]


def postgres_backend(server: PostgresServer) -> StateBackend:
    """The PostgreSQL backend on ``server``: a schema of its own for each path."""

    def place(path: Path) -> PostgresUrl:
        return PostgresUrl(server.new_schema(schema_for(path)))

    def states(path: Path, edition: str) -> dict[str, str]:
        with psycopg.connect(place(path).url) as conn:
            rows = conn.execute(
                "SELECT email, state FROM ledger_recipients WHERE edition_id = %s", (edition,)
            ).fetchall()
        return {str(email): str(state) for email, state in rows}

    return StateBackend(
        name="postgresql",
        place=place,
        open_history=lambda path: openers.open_history(place(path)),
        open_editions=lambda path: openers.open_editions(place(path)),
        open_ledger=lambda path: openers.open_ledger(place(path)),
        open_slots=lambda path: openers.open_slots(place(path)),
        open_suppressions=lambda path: openers.open_suppressions(place(path)),
        open_members=lambda path: openers.open_members(place(path)),
        open_bounce_log=lambda path: openers.open_bounce_log(place(path)),
        peek_states=states,
    )
