"""The archive's documents from editions stored as a live send stores them: pages, index, feed.

The sample edition is rendered for real and stored through the state API (on SQLite and
on PostgreSQL), with a ledger that shows it reached someone. A theme copied before the
archive existed still gives a page with nobody's data in it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from state_backends import schema_for

from newsletter import placeholders
from newsletter.archive.export import EXPORT, export_archive
from newsletter.archive.feed import atom_feed
from newsletter.archive.public import ANONYMOUS_ADDRESS, public_html
from newsletter.archive.published import editions_out, is_edition_id
from newsletter.archive.site import ArchiveSite
from newsletter.cli.main import cli
from newsletter.config.load import load_settings
from newsletter.config.paths import resource_path
from newsletter.config.settings import Settings
from newsletter.errors import NewsletterError, OutputExistsError
from newsletter.models import Edition
from newsletter.pipeline import BuildOptions, build_edition, preflight_edition
from newsletter.preflight import run
from newsletter.preflight.findings import ERROR
from newsletter.state.api import EditionEntry
from newsletter.state.openers import open_editions, open_ledger

NOW = datetime.fromisoformat("2026-03-04T18:00:00+05:30")
READER = "ana.reader@example.org"


def sample_settings(tmp_path: Path, theme: Path | None = None, state_url: str = "") -> Settings:
    settings = load_settings(None)
    paths = replace(
        settings.paths,
        state_dir=tmp_path / "state",
        state_url=state_url,
        templates=theme or settings.paths.templates,
    )
    return replace(settings, paths=paths)


def send_for_the_record(settings: Settings, edition: Edition, outcome: str = "sent") -> None:
    """Store ``edition`` and its one recipient's outcome, as a live send does."""
    with open_editions(settings.paths.state) as store, open_ledger(settings.paths.state) as ledger:
        store.save(edition, {}, datetime.now(UTC))
        ledger.start(edition.id, edition.subject, 1)
        ledger.claim(edition.id, READER, "<1@example.org>")
        ledger.finish(edition.id, READER, outcome, "250 ok")
        ledger.flush()


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The sample's settings with a state of its own, on each backend."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        return sample_settings(tmp_path, state_url=server.new_schema(schema_for(tmp_path)))
    return sample_settings(tmp_path)


def test_an_edition_links_to_its_own_page_and_marks_what_is_for_the_recipient(
    tmp_path: Path,
) -> None:
    settings = sample_settings(tmp_path)
    edition = build_edition(settings, BuildOptions(now=NOW)).edition
    assert is_edition_id(edition.id)
    page = f'href="https://meridianpost.example/archive/{edition.id}/"'
    assert page in edition.html
    assert f"\n\nView this email in your browser:\n{page[6:-1]}\n\n" in edition.text
    assert "XNLEDITIONIDX" not in edition.html + edition.text
    assert "XNLMARK" not in edition.html + edition.text
    assert edition.html.count(placeholders.EMAIL_ONLY_BEGIN) == 2
    assert edition.html.count(placeholders.EMAIL_ONLY_END) == 2
    assert "<!--" not in edition.text
    findings = preflight_edition(settings, edition)
    assert not [f for f in findings if f.level == ERROR]


def test_the_page_index_and_feed_of_a_stored_edition(settings: Settings) -> None:
    edition = build_edition(settings, BuildOptions(now=NOW)).edition
    site = ArchiveSite(settings)
    assert editions_out(settings) == []  # not stored yet: a dry run or a build
    send_for_the_record(settings, edition)
    entries = editions_out(settings)
    assert [e.id for e in entries] == [edition.id]
    documents = dict(site.documents(entries))
    assert list(documents) == ["index.html", "feed.xml", f"{edition.id}/index.html"]
    page = documents[f"{edition.id}/index.html"].decode("utf-8")
    for token in placeholders.ALL:
        assert token not in page
    assert "Hello," in page
    assert placeholders.EMAIL_ONLY_BEGIN not in page
    assert "View this email in your browser" not in page
    assert "/unsubscribe" not in page
    assert page.index("<body") < page.index('role="note"') < page.index("Hello,")
    assert f'<a href="{settings.web.subscribe_url}"' in page
    index = documents["index.html"].decode("utf-8")
    assert f'href="{edition.id}/"' in index
    assert "Wednesday, 4 March 2026" in index
    feed = feedparser.parse(documents["feed.xml"])
    assert [e.title for e in feed.entries] == [edition.subject]
    assert feed.entries[0].summary == edition.preheader
    assert site.current_page(edition.id) == documents[f"{edition.id}/index.html"]
    assert site.current_page("2026-03-04-00000000") is None


