"""Fetching feeds from a real HTTP server on 127.0.0.1: caching, timeouts, errors, limits."""

from __future__ import annotations

import base64
import gzip
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from newsletter import __version__
from newsletter.config.settings import Paths, Settings
from newsletter.errors import ContentError
from newsletter.sources import Fetcher, collect, read_source

NOW = datetime(2026, 3, 5, tzinfo=UTC)
FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Served feed</title><link>/</link>
<item><title>Served story</title><link>/stories/1</link><guid>/stories/1</guid>
<pubDate>Wed, 04 Mar 2026 10:00:00 GMT</pubDate>
<description>&lt;p&gt;A story &lt;a href="/more"&gt;more&lt;/a&gt;&lt;/p&gt;</description></item>
</channel></rss>
"""
PAGE = b"""<!doctype html><html><head><title>Home</title>
<link rel="alternate" type="application/rss+xml" href="/feed.xml"></head><body></body></html>"""
ETAG = '"feed-v1"'
USER, SECRET = "reader", "s3cret/feed:pw"  # characters that must be %-encoded in a URL
LOGIN = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()


class Handler(BaseHTTPRequestHandler):
    """Routes for every scenario; records each request's path and headers."""

    server: Server

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers)))
        name = self.path.strip("/").split("/")[0].replace("-", "_").replace(".", "_")
        route = getattr(self, f"route_{name}", None)
        if route is None:
            self.send(404, b"not found", "text/plain")
        else:
            route()

    def send(self, code: int, body: bytes, kind: str, **headers: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, code: int, location: str) -> None:
        self.send_response(code)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_feed_xml(self) -> None:
        if self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.end_headers()
            return
        self.send(
            200,
            FEED,
            "application/rss+xml",
            ETag=ETAG,
            Last_Modified="Wed, 04 Mar 2026 10:00:00 GMT",
        )

    def route_plain_xml(self) -> None:
        self.send(200, FEED, "application/rss+xml")

    def route_gzip_xml(self) -> None:
        self.send(200, gzip.compress(FEED), "application/rss+xml", Content_Encoding="gzip")

    def route_slow(self) -> None:
        time.sleep(2)
        self.send(200, FEED, "application/rss+xml")

    def route_trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.end_headers()
        for byte in FEED[:40]:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.05)

    def route_error(self) -> None:
        self.send(500, b"boom", "text/plain")

    def route_loop_a(self) -> None:
        self.redirect(302, "/loop-b")

    def route_loop_b(self) -> None:
        self.redirect(302, "/loop-a")

    def route_chain(self) -> None:
        step = int(self.path.rsplit("/", 1)[1])
        self.redirect(301, f"/chain/{step + 1}")

    def route_moved(self) -> None:
        self.redirect(301, "/plain.xml")

    def route_to_file(self) -> None:
        self.redirect(302, "file:///etc/passwd")

    def route_big(self) -> None:
        self.send(200, b"<rss>" + b" " * 5000 + b"</rss>", "application/rss+xml")

    def route_big_unsized(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"<rss>" + b" " * 5000 + b"</rss>")
        self.close_connection = True

    def route_page(self) -> None:
        self.send(200, PAGE, "text/html; charset=utf-8")

    def logged_in(self) -> bool:
        if self.headers.get("Authorization") == LOGIN:
            return True
        self.send(401, b"who are you?", "text/plain", WWW_Authenticate='Basic realm="feeds"')
        return False

    def route_private_xml(self) -> None:
        if self.logged_in():
            self.send(200, FEED, "application/rss+xml", ETag=ETAG)

    def route_private_away(self) -> None:
        if self.logged_in():
            port = self.server.server_address[1]
            self.redirect(302, f"http://localhost:{port}/plain.xml")


class Server(ThreadingHTTPServer):
    """A loopback HTTP server that remembers the requests it got."""

    daemon_threads = True
    requests: list[tuple[str, dict[str, str]]]

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that give up early (the timeout tests) are expected; report anything else."""
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Talk to the loopback server directly, whatever the environment says."""
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[Server]:
    """Serve the routes on a free port of 127.0.0.1."""
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def url(server: Server, path: str) -> str:
    """The address of a route."""
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def make_settings(tmp_path: Path) -> Settings:
    """Settings whose state folder is in ``tmp_path``."""
    return replace(Settings(), paths=Paths(state_dir=tmp_path / "state"))


