"""Slot arithmetic: the wall times a cron expression names, placed on the time line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from newsletter.config.settings import Schedule


@dataclass(frozen=True)
class Slot:
    """One firing of a schedule: its local wall time and the instant it is due."""

    schedule: str
    wall: datetime  # naive local time the cron expression names
    at: datetime  # aware UTC instant when it is due
    zone: ZoneInfo

    @property
    def key(self) -> str:
        """The slot's identity in the state database."""
        return f"{self.schedule}@{self.wall.isoformat(timespec='seconds')}"

    @property
    def local(self) -> datetime:
        """When it is due, in the schedule's time zone."""
        return self.at.astimezone(self.zone)

    @property
    def shifted(self) -> bool:
        """Whether the wall time does not exist that day (clocks went forward)."""
        return self.local.replace(tzinfo=None) != self.wall

    def label(self) -> str:
        """How logs and lists name the slot."""
        if self.shifted:
            return (
                f"{self.schedule} {_clock_text(self.wall)} (clocks skip it in "
                f"{self.zone.key}: due at {self.local:%H:%M %Z})"
            )
        return f"{self.schedule} {_clock_text(self.wall)} {self.local:%Z}"


def _clock_text(moment: datetime) -> str:
    pattern = "%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M"
    return moment.strftime(pattern)


def place(wall: datetime, zone: ZoneInfo) -> datetime:
    """Put a local wall time on the time line (UTC): its first occurrence, or a gap's end."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    return _gap_end(wall, zone)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant clocks jumped over ``wall`` (the first one with the new offset)."""
    before = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    after = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    if before >= after:
        return datetime.fromtimestamp(after, UTC)
    target = datetime.fromtimestamp(after, UTC).astimezone(zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == target:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0, fold=0)


def _walls(expr: str, start: datetime, *, forward: bool) -> Iterator[datetime]:
    """Local wall times named by ``expr``, strictly after (or before) ``start``."""
    it = croniter(expr, start, ret_type=datetime)
    while True:
        try:
            yield it.get_next(datetime) if forward else it.get_prev(datetime)
        except (CroniterError, OverflowError):
            return


def aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {moment!r}")
    return moment


def slots_after(schedule: Schedule, after: datetime) -> Iterator[Slot]:
    """The schedule's slots due strictly after ``after``, in order, one per instant."""
    zone = schedule.timezone
    last = aware(after)
    for wall in _walls(schedule.cron, _wall(after, zone), forward=True):
        at = place(wall, zone)
        if at > last:
            last = at
            yield Slot(schedule.name, wall, at, zone)


def next_slot(schedule: Schedule, now: datetime) -> Slot | None:
    """The first slot due after ``now``, if the expression fires again."""
    return next(slots_after(schedule, now), None)


def latest_slot(schedule: Schedule, now: datetime) -> Slot | None:
    """The last slot due at or before ``now``."""
    zone = schedule.timezone
    local = aware(now).astimezone(zone)
    wall = _wall(now, zone)
    first_offset = wall.replace(tzinfo=zone, fold=0).utcoffset() or timedelta(0)
    ahead = max(first_offset - (local.utcoffset() or timedelta(0)), timedelta(0))
    found: tuple[datetime, datetime] | None = None
    for candidate in _walls(schedule.cron, wall + ahead + timedelta(seconds=1), forward=False):
        at = place(candidate, zone)
        if found is None:
            if at <= now:
                found = (candidate, at)
        elif at == found[1]:
            found = (candidate, at)
        else:
            break
    return Slot(schedule.name, found[0], found[1], zone) if found else None


def count_slots_between(schedule: Schedule, start: datetime, end: datetime, cap: int) -> int:
    """How many slots are due after ``start`` and before ``end`` (at most ``cap``)."""
    count = 0
    for slot in slots_after(schedule, start):
        if slot.at >= end or count >= cap:
            break
        count += 1
    return count


def span(delta: timedelta) -> str:
    """A duration as a person says it: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 days 4 h``."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        return f"{hours // 24} days {hours % 24} h"
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
