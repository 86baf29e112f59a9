"""The state backends the state tests run against, and how a test reaches into each.

A backend is its openers (each takes the place of one state store: a file path for
SQLite) and ``peek_states``, which reads the ledger through a connection of its own, as
another process would. Tests written against ``StateBackend`` run on every backend in
``BACKENDS``; the few that look inside an SQLite file name ``SQLITE``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from newsletter.state import openers
from newsletter.state.api import EditionStore, History, Ledger, SlotStore


@dataclass(frozen=True)
class StateBackend:
    """One backend under test: open each tenant at a place, peek at the ledger from outside."""

    name: str
    open_history: Callable[[Path], History]
    open_editions: Callable[[Path], EditionStore]
    open_ledger: Callable[[Path], Ledger]
    open_slots: Callable[[Path], SlotStore]
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
    open_history=openers.open_history,
    open_editions=openers.open_editions,
    open_ledger=openers.open_ledger,
    open_slots=openers.open_slots,
    peek_states=_sqlite_states,
)

BACKENDS = (SQLITE,)
