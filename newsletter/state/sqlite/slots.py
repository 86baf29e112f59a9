"""Schedule slots in the state file: one row per slot that was claimed or skipped.

Claiming a slot is one transaction, so a restart, a second instance or a cron job that
fires twice finds the slot taken (``newsletter.scheduling`` holds the rules around it).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from newsletter.state.api import Claim, DeliveryCounts, SlotLike, SlotRecord
from newsletter.state.rows import SLOT_COLUMNS, claim_kind
from newsletter.state.sqlite.connection import connect
from newsletter.state.tenant import Tenant
from newsletter.state.timestamps import to_stamp


class SqliteSlotStore(Tenant):
    """The ``schedule_slots`` table: one row per slot that was claimed or skipped."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self._conn = connect(Path(db_path))

    def get(self, key: str) -> SlotRecord | None:
        """The record of one slot."""
        row = self._conn.execute(
            f"SELECT {SLOT_COLUMNS} FROM schedule_slots WHERE key = ?",  # noqa: S608 - fixed columns
            (key,),
        ).fetchone()
        return SlotRecord(*row) if row else None

    def latest(self, schedule: str) -> SlotRecord | None:
        """The schedule's most recent recorded slot."""
        row = self._conn.execute(
            f"SELECT {SLOT_COLUMNS} FROM schedule_slots WHERE schedule = ?"  # noqa: S608
            " ORDER BY slot_utc DESC LIMIT 1",
            (schedule,),
        ).fetchone()
        return SlotRecord(*row) if row else None

    def claim(
        self, slot: SlotLike, now: datetime, *, in_grace: bool, retry_failed: bool, reason: str = ""
    ) -> Claim:
        """Claim ``slot`` for sending, or record it as missed; atomically."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            claim = self._claim(
                slot, now, in_grace=in_grace, retry_failed=retry_failed, reason=reason
            )
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return claim

    def _claim(
        self, slot: SlotLike, now: datetime, *, in_grace: bool, retry_failed: bool, reason: str
    ) -> Claim:
        record = self.get(slot.key)
        kind = claim_kind(record, in_grace=in_grace, retry_failed=retry_failed)
        if kind == "resume":
            self._conn.execute(
                "UPDATE schedule_slots SET attempts = attempts + 1, pid = ? WHERE key = ?",
                (os.getpid(), slot.key),
            )
        elif kind == "missed" and record is None:
            self._insert(slot, now, "skipped", reason, finished=True)
        elif kind == "retry":
            self._conn.execute(
                "UPDATE schedule_slots SET state = 'claimed', reason = '', attempts = attempts + 1,"
                " pid = ?, claimed_at = ?, finished_at = NULL WHERE key = ?",
                (os.getpid(), to_stamp(now), slot.key),
            )
        elif kind == "new":
            self._insert(slot, now, "claimed", "", finished=False)
        return Claim(kind, record if kind == "done" else self.get(slot.key))

    def _insert(
        self, slot: SlotLike, now: datetime, state: str, reason: str, *, finished: bool
    ) -> None:
        self._conn.execute(
            "INSERT INTO schedule_slots (key, schedule, slot_local, slot_utc, state, reason,"
            " attempts, pid, claimed_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                slot.key,
                slot.schedule,
                slot.local.isoformat(),
                to_stamp(slot.at),
                state,
                reason,
                0 if finished else 1,
                os.getpid(),
                to_stamp(now),
                to_stamp(now) if finished else None,
            ),
        )

    def set_edition(self, key: str, edition: str) -> None:
        """Record which edition the slot sends (before sending it)."""
        self._conn.execute("UPDATE schedule_slots SET edition = ? WHERE key = ?", (edition, key))

    def finish(
        self,
        key: str,
        state: str,
        now: datetime,
        delivery: DeliveryCounts | None = None,
        reason: str = "",
    ) -> None:
        """Record the end of a slot (``claimed`` keeps it open for a resume)."""
        sent, failed, deferred = (
            (delivery.sent, delivery.failed, delivery.deferred) if delivery else (0, 0, 0)
        )
        self._conn.execute(
            "UPDATE schedule_slots SET state = ?, reason = ?, sent = sent + ?, failed = failed + ?,"
            " deferred = ?, finished_at = ? WHERE key = ?",
            (
                state,
                reason,
                sent,
                failed,
                deferred,
                None if state == "claimed" else to_stamp(now),
                key,
            ),
        )
