"""Claim each due slot in the state database and run it: once (cron), or for ever."""

from __future__ import annotations

import difflib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from newsletter.clock import now_utc
from newsletter.config.schedules import EXAMPLE
from newsletter.config.settings import Schedule, Settings
from newsletter.errors import ConfigError, NewsletterError, NothingToSend
from newsletter.scheduling.outcome import Send, SlotOutcome, SlotRun
from newsletter.scheduling.sending import pipeline_send
from newsletter.scheduling.timeline import (
    Slot,
    aware,
    count_slots_between,
    latest_slot,
    next_slot,
    span,
)
from newsletter.state.api import ProcessLock, SlotRecord, SlotStore
from newsletter.state.openers import open_lock, open_slots

log = logging.getLogger("newsletter.schedule")

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
    return tuple(settings.schedules)


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
        return f"missed by {span(late)}, beyond the {span(schedule.grace)} grace window{more}"

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


def _send_lock(settings: Settings) -> ProcessLock:
    return open_lock(settings.paths.state, SEND_LOCK)


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
    moment = aware(now) if now is not None else now_utc()
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
            f"{settings.paths.state.where}; try again when it has finished"
        )
    try:
        with open_slots(settings.paths.state) as store:
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
    lock = _runner_lock(settings)
    nap = sleep or stop.wait
    try:
        with open_slots(settings.paths.state) as store:
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
        if lock is not None:
            lock.release()
    log.info("scheduler stopped")


def _runner_lock(settings: Settings) -> ProcessLock | None:
    """One scheduler per state folder; any number per shared database (``None``: no lock).

    Schedulers on several hosts that share a PostgreSQL state may all run: each slot is
    claimed in the database, and one scheduler at a time sends (``SEND_LOCK``).
    """
    if settings.paths.state.shared:
        return None
    lock = open_lock(settings.paths.state, RUNNER_LOCK)
    if not lock.acquire():
        raise NewsletterError(
            f"another 'newsletter schedule run' (pid {lock.holder()}) is already running with "
            f"the state in {settings.paths.state.where}; stop it first"
        )
    return lock


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
