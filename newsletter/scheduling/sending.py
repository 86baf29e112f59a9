"""From a slot to a send: the plan a slot hands to ``send_edition``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from newsletter.audience import Audience
from newsletter.config.settings import Schedule, Settings
from newsletter.errors import NothingToSend, OutputExistsError
from newsletter.pipeline import BuildOptions
from newsletter.scheduling.outcome import Delivery, SlotRun
from newsletter.sends.edition import send_edition
from newsletter.sends.plan import DryRun, Resume, SendHooks, SendPlan

log = logging.getLogger("newsletter.schedule")


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
    """Send the slot's edition through the one send path (``send_edition``)."""
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
