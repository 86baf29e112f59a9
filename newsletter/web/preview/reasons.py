"""Say why each story is in the edition: editor's pick, pin, score, rank or recency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from newsletter.config.settings import Settings
from newsletter.models import Article
from newsletter.pipeline import BuildResult
from newsletter.rendering.dates import stamp
from newsletter.sameness import page_key
from newsletter.selection import lead_score


@dataclass(frozen=True)
class Pick:
    """A selected story and why it was chosen."""

    place: str
    article: Article
    why: str


def explain(result: BuildResult, settings: Settings, lead_url: str = "") -> list[Pick]:
    """Say why each story is in the edition: editor's pick, pin, score, rank or recency."""
    digest = result.edition.digest
    picks: list[Pick] = []
    if digest.lead is not None:
        picks.append(
            Pick("Lead", digest.lead, _lead_reason(digest.lead, settings, lead_url, digest.now))
        )
    for number, article in enumerate(digest.trending, 1):
        picks.append(Pick(f"Trending {number}", article, _trending_reason(article)))
    zone = settings.publication.timezone
    for article in digest.opinion:
        when = article.last_changed
        dated = f", changed {stamp(when, zone)}" if when else ", undated"
        picks.append(Pick("Opinion", article, f"{article.section}: newest first{dated}"))
    return picks


def _lead_reason(article: Article, settings: Settings, lead_url: str, now: datetime | None) -> str:
    wanted = (lead_url or settings.selection.lead_url).strip()
    if wanted and (wanted == article.id or page_key(wanted) == page_key(article.url)):
        return "the editor's pick (--lead or [selection] lead_url)"
    if article.pinned:
        return "pinned by the editor"
    rules = settings.selection
    if now is None:
        return "the best lead score"
    facts = [
        "has an image" if article.image is not None and article.image.url else "no image",
        "has a summary" if article.summary.strip() else "no summary",
    ]
    if article.priority:
        facts.append(f"priority {article.priority}")
    if article.trending_rank:
        facts.append(f"trending rank {article.trending_rank}")
    when = article.last_changed
    if when is not None:
        hours = max((_aware(now) - _aware(when)).total_seconds(), 0.0) / 3600
        facts.insert(0, f"{hours:.1f} h old")
    score = lead_score(article, now, rules)
    sections = ", ".join(rules.lead_sections) or "any"
    return (
        f"the best lead score, {score:.2f}, among {sections} stories of the last "
        f"{rules.lookback_hours:g} h ({'; '.join(facts)})"
    )


def _aware(moment: datetime) -> datetime:
    """Take a naive time as UTC, as selection does."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _trending_reason(article: Article) -> str:
    region = f"; region {article.regions[0]}" if article.regions else ""
    if article.trending_rank is not None and article.trending_rank >= 1:
        return f"trending rank {article.trending_rank}{region}"
    if article.popularity is not None:
        return f"popularity {article.popularity:g}{region}"
    return f"among the most recent (no rank or popularity){region}"
