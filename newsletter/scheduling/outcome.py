"""One run of a slot: what it was handed, what sending did, and what happened to it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from newsletter.config.settings import Schedule, Settings
from newsletter.errors import EXIT_NOTHING_NEW, EXIT_OK, EXIT_PROBLEM
from newsletter.scheduling.timeline import Slot, span

CATCH_UP_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class SlotRun:
    """One attempt at a slot, as handed to the ``prepare`` step."""

    settings: Settings
    schedule: Schedule
    slot: Slot
    now: datetime
    resuming: bool = False
    previous_edition: str = ""


@dataclass(frozen=True)
class Delivery:
    """What sending did: the edition, counts, whether it finished, and where it went."""

    edition: str = ""
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    complete: bool = True
    where: str = ""
    note: str = ""


Send = Callable[[SlotRun, Callable[[str], None], threading.Event], Delivery]
"""Build (or resume) and send one slot's edition: ``send(run, started, stop)``.

``started(edition_id)`` is called once the edition is known, before the first message.
"""


@dataclass(frozen=True)
class SlotOutcome:
    """What happened to one slot.

    ``state``: ``sent``, ``skipped`` (nothing new, stale or missed), ``failed``,
    ``interrupted`` (resumes on the next run), ``done`` (handled earlier) or
    ``idle`` (no slot due yet).
    """

    schedule: str
    state: str
    slot: Slot | None = None
    reason: str = ""
    edition: str = ""
    delivery: Delivery = field(default_factory=Delivery)
    late: timedelta = timedelta(0)
    resumed: bool = False
    next_slot: Slot | None = None

    @property
    def exit_code(self) -> int:
        """0 sent or nothing to do, 3 skipped, 1 failed, interrupted or not all delivered."""
        if self.state in ("failed", "interrupted"):
            return EXIT_PROBLEM
        if self.state == "skipped":
            return EXIT_NOTHING_NEW
        if self.state == "sent" and (self.delivery.failed or self.delivery.deferred):
            return EXIT_PROBLEM
        return EXIT_OK

    @property
    def level(self) -> int:
        """The log level of the line describing it."""
        if self.state in ("failed", "interrupted"):
            return logging.ERROR if self.state == "failed" else logging.WARNING
        if self.state == "sent" and (self.delivery.failed or self.delivery.deferred):
            return logging.WARNING
        return logging.INFO

    def describe(self) -> str:
        """One line for the log: the slot, what happened and why."""
        where = self.slot.label() if self.slot else self.schedule
        return f"{where}: {self._what()}"

    def _what(self) -> str:
        d = self.delivery
        if self.state == "sent":
            late = f"caught up {span(self.late)} late: " if self.late >= CATCH_UP_AFTER else ""
            verb = "resumed and finished" if self.resumed else "sent"
            counts = f"{d.sent} sent, {d.failed} failed, {d.deferred} deferred"
            tail = f" ({d.where})" if d.where else ""
            note = f"; {d.note}" if d.note else ""
            return f"{late}{verb} edition {self.edition}: {counts}{tail}{note}"
        if self.state == "skipped":
            return f"skipped: {self.reason}"
        if self.state == "failed":
            return f"failed: {self.reason}"
        if self.state == "interrupted":
            return (
                f"interrupted after {d.sent} sent (edition {self.edition}); "
                f"the next run resumes it{': ' + d.note if d.note else ''}"
            )
        upcoming = f"; next slot {self.next_slot.label()}" if self.next_slot else ""
        if self.state == "done":
            return f"{self.reason}{upcoming}"
        return f"no slot is due yet{upcoming}"
