"""A source that cannot be read is an error (exit 1), never "nothing new" (exit 3).

Each command a user meets it through (``build``, ``check``, ``send``, ``send --slot``,
``sources``) names every failed source in its own words (file, line, column), after the
warnings; exit code 3 stays for sources that were read and had nothing new.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from smtp_server import SMTPServer

from newsletter.cli.main import cli
from newsletter.config.settings import Settings
from newsletter.errors import ContentError
from newsletter.sources import collect

NOW = "2026-03-04T18:00:00+05:30"
BROKEN_JSON = '{"articles": [\n  {"id": "a",\n    "title": "Half"\n'
SIGNING = {"NEWSLETTER_SIGNING_KEY": "unreadable-sources-test-key-0123456789"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A starter project whose only source is malformed JSON."""
    folder = tmp_path / "news"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    (folder / "content" / "articles.json").write_text(BROKEN_JSON, encoding="utf-8")
    return folder


def invoke(project: Path, *args: str) -> Result:
    config = str(project / "newsletter.toml")
    return CliRunner().invoke(cli, [args[0], "--config", config, *args[1:]], env=SIGNING)


def names_the_json_error(result: Result, project: Path) -> bool:
    source = str(project / "content" / "articles.json")
    return f"{source}: not valid JSON" in result.output and "line 4, column 1" in result.output


@pytest.mark.parametrize("command", [("build",), ("check",), ("send", "--dry-run")])
def test_the_only_source_malformed_is_an_error(project: Path, command: tuple[str, ...]) -> None:
    result = invoke(project, *command, "--now", NOW)
    assert result.exit_code == 1, result.output
    assert "no content source could be read" in result.output
    assert names_the_json_error(result, project), result.output
    assert "nothing new" not in result.output
    assert "Traceback" not in result.output


def test_a_live_send_with_the_only_source_malformed_is_an_error(project: Path) -> None:
    with SMTPServer() as server:
        config = project / "newsletter.toml"
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                "[smtp]\n", f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
            ),
            encoding="utf-8",
        )
        result = invoke(project, "send", "--now", NOW, "--yes")
        assert result.exit_code == 1, result.output
        assert names_the_json_error(result, project), result.output
        assert server.messages() == []


def test_a_scheduled_send_logs_a_failed_source_as_a_failure(project: Path) -> None:
    with SMTPServer() as server:
        config = project / "newsletter.toml"
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                "[smtp]\n", f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
            )
            + '\n[[schedule]]\nname = "daily"\ncron = "* * * * *"\ntimezone = "UTC"\n'
            "dry_run = false\n",
            encoding="utf-8",
        )
        result = invoke(project, "send", "--slot", "daily", "--yes")
        assert result.exit_code == 1, result.output
        assert "failed: no content source could be read" in result.output
        assert "skipped" not in result.output
        assert names_the_json_error(result, project), result.output
        assert server.messages() == []


def test_every_source_failing_names_each(project: Path) -> None:
    missing = project / "missing.json"
    page = project / "page.txt"
    page.write_text("hello, not a feed", encoding="utf-8")
    result = invoke(project, "build", "--now", NOW, "--source", str(missing), "--source", str(page))
    assert result.exit_code == 1, result.output
    assert "no content source could be read" in result.output
    assert f"{missing}: no such file" in result.output
    assert f"{page}: neither JSON nor an RSS/Atom feed" in result.output


def test_one_failed_source_and_nothing_new_elsewhere_is_not_nothing_new(project: Path) -> None:
    sample = Path(__file__).resolve().parent.parent / "newsletter" / "sample" / "content"
    good = sorted(sample.glob("*.json"))[0]
    later = "2027-01-01T08:00:00+05:30"  # the sample's news is old by then: nothing new
    read = invoke(project, "build", "--now", later, "--source", str(good))
    assert read.exit_code == 3, read.output  # read fine, nothing new
    both = invoke(
        project, "build", "--now", later, "--source", str(good), "--source", str(project / "x.json")
    )
    assert both.exit_code == 1, both.output
    assert "1 of 2 content sources could not be read" in both.output
    assert "the other source(s) were read: nothing new to send" in both.output


def test_warnings_come_before_nothing_new(project: Path) -> None:
    feed = project / "feed.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<item><title>Old</title><link>https://example.org/old</link>"
        "<pubDate>Mon, 02 Jan 2017 08:00:00 GMT</pubDate></item>"
        "<item><title>Nowhere</title></item></channel></rss>",
        encoding="utf-8",
    )
    result = invoke(project, "build", "--now", NOW, "--source", str(feed))
    assert result.exit_code == 3, result.output
    warning = result.output.index("warning:")
    assert warning < result.output.index("nothing new to send")


def test_a_source_whose_every_item_is_skipped_has_failed(project: Path) -> None:
    only_bad = project / "bad-items.json"
    only_bad.write_text(json.dumps({"articles": [{"id": "1", "title": "No link"}]}), "utf-8")
    result = invoke(project, "build", "--now", NOW, "--source", str(only_bad))
    assert result.exit_code == 1, result.output
    assert f"{only_bad}: none of its items could be used (1 skipped" in result.output
    assert result.output.index("warning:") < result.output.index("error:")


def test_sources_exits_1_when_a_source_failed(project: Path) -> None:
    sample = Path(__file__).resolve().parent.parent / "newsletter" / "sample" / "content"
    good = str(sorted(sample.glob("*.json"))[0])
    fine = invoke(project, "sources", "--source", good)
    assert fine.exit_code == 0, fine.output
    result = invoke(project, "sources", "--source", good, "--source", str(project / "x.json"))
    assert result.exit_code == 1, result.output
    assert "failed:" in result.output
    assert "1 of 2 content sources could not be read" in result.output
    as_json = invoke(project, "sources", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["sources"][0]["kind"] == "failed"


def test_strict_reads_every_source_and_names_each_failure(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    second.write_text("[", encoding="utf-8")
    with pytest.raises(ContentError) as failed:
        collect([str(first), str(second)], Settings(), strict=True)
    message = str(failed.value)
    assert message.startswith("no content source could be read:")
    assert f"{first}: no such file" in message
    assert f"{second}: not valid JSON" in message
