"""The publication's JSON content format: errors that point at the spot, careful normalization."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from newsletter.config.settings import Settings
from newsletter.errors import ContentError
from newsletter.sources import SourceReport, read_source
from newsletter.sources.json_reader import FIELDS

SITE = "https://daily.example/news/"


def settings(zone: str = "UTC") -> Settings:
    """Settings for a publication at ``SITE`` in time zone ``zone``."""
    base = Settings()
    return replace(
        base, publication=replace(base.publication, site_url=SITE, timezone=ZoneInfo(zone))
    )


def article(**fields: Any) -> dict[str, Any]:
    """A valid article with ``fields`` changed."""
    value: dict[str, Any] = {
        "id": "a1",
        "title": "Metro line opens",
        "url": "https://daily.example/metro",
        "summary": "<p>The line opened.</p>",
        "published": "2026-03-04T17:21:00+05:30",
    }
    value.update(fields)
    return value


def write(tmp_path: Path, doc: object, name: str = "articles.json") -> Path:
    """Write a JSON document to a content file."""
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def read(path: Path, zone: str = "UTC") -> SourceReport:
    """Read a content file."""
    return read_source(str(path), settings(zone))


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "articles.json"
    path.write_text(
        '{"articles": [\n  {"title": "a",\n   "url": "https://x.example/"\n  }\n  {}\n]}',
        encoding="utf-8",
    )
    with pytest.raises(ContentError) as caught:
        read_source(str(path), settings(), strict=True)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid JSON")
    assert "line 5, column 3" in message
    report = read(path)
    assert report.kind == "failed"
    assert report.error == message


def test_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(
        '{"articles": [{"title": "Café", "url": "https://x.example/"}]}'.encode("latin-1")
    )
    report = read(path)
    assert report.error is not None
    assert report.error.startswith(f"{path}: not UTF-8 text")
    assert "save the file as UTF-8" in report.error


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("just a string", "found a string"),
        (42, "found a number"),
        ({"stories": []}, "found an object with 'stories'"),
        ({"articles": {"a": 1}}, "'articles' must be a list"),
    ],
)
def test_wrong_shape_is_a_content_error(tmp_path: Path, doc: object, expected: str) -> None:
    path = write(tmp_path, doc)
    with pytest.raises(ContentError, match=expected):
        read_source(str(path), settings(), strict=True)


def test_missing_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    report = read(path)
    assert report.error == (
        f"{path}: no such file; check [content] sources in the config or the --source option"
    )
    with pytest.raises(ContentError, match="no such file"):
        read_source(str(path), settings(), strict=True)


def test_one_bad_article_is_skipped_with_index_id_and_field(tmp_path: Path) -> None:
    doc = {
        "articles": [
            article(id="good-1"),
            article(id="no-title", title="  "),
            article(id="x", url="javascript:alert(1)"),
            "not an object",
            article(id="good-2", url="https://daily.example/other", title="Other"),
        ]
    }
    path = write(tmp_path, doc)
    report = read(path)
    assert [a.id for a in report.articles] == ["good-1", "good-2"]
    assert (
        f"{path}: article 3 (id 'x'): 'url' must be an absolute http(s) URL; fix or remove it"
        in report.warnings
    )
    assert any("article 2 (id 'no-title'): 'title' is required" in w for w in report.warnings)
    assert any("article 4: expected an object, found a string" in w for w in report.warnings)
    with pytest.raises(ContentError, match=r"article 2 \(id 'no-title'\)"):
        read_source(str(path), settings(), strict=True)


def test_relative_urls_resolve_against_the_site_and_html_is_sanitized(tmp_path: Path) -> None:
    doc = [
        article(
            url="/metro?utm_source=x",
            summary='<p onclick="x()">Read <a href="more">more</a> '
            '<a href="javascript:bad()">no</a>'
            "<script>alert(1)</script><img src=x onerror=alert(2)></p>",
            title="<b>Metro</b> &amp; more",
            image={"url": "img/metro.jpg", "caption": "The <i>new</i> line", "width": "640"},
        )
    ]
    report = read(write(tmp_path, doc))
    (item,) = report.articles
    assert item.url == "https://daily.example/metro?utm_source=x"
    assert item.title == "Metro & more"
    assert item.summary == (
        '<p>Read <a href="https://daily.example/news/more" rel="noopener">more</a> '
        '<a rel="noopener">no</a></p>'
    )
    assert item.image is not None
    assert item.image.url == "https://daily.example/news/img/metro.jpg"
    assert item.image.alt == "Metro & more"  # no alt text: the title stands in
    assert item.image.caption == "The new line"
    assert item.image.width == 640


def test_image_alt_is_the_pictures_own_description(tmp_path: Path) -> None:
    described = {"url": "img/metro.jpg", "alt": "  A <i>silver</i> train\nat the platform "}
    doc = [article(image=described), article(id="b", url="https://daily.example/b", title="B")]
    first, second = read(write(tmp_path, doc)).articles
    assert first.image is not None
    assert first.image.alt == "A silver train at the platform"
    assert second.image is None


def test_fields_are_normalized(tmp_path: Path) -> None:
    doc = {
        "articles": [
            article(
                id=None,
                section="Editorial",
                regions="usa",
                tags=["Transit", "transit", "<b>Budget</b>"],
                pinned=True,
                trending_rank=2,
                popularity=10,
                priority=3,
                author={"name": "Metro Desk"},
                updated="2026-03-04T19:00:00",
                image="https://cdn.example/a.jpg",
            ),
            article(
                id="b",
                url="https://daily.example/b",
                title="B",
                regions=["new york", "Global"],
                section="Sports",
            ),
        ]
    }
    report = read(write(tmp_path, doc), zone="Asia/Kolkata")
    first, second = report.articles
    assert first.id == "https://daily.example/metro"  # no id: the canonical URL
    assert first.section == "opinion"
    assert first.regions == ("United States",)
    assert first.tags == ("Transit", "Budget")
    assert (first.pinned, first.trending_rank, first.popularity, first.priority) == (
        True,
        2,
        10.0,
        3,
    )
    assert first.author == "Metro Desk"
    assert first.published == datetime(2026, 3, 4, 11, 51, tzinfo=UTC)
    # a naive time is taken in the publication's zone (Asia/Kolkata, +05:30)
    assert first.updated == datetime(2026, 3, 4, 13, 30, tzinfo=UTC)
    assert first.image is not None
    assert first.image.url == "https://cdn.example/a.jpg"
    assert second.section == "sports"
    assert second.regions == ("New York", "Global")
    assert not report.warnings


def test_bad_optional_fields_are_dropped_with_a_warning(tmp_path: Path) -> None:
    doc = [
        article(
            id="o",
            published="yesterday",
            pinned="yes",
            trending_rank=0,
            popularity=float("nan"),
            image={"url": "ftp://x/y.jpg"},
            summery="typo",
        )
    ]
    path = tmp_path / "articles.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = read(path)
    (item,) = report.articles
    assert item.published is None
    assert item.pinned is False
    assert item.trending_rank is None
    assert item.popularity is None
    assert item.image is None
    text = "\n".join(report.warnings)
    for field in ("'published'", "'pinned'", "'trending_rank'", "'popularity'", "'image.url'"):
        assert f"article 1 (id 'o'): {field}" in text, field
    assert "'summery' (1 article, did you mean 'summary'?)" in text


def test_deeply_nested_json_is_refused_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    report = read(path)
    assert report.error is not None
    assert report.error.startswith(f"{path}: ")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings_(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=st.dictionaries(st.sampled_from([*FIELDS, "extra"]), JSON_VALUES, max_size=8))
def test_any_field_values_are_read_or_reported_never_crash(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps({"articles": [fields]}), encoding="utf-8")
    report = read(path)
    assert report.error is None
    for item in report.articles:
        assert item.url.startswith(("http://", "https://"))
        assert item.title
        assert item.published is None or item.published.tzinfo is not None


def test_urls_written_wrongly_are_refused_never_made_a_path_on_the_site(tmp_path: Path) -> None:
    doc = [
        article(
            id="pic",
            image="img.example.com/x.jpg",
            summary='<p>See <a href="www.example.com/more">more</a>.</p>',
        ),
        article(id="secret", url="https://editor:hunter2@daily.example/b"),
        article(id="bare", url="daily.example/c"),
        article(id="fine", url="/d", image={"url": "/img/d.jpg"}),
    ]
    path = write(tmp_path, doc)
    report = read(path)
    by_id = {a.id: a for a in report.articles}
    assert set(by_id) == {"pic", "fine"}
    assert by_id["pic"].image is None
    assert by_id["pic"].summary == '<p>See <a rel="noopener">more</a>.</p>'
    assert by_id["fine"].url == "https://daily.example/d"
    assert by_id["fine"].image is not None
    assert by_id["fine"].image.url == "https://daily.example/img/d.jpg"
    warnings = "\n".join(report.warnings)
    assert "hunter2" not in warnings
    assert (
        f"{path}: article 1 (id 'pic'): 'image.url' 'img.example.com/x.jpg' has no scheme: write"
        " the full address (https://img.example.com/x.jpg), or start a path on the site with /"
        " (/img.example.com/x.jpg); the image is left out" in warnings
    )
    assert (
        f"{path}: article 1 (id 'pic'): a link in 'summary' 'www.example.com/more' has no scheme"
        in warnings
    )
    assert "the link is removed, its text kept" in warnings
    assert (
        f"{path}: article 2 (id 'secret'): 'url' 'https://…@daily.example/b' carries a user"
        " name or password" in warnings
    )
    assert f"{path}: article 3 (id 'bare'): 'url' 'daily.example/c' has no scheme" in warnings


def test_rfc_822_times_are_read_like_in_feeds(tmp_path: Path) -> None:
    doc = [
        article(id="rss", published="Wed, 04 Mar 2026 17:21:00 +0530"),
        article(id="mail", published="4 Mar 2026 11:51 GMT", url="https://daily.example/m"),
        article(id="local", published="Wed, 04 Mar 2026 17:21:00", url="https://daily.example/l"),
    ]
    report = read(write(tmp_path, doc), zone="Asia/Kolkata")
    moments = {a.id: a.published for a in report.articles}
    expected = datetime(2026, 3, 4, 11, 51, tzinfo=UTC)
    assert moments == {"rss": expected, "mail": expected, "local": expected}
    assert not report.warnings


def test_an_undated_or_unreadable_article_is_named_in_a_warning(tmp_path: Path) -> None:
    doc = [
        article(id="none", published=None, title="Quiet harbour"),
        article(id="bad", published="last Tuesday", url="https://daily.example/b", title="Bad"),
        article(id="half", published="soon", updated="2026-03-04T10:00:00Z", title="Half"),
    ]
    path = write(tmp_path, doc)
    report = read(path)
    assert [a.published for a in report.articles][:2] == [None, None]
    warnings = "\n".join(report.warnings)
    assert (
        f"{path}: article 1 (id 'none') has no date; 'Quiet harbour' is kept but ranked as the"
        " oldest (never the scored lead); give it a time in ISO 8601 like" in warnings
    )
    assert "article 2 (id 'bad'): 'published' is not a time in ISO 8601 like" in warnings
    assert "RFC 822 like Wed, 04 Mar 2026 17:21:00 +0530 (found 'last Tuesday')" in warnings
    assert "article 2 (id 'bad') has no date (unreadable: 'last Tuesday'); 'Bad' is kept" in (
        warnings
    )
    assert "article 3 (id 'half'): 'published' is not a time" in warnings
    assert "article 3 (id 'half') has no date" not in warnings  # 'updated' dates it
