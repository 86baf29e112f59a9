"""The preview server over real HTTP on a loopback port, and the static preview file."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import html
import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import IO

import pytest

from newsletter.clock import parse_time
from newsletter.config.load import load_settings
from newsletter.config.paths import SAMPLE_DIR, resource_path
from newsletter.config.settings import Settings
from newsletter.errors import ConfigError, NewsletterError, OutputExistsError, UsageProblem
from newsletter.hosts import is_loopback
from newsletter.messages import MessageFactory, unsubscribe_url
from newsletter.models import Article, Digest, Edition, Subscriber
from newsletter.pipeline import BuildOptions, BuildResult, build_edition
from newsletter.preflight.sample import sample_subscriber
from newsletter.sources import Collection
from newsletter.tokens import unsubscribe_token, verify_token
from newsletter.web.preview.darkmode import force_dark
from newsletter.web.preview.live import PreviewApp
from newsletter.web.preview.personal import STAND_IN_TOKEN
from newsletter.web.preview.problems import locate
from newsletter.web.preview.reasons import explain
from newsletter.web.preview.routes import EMAIL_CSP
from newsletter.web.preview.serve import PreviewServer, remote_warning, serve, start_server
from newsletter.web.preview.snapshots import PreviewOptions
from newsletter.web.preview.static import static_preview_html, write_static_preview

NOW = datetime.fromisoformat("2026-03-04T18:00:00+05:30")
WILDCARD = "0.0.0.0"  # noqa: S104 - only checked, never bound
PARTS = ("/", "/email.html", "/email.txt", "/message.eml")
HOSTILE = '</title><script>alert(1)</script>"><img src=x onerror=alert(2)>'


# --------------------------------------------------------------------------- helpers


def make_project(root: Path, *, subject: str = "") -> Path:
    """Copy the sample publication with its own templates and subscribers; return the config."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(SAMPLE_DIR / "content", root / "content")
    shutil.copytree(resource_path("templates"), root / "templates")
    shutil.copyfile(resource_path("subscribers.example.csv"), root / "subscribers.csv")
    text = (SAMPLE_DIR / "newsletter.toml").read_text(encoding="utf-8")
    if subject:
        text = text.replace('# subject = "{lead}"', f"subject = {json.dumps(subject)}")
        assert json.dumps(subject) in text
    text += '\n[templates]\ndir = "templates"\n\n[subscribers]\nfile = "subscribers.csv"\n'
    text += '\n[output]\nstate_dir = ".state"\n'
    config = root / "newsletter.toml"
    config.write_text(text, encoding="utf-8")
    return config


def options_for(config: Path) -> PreviewOptions:
    """Preview options for a project, built as of ``NOW``."""
    return PreviewOptions(config=config, build=BuildOptions(now=NOW))


@contextmanager
def running(app: PreviewApp, *, watch: bool = False) -> Iterator[PreviewServer]:
    """Serve ``app`` on a free loopback port in a thread; stop everything afterwards."""
    server = start_server(app, "127.0.0.1", 0)
    server.start()
    if watch:
        app.start()
    try:
        yield server
    finally:
        app.close()
        server.stop()


@dataclass
class Reply:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode("utf-8")


def fetch(
    server: PreviewServer,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Reply:
    """Send one request with the path exactly as given (no normalization)."""
    host, port = str(server.server_address[0]), int(server.server_address[1])
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        found = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, found, body)
    finally:
        conn.close()


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what or check}")


def status(server: PreviewServer) -> dict[str, object]:
    """The server's /status.json."""
    data = json.loads(fetch(server, "/status.json").text)
    assert isinstance(data, dict)
    return data


