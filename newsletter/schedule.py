"""Scheduled sends: cron slots in a time zone, each slot sent at most once.

A *slot* is one firing of a schedule's cron expression. Its key is the schedule's
name and the slot's local date and time (``daily@2026-03-05T07:00:00``). The key is
claimed in the state database before anything is built or sent, under a file lock,
so a restart, a second instance or an external cron job that fires twice never
sends a slot twice. A slot interrupted mid-send stays ``claimed`` and is resumed
(the delivery ledger skips everyone already mailed).

Time zones and daylight saving
    The cron expression is evaluated on local wall-clock times (croniter on naive
    datetimes), then each wall time is placed on the time line with ``zoneinfo``:
    a time that happens twice (clocks go back) runs once, at its first occurrence;
    a time that does not exist (clocks go forward) runs once, at the first instant
    after the gap, and several such times collapse into one slot. A 07:00 slot stays
    at 07:00 local time all year. (croniter's own time-zone mode runs a repeated time
    twice, hence this.)

Missed slots
    Only the latest due slot of a schedule is ever considered: several missed slots
    never become a burst of sends. It is caught up when it is at most ``grace`` late,
    otherwise recorded as skipped and logged.

No stale, no empty
    "Nothing new" (``NothingToSend``) skips the slot. So does a lead story older than
    the schedule's ``max_age_hours``.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from newsletter.clock import now_utc
from newsletter.config.schedules import EXAMPLE
from newsletter.config.settings import Schedule, Settings
from newsletter.errors import (
    EXIT_NOTHING_NEW,
    EXIT_OK,
    EXIT_PROBLEM,
    ConfigError,
    NewsletterError,
    NothingToSend,
    OutputExistsError,
)
from newsletter.locks import FileLock
from newsletter.pipeline import (
    Audience,
    BuildOptions,
    DryRun,
    Resume,
    SendHooks,
    SendPlan,
    send_edition,
)
from newsletter.state.api import SlotRecord, SlotStore
from newsletter.state.openers import open_slots

log = logging.getLogger("newsletter.schedule")

CATCH_UP_AFTER = timedelta(minutes=1)
MAX_NAP_SECONDS = 60.0
RUNNER_LOCK = "schedule-runner.lock"
SEND_LOCK = "schedule-send.lock"

Clock = Callable[[], datetime]
Sleep = Callable[[float], object]


def configured_schedules(
    settings: Settings, schedules: Sequence[Schedule] | None = None
) -> tuple[Schedule, ...]:
    """The schedules to use: those given, else the settings' own."""
    if schedules is not None:
        return tuple(schedules)
    return tuple(getattr(settings, "schedules", ()))


def find_schedule(schedules: Sequence[Schedule], name: str) -> Schedule:
    """The schedule called ``name``; a ``ConfigError`` naming the choices otherwise."""
    for schedule in schedules:
        if schedule.name == name:
            return schedule
    if not schedules:
        raise ConfigError(
            f"no schedule named {name!r}: the configuration has no [[schedule]]; add one:\n"
            f"{EXAMPLE}"
        )
    names = ", ".join(s.name for s in schedules)
    hint = difflib.get_close_matches(name, [s.name for s in schedules], n=1)
    tip = f"; did you mean {hint[0]!r}?" if hint else ""
    raise ConfigError(f"no schedule named {name!r} (the configuration has: {names}){tip}")


# --------------------------------------------------------------------------- slots


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


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {moment!r}")
    return moment


def slots_after(schedule: Schedule, after: datetime) -> Iterator[Slot]:
    """The schedule's slots due strictly after ``after``, in order, one per instant."""
    zone = schedule.timezone
    last = _aware(after)
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
    local = _aware(now).astimezone(zone)
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


# --------------------------------------------------------------------------- locks


# --------------------------------------------------------------------------- running a slot


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
            late = f"caught up {_span(self.late)} late: " if self.late >= CATCH_UP_AFTER else ""
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