def test_an_edition_that_reached_nobody_is_not_archived(settings: Settings) -> None:
    edition = build_edition(settings, BuildOptions(now=NOW)).edition
    send_for_the_record(settings, edition, outcome="failed")
    assert editions_out(settings) == []
    assert ArchiveSite(settings).current_page(edition.id) is None


def old_theme(tmp_path: Path) -> Path:
    """A copy of the default theme as it was before the archive: no marks, no web link."""
    theme = tmp_path / "old-theme"
    shutil.copytree(resource_path("templates"), theme)
    shutil.rmtree(theme / "web")
    masthead = (theme / "_masthead.mjml.j2").read_text(encoding="utf-8")
    start = masthead.index("    <mj-raw>{{ email_only.begin }}")
    end = masthead.index("</mj-raw>", masthead.index("{{ email_only.end }}")) + len("</mj-raw>\n")
    (theme / "_masthead.mjml.j2").write_text(masthead[:start] + masthead[end:], encoding="utf-8")
    footer = (theme / "_footer.mjml.j2").read_text(encoding="utf-8")
    footer = footer.replace("{{ email_only.begin -}}", "").replace("{{- email_only.end }}", "")
    (theme / "_footer.mjml.j2").write_text(footer, encoding="utf-8")
    text = (theme / "digest.txt.j2").read_text(encoding="utf-8")
    text = text.replace("View this email in your browser:\n{{ view_online_url }}\n\n", "")
    (theme / "digest.txt.j2").write_text(text, encoding="utf-8")
    for path in theme.glob("*.j2"):
        assert not re.search(r"\{\{-? (email_only|view_online_url)", path.read_text("utf-8"))
    return theme


def test_a_theme_copied_before_the_archive_gives_a_page_with_nobodys_data(
    tmp_path: Path,
) -> None:
    settings = sample_settings(tmp_path, theme=old_theme(tmp_path))
    edition = build_edition(settings, BuildOptions(now=NOW)).edition
    assert "/archive/" not in edition.html + edition.text
    assert placeholders.EMAIL_ONLY_BEGIN not in edition.html
    send_for_the_record(settings, edition)
    page = ArchiveSite(settings).current_page(edition.id)
    assert page is not None
    text = page.decode("utf-8")
    for token in placeholders.ALL:
        assert token not in text
    assert f"This email was sent to {ANONYMOUS_ADDRESS}." in text
    assert f'href="{settings.web.subscribe_url}"' in text  # where Unsubscribe pointed
    assert "token=" not in text
    assert 'role="note"' in text  # the bundled banner, as the theme has no web/ folder


def test_the_public_copy_without_a_body_or_with_an_unclosed_mark(tmp_path: Path) -> None:
    settings = sample_settings(tmp_path)
    html = (
        f"<p>{placeholders.GREETING}</p>{placeholders.EMAIL_ONLY_BEGIN}"
        f'<a href="{placeholders.UNSUBSCRIBE_URL}">{placeholders.EMAIL}</a>'
    )
    out = public_html(html, settings, "<aside>banner</aside>")
    assert out.startswith("<aside>banner</aside><p>Hello,</p>")
    assert placeholders.EMAIL not in out
    assert placeholders.UNSUBSCRIBE_URL not in out
    assert ANONYMOUS_ADDRESS in out


