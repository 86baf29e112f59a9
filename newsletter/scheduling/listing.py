"""What comes next: each schedule's next slots and what happened last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from newsletter.config.schedules import EXAMPLE
from newsletter.config.settings import Schedule, Settings
from newsletter.scheduling.runner import configured_schedules
from newsletter.scheduling.timeline import Slot, slots_after, span
from newsletter.state.api import SlotRecord
from newsletter.state.openers import open_slots


@dataclass(frozen=True)
class Upcoming:
    """A schedule's next slots and the last one recorded."""

    schedule: Schedule
    slots: tuple[Slot, ...]
    last: SlotRecord | None = None


def upcoming(
    settings: Settings,
    now: datetime,
    count: int = 3,
    *,
    schedules: Sequence[Schedule] | None = None,
) -> list[Upcoming]:
    """The next ``count`` slots of each schedule, and what happened last."""
    chosen = configured_schedules(settings, schedules)
    found: list[Upcoming] = []
    for schedule in chosen:
        slots: list[Slot] = []
        for slot in slots_after(schedule, now):
            if len(slots) >= count:
                break
            slots.append(slot)
        found.append(Upcoming(schedule, tuple(slots)))
    if not settings.paths.state.exists():
        return found
    with open_slots(settings.paths.state) as store:
        return [replace(item, last=store.latest(item.schedule.name)) for item in found]


def format_upcoming(items: Sequence[Upcoming]) -> list[str]:
    """Lines for ``newsletter schedule list``."""
    if not items:
        return [f"No schedules: add [[schedule]] tables to the configuration, e.g.\n{EXAMPLE}"]
    lines: list[str] = []
    for item in items:
        s = item.schedule
        target = f" to {s.outbox}" if s.outbox else ""
        age = f", max age {s.max_age_hours:g} h" if s.max_age_hours else ""
        lines.append(
            f"{s.name}: {s.cron!r} in {s.timezone.key}, {s.mode}{target}, "
            f"grace {span(s.grace)}{age}"
        )
        for slot in item.slots:
            shifted = f"   ({slot.wall:%H:%M} does not exist that day)" if slot.shifted else ""
            lines.append(
                f"  {slot.local:%a %Y-%m-%d %H:%M:%S %Z (%z)}   "
                f"{slot.at:%Y-%m-%d %H:%M:%S} UTC{shifted}"
            )
        if not item.slots:
            lines.append("  no future slot")
        if item.last is not None:
            last = item.last
            detail = f"edition {last.edition}, {last.sent} sent" if last.edition else last.reason
            lines.append(
                f"  last: {last.slot_local} {last.state}" + (f" ({detail})" if detail else "")
            )
    return lines
