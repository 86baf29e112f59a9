"""Choose an edition's stories from the articles: pure, deterministic and explained.

``select`` reads no clock and no files. The same articles, rules, ``now`` and history
give the same ``Digest`` whatever the input order: every sort ends on the article id.

Times
    Every time is compared in UTC. An article's time is its last change (the newer of
    ``updated`` and ``published``); a time without a zone is taken as UTC.

Candidates
    An article is passed over (a ``Skip`` with the reason) when its id (or canonical
    URL) is in ``history`` ("sent in a recent edition"), when it is dated more than
    ``FUTURE_SKEW`` after ``now`` ("dated in the future"), when it changed before the
    lookback window ("older than the 72 h window"), or when its plain-text summary is
    shorter than ``min_summary_length`` ("summary shorter than N characters"). When two
    articles share an id, the newer copy is used and the other is passed over; a copy
    dated in the future never wins over a current one (the story would vanish).

Undated articles
    An article without any date cannot be placed in the window, so it is kept but ranked
    as the oldest: it is never the scored lead (only an editor's pick can make it the
    lead), and it fills the trending and opinion lists only after every dated candidate.

Lead
    1. The explicit pick: the ``lead_url`` argument (``--lead``), else ``rules.lead_url``,
       matched against each article's URL or id (canonical URLs: scheme, letter case of
       the host, default port, trailing slash and fragment do not matter). The pick wins
       even when it is older than the window or was sent before. Several matches: the
       newest. A pick that matches nothing, or only articles dated in the future, raises
       ``SelectionError``: the editor asked for a lead, and a silent fallback would send
       another one.
    2. Else the newest candidate flagged ``pinned`` (any section).
    3. Else the best-scoring dated candidate in ``rules.lead_sections``, by
       ``lead_score``::

           2 × priority (clamped to ±1000)
         + 4 × freshness   (1 at ``now``, falling linearly to 0 at the window's start)
         + 1 if it has an image, + 1 if it has a summary
         + 1 / trending_rank (rank ≥ 1)

       so an image and a summary together outweigh half a window of age.
       Ties: the newer, then the smaller id.
    No lead at all gives a ``Digest`` whose ``is_empty`` is true; the lists are still
    filled so a preview can show what is there.

Trending
    Candidates outside ``rules.opinion_sections``, other than the lead, ordered by
    trending rank (ascending; ranks below 1 count as none, unranked after ranked), then
    popularity (descending; missing or NaN after the rest), then recency, then id.
    Taken in that order up to ``rules.trending`` items, passing over an article that
    duplicates one already chosen (the lead included): the same page (canonical URL,
    any scheme), or a near-duplicate title by the rule in ``newsletter.sameness`` at
    ``rules.title_similarity``. At most ``rules.region_cap`` items share a primary
    region (the first one, compared without regard to case; 0 means no cap); a skipped
    item leaves room for a later one. Articles with no region are not capped: there is
    nothing to vary. An article explicitly tagged "Global" is capped like any region.

Opinion
    Candidates in ``rules.opinion_sections``, other than the lead, newest first, up to
    ``rules.opinion`` items, passing over duplicates of anything already chosen.

Skipped
    Every input article is either chosen or in ``Digest.skipped`` exactly once. The
    order: articles passed over as candidates (by id), then the trending list in its
    ranking order, then the opinion list in its order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from newsletter.clock import FUTURE_SKEW
from newsletter.config.settings import SelectionRules
from newsletter.errors import SelectionError
from newsletter.models import Article, Digest, Skip
from newsletter.sameness import TitleMatcher, page_key, title_key
from newsletter.sanitize import plain_text

WEIGHT_PRIORITY = 2.0
WEIGHT_FRESHNESS = 4.0
WEIGHT_IMAGE = 1.0
WEIGHT_SUMMARY = 1.0
WEIGHT_TRENDING = 1.0
PRIORITY_LIMIT = 1000
REASON_TITLE_CHARS = 80

SENT_BEFORE = "sent in a recent edition"
IN_FUTURE = "dated in the future"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class _Item:
    """An article with what selection compares, computed once."""

    article: Article
    when: datetime | None
    title: str
    title_key: str
    url_key: str | None
    summary_chars: int
    order: tuple[str, str]


@dataclass(frozen=True)
class _Context:
    """The fixed facts of one selection run."""

    rules: SelectionRules
    now: datetime
    window_start: datetime
    future_limit: datetime
    history: frozenset[str]
    history_urls: frozenset[str]


def select(
    articles: Sequence[Article],
    rules: SelectionRules,
    now: datetime,
    history: frozenset[str] = frozenset(),
    *,
    lead_url: str | None = None,
) -> Digest:
    """Choose the lead, trending and opinion stories for an edition at ``now``.

    Raise ``SelectionError`` when ``lead_url`` (or ``rules.lead_url``) matches no usable
    article.
    """
    ctx = _context(rules, now, history)
    unique, duplicates = _dedupe([_item(a) for a in articles], ctx)
    if lead_url and lead_url.strip():
        pick = _explicit_lead(unique, lead_url.strip(), "--lead", ctx)
    else:
        pick = _explicit_lead(unique, rules.lead_url.strip(), "[selection] lead_url", ctx)
    eligible, passed_over = _screen([i for i in unique if i is not pick], ctx)
    lead = pick or _pinned_lead(eligible) or _scored_lead(eligible, ctx)
    rest = [i for i in eligible if i is not lead]
    opinion_sections = _folded(rules.opinion_sections)
    chosen = [lead] if lead else []
    trending, trending_skips = _fill(
        sorted((i for i in rest if _section(i) not in opinion_sections), key=_trending_key),
        limit=rules.trending,
        chosen=chosen,
        ctx=ctx,
        region_cap=max(rules.region_cap, 0),
        label="trending",
    )
    opinion, opinion_skips = _fill(
        sorted((i for i in rest if _section(i) in opinion_sections), key=_newest_first),
        limit=rules.opinion,
        chosen=chosen + trending,
        ctx=ctx,
        region_cap=0,
        label="opinion",
    )
    return Digest(
        lead=lead.article if lead else None,
        trending=tuple(i.article for i in trending),
        opinion=tuple(i.article for i in opinion),
        skipped=tuple(_in_order(duplicates + passed_over) + trending_skips + opinion_skips),
        now=now,
    )


def lead_score(article: Article, now: datetime, rules: SelectionRules) -> float:
    """Score an article as a lead candidate (the formula is in the module docstring)."""
    when = _last_changed(article)
    window = max(rules.lookback_hours * 3600.0, 1.0)
    freshness = 0.0
    if when is not None:
        age = min(max((_utc(now) - when).total_seconds(), 0.0), window)
        freshness = 1.0 - age / window
    priority = max(-PRIORITY_LIMIT, min(PRIORITY_LIMIT, article.priority))
    rank = article.trending_rank
    return (
        WEIGHT_PRIORITY * priority
        + WEIGHT_FRESHNESS * freshness
        + (WEIGHT_IMAGE if article.image is not None and article.image.url else 0.0)
        + (WEIGHT_SUMMARY if plain_text(article.summary) else 0.0)
        + (WEIGHT_TRENDING / rank if rank is not None and rank >= 1 else 0.0)
    )


# --------------------------------------------------------------------------- preparation


def _context(rules: SelectionRules, now: datetime, history: frozenset[str]) -> _Context:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"select() needs a timezone-aware 'now', got {now.isoformat()}")
    utc_now = _utc(now)
    urls = (page_key(h) for h in history)
    return _Context(
        rules=rules,
        now=utc_now,
        window_start=utc_now - timedelta(hours=max(rules.lookback_hours, 0.0)),
        future_limit=utc_now + FUTURE_SKEW,
        history=frozenset(history),
        history_urls=frozenset(u for u in urls if u),
    )


def _utc(stamp: datetime) -> datetime:
    """The same instant in UTC; a time without a zone is taken as UTC."""
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        return stamp.replace(tzinfo=UTC)
    try:
        return stamp.astimezone(UTC)
    except OverflowError:
        edge = datetime.max if stamp.year > 1 else datetime.min
        return edge.replace(tzinfo=UTC)


def _last_changed(article: Article) -> datetime | None:
    stamps = [_utc(t) for t in (article.published, article.updated) if t is not None]
    return max(stamps) if stamps else None


def _item(article: Article) -> _Item:
    title = plain_text(article.title)
    return _Item(
        article=article,
        when=_last_changed(article),
        title=title,
        title_key=title_key(article.title),
        url_key=page_key(article.url),
        summary_chars=len(plain_text(article.summary)),
        order=(article.id, repr(article)),
    )


def _micros(when: datetime | None) -> int:
    return 0 if when is None else (when - _EPOCH) // timedelta(microseconds=1)


def _newest_first(item: _Item) -> tuple[bool, int, tuple[str, str]]:
    return (item.when is None, -_micros(item.when), item.order)


def _trending_key(item: _Item) -> tuple[object, ...]:
    rank = item.article.trending_rank
    popularity = item.article.popularity
    has_popularity = popularity is not None and not math.isnan(popularity)
    return (
        item.when is None,
        (0, rank) if rank is not None and rank >= 1 else (1, 0),
        (0, -popularity) if popularity is not None and has_popularity else (1, 0.0),
        -_micros(item.when),
        item.order,
    )


def _folded(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip().casefold() for v in values)


def _section(item: _Item) -> str:
    return item.article.section.strip().casefold()


def _skip(item: _Item, reason: str) -> Skip:
    return Skip(article_id=item.article.id, title=item.article.title, reason=reason)


def _in_order(rows: list[tuple[tuple[str, str], Skip]]) -> list[Skip]:
    """Skips ordered by article id (then the article itself), whatever the input order."""
    return [skip for _, skip in sorted(rows, key=lambda row: (row[0], row[1].reason))]


def _dedupe(
    items: list[_Item], ctx: _Context
) -> tuple[list[_Item], list[tuple[tuple[str, str], Skip]]]:
    """Keep the newest current copy of each id (a future one if all are); pass over the rest."""
    by_id: dict[str, list[_Item]] = {}
    for item in items:
        by_id.setdefault(item.article.id, []).append(item)
    unique: list[_Item] = []
    skips: list[tuple[tuple[str, str], Skip]] = []
    for copies in by_id.values():
        keep, *others = sorted(copies, key=lambda i: (_in_future(i, ctx), _newest_first(i)))
        unique.append(keep)
        skips += [
            (o.order, _skip(o, "another article has the same id; the newer copy is used"))
            for o in others
        ]
    return unique, skips


def _screen(
    items: list[_Item], ctx: _Context
) -> tuple[list[_Item], list[tuple[tuple[str, str], Skip]]]:
    """Split articles into candidates and those passed over, with the reason."""
    eligible: list[_Item] = []
    skips: list[tuple[tuple[str, str], Skip]] = []
    for item in items:
        reason = _ineligible(item, ctx)
        if reason is None:
            eligible.append(item)
        else:
            skips.append((item.order, _skip(item, reason)))
    return eligible, skips


def _in_future(item: _Item, ctx: _Context) -> bool:
    return item.when is not None and item.when > ctx.future_limit


def _ineligible(item: _Item, ctx: _Context) -> str | None:
    if item.article.id in ctx.history or (item.url_key and item.url_key in ctx.history_urls):
        return SENT_BEFORE
    if _in_future(item, ctx):
        return IN_FUTURE
    if item.when is not None and item.when < ctx.window_start:
        return f"older than the {ctx.rules.lookback_hours:g} h window"
    if item.summary_chars < ctx.rules.min_summary_length:
        return f"summary shorter than {ctx.rules.min_summary_length} characters"
    return None


# --------------------------------------------------------------------------- the lead


def _explicit_lead(items: list[_Item], target: str, origin: str, ctx: _Context) -> _Item | None:
    """The article the editor named by URL or id (``None`` if none was named).

    Raise ``SelectionError`` naming ``origin`` when nothing usable matches.
    """
    if not target:
        return None
    keys = {page_key(target), page_key(f"https://{target}")} - {None}
    matches = [
        i
        for i in items
        if i.article.id.strip() == target or i.url_key in keys or page_key(i.article.id) in keys
    ]
    current = [i for i in matches if not _in_future(i, ctx)]
    if current:
        return min(current, key=_newest_first)
    fix = (
        "leave --lead out to let the selection choose"
        if origin == "--lead"
        else "update or remove lead_url in [selection] of the config"
    )
    if matches:
        first = min(matches, key=_newest_first)
        when = f"{first.when:%Y-%m-%d %H:%M} UTC" if first.when else "?"
        raise SelectionError(
            f"{origin} {target!r}: {_quoted(first.title)} is dated in the future ({when}), so it"
            f" cannot lead yet; check its date in the source, pass a later --now, or {fix}"
        )
    raise SelectionError(
        f"{origin} {target!r} matches no article in the sources (by URL or id); copy the"
        f" address from the article (`newsletter sources` shows what was read), or {fix}"
    )


def _pinned_lead(eligible: list[_Item]) -> _Item | None:
    return min((i for i in eligible if i.article.pinned), key=_newest_first, default=None)


def _scored_lead(eligible: list[_Item], ctx: _Context) -> _Item | None:
    sections = _folded(ctx.rules.lead_sections)
    scored = [
        (-lead_score(i.article, ctx.now, ctx.rules), -_micros(i.when), i.order, i)
        for i in eligible
        if i.when is not None and _section(i) in sections
    ]
    return min(scored, key=lambda row: row[:3])[3] if scored else None


# --------------------------------------------------------------------------- the lists


def _fill(
    candidates: list[_Item],
    *,
    limit: int,
    chosen: list[_Item],
    ctx: _Context,
    region_cap: int,
    label: str,
) -> tuple[list[_Item], list[Skip]]:
    """Take candidates in order up to ``limit``, passing over duplicates and capped regions."""
    picked: list[_Item] = []
    skips: list[Skip] = []
    per_region: dict[str, int] = {}
    for item in candidates:
        region = _primary_region(item)
        if len(picked) >= max(limit, 0):
            reason: str | None = f"{label} list full"
        else:
            reason = _duplicate_of(item, chosen + picked, ctx.rules.title_similarity)
        if reason is None and _capped(region, per_region, region_cap):
            reason = f"region cap ({region_cap}) for {region} reached"
        if reason is not None:
            skips.append(_skip(item, reason))
            continue
        picked.append(item)
        if region:
            per_region[region.casefold()] = per_region.get(region.casefold(), 0) + 1
    return picked, skips


def _capped(region: str, per_region: dict[str, int], cap: int) -> bool:
    return bool(region and cap and per_region.get(region.casefold(), 0) >= cap)


def _primary_region(item: _Item) -> str:
    regions = item.article.regions
    return regions[0].strip() if regions else ""


def _duplicate_of(item: _Item, chosen: list[_Item], threshold: float) -> str | None:
    title = TitleMatcher(item.title_key, threshold)
    for other in chosen:
        if item.url_key is not None and item.url_key == other.url_key:
            return f"same link as {_quoted(other.title)}"
        if title.matches(other.title_key):
            return f"near-duplicate of {_quoted(other.title)}"
    return None


def _quoted(title: str) -> str:
    if len(title) > REASON_TITLE_CHARS:
        title = title[: REASON_TITLE_CHARS - 1].rstrip() + "…"
    return f"'{title}'"
