"""The archive for real: editions sent over SMTP, served by ``newsletter serve``, exported.

One project sends the bundled sample's editions to a real SMTP server on 127.0.0.1
(after a dry run and a test copy, which must not be archived), then the real service
runs in a subprocess on a free loopback port, its public URL that port, so every link
in the index, the feed and the emails resolves on it.
"""

from __future__ import annotations

import email
import email.policy
import http.client
import json
import os
import re
import selectors
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import feedparser
import pytest
from browser import launched, route
from click.testing import CliRunner
from smtp_server import SMTPServer, free_port

from newsletter import placeholders
from newsletter.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-03-04T18:00:00+05:30"
KEY = "archive-test-signing-key-0123456789"
TEST_COPY = "editor@example.net"
READERS = [(f"reader{i}@example.org", f"Reader Number{i}") for i in range(3)]
SECURITY_HEADERS = (
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
)


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Answer:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Answer:
    """Ask the service once (no redirects followed), over loopback."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", url
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        answer = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, answer, response.read())
    finally:
        conn.close()


class Tags(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def hrefs(self) -> list[str]:
        return [attrs["href"] for tag, attrs in self.tags if tag == "a" and "href" in attrs]

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())


def parts(message: bytes) -> tuple[str, str]:
    """The HTML and the text of a message as its recipient reads them."""
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    html_part, text_part = parsed.get_body(("html",)), parsed.get_body(("plain",))
    assert isinstance(html_part, EmailMessage)
    assert isinstance(text_part, EmailMessage)
    return str(html_part.get_content()), str(text_part.get_content())


@dataclass(frozen=True)
class Project:
    """A project whose editions went out, and what the recipients got."""

    folder: Path
    config: Path
    public_url: str
    port: int
    editions: list[str]  # the editions sent live, in order
    messages: list[bytes]  # every message the SMTP server accepted
    secrets: list[str]  # every address, name, token and reference a message carried

    @property
    def archive_url(self) -> str:
        return f"{self.public_url}/archive/"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env={"NEWSLETTER_SIGNING_KEY": KEY})
    assert result.exit_code == 0, result.output
    return result.output


def personal_data(messages: list[bytes]) -> list[str]:
    """What must never reach the archive: addresses, names, tokens, address references."""
    found = [TEST_COPY, *(address for address, _ in READERS), *(name for _, name in READERS)]
    for message in messages:
        parsed = email.message_from_bytes(message, policy=email.policy.default)
        for url in re.findall(r"<(https://[^>]+)>", str(parsed["List-Unsubscribe"])):
            query = parse_qs(urlsplit(url).query)
            found += query["token"] + query["s"]
    return sorted(set(found))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Send two editions of the sample for real, after a dry run and a test copy."""
    folder = tmp_path_factory.mktemp("archive") / "news"
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    invoke("init", str(folder), "--now", NOW)
    rows = ["email,name,status", *(f"{address},{name},active" for address, name in READERS)]
    (folder / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = folder / "newsletter.toml"
    with SMTPServer() as server:
        text = config.read_text(encoding="utf-8").replace(
            '[smtp]\n# host = "smtp.example.org"',
            f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"',
        )
        config.write_text(text + f'\n[web]\npublic_url = "{public_url}"\n', encoding="utf-8")
        send = ["send", "--config", str(config), "--now", NOW]
        invoke(*send, "--dry-run", "--outbox", str(folder / "outbox"))
        invoke(*send, "--to", TEST_COPY, "--yes")
        # Neither a dry run nor a test copy is archived.
        invoke("archive", "export", str(folder / "before"), "--config", str(config))
        index = (folder / "before" / "index.html").read_text(encoding="utf-8")
        assert "No edition has gone out yet." in index
        editions = []
        for _ in range(2):
            output = invoke(*send, "--yes", "--json", "--allow-early")
            editions.append(json.loads(output[output.index("{") :])["edition_id"])
        messages = [m.data for m in server.messages()]
    assert len(messages) == 1 + 2 * len(READERS)
    return Project(folder, config, public_url, port, editions, messages, personal_data(messages))


@pytest.fixture(scope="module")
def service(project: Project) -> Iterator[str]:
    """``newsletter serve`` in a subprocess on the project's port; yields its URL."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "NEWSLETTER_SIGNING_KEY": KEY,
    }
    command = [sys.executable, "-m", "newsletter", "serve", "--config", str(project.config)]
    process = subprocess.Popen(
        [*command, "--port", str(project.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as waiting:
            waiting.register(process.stdout, selectors.EVENT_READ)
            ready = waiting.select(timeout=60)  # a guard against a hang, not a speed test
        line = process.stdout.readline() if ready else ""
        found = re.search(r"serving .* on (http://\S+)", line)
        if found is None:
            process.kill()
            _, errors = process.communicate()
            pytest.fail(f"the service did not start: {line!r} {errors}")
        assert found.group(1) == project.public_url
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


# --------------------------------------------------------------------------- the service


def test_the_index_lists_every_edition_that_went_out_newest_first(
    project: Project, service: str
) -> None:
    answer = fetch(f"{service}/archive/")
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    page = Tags(answer.text)
    links = [urljoin(f"{service}/archive/", href) for href in page.hrefs()]
    pages = [link for link in links if re.search(r"/archive/\d{4}-\d\d-\d\d-[0-9a-f]{8}/$", link)]
    assert pages == [f"{project.archive_url}{edition}/" for edition in reversed(project.editions)]
    assert "Wednesday, 4 March 2026" in page.text
    assert any(tag == "time" and a["datetime"] == "2026-03-04" for tag, a in page.tags)
    feed_links = [a for tag, a in page.tags if tag == "link" and a.get("rel") == "alternate"]
    assert feed_links[0]["type"] == "application/atom+xml"
    for link in pages:
        assert fetch(link).status == 200
    assert fetch(urljoin(f"{service}/archive/", feed_links[0]["href"])).status == 200


def test_the_feed_is_atom_and_its_links_resolve(project: Project, service: str) -> None:
    answer = fetch(f"{service}/archive/feed.xml")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(answer.body)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "The Meridian Post Daily"
    assert feed.feed.id == project.archive_url
    rels = {link.rel: link.href for link in feed.feed.links}
    assert rels == {"self": f"{project.archive_url}feed.xml", "alternate": project.archive_url}
    assert feed.feed.updated_parsed is not None
    ids = [entry.id for entry in feed.entries]
    assert ids == [f"{project.archive_url}{edition}/" for edition in reversed(project.editions)]
    for entry in feed.entries:
        assert entry.title
        assert entry.summary
        assert entry.updated_parsed
        assert entry.link == entry.id
        page = fetch(entry.link)
        assert page.status == 200
        title = re.search(r"<title>(.*?)</title>", page.text, re.S)
        assert title is not None
        assert Tags(title.group(1)).text == entry.title  # the email's subject
    assert fetch(rels["self"]).body == answer.body
    assert fetch(rels["alternate"]).status == 200


def test_an_edition_page_is_the_email_for_nobody_in_particular(
    project: Project, service: str
) -> None:
    answer = fetch(f"{project.archive_url}{project.editions[0]}/")
    assert answer.status == 200
    page = Tags(answer.text)
    assert "Hello," in page.text
    assert "Hello Reader" not in page.text
    assert "View this email in your browser" not in page.text  # the link to itself
    assert "This email was sent to" not in page.text
    assert "Unsubscribe" not in page.text
    hrefs = page.hrefs()
    assert f"{project.public_url}/subscribe" in hrefs  # the banner's
    assert "../" in hrefs
    assert not [h for h in hrefs if "unsubscribe" in h.lower() or "token=" in h]


def test_no_personal_data_in_anything_the_archive_serves(project: Project, service: str) -> None:
    bodies = [fetch(f"{service}/archive/").text, fetch(f"{service}/archive/feed.xml").text]
    bodies += [fetch(f"{project.archive_url}{e}/").text for e in project.editions]
    assert len(project.secrets) > len(READERS) * 2  # addresses, names, tokens, references
    for body in bodies:
        for secret in project.secrets:
            assert secret not in body
        assert "XNL" not in body
        for token in placeholders.ALL:
            assert token not in body
        assert "@example.org" not in body


def test_answers_are_cacheable_and_carry_the_security_headers(
    project: Project, service: str
) -> None:
    for url in (
        f"{service}/archive/",
        f"{service}/archive/feed.xml",
        f"{project.archive_url}{project.editions[0]}/",
    ):
        answer = fetch(url)
        assert answer.headers["cache-control"] == "public, max-age=300"
        for header in SECURITY_HEADERS:
            assert header in answer.headers, (url, header)
        csp = answer.headers["content-security-policy"]
        assert "script-src" not in csp
        assert "default-src 'none'" in csp
        assert "style-src 'unsafe-inline'" in csp
        assert "img-src https:" in csp
        again = fetch(url, {"If-None-Match": answer.headers["etag"]})
        assert (again.status, again.body) == (304, b"")
        assert fetch(url, method="HEAD").status == 200


@pytest.mark.parametrize(
    "path",
    [
        "2026-03-04-00000000/",  # the form of an id, but no such edition
        "2026-03-04-ABCDEF12/",
        "2026-03-04/",
        "..%2F..%2Fnewsletter.toml/",
        "%2e%2e/",
        "index.html",
        "feed.xml/x/",
        "2026-03-04-0a1b2c3d4/",
    ],
)
def test_unknown_or_malformed_ids_are_404(project: Project, service: str, path: str) -> None:
    answer = fetch(f"{service}/archive/{path}")
    if answer.status == 307:  # the router adds the missing slash first
        assert answer.headers["location"] == f"{service}/archive/{path}/"
        answer = fetch(answer.headers["location"])
    assert answer.status == 404
    assert answer.headers["cache-control"] == "no-store"
    assert "Page not found" in answer.text
    assert "content-security-policy" in answer.headers


def test_the_view_in_browser_link_of_a_sent_message_is_its_page(
    project: Project, service: str
) -> None:
    first, second = project.editions
    sent = [m for m in project.messages if TEST_COPY.encode() not in m]
    pages = set()
    for message in sent:
        html_part, text_part = parts(message)
        online = re.findall(
            r'<a [^>]*href="([^"]+)"[^>]*>View this email in your browser</a>', html_part
        )
        assert len(online) == 1
        message_id = email.message_from_bytes(message)["Message-ID"]
        edition = re.match(r"<(\d{4}-\d\d-\d\d-[0-9a-f]{8})\.", message_id)
        assert edition is not None
        assert online[0] == f"{project.archive_url}{edition.group(1)}/"  # its own edition
        text = text_part.replace("\r\n", "\n")
        assert f"View this email in your browser:\n{online[0]}\n" in text
        assert fetch(online[0]).status == 200
        pages.add(online[0])
    assert pages == {f"{project.archive_url}{first}/", f"{project.archive_url}{second}/"}


# --------------------------------------------------------------------------- the export


def test_the_export_writes_the_bytes_the_service_serves(
    project: Project, service: str, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    output = invoke("archive", "export", str(target), "--config", str(project.config))
    assert "exported 2 edition(s)" in output
    assert fetch(f"{service}/archive/").body == (target / "index.html").read_bytes()
    assert fetch(f"{service}/archive/feed.xml").body == (target / "feed.xml").read_bytes()
    for edition in project.editions:
        served = fetch(f"{project.archive_url}{edition}/").body
        assert served == (target / edition / "index.html").read_bytes()
    written = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    expected = ["index.html", "feed.xml", *(f"{e}/index.html" for e in project.editions)]
    assert written == sorted([".newsletter-archive.json", *expected])


def test_the_export_runs_again_and_refuses_others_files(project: Project, tmp_path: Path) -> None:
    target = tmp_path / "site"
    args = ("archive", "export", str(target), "--config", str(project.config))
    invoke(*args)
    (target / "notes.txt").write_text("mine", encoding="utf-8")
    stale = target / "2020-01-01-0badc0de"
    stale.mkdir()
    (stale / "index.html").write_text("an edition no longer there", encoding="utf-8")
    manifest = target / ".newsletter-archive.json"
    record = json.loads(manifest.read_text(encoding="utf-8"))
    record["files"].append("2020-01-01-0badc0de/index.html")
    manifest.write_text(json.dumps(record), encoding="utf-8")
    output = invoke(*args)  # again: its own files replaced, its stale page removed
    assert "removed 1 old file(s)" in output
    assert not stale.exists()
    assert (target / "notes.txt").read_text(encoding="utf-8") == "mine"

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "index.html").write_text("someone's site", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["archive", "export", str(foreign), "--config", str(project.config)]
    )
    assert result.exit_code == 1
    assert f"error: {foreign} is not empty and holds no archive export" in result.output
    assert (foreign / "index.html").read_text(encoding="utf-8") == "someone's site"


# --------------------------------------------------------------------------- in a browser


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_an_edition_page_shows_with_its_styles_and_images_and_runs_nothing(
    project: Project, service: str, scheme: str
) -> None:
    complaints: list[str] = []
    with launched() as browser:
        context = browser.new_context(viewport={"width": 700, "height": 900})
        context.route("**/*", route)
        page = context.new_page()
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        page.on("console", lambda message: complaints.append(message.text))
        answer = page.goto(f"{project.archive_url}{project.editions[0]}/", wait_until="load")
        assert answer is not None
        assert answer.status == 200
        assert not [c for c in complaints if "Content Security Policy" in c], complaints
        assert page.evaluate("document.scripts.length") == 0
        logo = page.locator("img.logo-img")  # an https image: allowed, and shown
        assert logo.evaluate("img => img.complete && img.naturalWidth > 0")
        date = page.locator(".mh-date")  # the inlined style attributes apply
        assert date.evaluate("e => getComputedStyle(e).textTransform") == "uppercase"
        banner = page.locator("[role=note]")
        assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(18, 53, 91)"
        body = page.evaluate("getComputedStyle(document.body).backgroundColor")
        light = body == "rgb(243, 244, 246)"  # the page colour; the head's dark rules apply
        assert light == (scheme == "light")
        context.close()
