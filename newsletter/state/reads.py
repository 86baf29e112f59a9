"""Reads that are the same SQL on every backend, with the backend's placeholder."""

from __future__ import annotations

from typing import Any

from newsletter.state.api import EditionStatus, normalize_email
from newsletter.state.lists import Suppression
from newsletter.state.rows import (
    LEDGER_HEAD,
    SUPPRESSION_COLUMNS,
    edition_statuses,
    load_suppression,
    state_counts,
)


class LedgerReads:
    """What a ledger reads back; a backend gives its placeholder and runs ``_rows``."""

    _mark = "?"  # the backend's query placeholder

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read after the queued writes are committed; every row."""
        raise NotImplementedError

    def states(self, edition_id: str) -> dict[str, str]:
        """Map every known recipient (casefolded address) of an edition to its state."""
        sql = f"SELECT email, state FROM ledger_recipients WHERE edition_id = {self._mark}"  # noqa: S608
        return {str(email): str(state) for email, state in self._rows(sql, (edition_id,))}

    def summary(self, edition_id: str) -> dict[str, int]:
        """Count an edition's recipients per state (every state present, zero if none)."""
        sql = (
            "SELECT state, COUNT(*) FROM ledger_recipients "  # noqa: S608 - a placeholder only
            f"WHERE edition_id = {self._mark} GROUP BY state"
        )
        return state_counts(self._rows(sql, (edition_id,)))

    def failures(self, edition_id: str) -> list[tuple[str, str, str]]:
        """List ``(email, state, reply)`` of the failed, the deferred and the in-flight."""
        sql = (
            "SELECT email, state, reply FROM ledger_recipients "  # noqa: S608 - a placeholder only
            f"WHERE edition_id = {self._mark} AND state IN ('failed', 'deferred', 'in_flight') "
            "ORDER BY state, email"
        )
        return [(str(e), str(s), str(r)) for e, s, r in self._rows(sql, (edition_id,))]

    def editions(self) -> list[EditionStatus]:
        """Every edition in the ledger, newest first, with its counts per state."""
        heads = self._rows(
            f"SELECT {LEDGER_HEAD} FROM ledger_editions "  # noqa: S608 - fixed columns
            "ORDER BY started DESC, edition_id"
        )
        counts = self._rows(
            "SELECT edition_id, state, COUNT(*) FROM ledger_recipients GROUP BY edition_id, state"
        )
        return edition_statuses(heads, counts)

    def edition(self, edition_id: str) -> EditionStatus | None:
        """One edition's status (``None`` if the ledger has never seen it)."""
        heads = self._rows(
            f"SELECT {LEDGER_HEAD} FROM ledger_editions WHERE edition_id = {self._mark}",  # noqa: S608
            (edition_id,),
        )
        counts = self._rows(
            "SELECT edition_id, state, COUNT(*) FROM ledger_recipients "  # noqa: S608
            f"WHERE edition_id = {self._mark} GROUP BY edition_id, state",
            (edition_id,),
        )
        found = edition_statuses(heads, counts)
        return found[0] if found else None


class SuppressionReads:
    """What a suppression list reads back; a backend gives its placeholder and ``_read``."""

    _mark = "?"  # the backend's query placeholder

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read; every row."""
        raise NotImplementedError

    def get(self, email: str) -> Suppression | None:
        """The suppression of ``email``, or None."""
        rows = self._read(
            f"SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE email_key = {self._mark}",  # noqa: S608
            (normalize_email(email),),
        )
        return load_suppression(rows[0]) if rows else None

    def all(self) -> list[Suppression]:
        """Every suppression, oldest first."""
        rows = self._read(
            f"SELECT {SUPPRESSION_COLUMNS} FROM suppressions ORDER BY at, seq"  # noqa: S608
        )
        return [load_suppression(row) for row in rows]

    def count(self) -> int:
        """How many addresses are suppressed."""
        return int(self._read("SELECT COUNT(*) FROM suppressions")[0][0])
