"""Merging sources: duplicates across sources, the newer copy wins, rules, order, mapping."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsletter.config.settings import SelectionRules, Settings
from newsletter.sanitize import canonical_url
from newsletter.sources import collect
from newsletter.sources.mapping import Mapper

NOW = datetime(2026, 3, 5, 12, tzinfo=UTC)


def json_source(tmp_path: Path, name: str, *articles: dict[str, Any]) -> str:
    """Write a JSON content file and return its path as a source spec."""
    path = tmp_path / name
    path.write_text(json.dumps({"articles": list(articles)}), encoding="utf-8")
    return str(path)


def rss_source(tmp_path: Path, name: str, *items: tuple[str, str, str]) -> str:
    """Write an RSS feed of (title, link, RFC 822 date) items and return its path."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><pubDate>{d}</pubDate>"
        f"<description>About {t}.</description></item>"
        for t, link, d in items
    )
    path = tmp_path / name
    path.write_text(
        f'<rss version="2.0"><channel><title>F</title>{body}</channel></rss>', encoding="utf-8"
    )
    return str(path)


def story(ident: str, title: str, url: str, published: str, **extra: Any) -> dict[str, Any]:
    """One article for a JSON source."""
    return {
        "id": ident,
        "title": title,
        "url": url,
        "published": published,
        "summary": f"<p>About {title}.</p>",
        **extra,
    }


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (
            "HTTPS://News.Example.COM/a/b/?utm_source=rss&utm_Medium=x&id=3#frag",
            "https://news.example.com/a/b?id=3",
        ),
        ("http://example.com:80/", "http://example.com"),
        ("https://example.com:8443/x/", "https://example.com:8443/x"),
        ("https://example.com/Path/Case", "https://example.com/Path/Case"),
    ],
)
def test_canonical_url(raw: str, canonical: str) -> None:
    assert canonical_url(raw) == canonical


def test_url_variants_across_sources_keep_the_newer_copy(tmp_path: Path) -> None:
    older = json_source(
        tmp_path,
        "site.json",
        story(
            "s1",
            "Harbour reopens to shipping",
            "https://News.example/harbour/?utm_source=mail#top",
            "2026-03-04T08:00:00Z",
        ),
    )
    newer = rss_source(
        tmp_path,
        "wire.xml",
        (
            "Harbour reopens, ships return",
            "https://news.example/harbour",
            "Wed, 04 Mar 2026 11:00:00 GMT",
        ),
    )
    for specs in ([older, newer], [newer, older]):
        collection = collect(specs, Settings(), now=NOW)
        (kept,) = collection.articles
        assert kept.title == "Harbour reopens, ships return"
        assert kept.source == newer
        (warning,) = [w for w in collection.warnings if "dropped" in w]
        assert warning.startswith(f"{older}: dropped 1 duplicate: 'Harbour reopens to shipping'")
        assert f"same link as 'Harbour reopens, ships return' from {newer} (newer)" in warning


def test_the_http_and_https_links_of_a_page_are_one_story(tmp_path: Path) -> None:
    plain = json_source(
        tmp_path,
        "old.json",
        story("o1", "Tram line opens", "http://news.example/tram", "2026-03-04T08:00:00Z"),
    )
    secure = json_source(
        tmp_path,
        "new.json",
        story(
            "n1", "Tram line opens to riders", "https://news.example/tram/", "2026-03-04T10:00:00Z"
        ),
    )
    collection = collect([plain, secure], Settings(), now=NOW)
    (kept,) = collection.articles
    assert kept.url == "https://news.example/tram/"
    assert any("same link as 'Tram line opens to riders'" in w for w in collection.warnings)


def test_near_identical_titles_collapse(tmp_path: Path) -> None:
    first = json_source(
        tmp_path,
        "a.json",
        story(
            "a1",
            "Budget passes after late-night vote",
            "https://a.example/1",
            "2026-03-04T09:00:00Z",
        ),
        story(
            "a2", "Rain expected across the north", "https://a.example/2", "2026-03-04T09:30:00Z"
        ),
    )
    second = json_source(
        tmp_path,
        "b.json",
        story(
            "b1",
            "BUDGET PASSES AFTER LATE NIGHT VOTE!",
            "https://b.example/1",
            "2026-03-04T10:00:00Z",
        ),
        story(
            "b2",
            "Budget talks collapse before the vote",
            "https://b.example/2",
            "2026-03-04T08:00:00Z",
        ),
    )
    collection = collect([first, second], Settings(), now=NOW)
    assert [a.id for a in collection.articles] == ["b1", "a2", "b2"]
    dropped = [w for w in collection.warnings if "dropped" in w]
    assert dropped == [
        f"{first}: dropped 1 duplicate: 'Budget passes after late-night vote' (title like "
        f"'BUDGET PASSES AFTER LATE NIGHT VOTE!' from {second} (newer))"
    ]
    strict = replace(Settings(), selection=SelectionRules(title_similarity=1.0))
    assert len(collect([first, second], strict, now=NOW).articles) == 4


def test_same_id_is_the_same_story_and_drops_are_counted(tmp_path: Path) -> None:
    source = json_source(
        tmp_path,
        "dup.json",
        story("x", "Version one", "https://a.example/v1", "2026-03-04T09:00:00Z"),
        story("x", "Version two", "https://a.example/v2", "2026-03-04T10:00:00Z"),
        story("y", "Other", "https://a.example/v1?utm_campaign=z", "2026-03-04T08:00:00Z"),
    )
    collection = collect([source], Settings(), now=NOW)
    assert [a.title for a in collection.articles] == ["Version two"]  # "Other" is Version one
    (warning,) = [w for w in collection.warnings if "dropped" in w]
    assert warning.startswith(f"{source}: dropped 2 duplicates: ")
    assert "'Version one' (same id as 'Version two' from the same source (newer))" in warning


