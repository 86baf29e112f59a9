"""Open a tenant of the state file: the one place that picks the backend (SQLite today).

Callers get the protocols of ``newsletter.state.api``, so they never depend on a
backend's classes. Each opener creates the file and its folder when missing, and brings
the schema up to date before it returns.
"""

from __future__ import annotations

from pathlib import Path

from newsletter.state.api import EditionStore, History, Ledger, SlotStore
from newsletter.state.sqlite.editions import SqliteEditionStore
from newsletter.state.sqlite.history import SqliteHistory
from newsletter.state.sqlite.ledger import SqliteLedger
from newsletter.state.sqlite.slots import SqliteSlotStore


def open_history(db_path: Path) -> History:
    """Open the record of sent editions and their articles."""
    return SqliteHistory(db_path)


def open_editions(db_path: Path) -> EditionStore:
    """Open the store of editions that started going out (for resuming a send)."""
    return SqliteEditionStore(db_path)


def open_ledger(db_path: Path) -> Ledger:
    """Open the per-recipient delivery ledger (may be shared by threads)."""
    return SqliteLedger(db_path)


def open_slots(db_path: Path) -> SlotStore:
    """Open the record of schedule slots."""
    return SqliteSlotStore(db_path)
