"""Check that the bundled sample content is well formed and exercises the selection rules."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CONTENT = Path(__file__).resolve().parent.parent / "newsletter/sample/content/articles.json"
HOST = "meridianpost.example"
DEMO_NOW = datetime.fromisoformat("2026-03-04T18:00:00+05:30")
LOOKBACK = timedelta(hours=72)
OPINION_SECTIONS = {"Opinion", "Blog", "Interview", "Analysis"}

Article = dict[str, Any]


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    """Load the sample articles list."""
    data = json.loads(CONTENT.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert isinstance(data["articles"], list)
    return data["articles"]


@pytest.fixture(scope="module")
def news(articles: list[Article]) -> list[Article]:
    """Return only the news articles."""
    return [a for a in articles if a["section"] == "News"]


def is_site_url(url: object) -> bool:
    """Tell whether ``url`` is an absolute https URL on the sample site."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and parts.hostname == HOST and parts.path not in ("", "/")


def stamp(article: Article, key: str) -> datetime:
    """Parse one of an article's timestamps, insisting it is timezone-aware."""
    value = datetime.fromisoformat(article[key])
    assert value.tzinfo is not None, f"{article['id']}: {key} has no offset"
    assert value.utcoffset() is not None
    return value


def test_enough_articles_with_unique_ids(articles: list[Article]) -> None:
    ids = [a["id"] for a in articles]
    assert len(articles) >= 14
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, str) and i.strip() for i in ids)


def test_required_text_fields_present(articles: list[Article]) -> None:
    for a in articles:
        for key in ("title", "summary", "author", "section"):
            assert isinstance(a[key], str), f"{a['id']}: {key}"
            assert a[key].strip(), f"{a['id']}: {key} is empty"
        assert isinstance(a["regions"], list), a["id"]
        assert a["regions"], f"{a['id']}: no region"


def test_urls_are_absolute_https_on_the_site(articles: list[Article]) -> None:
    for a in articles:
        assert is_site_url(a["url"]), f"{a['id']}: {a['url']!r}"
        if "image" in a:
            assert is_site_url(a["image"]["url"]), f"{a['id']}: {a['image']['url']!r}"


def test_every_image_has_alt_text_and_size(articles: list[Article]) -> None:
    images = [a for a in articles if "image" in a]
    assert images
    for a in images:
        image = a["image"]
        assert isinstance(image["alt"], str), a["id"]
        assert image["alt"].strip(), f"{a['id']}: image without alt text"
        assert isinstance(image["width"], int), a["id"]
        assert isinstance(image["height"], int), a["id"]
        assert image["width"] > 0, a["id"]
        assert image["height"] > 0, a["id"]


def test_summaries_are_short(articles: list[Article]) -> None:
    for a in articles:
        assert len(a["summary"]) <= 350, f"{a['id']}: summary is {len(a['summary'])} chars"


def test_news_spans_regions(news: list[Article]) -> None:
    regions = {r for a in news for r in a["regions"]}
    assert len(regions) >= 3


def test_ranked_news_repeats_regions_for_the_cap(news: list[Article]) -> None:
    ranked = [a for a in news if a.get("trending_rank") is not None]
    for region in ("India", "United States"):
        assert sum(region in a["regions"] for a in ranked) >= 2, region


def test_opinion_sections_present(articles: list[Article]) -> None:
    sections = {a["section"] for a in articles}
    assert {"Opinion", "Blog", "Interview"} <= sections
    opinion = [a for a in articles if a["section"] in OPINION_SECTIONS]
    assert len(opinion) >= 5


def test_exactly_one_pinned_lead_with_image(articles: list[Article]) -> None:
    pinned = [a for a in articles if a.get("pinned") is True]
    assert len(pinned) == 1
    lead = pinned[0]
    assert lead["section"] == "News"
    assert lead["image"]["caption"].strip()
    assert lead["image"]["credit"].strip()


def test_dates_are_aware_and_ordered(articles: list[Article]) -> None:
    for a in articles:
        published = stamp(a, "published")
        updated = stamp(a, "updated")
        assert published <= updated, a["id"]
        assert updated <= DEMO_NOW, f"{a['id']}: dated after the demo's --now"


def test_exactly_one_article_outside_lookback(articles: list[Article]) -> None:
    cutoff = DEMO_NOW - LOOKBACK
    stale = [a["id"] for a in articles if stamp(a, "updated") < cutoff]
    assert len(stale) == 1, stale


def test_news_includes_a_near_duplicate_title(news: list[Article]) -> None:
    titles = [a["title"].casefold() for a in news]
    pairs = [
        (x, y)
        for i, x in enumerate(titles)
        for y in titles[i + 1 :]
        if SequenceMatcher(None, x, y).ratio() >= 0.8
    ]
    assert len(pairs) == 1, pairs
