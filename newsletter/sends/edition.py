"""The one path of every send, live or dry, by hand or on schedule: ``send_edition``."""

from __future__ import annotations

from newsletter.config.settings import Settings
from newsletter.sends.alone import send_alone, write_dry_run
from newsletter.sends.gate import check_live_settings, prepare
from newsletter.sends.plan import SendHooks, SendPlan, SendReport
from newsletter.sends.shared import send_shared_edition


def send_edition(settings: Settings, plan: SendPlan, hooks: SendHooks = SendHooks()) -> SendReport:
    """Send an edition: the one path of every send, live or dry, by hand or on schedule.

    Decides build-or-resume (a new edition too soon after the last raises ``TooSoon``
    for a ``spaced`` plan), runs the preflight gate (an error stops the send before
    the first message), then writes the outbox or, live, stores the edition and sends
    through the ledger; its articles count as sent from the first accepted message.
    """
    if plan.dry_run is None:
        check_live_settings(settings)
    if settings.paths.state.shared and plan.dry_run is None and not plan.test_copy:
        return send_shared_edition(settings, plan, hooks)
    prepared = prepare(settings, plan, hooks.warn)
    hooks.ready(prepared)
    if plan.dry_run is not None:
        written, reach = write_dry_run(settings, prepared, plan.audience, plan.dry_run)
        return SendReport(prepared=prepared, reach=reach, written=written)
    summary, reach = send_alone(settings, prepared, plan.audience, hooks)
    stopped = hooks.stop is not None and hooks.stop.is_set()
    return SendReport(prepared=prepared, reach=reach, summary=summary, stopped=stopped)