def test_order_is_newest_first_in_utc_and_deterministic(tmp_path: Path) -> None:
    source = json_source(
        tmp_path,
        "tz.json",
        story("tokyo", "Tokyo", "https://a.example/t", "2026-03-04T18:00:00+09:00"),  # 09:00Z
        story("nyc", "New York", "https://a.example/n", "2026-03-04T05:00:00-05:00"),  # 10:00Z
        story("old", "Undated", "https://a.example/u", ""),
        story("same-b", "Ferry timetable changes", "https://a.example/sb", "2026-03-04T07:00:00Z"),
        story("same-a", "Library opens late", "https://a.example/sa", "2026-03-04T07:00:00Z"),
    )
    first = collect([source], Settings(), now=NOW)
    assert [a.id for a in first.articles] == ["nyc", "tokyo", "same-a", "same-b", "old"]
    assert collect([source], Settings(), now=NOW) == first


def test_short_summaries_and_future_dates(tmp_path: Path) -> None:
    source = json_source(
        tmp_path,
        "rules.json",
        story(
            "long",
            "Long enough",
            "https://a.example/l",
            "2026-03-04T09:00:00Z",
            summary="<p>" + "word " * 20 + "</p>",
        ),
        story(
            "short",
            "Too short",
            "https://a.example/s",
            "2026-03-04T09:00:00Z",
            summary="<p><b>Hi</b></p>",
        ),
        story(
            "future",
            "From the future",
            "https://a.example/f",
            "2030-01-01T00:00:00Z",
            summary="<p>" + "word " * 20 + "</p>",
        ),
    )
    settings = replace(Settings(), selection=SelectionRules(min_summary_length=40))
    collection = collect([source], settings, now=NOW)
    assert [a.id for a in collection.articles] == ["future", "long"]
    assert collection.articles[0].published == datetime(2030, 1, 1, tzinfo=UTC)  # kept as is
    assert any(
        "skipped 'Too short': its summary has 2 characters" in w for w in collection.warnings
    )
    assert any(
        "'From the future' is dated in the future (2030-01-01 00:00 UTC)" in w
        for w in collection.warnings
    )


def test_a_copy_dated_in_the_future_never_wins_over_a_current_one(tmp_path: Path) -> None:
    current = json_source(
        tmp_path,
        "current.json",
        story("harbour", "Harbour gates approved", "https://a.example/h", "2026-03-05T09:00:00Z"),
        story("rail", "Rail strike ends", "https://a.example/r", "2026-03-05T08:00:00Z"),
    )
    ahead = json_source(
        tmp_path,
        "ahead.json",
        story("h2", "Harbour gates approved", "https://b.example/h", "2026-03-06T09:00:00Z"),
        story("rail", "Rail strike ends", "https://b.example/r", "2026-03-05T12:04:00Z"),
    )
    collection = collect([ahead, current], Settings(), now=NOW)
    by_id = {a.id: a for a in collection.articles}
    assert by_id["harbour"].url == "https://a.example/h"  # the current copy, not the newer one
    assert by_id["rail"].url == "https://b.example/r"  # within FUTURE_SKEW: the newer one wins
    (warning,) = [w for w in collection.warnings if w.startswith(f"{ahead}: dropped")]
    assert warning == (
        f"{ahead}: dropped 1 duplicate: 'Harbour gates approved' (same title as 'Harbour gates"
        f" approved' from {current} (current; this copy is dated in the future))"
    )
    only_future = collect([ahead], Settings(), now=NOW)
    assert {a.id for a in only_future.articles} == {"h2", "rail"}  # nothing else: kept anyway


def test_no_sources_is_a_warning_not_a_crash() -> None:
    collection = collect([], Settings(), now=NOW)
    assert collection.articles == ()
    assert any("no content sources" in w for w in collection.warnings)


@pytest.mark.parametrize(
    ("terms", "section", "regions"),
    [
        (["News", "Opinion"], "opinion", ()),
        (["editorial"], "opinion", ()),
        (["COMMENTARY", "World"], "opinion", ("Global",)),
        (["Column", "U.S."], "opinion", ("United States",)),
        (["Blog", "united states", "UK"], "blog", ("United States", "United Kingdom")),
        (["Interview", "India"], "interview", ("India",)),
        (["Analysis", "Europe"], "analysis", ("Europe",)),
        (["News/World/Asia"], "news", ("Asia",)),
        (["Gardening"], None, ()),
    ],
)
def test_default_mapping(terms: list[str], section: str | None, regions: tuple[str, ...]) -> None:
    found = Mapper().classify(terms)
    assert (found.section, found.regions) == (section, regions)


def test_publication_map_wins_and_leftovers_are_tags() -> None:
    mapper = Mapper({"Gardening": "Lifestyle", "news": "headlines"}, {"Bay Area": "California"})
    found = mapper.classify(["gardening", "bay area", "Roses", "roses"])
    assert found.section == "lifestyle"
    assert found.regions == ("California",)
    assert found.tags == ("Roses",)
    assert mapper.section_value("News") == "headlines"
    assert mapper.region_value("kerala") == "Kerala"
    assert mapper.region_value("EU") == "European Union"