def test_the_feed_escapes_what_it_carries(tmp_path: Path) -> None:
    settings = sample_settings(tmp_path)
    moment = datetime(2026, 3, 4, 12, 30, tzinfo=UTC)
    entries = [
        EditionEntry(
            id="2026-03-04-0a1b2c3d",
            subject='Tides <script>alert("x")</script> & "quotes"\x0b rise',
            preheader="Engineers & divers </summary><entry>",
            created=moment,
            started=moment + timedelta(hours=1),
            status="done",
        )
    ]
    document = atom_feed(settings, entries)
    feed = feedparser.parse(document)
    assert not feed.bozo, feed.get("bozo_exception")
    entry = feed.entries[0]
    assert entry.title == 'Tides <script>alert("x")</script> & "quotes" rise'
    assert entry.summary == "Engineers & divers </summary><entry>"
    assert entry.updated == "2026-03-04T13:30:00Z"
    assert feed.feed.updated == "2026-03-04T13:30:00Z"
    assert b"<script>" not in document
    assert atom_feed(settings, entries) == document  # the same entries, the same bytes


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2026-03-04-0a1b2c3d", True),
        ("2026-03-04-0A1B2C3D", False),
        ("2026-03-04-0a1b2c3d/..", False),
        ("../2026-03-04-0a1b2c3d", False),
        ("2026-03-04-0a1b2c3", False),
        ("2026-03-04-0a1b2c3d\n", False),
    ],
)
def test_an_edition_id_has_one_form(text: str, valid: bool) -> None:
    assert is_edition_id(text) is valid


# --------------------------------------------------------------------------- the export


def test_an_export_is_replaced_by_the_next_and_keeps_to_its_own_files(tmp_path: Path) -> None:
    settings = sample_settings(tmp_path)
    send_for_the_record(settings, build_edition(settings, BuildOptions(now=NOW)).edition)
    target = tmp_path / "site"
    first = export_archive(settings, target)
    assert first.editions == 1
    assert first.written[:2] == ("index.html", "feed.xml")
    again = export_archive(settings, target)
    assert again.written == first.written
    assert again.removed == ()
    record = json.loads((target / EXPORT.manifest).read_text(encoding="utf-8"))
    assert record == {"written_by": "newsletter archive export", "files": sorted(first.written)}
    outside = tmp_path / "outside.txt"
    outside.write_text("keep", encoding="utf-8")
    record["files"] += ["../outside.txt", "notes/index.html"]  # an edited manifest
    (target / EXPORT.manifest).write_text(json.dumps(record), encoding="utf-8")
    export_archive(settings, target)
    assert outside.read_text(encoding="utf-8") == "keep"


def test_an_export_refuses_others_files(tmp_path: Path) -> None:
    settings = sample_settings(tmp_path)
    target = tmp_path / "site"
    export_archive(settings, target)
    (target / "2026-03-04-0a1b2c3d").mkdir()
    (target / "2026-03-04-0a1b2c3d" / "index.html").write_text("mine", encoding="utf-8")
    edition = replace(
        build_edition(settings, BuildOptions(now=NOW)).edition, id="2026-03-04-0a1b2c3d"
    )
    send_for_the_record(settings, edition)
    with pytest.raises(OutputExistsError, match=r"0a1b2c3d/index\.html already exists and was"):
        export_archive(settings, target)
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(NewsletterError, match="is a file; give a folder"):
        export_archive(settings, a_file)


def test_the_export_command_explains_a_foreign_folder(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "README").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(cli, ["archive", "export", str(folder)])
    assert result.exit_code == 1
    assert re.search(r"error: .*docs is not empty and holds no archive export", result.output)
    assert "choose a new or empty folder" in result.output
    help_text = CliRunner().invoke(cli, ["archive", "export", "--help"]).output
    assert "index.html, feed.xml and one page per edition" in help_text


def test_the_link_check_leaves_out_the_editions_own_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the send the page is not there yet: probing it could only cry wolf."""
    settings = sample_settings(tmp_path)
    edition = build_edition(settings, BuildOptions(now=NOW)).edition
    probed: list[str] = []

    def probe(urls: list[str]) -> list[object]:
        probed.extend(urls)
        return []

    monkeypatch.setattr(run, "probe_links", probe)  # no network: only which links
    preflight_edition(settings, edition, check_links=True)
    assert probed
    assert settings.web.edition_url(edition.id) in edition.html
    assert not [url for url in probed if "/archive/" in url]
