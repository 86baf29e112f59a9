"""Merge articles from several sources: drop duplicates (the newer copy wins), order them.

Two articles are the same story when they share an id, a page (``sameness.page_key``:
the canonical URL, its http and https forms alike), or a title
(equal or near-identical by the rule in ``newsletter.sameness``, at the publication's
``title_similarity``). Ties in time go to the article from the earlier source.

A copy dated in the future (more than ``clock.FUTURE_SKEW`` after ``now``) never wins
over a current one: the selection passes future articles over, so the story would
vanish from the edition although a current copy of it was there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from newsletter.clock import FUTURE_SKEW
from newsletter.models import Article
from newsletter.sameness import TitleIndex, page_key, title_key
from newsletter.sanitize import canonical_url

from .common import one_line


def newest_first(article: Article) -> tuple[int, float]:
    """Sort key: newest ``last_changed`` first, undated last."""
    moment = article.last_changed
    return (0, -moment.timestamp()) if moment else (1, 0.0)


def output_order(article: Article) -> tuple[int, float, str, str]:
    """The deterministic order of a collection: newest first, then by id and URL."""
    return (*newest_first(article), article.id, article.url)


@dataclass(frozen=True)
class _Drop:
    article: Article
    kept: Article
    why: str
    future: bool


class _Seen:
    """The articles kept so far, indexed for the three duplicate checks."""

    def __init__(self, threshold: float) -> None:
        self.by_id: dict[str, Article] = {}
        self.by_url: dict[str, Article] = {}
        self.by_title: dict[str, Article] = {}
        self.titles = TitleIndex(threshold)

    def match(self, article: Article, url: str, key: str) -> tuple[Article, str] | None:
        """The kept article this one duplicates, and how; ``None`` if it is new."""
        if article.id in self.by_id:
            return self.by_id[article.id], "same id as"
        if url in self.by_url:
            return self.by_url[url], "same link as"
        if key in self.by_title:
            return self.by_title[key], "same title as"
        similar = self.titles.similar(key)
        return (self.by_title[similar], "title like") if similar else None

    def add(self, article: Article, url: str, key: str) -> None:
        """Remember a kept article."""
        self.by_id.setdefault(article.id, article)
        self.by_url.setdefault(url, article)
        if key and key not in self.by_title:  # an empty title is nobody's duplicate
            self.by_title[key] = article
            self.titles.add(key)

    def alias(self, dropped: Article, url: str, key: str, kept: Article) -> None:
        """Let a dropped copy's id, link and title lead to the copy that was kept."""
        self.by_id.setdefault(dropped.id, kept)
        self.by_url.setdefault(url, kept)
        if key:
            self.by_title.setdefault(key, kept)


def deduplicate(
    articles: Sequence[Article], threshold: float, now: datetime
) -> tuple[list[Article], list[str]]:
    """Drop duplicates across sources; return the kept articles (in output order) and warnings.

    ``articles`` come in source order; that order breaks ties between equally new copies.
    Current copies rank before copies dated in the future, whatever their age.
    """
    limit = now + FUTURE_SKEW

    def rank(pair: tuple[int, Article]) -> tuple[bool, int, float, int]:
        index, article = pair
        return (_is_future(article, limit), *newest_first(article), index)

    ranked = sorted(enumerate(articles), key=rank)
    seen = _Seen(threshold)
    kept: list[Article] = []
    drops: dict[str, list[_Drop]] = defaultdict(list)
    for _, article in ranked:
        url = page_key(article.url) or canonical_url(article.url)
        key = title_key(article.title)
        found = seen.match(article, url, key)
        if found is None:
            seen.add(article, url, key)
            kept.append(article)
        else:
            seen.alias(article, url, key, found[0])
            future = _is_future(article, limit) and not _is_future(found[0], limit)
            drops[article.source].append(_Drop(article, found[0], found[1], future))
    kept.sort(key=output_order)
    return kept, [_describe(source, items) for source, items in drops.items()]


def _describe(source: str, drops: list[_Drop]) -> str:
    parts = []
    for drop in drops:
        where = "the same source" if drop.kept.source == source else drop.kept.source
        newer = " (newer)" if _is_newer(drop.kept.last_changed, drop.article.last_changed) else ""
        if drop.future:
            newer = " (current; this copy is dated in the future)"
        parts.append(
            f"{one_line(drop.article.title, 80)!r} ({drop.why} "
            f"{one_line(drop.kept.title, 80)!r} from {where}{newer})"
        )
    count = len(drops)
    noun = "duplicate" if count == 1 else "duplicates"
    return f"{source}: dropped {count} {noun}: " + "; ".join(parts)


def _is_newer(kept: datetime | None, dropped: datetime | None) -> bool:
    return kept is not None and (dropped is None or kept > dropped)


def _is_future(article: Article, limit: datetime) -> bool:
    moment = article.last_changed
    return moment is not None and moment > limit
