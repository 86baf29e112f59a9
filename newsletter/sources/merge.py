"""Merge articles from several sources: drop duplicates (the newer copy wins), order them.

Two articles are the same story when they share an id, a canonical URL, or a
near-identical title (difflib ratio of the casefolded titles at or above the
threshold). Ties in time go to the article from the earlier source.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from difflib import SequenceMatcher

from newsletter.models import Article
from newsletter.sanitize import canonical_url

from .common import one_line

MIN_FUZZY_TITLE = 8
_SPACE = re.compile(r"\s+")


def title_key(title: str) -> str:
    """The form of a title that near-duplicate checks compare."""
    return _SPACE.sub(" ", title.casefold()).strip()


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


class _Seen:
    """The articles kept so far, indexed for the three duplicate checks."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.by_id: dict[str, Article] = {}
        self.by_url: dict[str, Article] = {}
        self.by_title: dict[str, Article] = {}
        self.lengths: list[tuple[int, str]] = []

    def match(self, article: Article) -> tuple[Article, str] | None:
        """The kept article this one duplicates, and how; ``None`` if it is new."""
        if article.id in self.by_id:
            return self.by_id[article.id], "same id as"
        url = canonical_url(article.url)
        if url in self.by_url:
            return self.by_url[url], "same link as"
        key = title_key(article.title)
        if key in self.by_title:
            return self.by_title[key], "same title as"
        similar = self._similar(key)
        return (self.by_title[similar], "title like") if similar else None

    def _similar(self, key: str) -> str | None:
        if len(key) < MIN_FUZZY_TITLE or self.threshold >= 1.0:
            return None
        size = len(key)
        low = size * self.threshold / (2 - self.threshold)
        high = size * (2 - self.threshold) / self.threshold
        start = bisect.bisect_left(self.lengths, (int(low), ""))
        matcher = SequenceMatcher(None, b=key, autojunk=False)
        for length, other in self.lengths[start:]:
            if length > high:
                break
            matcher.set_seq1(other)
            if (
                matcher.real_quick_ratio() >= self.threshold
                and matcher.quick_ratio() >= self.threshold
                and matcher.ratio() >= self.threshold
            ):
                return other
        return None

    def add(self, article: Article) -> None:
        """Remember a kept article."""
        self.by_id.setdefault(article.id, article)
        self.by_url.setdefault(canonical_url(article.url), article)
        key = title_key(article.title)
        if key not in self.by_title:
            self.by_title[key] = article
            if len(key) >= MIN_FUZZY_TITLE:
                bisect.insort(self.lengths, (len(key), key))

    def alias(self, dropped: Article, kept: Article) -> None:
        """Let a dropped copy's id, link and title lead to the copy that was kept."""
        self.by_id.setdefault(dropped.id, kept)
        self.by_url.setdefault(canonical_url(dropped.url), kept)
        self.by_title.setdefault(title_key(dropped.title), kept)


def deduplicate(articles: Sequence[Article], threshold: float) -> tuple[list[Article], list[str]]:
    """Drop duplicates across sources; return the kept articles (in output order) and warnings.

    ``articles`` come in source order; that order breaks ties between equally new copies.
    """
    ranked = sorted(enumerate(articles), key=lambda pair: (*newest_first(pair[1]), pair[0]))
    seen = _Seen(threshold)
    kept: list[Article] = []
    drops: dict[str, list[_Drop]] = defaultdict(list)
    for _, article in ranked:
        found = seen.match(article)
        if found is None:
            seen.add(article)
            kept.append(article)
        else:
            seen.alias(article, found[0])
            drops[article.source].append(_Drop(article, found[0], found[1]))
    kept.sort(key=output_order)
    return kept, [_describe(source, items) for source, items in drops.items()]


def _describe(source: str, drops: list[_Drop]) -> str:
    parts = []
    for drop in drops:
        where = "the same source" if drop.kept.source == source else drop.kept.source
        newer = " (newer)" if _is_newer(drop.kept.last_changed, drop.article.last_changed) else ""
        parts.append(
            f"{one_line(drop.article.title, 80)!r} ({drop.why} "
            f"{one_line(drop.kept.title, 80)!r} from {where}{newer})"
        )
    count = len(drops)
    noun = "duplicate" if count == 1 else "duplicates"
    return f"{source}: dropped {count} {noun}: " + "; ".join(parts)


def _is_newer(kept: datetime | None, dropped: datetime | None) -> bool:
    return kept is not None and (dropped is None or kept > dropped)
