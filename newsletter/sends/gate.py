"""Before the first message: the live settings, the edition built or resumed, the gate.

The preflight gate stops a send with an error before anything goes out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from newsletter.bookkeeping import (
    check_spacing,
    count_if_reached,
    unfinished_edition,
)
from newsletter.clock import now_utc
from newsletter.config.settings import Settings
from newsletter.delivery.smtp.settings import check_smtp_settings
from newsletter.errors import DeliveryError, NewsletterError
from newsletter.models import Edition
from newsletter.pipeline import build_edition, preflight_edition
from newsletter.preflight.findings import ERROR, raise_for_errors
from newsletter.sends.plan import Prepared, Resume, SendPlan
from newsletter.state.openers import open_ledger


def check_live_settings(settings: Settings) -> None:
    """Raise unless these settings can send live mail (SMTP settings, a signing key)."""
    check_smtp_settings(settings.smtp)
    if not settings.has_signing_key:
        raise DeliveryError(
            "NEWSLETTER_SIGNING_KEY is not set: refusing to send live mail whose unsubscribe "
            "links could be forged; set it to a long random secret (keep it the same for "
            "every send) or use --dry-run"
        )


def prepare(settings: Settings, plan: SendPlan, warn: Callable[[str], None]) -> Prepared:
    """Resume an interrupted edition or build a new one; run the preflight gate."""
    resumed = _resumable(settings, plan.resume, warn) if plan.resume is not None else None
    if resumed is not None:
        edition, selection = resumed
    else:
        if plan.spaced and plan.dry_run is None and not plan.test_copy:
            check_spacing(settings, now_utc())
        try:
            result = build_edition(settings, plan.build)
        except NewsletterError as err:
            for warning in err.warnings:  # through the hook, so a schedule logs them too
                warn(warning)
            err.warnings = ()
            raise
        for warning in result.warnings:
            warn(warning)
        edition, selection = result.edition, result.selection
    findings = tuple(preflight_edition(settings, edition))
    for finding in findings:
        if finding.level != ERROR:
            warn(f"[{finding.code}] {finding.message}")
    raise_for_errors(findings)
    return Prepared(edition, selection, resumed=resumed is not None, findings=findings)


def _resumable(
    settings: Settings, rule: Resume, warn: Callable[[str], None]
) -> tuple[Edition, dict[str, Any]] | None:
    found = unfinished_edition(settings)
    if found is None:
        return None
    edition = found[0]
    if rule.edition_id and edition.id == rule.edition_id:
        return found
    if rule.not_before is None or edition.created >= rule.not_before:
        return found
    with open_ledger(settings.paths.state) as ledger:  # left behind: did it reach anyone?
        count_if_reached(settings, edition, found[1], ledger)
    warn(
        f"edition {edition.id} was interrupted earlier but is older than the max age, so the "
        "schedule does not resume it; finish it with 'newsletter send --yes' if it should "
        "still go out"
    )
    return None