def _span(delta: timedelta) -> str:
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


def _already(record: SlotRecord) -> str:
    if record.state == "sent":
        return (
            f"already sent (edition {record.edition}, {record.sent} sent) at {record.finished_at}"
        )
    return f"already {record.state} at {record.finished_at}: {record.reason}"


class SlotRunner:
    """Runs slots of the configured schedules against one state database."""

    def __init__(
        self,
        settings: Settings,
        store: SlotStore,
        send: Send,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.store = store
        self.send = send
        self.stop = stop

    def attempt(
        self, schedule: Schedule, slot: Slot, now: datetime, *, retry_failed: bool
    ) -> SlotOutcome:
        """Claim and run ``slot`` unless it was handled, or record it missed; hold the send lock."""
        late = max(now - slot.at, timedelta(0))
        missed = self._missed_reason(schedule, slot, late)
        claim = self.store.claim(
            slot, now, in_grace=late <= schedule.grace, retry_failed=retry_failed, reason=missed
        )
        upcoming = next_slot(schedule, now)
        if claim.kind == "done" and claim.record is not None:
            return SlotOutcome(
                schedule.name,
                "done",
                slot,
                _already(claim.record),
                edition=claim.record.edition,
                next_slot=upcoming,
            )
        if claim.kind == "missed":
            return SlotOutcome(
                schedule.name, "skipped", slot, missed, late=late, next_slot=upcoming
            )
        record = claim.record
        run = SlotRun(
            settings=self.settings,
            schedule=schedule,
            slot=slot,
            now=now,
            resuming=claim.kind == "resume",
            previous_edition=record.edition if record else "",
        )
        return self._run(run, late, upcoming)

    def _missed_reason(self, schedule: Schedule, slot: Slot, late: timedelta) -> str:
        if late <= schedule.grace:
            return ""
        earlier = self.store.latest(schedule.name)
        more = ""
        if earlier is not None and earlier.key != slot.key:
            since = datetime.fromisoformat(earlier.slot_utc)
            count = count_slots_between(schedule, since, slot.at, cap=1000)
            if count:
                more = f"; {count}{'+' if count >= 1000 else ''} earlier slot(s) also missed"
        return f"missed by {_span(late)}, beyond the {_span(schedule.grace)} grace window{more}"

    def _run(self, run: SlotRun, late: timedelta, upcoming: Slot | None) -> SlotOutcome:
        key, name = run.slot.key, run.schedule.name
        base = SlotOutcome(
            name, "sent", run.slot, late=late, resumed=run.resuming, next_slot=upcoming
        )
        known: list[str] = []

        def started(edition: str) -> None:
            known.append(edition)
            self.store.set_edition(key, edition)

        try:
            delivery = self.send(run, started, self.stop)
        except NothingToSend as err:
            self.store.finish(key, "skipped", run.now, reason=str(err))
            return replace(base, state="skipped", reason=str(err), edition="".join(known[-1:]))
        except NewsletterError as err:
            self.store.finish(key, "failed", run.now, reason=str(err))
            return replace(base, state="failed", reason=str(err), edition="".join(known[-1:]))
        base = replace(base, edition=delivery.edition)
        if delivery.complete:
            self.store.finish(key, "sent", run.now, delivery)
            return replace(base, delivery=delivery)
        if self.stop.is_set():
            self.store.finish(key, "claimed", run.now, delivery, reason="interrupted")
            return replace(base, state="interrupted", delivery=delivery)
        reason = f"paused: {delivery.note or 'the send did not finish'}; run it again to resume"
        self.store.finish(key, "failed", run.now, delivery, reason=reason)
        return replace(base, state="failed", reason=reason, delivery=delivery)


def _send_lock(settings: Settings) -> FileLock:
    return FileLock(settings.paths.state_dir / SEND_LOCK)


def run_slot(
    settings: Settings,
    name: str,
    now: datetime | None = None,
    *,
    schedules: Sequence[Schedule] | None = None,
    send: Send | None = None,
    stop: threading.Event | None = None,
    lock_wait: float | None = None,
) -> SlotOutcome:
    """Run the latest due slot of schedule ``name`` once (for cron or a systemd timer).

    Idempotent: a slot already sent or skipped is left alone; one interrupted or
    failed is resumed. Waits for another process sending a slot (``lock_wait``
    seconds, ``None``: as long as it takes).
    """
    schedule = find_schedule(configured_schedules(settings, schedules), name)
    moment = _aware(now) if now is not None else now_utc()
    stop = stop or threading.Event()
    slot = latest_slot(schedule, moment)
    if slot is None:
        outcome = SlotOutcome(name, "idle", next_slot=next_slot(schedule, moment))
        log.info("%s", outcome.describe())
        return outcome
    lock = _send_lock(settings)
    if not lock.acquire(wait=lock_wait, stop=stop):
        if stop.is_set():
            raise NewsletterError(f"stopped while waiting to run {slot.label()}; nothing was sent")
        raise NewsletterError(
            f"another process (pid {lock.holder()}) is sending a slot with the state in "
            f"{settings.paths.state_dir}; try again when it has finished"
        )
    try:
        with open_slots(settings.paths.state_db) as store:
            runner = SlotRunner(settings, store, send or pipeline_send, stop)
            outcome = runner.attempt(schedule, slot, moment, retry_failed=True)
    finally:
        lock.release()
    log.log(outcome.level, "%s", outcome.describe())
    return outcome


# --------------------------------------------------------------------------- the long run


def run_forever(
    settings: Settings,
    stop: threading.Event,
    *,
    schedules: Sequence[Schedule] | None = None,
    clock: Clock = now_utc,
    sleep: Sleep | None = None,
    send: Send | None = None,
    max_nap: float = MAX_NAP_SECONDS,
) -> None:
    """Build and send each schedule's slots as they fall due, until ``stop`` is set.

    Between slots it sleeps at most ``max_nap`` seconds, so a clock change or a
    suspended machine is noticed soon.
    """
    chosen = configured_schedules(settings, schedules)
    if not chosen:
        raise ConfigError(
            f"nothing to run: the configuration has no [[schedule]]; add one, e.g.\n{EXAMPLE}",
            settings.paths.config_file,
        )
    lock = FileLock(settings.paths.state_dir / RUNNER_LOCK)
    if not lock.acquire():
        raise NewsletterError(
            f"another 'newsletter schedule run' (pid {lock.holder()}) is already running with "
            f"the state in {settings.paths.state_dir}; stop it first"
        )
    nap = sleep or stop.wait
    try:
        with open_slots(settings.paths.state_db) as store:
            runner = SlotRunner(settings, store, send or pipeline_send, stop)
            _announce(chosen, clock())
            while not stop.is_set():
                for schedule in chosen:
                    if stop.is_set():
                        break
                    _tick(runner, schedule, clock())
                if not stop.is_set():
                    nap(_pause(chosen, clock(), max_nap))
    finally:
        lock.release()
    log.info("scheduler stopped")


def _announce(schedules: Sequence[Schedule], now: datetime) -> None:
    log.info("scheduler started (pid %d)", os.getpid())
    for schedule in schedules:
        upcoming = next_slot(schedule, now)
        when = (
            f"next slot {upcoming.label()} ({upcoming.at:%Y-%m-%d %H:%M:%S} UTC)"
            if upcoming
            else "no future slot"
        )
        log.info("%s: %s, %s, %s", schedule.name, schedule.cron, schedule.mode, when)


def _tick(runner: SlotRunner, schedule: Schedule, now: datetime) -> None:
    """Run ``schedule``'s latest slot if it is due and not handled yet."""
    slot = latest_slot(schedule, now)
    if slot is None:
        return
    record = runner.store.get(slot.key)
    if record is not None and record.done:
        return
    first_run = record is None and runner.store.latest(schedule.name) is None
    if first_run and now - slot.at > schedule.grace:
        return
    lock = _send_lock(runner.settings)
    if not lock.acquire(wait=None, stop=runner.stop):
        return
    try:
        outcome = runner.attempt(schedule, slot, now, retry_failed=False)
    finally:
        lock.release()
    log.log(outcome.level, "%s", outcome.describe())


def _pause(schedules: Sequence[Schedule], now: datetime, longest: float) -> float:
    """Seconds to sleep: until the next slot, at most ``longest``."""
    upcoming = [s.at for s in (next_slot(schedule, now) for schedule in schedules) if s]
    if not upcoming:
        return longest
    seconds = (min(upcoming) - now).total_seconds()
    return min(max(seconds, 0.01), longest)


# --------------------------------------------------------------------------- listing


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
    if not settings.paths.state_db.exists():
        return found
    with open_slots(settings.paths.state_db) as store:
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
            f"grace {_span(s.grace)}{age}"
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


# --------------------------------------------------------------------------- the pipeline


def max_age(settings: Settings, schedule: Schedule) -> timedelta:
    """How old the lead story may be: the schedule's ``max_age_hours``, else the lookback."""
    hours = schedule.max_age_hours or settings.selection.lookback_hours
    return timedelta(hours=hours)


def slot_plan(run: SlotRun) -> SendPlan:
    """What a slot sends: its schedule's sources, list and outbox; nothing older than the max age.

    A live slot first finishes an interrupted edition: its own, or one still fresh.
    """
    settings, schedule = run.settings, run.schedule
    limit = max_age(settings, schedule)
    audience = Audience(subscribers_path=schedule.subscribers or settings.paths.subscribers)
    build = BuildOptions(sources=schedule.sources, now=run.now, max_age=limit)
    if schedule.dry_run:
        outbox = schedule.outbox or settings.paths.outbox
        return SendPlan(audience, build, resume=None, dry_run=DryRun(outbox))
    resume = Resume(edition_id=run.previous_edition, not_before=run.now - limit)
    return SendPlan(audience, build, resume=resume)


def pipeline_send(run: SlotRun, started: Callable[[str], None], stop: threading.Event) -> Delivery:
    """Send the slot's edition through the one send path (``pipeline.send_edition``)."""
    settings, label = run.settings, run.slot.label()
    plan = slot_plan(run)
    hooks = SendHooks(
        warn=lambda message: log.warning("%s: %s", label, message),
        ready=lambda prepared: started(prepared.edition.id),
        stop=stop,
    )
    try:
        report = send_edition(settings, plan, hooks)
    except OutputExistsError as err:  # a dry-run slot whose edition is on disk already
        outbox = plan.dry_run.outbox if plan.dry_run else settings.paths.outbox
        if run.resuming:
            return Delivery(
                edition=run.previous_edition,
                where=str(outbox),
                note=f"already written earlier ({err})",
            )
        raise NothingToSend(f"nothing new: this edition is already in {outbox} ({err})") from err
    edition = report.prepared.edition.id
    resumed = f"resumed edition {edition}, interrupted earlier" if report.prepared.resumed else ""
    if report.written is not None:
        return Delivery(
            edition=edition,
            sent=report.written.written,
            where=f"dry run to {report.written.folder}",
        )
    summary = report.summary
    assert summary is not None  # a live plan always has a summary
    return Delivery(
        edition=edition,
        sent=summary.sent,
        failed=summary.failed,
        deferred=summary.deferred,
        complete=report.complete,
        where=f"via {settings.smtp.host}:{settings.smtp.effective_port}",
        note="; ".join(filter(None, (resumed, summary.pause_reason if summary.paused else ""))),
    )
