"""A send by one sender: the outbox of a dry run, or every recipient through the ledger and SMTP."""

from __future__ import annotations

from contextlib import closing

from newsletter.audience import (
    Audience,
    Reach,
    close_suppressed,
    expected,
    held_in,
    recipients,
    watching,
)
from newsletter.bookkeeping import (
    CountOnFirstAcceptance,
    count_if_reached,
)
from newsletter.clock import now_utc
from newsletter.config.settings import Settings
from newsletter.delivery.dryrun import DryRunResult, write_outbox
from newsletter.delivery.smtp.outcome import SendSummary
from newsletter.delivery.smtp.pool import send_messages
from newsletter.messages import MessageFactory
from newsletter.pipeline import Messages
from newsletter.sends.locks import send_lock
from newsletter.sends.plan import DryRun, Prepared, SendHooks
from newsletter.state.openers import open_editions, open_ledger


def write_dry_run(
    settings: Settings, prepared: Prepared, audience: Audience, plan: DryRun
) -> tuple[DryRunResult, Reach]:
    """Write one .eml per recipient (or one mbox) and a manifest; touch no network."""
    factory = MessageFactory(prepared.edition, settings)
    reach = Reach.of(audience)
    outcome = write_outbox(
        prepared.edition,
        factory,
        recipients(audience, reach, held_in(settings.paths.state)),
        plan.outbox,
        force=plan.force,
        selection=prepared.selection,
        mode=plan.mode,
        sample=plan.sample,
    )
    return outcome, reach


def send_alone(
    settings: Settings, prepared: Prepared, audience: Audience, hooks: SendHooks
) -> tuple[SendSummary, Reach]:
    """Send over SMTP, one sender per state folder, every recipient through the ledger."""
    with send_lock(settings):
        return _send_through_ledger(settings, prepared, audience, hooks)


def _send_through_ledger(
    settings: Settings, prepared: Prepared, audience: Audience, hooks: SendHooks
) -> tuple[SendSummary, Reach]:
    edition, test_copy = prepared.edition, audience.to is not None
    started = now_utc()
    messages = Messages(settings, edition, date=started)
    reach = Reach.of(audience)
    ledger_id = edition.id
    if test_copy:  # a test copy: its own ledger entry, so it can be sent again
        ledger_id = f"{edition.id}+test-{started:%Y%m%dT%H%M%S%f}"
    envelope = settings.return_path
    state = settings.paths.state
    with open_ledger(state) as ledger, watching(state) as (held, watch):
        known = ledger.states(ledger_id)
        close_suppressed(
            ledger, ledger_id, known, watch, resend=settings.smtp.in_flight == "resend"
        )
        total = expected(audience, held, known)  # the list's errors surface here
        progress = hooks.progress
        if not test_copy:
            with open_editions(state) as archive:
                archive.save(edition, prepared.selection, started)
            # A resumed send whose earlier run reached someone counts at once (a crash may
            # have come between the first acceptance and its record); else at the first.
            counted = count_if_reached(settings, edition, prepared.selection, ledger)
            progress = CountOnFirstAcceptance(
                settings, edition, prepared.selection, progress, counted=counted
            )
        ledger.start(ledger_id, edition.subject, total)
        with closing(messages.stream(recipients(audience, reach, held), reach.scan)) as stream:
            summary = send_messages(
                stream,
                settings.smtp,
                ledger,
                ledger_id,
                envelope_from=envelope,
                progress=progress,
                stop=hooks.stop,
                suppressed=watch.reason,
            )
    stopped = hooks.stop is not None and hooks.stop.is_set()
    if not test_copy and not summary.paused and not stopped:
        with open_editions(state) as archive:
            archive.set_status(edition.id, "done", now_utc())
    return summary, reach