def parse(data: bytes) -> EmailMessage:
    """Parse message bytes."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def part(message: EmailMessage, kind: str) -> str:
    """The decoded text of the ``html`` or ``plain`` part."""
    body = message.get_body((kind,))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) with ``new`` in a file."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def server(project: Path) -> Iterator[PreviewServer]:
    with running(PreviewApp(options_for(project))) as srv:
        yield srv


# --------------------------------------------------------------------------- the page


def test_the_page_shows_the_edition_headers_size_and_selection(
    server: PreviewServer, project: Path
) -> None:
    settings = load_settings(project)
    result = build_edition(settings, BuildOptions(now=NOW))
    reply = fetch(server, "/")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    csp = reply.headers["content-security-policy"]
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src is not None
    assert script_src.group(1).strip() == "'self'"
    assert "frame-ancestors 'none'" in csp
    page = reply.text
    frame = re.search(r"<iframe [^>]*>", page)
    assert frame is not None
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame.group(0)
    assert 'src="/email.html?' in frame.group(0)
    edition = result.edition
    assert html.escape(edition.subject) in page
    for name in ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post", "Date"):
        assert f'<th scope="row">{name}</th>' in page
    assert html.escape(sample_subscriber(settings).email) in page
    selection = result.selection
    assert html.escape(selection["lead"]["title"]) in page
    for item in selection["trending"] + selection["opinion"]:
        assert html.escape(item["title"]) in page
    assert selection["skipped"], "the sample content should skip something"
    for skip in selection["skipped"]:
        assert html.escape(skip["reason"]) in page
    sample = MessageFactory(edition, settings).build(sample_subscriber(settings))
    size = len(part(parse(sample.data), "html").encode("utf-8"))
    assert f'value="{size}"' in page
    assert f"{size / 1000:.1f} KB" in page
    assert 'href="/message.eml?subscriber=sample"' in page


def _lead_reason(server: PreviewServer) -> str:
    page = fetch(server, "/").text
    lead = re.search(r'<span class="place">Lead</span>.*?<span class="why">([^<]*)</span>', page)
    assert lead is not None
    return html.unescape(lead.group(1))


def test_the_lead_reason_says_pinned_or_gives_the_score(project: Path) -> None:
    articles = project.parent / "content" / "articles.json"
    data = json.loads(articles.read_text(encoding="utf-8"))
    pinned = [a for a in data["articles"] if a.get("pinned")]
    assert len(pinned) == 1
    with running(PreviewApp(options_for(project))) as srv:
        assert _lead_reason(srv) == "pinned by the editor"
    for article in data["articles"]:
        article.pop("pinned", None)
    articles.write_text(json.dumps(data), encoding="utf-8")
    with running(PreviewApp(options_for(project))) as srv:
        reason = _lead_reason(srv)
    assert reason.startswith("the best lead score, ")
    assert re.search(r"score, \d+\.\d\d, among news stories of the last 72 h", reason)


def test_email_html_is_the_personalized_part_exactly_as_sent(
    server: PreviewServer, project: Path
) -> None:
    settings = load_settings(project)
    factory = MessageFactory(build_edition(settings, BuildOptions(now=NOW)).edition, settings)
    ana = Subscriber(email="ana.silva@example.com", name="Ana Silva")
    reply = fetch(server, "/email.html?subscriber=ana.silva%40example.com")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["content-security-policy"] == EMAIL_CSP
    assert "script-src" not in EMAIL_CSP
    assert "default-src 'none'" in EMAIL_CSP
    assert "sandbox" in EMAIL_CSP
    assert reply.text == part(parse(factory.build(ana).data), "html")
    assert "Hello Ana Silva," in reply.text
    personal_url = unsubscribe_url(settings, ana.email, factory.signing_key)
    assert f'href="{html.escape(personal_url)}"' in reply.text
    assert "XNLSLOT" not in reply.text
    sample = fetch(server, "/email.html").text
    assert "Hello Sample Reader," in sample
    assert sample == part(parse(factory.build(sample_subscriber(settings)).data), "html")


def test_eml_download_is_the_exact_message(server: PreviewServer, project: Path) -> None:
    settings = load_settings(project)
    factory = MessageFactory(build_edition(settings, BuildOptions(now=NOW)).edition, settings)
    reply = fetch(server, "/message.eml?subscriber=jose.nunez%40example.org")
    assert reply.status == 200
    assert reply.headers["content-type"] == "message/rfc822"
    disposition = reply.headers["content-disposition"]
    found = re.fullmatch(r'attachment; filename="([A-Za-z0-9._-]+\.eml)"', disposition)
    assert found is not None, disposition
    assert "jose.nunez" in found.group(1)
    listed = Subscriber(email="jose.nunez@example.org", name="José Núñez")
    assert reply.body == factory.build(listed).data
    assert b"\r\n" in reply.body


def test_text_part_is_served_as_plain_text(server: PreviewServer) -> None:
    reply = fetch(server, "/email.txt?subscriber=ana.silva%40example.com")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    eml = fetch(server, "/message.eml?subscriber=ana.silva%40example.com")
    assert reply.text == part(parse(eml.body), "plain")
    assert "Hello Ana Silva," in reply.text


def test_the_page_embeds_the_text_part_escaped(server: PreviewServer) -> None:
    text = fetch(server, "/email.txt").text
    page = fetch(server, "/").text
    assert f'aria-label="Plain-text part">{html.escape(text)}</pre>' in page


def test_dark_scheme_serves_the_dark_rules_unwrapped(server: PreviewServer) -> None:
    light = fetch(server, "/email.html").text
    dark = fetch(server, "/email.html?scheme=dark").text
    assert "prefers-color-scheme: dark" in light
    assert "prefers-color-scheme" not in dark
    rule = re.search(r"@media \(prefers-color-scheme: dark\) \{\s*(body[^}]*\})", light)
    assert rule is not None
    assert rule.group(1) in dark
    assert '<meta name="color-scheme" content="dark"' in dark
    assert dark.count("@media") == light.count("@media") - 1


def test_force_dark_unwraps_nested_blocks_and_leaves_the_rest() -> None:
    doc = (
        "<style>a{color:red}@media (prefers-color-scheme: dark) { .x { color: #fff !important; } "
        "@supports (display:grid) { .y { color: #eee; } } }</style>"
    )
    assert force_dark(doc) == (
        "<style>a{color:red} .x { color: #fff !important; } "
        "@supports (display:grid) { .y { color: #eee; } } </style>"
    )
    plain = "<style>@media (max-width: 479px) { .a { width: 1px; } }</style>"
    assert force_dark(plain) == plain
    broken = "<style>@media (prefers-color-scheme: dark) { .x { color: red; </style>"
    assert force_dark(broken) == broken


def test_the_panels_fragment_carries_the_version(server: PreviewServer) -> None:
    version = status(server)["version"]
    reply = fetch(server, "/panels")
    assert reply.status == 200
    assert reply.text.startswith(
        f'<main id="panels" class="panels state-ok" data-version="{version}"'
    )


def test_assets_are_served_from_the_package(server: PreviewServer) -> None:
    css = fetch(server, "/preview.css")
    js = fetch(server, "/preview.js")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "aria-pressed" in css.text
    assert "EventSource" in js.text


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "path",
    [
        "/../etc/passwd",
        "/%2e%2e/",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/email.html/../../etc/passwd",
        "/preview.js/..",
        "/newsletter.toml",
        "/templates/digest.mjml.j2",
        "/content/articles.json",
        "/subscribers.csv",
        "/preview_page/page.py",
        "/index.html",
        "/EMAIL.HTML",
        "/favicon.ico",
    ],
)
def test_unknown_paths_are_404(server: PreviewServer, path: str) -> None:
    reply = fetch(server, path)
    assert reply.status == 404
    assert reply.body == b"not found\n"
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"


def test_only_get_and_head_are_answered(server: PreviewServer) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        reply = fetch(server, "/", method=method)
        assert reply.status == 405
        assert reply.headers["allow"] == "GET, HEAD"
    head = fetch(server, "/email.html", method="HEAD")
    get = fetch(server, "/email.html")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["content-length"] == str(len(get.body))


def test_a_foreign_host_header_is_refused(server: PreviewServer) -> None:
    port = int(server.server_address[1])
    evil = fetch(server, "/", headers={"Host": f"attacker.example:{port}"})
    assert evil.status == 421
    assert b"Subject" not in evil.body
    assert fetch(server, "/", headers={"Host": f"localhost:{port}"}).status == 200


def test_a_hostile_subject_is_escaped_everywhere(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p", subject=HOSTILE + " {lead}")
    with running(PreviewApp(options_for(config))) as srv:
        page = fetch(srv, "/").text
        panels = fetch(srv, "/panels").text
    for text in (page, panels):
        assert "<script>alert(1)" not in text
        assert "<img src=x" not in text
        assert "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None
    assert "&lt;script&gt;" in title.group(1)
    assert page.count("<script") == 1  # the page's own script tag only


def test_a_hostile_subscriber_query_is_escaped(server: PreviewServer) -> None:
    page = fetch(server, "/?subscriber=%3Cscript%3Ealert(1)%3C%2Fscript%3E%40x").text
    assert "<script>alert(1)" not in page
    assert "Cannot show the message for" in page
    assert "&lt;script&gt;alert(1)" in page
    assert 'id="email-frame"' in page, "the sample subscriber's message is still shown"


def test_a_hostile_template_error_is_escaped(project: Path) -> None:
    lead = project.parent / "templates" / "_lead.mjml.j2"
    edit(lead, "<mj-section>", "<mj-section>{{ <script>alert(3)</script> }}")
    with running(PreviewApp(options_for(project))) as srv:
        page = fetch(srv, "/").text
        assert status(srv)["ok"] is False
    assert "<script>alert(3)" not in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "_lead.mjml.j2" in page


def test_binding_beyond_loopback_needs_the_explicit_flag(project: Path) -> None:
    app = PreviewApp(options_for(project))
    try:
        for host in (WILDCARD, "192.0.2.10", "::", "example.org"):
            with pytest.raises(ConfigError, match="refusing to serve the preview"):
                start_server(app, host, 0)
    finally:
        app.close()
    for host in ("127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"):
        assert is_loopback(host)
    for host in (WILDCARD, "10.0.0.1", "::", "example.org", ""):
        assert not is_loopback(host)
    assert WILDCARD in remote_warning(WILDCARD)


def test_a_taken_port_is_a_clear_error(project: Path) -> None:
    app = PreviewApp(options_for(project))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            start_server(app, "127.0.0.1", port)
    app.close()


def test_parse_time_says_what_a_time_looks_like() -> None:
    assert parse_time("2026-03-04T18:00:00+05:30") == NOW
    assert parse_time(None) is None
    with pytest.raises(UsageProblem, match="'yesterday' is not an ISO 8601 time such as 2026"):
        parse_time("yesterday")


def test_a_bad_now_is_a_usage_error_naming_the_flag() -> None:
    from click.testing import CliRunner

    from newsletter.cli.main import cli

    result = CliRunner().invoke(cli, ["preview", "--now", "yesterday"])
    assert result.exit_code == 2
    assert "Invalid value for --now: 'yesterday' is not an ISO 8601 time" in result.output


# --------------------------------------------------------------------------- subscribers


def test_the_picker_lists_active_subscribers_only(server: PreviewServer) -> None:
    page = fetch(server, "/").text
    select = re.search(r'<select id="pick-list" name="subscriber">(.*?)</select>', page, re.S)
    assert select is not None
    values = re.findall(r'<option value="([^"]*)"', select.group(1))
    assert values[0] == "sample"
    assert "ana.silva@example.com" in values
    assert "tom.unsub@example.com" not in values
    assert "bounce.back@example.net" not in values


def test_the_picker_stops_at_fifty(project: Path) -> None:
    rows = "".join(f"reader{n}@example.org,Reader {n},active\n" for n in range(120))
    (project.parent / "subscribers.csv").write_text("email,name,status\n" + rows)
    with running(PreviewApp(options_for(project))) as srv:
        page = fetch(srv, "/").text
        reader = fetch(srv, "/email.html?subscriber=reader99%40example.org").text
    assert page.count("<option value=") == 51
    assert "Hello Reader 99," in reader, "an address past the first fifty is still found"


def test_an_unlisted_address_gets_the_anonymous_greeting(server: PreviewServer) -> None:
    page = fetch(server, "/?subscriber=new.person%40example.org").text
    assert "(not in the list)" in page
    assert "subscriber=new.person%40example.org" in page
    mail = fetch(server, "/email.html?subscriber=new.person%40example.org").text
    assert "Hello," in mail
    assert "Hello Sample" not in mail


def test_an_unlisted_address_never_gets_a_working_unsubscribe_link(
    server: PreviewServer, project: Path
) -> None:
    settings = load_settings(project)
    factory = MessageFactory(build_edition(settings, BuildOptions(now=NOW)).edition, settings)
    stranger = "victim@example.org"
    signed = unsubscribe_token(factory.signing_key, settings.list.id, stranger)
    query = "?subscriber=victim%40example.org"
    shown = {path: fetch(server, path + query) for path in PARTS}
    assert all(reply.status == 200 for reply in shown.values())
    for path, reply in shown.items():
        assert signed.encode() not in reply.body, path
        for token in re.findall(rb"token=([\w-]+)", reply.body):
            assert not verify_token(factory.signing_key, settings.list.id, stranger, token.decode())
    assert f"token={STAND_IN_TOKEN}" in shown["/email.html"].text
    assert f"token={STAND_IN_TOKEN}" in shown["/email.txt"].text
    assert f"token={STAND_IN_TOKEN}" in str(parse(shown["/message.eml"].body)["List-Unsubscribe"])
    # A listed subscriber's preview keeps the real, working link.
    ana = fetch(server, "/email.html?subscriber=ana.silva%40example.com").text
    assert (
        f"token={unsubscribe_token(factory.signing_key, settings.list.id, 'ana.silva@example.com')}"
        in ana
    )
    assert STAND_IN_TOKEN not in ana


def test_an_unsubscribed_address_is_marked(server: PreviewServer) -> None:
    page = fetch(server, "/?subscriber=tom.unsub%40example.com").text
    assert "status unsubscribed: would not be mailed" in page


def test_an_unusable_address_is_a_400_for_the_parts(server: PreviewServer) -> None:
    for path in ("/email.html", "/email.txt", "/message.eml"):
        reply = fetch(server, f"{path}?subscriber=not-an-address")
        assert reply.status == 400
        assert b"not-an-address" in reply.body


# --------------------------------------------------------------------------- live updates


def test_a_template_change_rebuilds_by_itself(project: Path) -> None:
    masthead = project.parent / "templates" / "_masthead.mjml.j2"
    app = PreviewApp(options_for(project), poll_seconds=0.05)
    with running(app, watch=True) as srv:
        first = status(srv)["version"]
        edit(masthead, "Here are today’s top stories", "Fresh from the edited template")
        wait_until(lambda: status(srv)["version"] != first, what="a rebuild")
        assert "Fresh from the edited template" in fetch(srv, "/email.html").text
        assert status(srv)["ok"] is True


def test_a_broken_template_shows_file_and_line_and_a_fix_recovers(project: Path) -> None:
    lead = project.parent / "templates" / "_lead.mjml.j2"
    original = lead.read_text(encoding="utf-8")
    lines = original.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "<h1" in line)
    lines[number - 1] += "{% if %}"
    app = PreviewApp(options_for(project), poll_seconds=0.05)
    with running(app, watch=True) as srv:
        lead.write_text("\n".join(lines) + "\n", encoding="utf-8")
        wait_until(lambda: status(srv)["ok"] is False, what="the error")
        problem = status(srv)["problem"]
        assert isinstance(problem, dict)
        assert problem["file"] == str(lead)
        assert problem["line"] == number
        page = fetch(srv, "/").text
        assert f"<code>{html.escape(str(lead))}</code>, line {number}" in page
        assert 'class="hit"><span class="ln">' + str(number) in page
        assert fetch(srv, "/email.html").status == 503
        lead.write_text(original, encoding="utf-8")
        wait_until(lambda: status(srv)["ok"] is True, what="the recovery")
        assert "Hello Sample Reader," in fetch(srv, "/email.html").text


def test_bad_config_shows_the_line_and_the_server_keeps_running(project: Path) -> None:
    original = project.read_text(encoding="utf-8")
    app = PreviewApp(options_for(project), poll_seconds=0.05)
    with running(app, watch=True) as srv:
        project.write_text(original.replace("trending = 4", "trending = = 4"), encoding="utf-8")
        wait_until(lambda: status(srv)["ok"] is False, what="the config error")
        problem = status(srv)["problem"]
        assert isinstance(problem, dict)
        assert problem["kind"] == "config"
        assert problem["file"] == str(project)
        number = next(
            i for i, line in enumerate(project.read_text().splitlines(), 1) if "= = 4" in line
        )
        assert problem["line"] == number
        assert "The configuration has a problem" in fetch(srv, "/").text
        project.write_text(original, encoding="utf-8")
        wait_until(lambda: status(srv)["ok"] is True, what="the recovery")


def test_bad_config_values_are_listed(project: Path) -> None:
    original = project.read_text(encoding="utf-8")
    project.write_text(original.replace("trending = 4", "trending = -3"), encoding="utf-8")
    with running(PreviewApp(options_for(project))) as srv:
        page = fetch(srv, "/").text
    assert "selection.trending: -3 is out of range" in page


def test_bad_content_shows_the_file_and_line(project: Path) -> None:
    articles = project.parent / "content" / "articles.json"
    articles.write_text('{"articles": [\n  {"id": "a",\n', encoding="utf-8")
    with running(PreviewApp(options_for(project))) as srv:
        found = status(srv)["problem"]
        page = fetch(srv, "/").text
    assert isinstance(found, dict)
    assert found["kind"] == "content"  # a source that cannot be read is not "nothing new"
    assert found["file"] == str(articles)
    assert isinstance(found["line"], int)
    assert "not valid JSON" in page


def test_a_missing_config_recovers_once_written(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p")
    text = config.read_text(encoding="utf-8")
    config.unlink()
    app = PreviewApp(options_for(config), poll_seconds=0.05)
    with running(app, watch=True) as srv:
        assert status(srv)["ok"] is False
        assert "no such config file" in fetch(srv, "/").text
        config.write_text(text, encoding="utf-8")
        wait_until(lambda: status(srv)["ok"] is True, what="the config to be read")


def test_the_watch_covers_config_templates_content_and_subscribers(project: Path) -> None:
    app = PreviewApp(options_for(project))
    try:
        watched = set(app.snapshot.watch.paths())
    finally:
        app.close()
    root = project.parent
    assert project.resolve() in watched
    assert (root / "templates" / "digest.mjml.j2").resolve() in watched
    assert (root / "content" / "articles.json").resolve() in watched
    assert (root / "subscribers.csv").resolve() in watched


def test_events_announce_each_new_version(project: Path) -> None:
    masthead = project.parent / "templates" / "_masthead.mjml.j2"
    app = PreviewApp(options_for(project), poll_seconds=0.05)
    with running(app, watch=True) as srv:
        host, port = str(srv.server_address[0]), int(srv.server_address[1])
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            stream = sock.makefile("rb")
            assert stream.readline().startswith(b"HTTP/1.1 200")
            versions = _read_versions(stream, 1)
            assert versions == [status(srv)["version"]]
            edit(masthead, "Here are today’s top stories", "Edited while watching")
            versions = _read_versions(stream, 1)
            assert versions == [status(srv)["version"]]


def _read_versions(stream: IO[bytes], count: int) -> list[str]:
    found: list[str] = []
    while len(found) < count:
        line = stream.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            found.append(line[6:].decode().strip())
    return found


# --------------------------------------------------------------------------- static file


def test_static_preview_is_self_contained(project: Path, tmp_path: Path) -> None:
    settings = load_settings(project)
    result = build_edition(settings, BuildOptions(now=NOW))
    out = tmp_path / "out"
    path = write_static_preview(result, settings, out)
    assert path == out / "preview.html"
    page = path.read_bytes().decode("utf-8")
    sample = MessageFactory(result.edition, settings).build(sample_subscriber(settings))
    message = parse(sample.data)
    assert f'srcdoc="{html.escape(part(message, "html"))}"' in page
    assert f'data-srcdoc-dark="{html.escape(force_dark(part(message, "html")))}"' in page
    assert f">{html.escape(part(message, 'plain'))}</pre>" in page
    assert html.escape(str(message["List-Unsubscribe"])) in page
    assert html.escape(result.selection["lead"]["title"]) in page
    data_url = "data:message/rfc822;base64," + base64.b64encode(sample.data).decode()
    assert f'href="{data_url}"' in page
    assert 'data-live="0"' in page
    assert "<link" not in page
    assert "<script src" not in page
    assert 'src="/' not in page
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src &#x27;sha256-{digest}&#x27;" in page


def test_static_preview_never_overwrites_without_force(project: Path, tmp_path: Path) -> None:
    settings = load_settings(project)
    result = build_edition(settings, BuildOptions(now=NOW))
    out = tmp_path / "out"
    first = write_static_preview(result, settings, out)
    first.write_text("kept", encoding="utf-8")
    with pytest.raises(OutputExistsError, match=r"preview\.html already exists"):
        write_static_preview(result, settings, out)
    assert first.read_text() == "kept"
    write_static_preview(result, settings, out, force=True)
    assert first.read_text() != "kept"


def test_static_preview_escapes_a_hostile_subject(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p", subject=HOSTILE + " {lead}")
    settings = load_settings(config)
    page = static_preview_html(build_edition(settings, BuildOptions(now=NOW)), settings)
    assert "<script>alert(1)" not in page
    assert "<img src=x" not in page
    assert page.count("<script") == 1


def test_locate_reads_only_known_files(tmp_path: Path) -> None:
    known = tmp_path / "a.j2"
    known.write_text("one\ntwo\nthree\nfour\n", encoding="utf-8")
    found = locate(f"{known}:2: boom", [known])
    assert found is not None
    assert found.line == 2
    assert (2, "two") in found.snippet
    assert locate("/etc/passwd:1: not ours", [known]) is None
    toml = locate(f"{known}: not valid TOML: Invalid value (at line 3, column 2)", [known])
    assert toml is not None
    assert toml.line == 3
    mjml = locate(f"{known}: MJML … at line 40 of the rendered MJML: 'x'", [known])
    assert mjml is not None
    assert mjml.line == 0


# --------------------------------------------------------------------------- serving


def test_the_subscriber_option_sets_who_is_shown_first(project: Path) -> None:
    options = PreviewOptions(
        config=project, build=BuildOptions(now=NOW), subscriber="ana.silva@example.com"
    )
    with running(PreviewApp(options)) as srv:
        page = fetch(srv, "/").text
        assert "Showing <strong>Ana Silva</strong>" in page
        assert "subscriber=ana.silva%40example.com" in page
        sample = fetch(srv, "/?subscriber=sample").text
        assert "Showing <strong>Sample Reader</strong>" in sample
        assert "Hello Sample Reader," in fetch(srv, "/email.html?subscriber=sample").text


def test_serve_refuses_an_unusable_subscriber_before_listening(project: Path) -> None:
    options = PreviewOptions(config=project, build=BuildOptions(now=NOW), subscriber="nobody")
    lines: list[str] = []
    with pytest.raises(NewsletterError, match="nobody"):
        serve(options, port=0, echo=lines.append, warn=lines.append)
    assert lines == []


def test_serve_runs_until_interrupted(project: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from newsletter.pipeline import BuildOptions\n"
        "from newsletter.clock import parse_time\n"
        "from newsletter.web.preview.serve import serve\n"
        "from newsletter.web.preview.snapshots import PreviewOptions\n"
        "options = PreviewOptions(config=Path(sys.argv[1]),"
        " build=BuildOptions(now=parse_time(sys.argv[2])))\n"
        "serve(options, port=0, echo=lambda m: print(m, flush=True))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(project), NOW.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        found = re.search(r"at (http://127\.0\.0\.1:(\d+)/)", first)
        assert found is not None, first + process.stdout.read()
        conn = http.client.HTTPConnection("127.0.0.1", int(found.group(2)), timeout=10)
        conn.request("GET", "/status.json")
        data = json.loads(conn.getresponse().read())
        conn.close()
        assert data["ok"] is True
        process.send_signal(signal.SIGINT)
        out = first + process.stdout.read()
        process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    assert process.returncode == 0
    assert "never sends mail" in out
    assert out.rstrip().endswith("stopped")


# --------------------------------------------------------------------------- reasons


def _result_with(digest: Digest) -> BuildResult:
    edition = Edition(
        id="e",
        subject="s",
        preheader="p",
        html="",
        text="",
        digest=digest,
        created=NOW,
    )
    return BuildResult(edition=edition, collection=Collection((), (), ()), selection={})


def test_explain_gives_each_story_its_reason() -> None:
    settings = Settings()
    lead = Article(
        id="lead", title="Lead", url="https://example.org/lead", updated=NOW, summary="<p>x</p>"
    )
    ranked = Article(id="r", title="Ranked", url="https://example.org/r", trending_rank=2)
    popular = Article(
        id="p", title="Popular", url="https://example.org/p", popularity=812.5, regions=("India",)
    )
    recent = Article(id="n", title="Recent", url="https://example.org/n")
    column = Article(
        id="c", title="Column", url="https://example.org/c", section="opinion", published=NOW
    )
    digest = Digest(lead=lead, trending=(ranked, popular, recent), opinion=(column,), now=NOW)
    picks = explain(_result_with(digest), settings)
    reasons = {p.article.id: (p.place, p.why) for p in picks}
    assert reasons["lead"][0] == "Lead"
    assert reasons["lead"][1].startswith("the best lead score, 5.00, among news stories")
    assert "0.0 h old" in reasons["lead"][1]
    assert reasons["r"] == ("Trending 1", "trending rank 2")
    assert reasons["p"] == ("Trending 2", "popularity 812.5; region India")
    assert reasons["n"] == ("Trending 3", "among the most recent (no rank or popularity)")
    assert reasons["c"][0] == "Opinion"
    assert reasons["c"][1].startswith("opinion: newest first, changed 04-03-2026 12:30 UTC")
    pinned = explain(_result_with(replace(digest, lead=replace(lead, pinned=True))), settings)
    assert pinned[0].why == "pinned by the editor"
    picked = explain(_result_with(digest), settings, lead_url="https://EXAMPLE.org/lead/")
    assert picked[0].why == "the editor's pick (--lead or [selection] lead_url)"
