"""The allowlist sanitizer, the http(s) URL check and the canonical URL."""

from __future__ import annotations

import pytest

from newsletter.sanitize import (
    absolute_url,
    canonical_url,
    clean_html,
    paragraphs_text,
    plain_text,
)

BASE = "https://site.example/world/"

# --------------------------------------------------------------------------- canonical_url


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTPS://News.Example.COM/a", "https://news.example.com/a"),
        ("https://news.example/a#comments", "https://news.example/a"),
        ("https://news.example/a/", "https://news.example/a"),
        ("https://news.example/", "https://news.example"),
        ("https://news.example/a?utm_source=rss&UTM_Medium=x&id=3", "https://news.example/a?id=3"),
        ("https://news.example/a?b=2&a=&utm_x=1", "https://news.example/a?b=2&a="),
        ("http://news.example:80/a", "http://news.example/a"),
        ("https://news.example:443/a", "https://news.example/a"),
        ("http://news.example:443/a", "http://news.example:443/a"),
        ("https://news.example:8443/a/", "https://news.example:8443/a"),
        ("https://news.example/Path/Case", "https://news.example/Path/Case"),
        ("http://user:pw@News.example/a", "http://user:pw@news.example/a"),
        ("http://[::1]:8080/x/", "http://[::1]:8080/x"),
        ("  https://news.example/a/  ", "https://news.example/a"),
    ],
)
def test_canonical_url(raw: str, canonical: str) -> None:
    assert canonical_url(raw) == canonical


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("HTTPS://News.Example/a/b/?utm_campaign=z&page=2#top")
    assert canonical_url(once) == once


@pytest.mark.parametrize("raw", ["transit-plan", "https://news.example:99999/a", ""])
def test_canonical_url_keeps_what_is_not_a_url(raw: str) -> None:
    assert canonical_url(raw) == raw.strip()


# --------------------------------------------------------------------------- absolute_url


@pytest.mark.parametrize(
    "raw",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,hi",
        "file:///etc/passwd",
        "ftp://news.example/a",
        "mailto:desk@news.example",
        "https://news.example/a\nb",
        "https://news.example:99999/a",
        "",
    ],
)
def test_absolute_url_refuses_anything_but_http(raw: str) -> None:
    assert absolute_url(raw) is None
    assert absolute_url(raw, BASE) is None


def test_absolute_url_resolves_relative_links_only_with_a_base() -> None:
    assert absolute_url("/news/a") is None
    assert absolute_url("/news/a", BASE) == "https://site.example/news/a"
    assert absolute_url("local", BASE) == "https://site.example/world/local"
    assert absolute_url("//cdn.example/x.jpg", BASE) == "https://cdn.example/x.jpg"


def test_absolute_url_tidies_a_usable_url() -> None:
    assert absolute_url(" HTTPS://news.example ") == "https://news.example/"
    assert absolute_url("https://news.example/a b") == "https://news.example/a%20b"


# --------------------------------------------------------------------------- clean_html


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("<p>Hi<script>alert(1)</script></p>", "<p>Hi</p>"),
        ("<style>p{color:red}</style><p>Hi</p>", "<p>Hi</p>"),
        ('<p onclick="steal()" style="color:red">Hi</p>', "<p>Hi</p>"),
        ('<img src="x" onerror="alert(1)"><b>bold</b>', "<b>bold</b>"),
        ('<iframe src="https://evil.example"></iframe>text', "text"),
        ("<div><h1>Title</h1></div><!-- note -->", "Title"),
    ],
)
def test_clean_html_removes_scripts_handlers_and_unknown_tags(dirty: str, clean: str) -> None:
    assert clean_html(dirty) == clean


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "mailto:desk@news.example",
    ],
)
def test_clean_html_drops_links_that_are_not_http(href: str) -> None:
    cleaned = clean_html(f'<a href="{href}">x</a>', BASE)
    assert cleaned == '<a rel="noopener">x</a>'


def test_clean_html_refuses_relative_links_without_a_base() -> None:
    assert clean_html('<a href="/news/a">x</a>') == '<a rel="noopener">x</a>'
    assert clean_html('<a href="news/a">x</a>') == '<a rel="noopener">x</a>'


def test_clean_html_resolves_relative_links_against_the_base() -> None:
    assert clean_html('<a href="/news/a">x</a>', BASE) == (
        '<a href="https://site.example/news/a" rel="noopener">x</a>'
    )


def test_clean_html_keeps_allowed_markup_and_absolute_links() -> None:
    dirty = (
        '<p>A <em>big</em> <strong>day</strong>: <a href="https://news.example/a" '
        'title="More" target="_blank" onmouseover="x()">read</a></p>'
        '<ul><li>one</li></ul><blockquote><abbr title="United Nations">UN</abbr></blockquote>'
    )
    assert clean_html(dirty) == (
        '<p>A <em>big</em> <strong>day</strong>: <a href="https://news.example/a" '
        'title="More" rel="noopener">read</a></p>'
        '<ul><li>one</li></ul><blockquote><abbr title="United Nations">UN</abbr></blockquote>'
    )


def test_clean_html_of_nothing_is_empty() -> None:
    assert clean_html("") == ""
    assert clean_html("  <script>x</script>  ") == ""


# --------------------------------------------------------------------------- plain text


def test_plain_text_drops_tags_decodes_entities_and_folds_spaces() -> None:
    assert plain_text("<p>A &amp; B</p><p>C<br>D</p><script>x()</script>") == "A & B C D"
    assert plain_text("") == ""


def test_paragraphs_text_keeps_breaks_and_list_items() -> None:
    fragment = "<p>One</p><ul><li>a</li><li>b</li></ul><p>Two<br>three</p>"
    assert paragraphs_text(fragment) == "One\n- a\n- b\nTwo\nthree"
