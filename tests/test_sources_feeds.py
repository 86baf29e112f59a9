"""RSS/Atom/JSON Feed reading: hostile input, normalization, images, mapping, time zones."""

from __future__ import annotations

import io
import json
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from newsletter.config.settings import Settings
from newsletter.errors import ContentError
from newsletter.sources import SourceReport, collect, read_source

DATA = Path(__file__).resolve().parent / "data" / "sources"
SECRET = "TOP-SECRET-LOCAL-FILE-CONTENT-7f3a"
NOW = datetime(2026, 3, 5, tzinfo=UTC)


def read(path: Path, settings: Settings | None = None) -> SourceReport:
    """Read a file source with default settings."""
    return read_source(str(path), settings or Settings())


def xxe_feed(tmp_path: Path, template: str) -> Path:
    """Write a secret local file and a feed whose entity points at it."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    text = (DATA / template).read_text(encoding="utf-8").replace("@SECRET_URL@", secret.as_uri())
    feed = tmp_path / template.removesuffix(".in")
    feed.write_text(text, encoding="utf-8")
    return feed


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and refuse) any attempt to open a connection."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network use is not allowed here")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize("template", ["xxe.xml.in", "xxe_parameter.xml.in"])
def test_external_entities_are_refused_without_reading_the_file(
    tmp_path: Path, template: str, no_network: list[object]
) -> None:
    feed = xxe_feed(tmp_path, template)
    report = read(feed)
    assert report.kind == "failed"
    assert report.error is not None
    assert report.error.startswith(f"{feed}: ")
    assert "entity" in report.error
    assert SECRET not in repr(report)
    assert not no_network
    with pytest.raises(ContentError, match="entity"):
        read_source(str(feed), Settings(), strict=True)


def test_billion_laughs_is_refused_quickly() -> None:
    path = DATA / "billion_laughs.xml"
    started = time.monotonic()
    report = read(path)
    assert time.monotonic() - started < 5
    assert report.kind == "failed"
    assert report.error is not None
    assert "nested" in report.error
    assert "lollol" not in repr(report)


def test_plain_text_entities_in_a_doctype_are_still_allowed(tmp_path: Path) -> None:
    feed = tmp_path / "entity.xml"
    feed.write_text(
        '<!DOCTYPE rss [\n  <!ENTITY site "https://plain.example">\n]>\n'
        '<rss version="2.0"><channel><item><title>Entity &amp; friends</title>'
        "<link>&site;/story</link></item></channel></rss>",
        encoding="utf-8",
    )
    report = read(feed)
    assert report.error is None
    (article,) = report.articles
    assert article.url == "https://plain.example/story"
    assert article.title == "Entity & friends"


def test_hostile_markup_is_sanitized() -> None:
    path = DATA / "hostile.xml"
    report = read(path)
    assert report.error is None
    by_title = {a.title: a for a in report.articles}
    assert set(by_title) == {"Click here", "Image handler"}
    one = by_title["Click here"]
    everything = " ".join(a.summary + a.title for a in report.articles).lower()
    for bad in (
        "<script",
        "javascript:",
        "onerror",
        "onclick",
        "onload",
        "onmouseover",
        "<iframe",
        "data:",
        "style=",
        "<img",
    ):
        assert bad not in everything, bad
    assert "world" in one.summary
    assert '<a href="https://hostile.example/relative"' in one.summary
    two = by_title["Image handler"]
    assert "longer than the description" in two.summary  # content:encoded beats description
    assert two.image is None  # a javascript: image is no image
    assert any("item 2 ('Script link') has no http(s) link" in w for w in report.warnings)


def test_web_page_lists_the_feeds_it_advertises(tmp_path: Path) -> None:
    page = DATA / "page.html"
    report = read(page)
    assert report.kind == "failed"
    assert report.error is not None
    assert report.error.startswith(f"{page}: this is a web page, not a feed")
    assert "/feeds/all.rss" in report.error
    assert "https://news.example/opinion.atom" in report.error
    assert "javascript" not in report.error
    assert "style.css" not in report.error
    with pytest.raises(ContentError, match="advertises these feeds"):
        read_source(str(page), Settings(), strict=True)


def test_page_without_feed_links_says_so(tmp_path: Path) -> None:
    page = tmp_path / "plain.html"
    page.write_text("<html><body><p>Nothing here</p></body></html>", encoding="utf-8")
    report = read(page)
    assert report.error is not None
    assert "advertises no RSS or Atom feed" in report.error


def test_dates_compare_in_utc_and_undated_items_are_kept() -> None:
    path = DATA / "timezones.xml"
    report = read(path)
    by_title = {a.title: a for a in report.articles}
    tokyo = by_title["Tokyo morning briefing"]
    new_york = by_title["New York early edition"]
    undated = by_title["Undated note"]
    assert tokyo.published == datetime(2026, 3, 4, 9, tzinfo=UTC)
    assert new_york.published == datetime(2026, 3, 4, 10, tzinfo=UTC)
    assert tokyo.published.tzinfo == UTC
    assert undated.published is None
    assert any("item 3 has no date" in w and w.startswith(str(path)) for w in report.warnings)
    ordered = collect([str(path)], Settings(), now=NOW).articles
    assert [a.title for a in ordered] == [
        "New York early edition",
        "Tokyo morning briefing",
        "Undated note",
    ]


def test_images_categories_and_relative_links() -> None:
    settings = replace(
        Settings(), region_map={"kerala": "India"}, section_map={"shipping": "business"}
    )
    report = read(DATA / "media.xml", settings)
    by_title = {a.title: a for a in report.articles}
    harbour = by_title["Harbour reopens & ships return"]
    assert harbour.url == "https://media.example/news/harbour?utm_source=rss#top"
    assert harbour.id == "https://media.example#harbour-1"  # a bare guid gets the feed's address
    assert harbour.image is not None
    assert harbour.image.url == "https://media.example/img/harbour.jpg"
    assert (harbour.image.width, harbour.image.height) == (1200, 800)
    assert harbour.image.alt == harbour.title
    assert harbour.author == "Port Desk"
    assert harbour.section == "business"  # the publication's map wins over "News"
    assert harbour.regions == ("United Kingdom",)
    bridge = by_title["Why the bridge matters"]
    assert bridge.section == "opinion"
    assert bridge.regions == ("United States",)
    assert bridge.image is not None
    assert bridge.image.url == "https://media.example/img/bridge-thumb.jpg"
    week = by_title["Podcast: the week"]
    assert week.section == "blog"
    assert week.regions == ("India",)
    assert week.image is not None
    assert week.image.url == "https://media.example/img/week.png"  # not the audio enclosure
    assert any("item 4 has neither a title nor a link" in w for w in report.warnings)


def test_alt_text_is_the_feeds_own_description_of_the_picture() -> None:
    report = read(DATA / "media_alt.xml")
    alt = {a.title: a.image.alt for a in report.articles if a.image is not None}
    assert alt == {
        "Own words": "A ferry leaves the quay at dawn",  # its media:description, as text
        "Title only": "Gulls over the breakwater",  # its media:title (a relative URL too)
        "Group words": "Cranes & containers at night",  # the media:group's description
        "Item words": "A lighthouse in fog",  # the item's media:description
        "Enclosure alt": "A map of the new tram line",
        "Content alt": "Divers check the gate hinges",  # the same picture's alt in the content
        "No words": "No words",  # nothing said: the headline stands in
    }


def test_atom_enclosure_title_is_the_alt_text(tmp_path: Path) -> None:
    path = tmp_path / "atom.xml"
    path.write_text(
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        "<id>urn:feed</id><updated>2026-03-04T00:00:00Z</updated><entry><title>Ferry</title>"
        "<id>urn:e</id><updated>2026-03-04T00:00:00Z</updated>"
        '<link href="https://alt.example/e"/><link rel="enclosure" type="image/png" '
        'href="https://alt.example/e.png" title="A ferry at the quay"/></entry></feed>',
        encoding="utf-8",
    )
    (article,) = read(path).articles
    assert article.image is not None
    assert article.image.alt == "A ferry at the quay"


def test_a_damaged_feed_keeps_its_pictures_with_the_headline_as_alt(tmp_path: Path) -> None:
    text = (DATA / "media_alt.xml").read_text(encoding="utf-8")
    path = tmp_path / "damaged.xml"
    path.write_text(text.replace("</channel>", "<oops></channel>"), encoding="utf-8")
    report = read(path)
    alt = {a.title: a.image.alt for a in report.articles if a.image is not None}
    assert alt["Own words"] == "Own words"  # the strict XML reader gave up: no descriptions
    assert alt["Enclosure alt"] == "A map of the new tram line"  # feedparser still has this
    assert alt["Content alt"] == "Divers check the gate hinges"


def test_json_feed_alt_text_comes_from_attachments_and_content(tmp_path: Path) -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Pictures",
        "items": [
            {
                "id": "1",
                "url": "https://jf.example/1",
                "title": "Attachment title",
                "image": "https://jf.example/1.jpg",
                "content_html": '<p><img src="/1.jpg" alt="Less specific"></p>',
                "attachments": [
                    {"url": "/1.jpg", "mime_type": "image/jpeg", "title": "A tram at night"}
                ],
            },
            {
                "id": "2",
                "url": "https://jf.example/2",
                "title": "Content alt",
                "banner_image": "/2.jpg",
                "content_html": '<p><img src="https://jf.example/2.jpg" alt="Kites on the beach">'
                '<img src="/other.jpg" alt="Not this one"></p>',
            },
            {
                "id": "3",
                "url": "https://jf.example/3",
                "title": "No words",
                "image": "https://jf.example/3.jpg",
                "content_html": '<p><img src="/other.jpg" alt="Not this one"></p>',
            },
        ],
    }
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    alt = {a.title: a.image.alt for a in read(path).articles if a.image is not None}
    assert alt == {
        "Attachment title": "A tram at night",
        "Content alt": "Kites on the beach",
        "No words": "No words",
    }


def test_skipped_items_raise_in_strict_mode() -> None:
    with pytest.raises(ContentError, match=r"media\.xml: item 4 has neither a title nor a link"):
        read_source(str(DATA / "media.xml"), Settings(), strict=True)


def test_json_feed_is_sniffed_and_normalized(tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"  # the name says nothing: the content decides
    path.write_bytes((DATA / "feed.json").read_bytes())
    report = read(path)
    assert report.kind == "jsonfeed"
    first, second = sorted(report.articles, key=lambda a: a.url)
    assert first.title == "First post"
    assert first.published == datetime(2026, 3, 4, 2, 30, tzinfo=UTC)
    assert first.section == "interview"
    assert first.regions == ("India",)
    assert first.tags == ("Transit",)
    assert first.author == "Feed Desk"
    assert "<script" not in first.summary
    assert 'href="https://jf.example/about"' in first.summary
    assert first.image is not None
    assert first.image.url == "https://jf.example/pic.jpg"
    assert first.image.alt == "A picture"
    assert second.url == "https://jf.example/posts/2"
    assert second.id == "https://jf.example/feed.json#2"
    assert second.title == "A post without a title."
    assert second.image is not None
    assert second.image.url == "https://jf.example/two.png"
    assert any(
        w.endswith("item 3 has neither a title nor a link; skipped") for w in report.warnings
    )


def test_garbage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    report = read(path)
    assert report.error is not None
    assert "neither JSON nor an RSS/Atom feed" in report.error
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"  \n")
    assert "empty" in (read(empty).error or "")


def test_utf16_feed_with_entities_is_still_checked(tmp_path: Path) -> None:
    text = (
        (DATA / "xxe.xml.in")
        .read_text(encoding="utf-8")
        .replace(
            '<?xml version="1.0" encoding="utf-8"?>', '<?xml version="1.0" encoding="utf-16"?>'
        )
        .replace("@SECRET_URL@", "file:///etc/hostname")
    )
    path = tmp_path / "utf16.xml"
    path.write_bytes(text.encode("utf-16"))
    report = read(path)
    assert report.error is not None
    assert "external entity" in report.error


@pytest.mark.parametrize("template", ["xxe.xml.in", "xxe_parameter.xml.in"])
def test_feedparser_alone_does_not_resolve_external_entities(
    tmp_path: Path, template: str, no_network: list[object]
) -> None:
    """The second line of defence: feedparser itself, given bytes, reads no local file."""
    feed = xxe_feed(tmp_path, template)
    parsed = feedparser.parse(io.BytesIO(feed.read_bytes()))
    assert SECRET not in repr(parsed)
    assert not no_network


@pytest.mark.parametrize(
    "data",
    [
        # a non-ASCII byte inside the declared encoding name (feedparser: UnicodeDecodeError)
        b'<?xml version="1.0" encoding="\xed:uc-kr"?>\n<rss><channel><title>\xb3\xe2</title>'
        b"</channel></rss>",
        # a stray end tag after media:thumbnail (feedparser: TypeError)
        b'<rss version="2.0"><channel><item><media:thumbnail '
        b'xmlns:media="http://search.yahoo.com/mrss/" url="http://x.example/a.jpg"/>'
        b"</width></item></channel></rss>",
    ],
)
def test_documents_that_crash_feedparser_are_a_content_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "damaged.xml"
    path.write_bytes(data)
    report = read(path)
    assert report.kind == "failed"
    assert report.error is not None
    assert report.error.startswith(f"{path}: the feed is too damaged to read")


WRONG_URLS_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>
<title>Wrong URLs</title><link>https://wrong.example/</link>
<item><title>Schemeless picture</title><link>https://wrong.example/a</link>
<pubDate>Wed, 04 Mar 2026 10:00:00 GMT</pubDate>
<media:content url="img.example.com/a.jpg" medium="image"/>
<description>&lt;p&gt;See &lt;a href="www.example.com/b"&gt;this&lt;/a&gt;.&lt;/p&gt;
</description></item>
<item><title>Secret link</title><link>https://editor:hunter2@wrong.example/c</link>
<pubDate>Wed, 04 Mar 2026 10:00:00 GMT</pubDate></item>
<item><title>Schemeless link</title><link>wrong.example/d</link>
<pubDate>Wed, 04 Mar 2026 10:00:00 GMT</pubDate></item>
</channel></rss>
"""


