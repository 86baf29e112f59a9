"""The allowlist sanitizer, the http(s) URL check and the canonical URL."""

from __future__ import annotations

import pytest

from newsletter.sanitize import (
    absolute_url,
    canonical_url,
    clean_html,
    paragraphs_text,
    plain_text,
    url_mistake,
    url_refusal,
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


@pytest.mark.parametrize(
    "raw",
    [
        "https://user:secret@news.example/a",
        "https://user@news.example/a",
        "http://@news.example/a",
        "https://news.example@evil.example/login",
        "//user:secret@cdn.example/x.jpg",
    ],
)
def test_absolute_url_refuses_a_user_name_or_password(raw: str) -> None:
    assert absolute_url(raw) is None
    assert absolute_url(raw, BASE) is None
    problem = url_mistake(raw)
    assert problem.startswith("carries a user name or password")
    assert "secret" not in url_refusal(raw)  # a password is never repeated in a message
    assert "…@" in url_refusal(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "img.example.com/x.jpg",
        "www.example.com",
        "www.example.com/news/a?id=3",
        "news.example:8080/a",
        "story.html",
    ],
)
def test_absolute_url_never_guesses_a_host_without_a_scheme_into_a_path(raw: str) -> None:
    assert absolute_url(raw) is None
    assert absolute_url(raw, BASE) is None
    assert url_mistake(raw).startswith("has no scheme")
    assert url_refusal(raw) == (
        f"{raw!r} has no scheme: write the full address (https://{raw}), or start a path on"
        f" the site with / (/{raw})"
    )


@pytest.mark.parametrize(
    ("raw", "resolved"),
    [
        ("/img.example.com/x.jpg", "https://site.example/img.example.com/x.jpg"),
        ("./story.html", "https://site.example/world/story.html"),
        ("../story.html", "https://site.example/story.html"),
        ("local/a", "https://site.example/world/local/a"),
        ("?page=2", "https://site.example/world/?page=2"),
        ("https://user-name.example/a@b", "https://user-name.example/a@b"),
    ],
)
def test_relative_references_that_say_so_still_resolve(raw: str, resolved: str) -> None:
    assert url_mistake(raw) == ""
    assert absolute_url(raw, BASE) == resolved


def test_url_refusal_is_generic_for_what_is_simply_not_http() -> None:
    assert url_refusal("javascript:alert(1)") == "must be an absolute http(s) URL"
    assert url_refusal(None) == "must be an absolute http(s) URL"
    assert url_refusal(42) == "must be an absolute http(s) URL"


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


def test_clean_html_drops_links_written_wrongly_and_says_so() -> None:
    mistakes: list[str] = []
    cleaned = clean_html(
        '<p><a href="www.example.com/a">one</a> <a href="https://u:p@x.example/">two</a>'
        ' <a href="mailto:desk@x.example">three</a> <a href="/ok">four</a></p>',
        BASE,
        mistakes,
    )
    assert cleaned == (
        '<p><a rel="noopener">one</a> <a rel="noopener">two</a> <a rel="noopener">three</a>'
        ' <a href="https://site.example/ok" rel="noopener">four</a></p>'
    )
    assert len(mistakes) == 2  # mailto: is not a mistake, just not a web link
    assert mistakes[0].startswith("'www.example.com/a' has no scheme")
    assert mistakes[1].startswith("'https://…@x.example/' carries a user name or password")


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
