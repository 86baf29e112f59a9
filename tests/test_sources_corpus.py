"""Every real-world feed in the shared corpus loads through ``read_source`` without a traceback."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.config.settings import Settings
from newsletter.sources import SourceReport, read_source

CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/feeds-feedparser"
FILES = sorted(p for p in CORPUS.glob("*") if p.suffix in (".xml", ".rdf", ".json"))
pytestmark = pytest.mark.skipif(
    not FILES, reason=f"the shared feed corpus is not at {CORPUS} (it lives beside the repository)"
)
TAG = re.compile(r"<\s*/?[A-Za-z!]")
EVENT_HANDLER = re.compile(r"<[^>]+\son\w+\s*=", re.IGNORECASE)


def read(name: str) -> SourceReport:
    """Read one corpus file with default settings."""
    return read_source(str(CORPUS / name), Settings())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_loads_or_fails_cleanly(path: Path) -> None:
    report = read_source(str(path), Settings())
    assert report.spec == str(path)
    if report.error is not None:
        assert report.kind == "failed"
        assert report.error.startswith(str(path))
        assert not report.articles
    else:
        assert report.kind in ("rss", "atom", "jsonfeed", "json")
    if not report.articles:
        # nothing usable: the reason is named, and names the file
        messages = [*report.warnings, report.error or ""]
        assert any(m.startswith(f"{path}:") for m in messages)
    for warning in report.warnings:
        assert warning.startswith(f"{path}: ")
    for article in report.articles:
        assert article.title.strip()
        assert not TAG.search(article.title)  # titles are plain text
        assert article.url.startswith(("http://", "https://"))
        assert article.id
        assert article.source == str(path)
        summary = article.summary.lower()
        assert "<script" not in summary
        assert "javascript:" not in summary
        assert not EVENT_HANDLER.search(article.summary)
        assert "style=" not in summary
        for moment in (article.published, article.updated):
            assert moment is None or moment.utcoffset() is not None
        if article.image is not None:
            assert article.image.url.startswith(("http://", "https://"))
            assert article.image.alt


def test_rss20_facts() -> None:
    report = read("rss20.xml")
    assert report.kind == "rss"
    assert report.error is None
    (article,) = report.articles
    assert article.title == "First item title"
    assert article.url == "http://example.org/item/1"
    assert article.id == "http://example.org/guid/1"
    assert article.published == datetime(2002, 9, 5, 0, 0, 1, tzinfo=UTC)
    assert article.tags == ("Miscellaneous",)
    assert "nasty tricks" in article.summary
    assert "javascript" not in article.summary
    assert article.image is None  # the only enclosure is audio


def test_atom10_facts() -> None:
    report = read("atom10.xml")
    assert report.kind == "atom"
    (article,) = report.articles
    assert article.title == "First entry title"
    assert article.url == "http://example.org/entry/3"  # relative, resolved via xml:base
    assert article.id == "tag:feedparser.org,2005-11-09:/docs/examples/atom10.xml:3"
    assert article.published == datetime(2005, 11, 9, 0, 23, 47, tzinfo=UTC)
    assert article.updated == datetime(2005, 11, 9, 11, 56, 34, tzinfo=UTC)
    assert article.author == "Mark Pilgrim"
    assert "nasty tricks" in article.summary
    assert "style" not in article.summary


def test_json_feed_in_corpus_is_sniffed_and_sanitized() -> None:
    report = read("example.json")
    assert report.kind == "jsonfeed"
    titles = [a.title for a in report.articles]
    assert titles == ["post 2", "Hello, world!"]
    hello = report.articles[1]
    assert "<script" not in hello.summary
    assert "Hello, world!" in hello.summary
    assert any("item 2 has no title" in w for w in report.warnings)


def test_items_without_title_or_link_are_named() -> None:
    report = read("item_content_encoded.xml")
    assert not report.articles
    assert any("item 1 has neither a title nor a link" in w for w in report.warnings)


def test_odd_encodings_are_decoded() -> None:
    report = read("large_atom_feed_that_needs_css_sanitisation.xml")
    assert len(report.articles) > 10
    assert any("Nokia" in a.title for a in report.articles)
    assert all("style=" not in a.summary for a in report.articles)


def test_empty_document_is_a_clear_failure() -> None:
    report = read("rss_empty_document.xml")
    assert report.kind == "failed"
    assert report.error is not None
    assert "not an RSS or Atom feed" in report.error
