"""Run the whole preflight on an edition and its sample message; errors come first."""

from __future__ import annotations

from newsletter.config.settings import Settings
from newsletter.models import Edition
from newsletter.preflight.content import check_html
from newsletter.preflight.findings import ERROR, Finding, Report
from newsletter.preflight.links import link_targets, probe_links
from newsletter.preflight.message import (
    check_address_in_urls,
    check_dkim,
    check_headers,
    check_preheader,
    check_raw,
    check_slots,
    check_subject,
    check_unsubscribe,
)
from newsletter.preflight.sample import domain_of, parse_sample
from newsletter.preflight.scan import scan_html
from newsletter.preflight.text import check_text


def preflight(
    edition: Edition,
    sample_message: bytes,
    settings: Settings,
    *,
    check_links: bool = False,
) -> list[Finding]:
    """Check ``edition`` and a personalized ``sample_message``; return findings, errors first."""
    out = Report()
    sample = parse_sample(sample_message, out)
    check_raw(sample_message, out)
    check_headers(sample, out)
    check_subject(sample, out)
    facts = scan_html(sample.html) if sample.html is not None else None
    if sample.html is None or facts is None:
        out.error("html-missing", "the message has no text/html part")
    else:
        check_html(sample.html, facts, out)
    check_preheader(edition, facts, out)
    check_unsubscribe(sample, facts, settings, out)
    check_slots(sample, sample_message, out)
    check_text(sample, facts, out)
    check_address_in_urls(sample, facts, out)
    check_dkim(sample_message, settings, domain_of(sample.header("From")), out)
    findings = out.findings
    if check_links and facts is not None:
        # Neither the personal unsubscribe link nor the edition's own page in the archive
        # (there only once the edition went out) can answer before the send.
        skip = [*sample.unsubscribe_urls(), settings.web.edition_url(edition.id)]
        findings += probe_links(link_targets(facts, skip))
    return sorted(findings, key=lambda f: f.level != ERROR)