def fetcher(tmp_path: Path, timeout: float = 1.0, max_bytes: int = 2000) -> Fetcher:
    """A fetcher with small limits so failures come fast."""
    return Fetcher(
        user_agent="test",
        cache_dir=tmp_path / "cache",
        timeout=timeout,
        total_time=2 * timeout,
        max_bytes=max_bytes,
    )


def test_conditional_get_reuses_the_cached_feed(server: Server, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    spec = url(server, "/feed.xml")
    first = read_source(spec, settings)
    second = read_source(spec, settings)
    assert first.error is None
    assert [a.title for a in first.articles] == ["Served story"]
    assert second.articles == first.articles
    (_, headers_1), (_, headers_2) = server.requests
    assert "If-None-Match" not in headers_1
    assert headers_2["If-None-Match"] == ETAG
    assert headers_2["If-Modified-Since"] == "Wed, 04 Mar 2026 10:00:00 GMT"
    site = settings.publication.site_url
    assert headers_1["User-Agent"] == f"newsletter/{__version__} (+{site})"
    assert list((tmp_path / "state" / "feeds").glob("*.body"))
    article = first.articles[0]
    assert article.url == url(server, "/stories/1")  # relative to the feed's address
    assert f'href="{url(server, "/more")}"' in article.summary


def test_slow_server_times_out_with_a_warning(server: Server, tmp_path: Path) -> None:
    started = time.monotonic()
    report = read_source(url(server, "/slow"), Settings(), fetcher=fetcher(tmp_path, timeout=0.3))
    assert time.monotonic() - started < 1.5
    assert report.kind == "failed"
    assert report.error is not None
    assert "timed out after 0.3 s" in report.error


def test_trickling_body_is_cut_off_at_the_deadline(server: Server, tmp_path: Path) -> None:
    started = time.monotonic()
    report = read_source(
        url(server, "/trickle"), Settings(), fetcher=fetcher(tmp_path, timeout=0.5)
    )
    assert time.monotonic() - started < 1.8  # each byte came in time, the whole did not
    assert report.error is not None
    assert "timed out" in report.error


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/missing", "HTTP 404 Not Found"),
        ("/error", "HTTP 500 Internal Server Error"),
        ("/loop-a", "redirect loop"),
        ("/chain/1", "more than 5 redirects"),
        ("/to-file", "not http(s)"),
        ("/big", "too large"),
        ("/big-unsized", "too large"),
    ],
)
def test_failures_are_warnings_and_strict_raises(
    server: Server, tmp_path: Path, path: str, expected: str
) -> None:
    spec = url(server, path)
    report = read_source(spec, Settings(), fetcher=fetcher(tmp_path))
    assert report.kind == "failed"
    assert report.error is not None
    assert report.error.startswith(f"{spec}: ")
    assert expected in report.error
    with pytest.raises(ContentError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_source(spec, Settings(), strict=True, fetcher=fetcher(tmp_path))


def test_other_sources_go_on_when_one_fails(server: Server, tmp_path: Path) -> None:
    local = tmp_path / "local.json"
    local.write_text(
        '{"articles": [{"id": "l", "title": "Local story", "url": "https://daily.example/l",'
        ' "published": "2026-03-04T08:00:00Z"}]}',
        encoding="utf-8",
    )
    specs = [url(server, "/missing"), url(server, "/plain.xml"), str(local), url(server, "/error")]
    collection = collect(specs, Settings(), now=NOW, fetcher=fetcher(tmp_path))
    assert [a.title for a in collection.articles] == ["Served story", "Local story"]
    assert [r.kind for r in collection.reports] == ["failed", "rss", "json", "failed"]
    assert any("HTTP 404" in w for w in collection.warnings)
    assert any("HTTP 500" in w for w in collection.warnings)
    with pytest.raises(ContentError, match="HTTP 404"):
        collect(specs, Settings(), strict=True, now=NOW, fetcher=fetcher(tmp_path))


def test_redirect_and_gzip(server: Server, tmp_path: Path) -> None:
    moved = read_source(url(server, "/moved"), Settings(), fetcher=fetcher(tmp_path))
    assert [a.url for a in moved.articles] == [url(server, "/stories/1")]
    packed = read_source(url(server, "/gzip.xml"), Settings(), fetcher=fetcher(tmp_path))
    assert [a.title for a in packed.articles] == ["Served story"]
    assert server.requests[-1][1]["Accept-Encoding"] == "gzip"


def test_served_web_page_lists_its_feed(server: Server, tmp_path: Path) -> None:
    report = read_source(url(server, "/page"), Settings(), fetcher=fetcher(tmp_path))
    assert report.error is not None
    assert "this is a web page, not a feed" in report.error
    assert url(server, "/feed.xml") in report.error


def test_unreachable_port_is_a_warning(tmp_path: Path) -> None:
    with Server(("127.0.0.1", 0), Handler) as probe:
        port = probe.server_address[1]
    report = read_source(f"http://127.0.0.1:{port}/feed.xml", Settings(), fetcher=fetcher(tmp_path))
    assert report.error is not None
    assert "cannot connect" in report.error


def private(server: Server, path: str, secret: str = SECRET) -> str:
    """The address of a route with a user name and password in it."""
    port = server.server_address[1]
    return f"http://{USER}:{quote(secret, safe='')}@127.0.0.1:{port}{path}"


def test_a_password_in_the_url_logs_in_and_never_shows(server: Server, tmp_path: Path) -> None:
    spec = private(server, "/private.xml")
    report = read_source(spec, make_settings(tmp_path), fetcher=fetcher(tmp_path))
    assert report.error is None, report.error
    assert [a.title for a in report.articles] == ["Served story"]
    assert report.spec == f"http://{USER}:***@127.0.0.1:{server.server_address[1]}/private.xml"
    assert server.requests[-1][1]["Authorization"] == LOGIN
    # Links resolved against the feed's address carry no credentials either.
    assert [a.url for a in report.articles] == [url(server, "/stories/1")]
    cached = "".join(p.read_text("latin-1") for p in (tmp_path / "cache").iterdir())
    for secret in (SECRET, quote(SECRET, safe="")):
        assert secret not in repr(report)
        assert secret not in cached


def test_a_wrong_password_is_named_without_showing_it(server: Server, tmp_path: Path) -> None:
    spec = private(server, "/private.xml", secret="not-the-s3cret")
    report = read_source(spec, Settings(), fetcher=fetcher(tmp_path))
    assert report.error is not None
    assert report.error.startswith(f"http://{USER}:***@127.0.0.1:")
    assert "HTTP 401" in report.error
    assert "user name and password" in report.error
    assert "not-the-s3cret" not in repr(report)
    with pytest.raises(ContentError) as raised:
        read_source(spec, Settings(), strict=True, fetcher=fetcher(tmp_path))
    assert "not-the-s3cret" not in str(raised.value)


def test_credentials_are_not_sent_where_a_redirect_leads_away(
    server: Server, tmp_path: Path
) -> None:
    report = read_source(private(server, "/private-away"), Settings(), fetcher=fetcher(tmp_path))
    assert report.error is None, report.error
    path, headers = server.requests[-1]
    assert (path, headers["Host"].split(":")[0]) == ("/plain.xml", "localhost")
    assert "Authorization" not in headers


def test_an_unreachable_private_feed_does_not_show_the_password(tmp_path: Path) -> None:
    with Server(("127.0.0.1", 0), Handler) as probe:
        port = probe.server_address[1]
    spec = f"http://{USER}:{quote(SECRET, safe='')}@127.0.0.1:{port}/feed.xml?token=abc123xyz"
    report = read_source(spec, Settings(), fetcher=fetcher(tmp_path))
    assert report.error is not None
    assert "cannot connect" in report.error
    assert report.spec == f"http://{USER}:***@127.0.0.1:{port}/feed.xml?token=***"
    for secret in (SECRET, quote(SECRET, safe=""), "abc123xyz"):
        assert secret not in repr(report)