def test_feed_urls_written_wrongly_are_refused_and_named(tmp_path: Path) -> None:
    path = tmp_path / "wrong.xml"
    path.write_text(WRONG_URLS_RSS, encoding="utf-8")
    report = read(path)
    (article,) = report.articles
    assert article.image is None
    assert '<a rel="noopener">this</a>' in article.summary
    warnings = "\n".join(report.warnings)
    assert "hunter2" not in warnings
    assert (
        f"{path}: item 1 ('Schemeless picture'): the image 'img.example.com/a.jpg' has no scheme"
        in warnings
    )
    assert "; the image is left out" in warnings
    assert (
        f"{path}: item 1 ('Schemeless picture'): a link in the summary 'www.example.com/b' has no"
        " scheme" in warnings
    )
    assert (
        f"{path}: item 2 ('Secret link'): the link 'https://…@wrong.example/c' carries a user"
        " name or password" in warnings
    )
    assert f"{path}: item 3 ('Schemeless link'): the link 'wrong.example/d' has no scheme" in (
        warnings
    )


def test_json_feed_urls_written_wrongly_are_refused_and_named(tmp_path: Path) -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Wrong",
        "feed_url": "https://jf.example/feed.json",
        "items": [
            {
                "id": "1",
                "title": "Picture",
                "url": "https://jf.example/1",
                "image": "cdn.example/pic.jpg",
                "content_html": '<p><a href="https://a:b@jf.example/x">x</a></p>',
                "date_published": "2026-03-04T10:00:00Z",
            },
            {"id": "2", "title": "Link", "url": "jf.example/2"},
        ],
    }
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = read(path)
    (article,) = report.articles
    assert article.image is None
    warnings = "\n".join(report.warnings)
    assert "item 1 ('Picture'): the image 'cdn.example/pic.jpg' has no scheme" in warnings
    assert "item 1 ('Picture'): a link in the summary 'https://…@jf.example/x' carries" in (
        warnings
    )
    assert "item 2 ('Link'): the link 'jf.example/2' has no scheme" in warnings


def test_json_feed_dates_in_rfc_822_are_read_and_unreadable_ones_named(tmp_path: Path) -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Dates",
        "feed_url": "https://jf.example/feed.json",
        "items": [
            {"id": "1", "title": "Mailed", "url": "https://jf.example/1",
             "date_published": "Wed, 04 Mar 2026 10:00:00 +0000"},
            {"id": "2", "title": "Garbled", "url": "https://jf.example/2",
             "date_published": "someday"},
        ],
    }  # fmt: skip
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = read(path)
    by_title = {a.title: a for a in report.articles}
    assert by_title["Mailed"].published == datetime(2026, 3, 4, 10, tzinfo=UTC)
    assert by_title["Garbled"].published is None
    assert (
        f"{path}: item 2 has no date (unreadable: 'someday'); 'Garbled' is kept but ranked as"
        " the oldest" in report.warnings[0]
    )
