"""The ``[selection]``, ``[email]``, ``[sections]`` and ``[regions]`` tables.

What goes into an edition and how it reads: the selection rules, the subject and
greeting, and the maps from a source's own terms to sections and regions.
"""

from __future__ import annotations

from newsletter.config.reader import TableReader
from newsletter.config.settings import EmailSettings, SelectionRules

SUMMARY_MIN_CHARS = 100  # less is no summary: hardly a sentence before the "…"


def read_selection(top: TableReader) -> SelectionRules:
    """Read ``[selection]``: how many stories of each kind, how fresh, how alike."""
    r = top.table("selection")
    defaults = SelectionRules()
    rules = SelectionRules(
        trending=r.whole("trending", defaults.trending, 0, 50),
        opinion=r.whole("opinion", defaults.opinion, 0, 50),
        lookback_hours=r.number("lookback_hours", defaults.lookback_hours, 1, 24 * 365),
        region_cap=r.whole("region_cap", defaults.region_cap, 0, 50),
        lead_sections=tuple(
            v.casefold() for v in r.strings("lead_sections", defaults.lead_sections)
        ),
        opinion_sections=tuple(
            v.casefold() for v in r.strings("opinion_sections", defaults.opinion_sections)
        ),
        min_summary_length=r.whole("min_summary_length", 0, 0, 10000),
        title_similarity=r.number("title_similarity", defaults.title_similarity, 0.5, 1.0),
        repeat_editions=r.whole("repeat_editions", defaults.repeat_editions, 0, 1000),
        lead_url=r.url("lead_url", ""),
    )
    r.finish()
    return rules


def read_email(top: TableReader) -> EmailSettings:
    """Read ``[email]`` (subject, preheader, greeting, summary length) and ``[email.utm]``."""
    e = top.table("email")
    utm_table = e.table("utm")
    utm = tuple((k, utm_table.text(k, "")) for k in list(utm_table.data))
    utm_table.finish()
    email = EmailSettings(
        subject=e.text("subject", ""),
        preheader=e.text("preheader", ""),
        greeting=e.text("greeting", EmailSettings.greeting),
        greeting_anonymous=e.text("greeting_anonymous", EmailSettings.greeting_anonymous),
        utm=tuple((k, v) for k, v in utm if v),
        summary_max_chars=e.whole(
            "summary_max_chars", EmailSettings.summary_max_chars, SUMMARY_MIN_CHARS, 20_000
        ),
    )
    for key, text in (("subject", email.subject), ("preheader", email.preheader)):
        if "\n" in text or "\r" in text:
            e.problem(key, "must be one line")
    e.finish()
    return email


def read_mapping(top: TableReader, name: str) -> dict[str, str]:
    """Read a table of a source's terms (matched case-blind) to our names."""
    table = top.table(name)
    out: dict[str, str] = {}
    for term in list(table.data):
        value = table.text(term, "")
        if value:
            out[term.strip().casefold()] = value
    table.finish()
    return out
