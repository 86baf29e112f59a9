"""The command line as a user drives it: init, build, send --dry-run, sources, check."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from newsletter.cli.main import cli

NOW = "2026-03-04T18:00:00+05:30"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def project(tmp_path: Path, runner: CliRunner) -> Path:
    """A starter project made by ``newsletter init``, its articles dated to ``NOW``."""
    result = runner.invoke(cli, ["init", str(tmp_path / "my-news"), "--now", NOW])
    assert result.exit_code == 0, result.output
    return tmp_path / "my-news"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection attempt: building and dry runs must stay offline."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def invoke(runner: CliRunner, project: Path, *args: str) -> click.testing.Result:
    return runner.invoke(cli, [*args[:1], "--config", str(project / "newsletter.toml"), *args[1:]])


def test_every_command_has_help(runner: CliRunner) -> None:
    def walk(group: click.Group, path: list[str]) -> list[list[str]]:
        found = []
        for name, command in group.commands.items():
            found.append([*path, name])
            if isinstance(command, click.Group):
                found += walk(command, [*path, name])
        return found

    commands = walk(cli, [])
    assert {"init", "build", "send", "sources", "check", "status", "schedule"} <= {
        c[0] for c in commands
    }
    for path in commands:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        command = cli
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        assert len((command.help or "").strip()) > 10, path


def test_init_makes_a_project_that_builds_and_dry_runs(
    project: Path, runner: CliRunner, no_network: None
) -> None:
    for name in ("newsletter.toml", "subscribers.csv", "content/articles.json"):
        assert (project / name).is_file()
    assert (project / "templates" / "digest.mjml.j2").is_file()

    out = project / "out"
    built = invoke(runner, project, "build", "--now", NOW, "--out", str(out))
    assert built.exit_code == 0, built.output
    info = json.loads((out / "edition.json").read_text(encoding="utf-8"))
    assert info["selection"]["lead"]["id"] == "marivel-tidal-barrier-approved"
    assert len(info["selection"]["trending"]) == 4
    assert len(info["selection"]["opinion"]) == 4
    assert info["id"] in (out / "preview.html").read_text(encoding="utf-8")
    assert all(item["regions"] for item in info["selection"]["trending"])
    html = (out / "edition.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert len(html.encode()) < 80_000
    assert abs(info["html_bytes"] - len(html.encode())) < 300  # slots filled for an example
    assert "Hello," in html
    assert "XNLSLOT" not in html

    outbox = project / "outbox"
    sent = invoke(runner, project, "send", "--dry-run", "--now", NOW, "--outbox", str(outbox))
    assert sent.exit_code == 0, sent.output
    assert "This was a dry run" in sent.output
    folder = outbox / info["id"]
    emls = sorted(folder.glob("*.eml"))
    assert len(emls) == 6  # the active rows of subscribers.csv
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["edition"] == info["id"]
    assert [r["file"] for r in manifest["recipients"]] == [p.name for p in emls]
    assert manifest["selection"]["lead"]["id"] == info["selection"]["lead"]["id"]
    for path in emls:
        check_message(path.read_bytes())


def check_message(data: bytes) -> None:
    """Parse one generated message back and check what every message must have."""
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.iter_parts()]  # type: ignore[attr-defined]
    assert parts == ["text/plain", "text/html"]
    for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
        assert message[header], header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert len(message["To"].addresses) == 1
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<mj-" not in html
    assert "XNLSLOT" not in html
    assert re.search(r'<html[^>]* lang="en"', html)
    for tag in re.findall(r"<img\b[^>]*>", html):
        assert re.search(r'\balt="[^"]+"', tag), tag
    unsubscribe = re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"])
    assert unsubscribe
    assert unsubscribe.group(1).replace("&", "&amp;") in html


def test_building_twice_gives_identical_html(project: Path, runner: CliRunner) -> None:
    first = invoke(runner, project, "build", "--now", NOW, "--out", str(project / "a"))
    second = invoke(runner, project, "build", "--now", NOW, "--out", str(project / "b"))
    assert first.exit_code == second.exit_code == 0
    assert (project / "a/edition.html").read_bytes() == (project / "b/edition.html").read_bytes()


def test_build_replaces_its_own_output_and_refuses_files_it_did_not_write(
    project: Path, runner: CliRunner
) -> None:
    out = project / "out"
    assert invoke(runner, project, "build", "--now", NOW, "--out", str(out)).exit_code == 0
    again = invoke(runner, project, "build", "--now", NOW, "--out", str(out))
    assert again.exit_code == 0, again.output

    mine = project / "mine"
    mine.mkdir()
    (mine / "edition.html").write_text("my own page", encoding="utf-8")
    (mine / "notes.txt").write_text("kept", encoding="utf-8")
    refused = invoke(runner, project, "build", "--now", NOW, "--out", str(mine))
    assert refused.exit_code == 1
    assert f"{mine / 'edition.html'} already exists and was not written by" in refused.output
    assert "use --force" in refused.output
    assert "Traceback" not in refused.output
    assert (mine / "edition.html").read_text(encoding="utf-8") == "my own page"
    assert not (mine / "preview.html").exists()  # nothing written when it refuses
    forced = invoke(runner, project, "build", "--now", NOW, "--out", str(mine), "--force")
    assert forced.exit_code == 0, forced.output
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "kept"  # not one of its files
    assert invoke(runner, project, "build", "--now", NOW, "--out", str(mine)).exit_code == 0


def test_dry_run_refuses_to_overwrite_an_edition_folder(project: Path, runner: CliRunner) -> None:
    args = ("send", "--dry-run", "--now", NOW, "--outbox", str(project / "outbox"))
    assert invoke(runner, project, *args).exit_code == 0
    again = invoke(runner, project, *args)
    assert again.exit_code == 1
    assert "--force" in again.output
    assert invoke(runner, project, *args, "--force").exit_code == 0


def test_nothing_new_exits_with_its_own_code(project: Path, runner: CliRunner) -> None:
    result = invoke(runner, project, "build", "--now", "2027-01-01T08:00:00+05:30")
    assert result.exit_code == 3
    assert "nothing new to send" in result.output


def test_bad_config_is_a_message_not_a_traceback(tmp_path: Path, runner: CliRunner) -> None:
    config = tmp_path / "newsletter.toml"
    config.write_text('[publication]\nname = "X"\nsite_url = "nope"\n', encoding="utf-8")
    result = runner.invoke(cli, ["build", "--config", str(config)])
    assert result.exit_code == 1
    assert "publication.site_url" in result.output
    assert "sender.address: required" in result.output
    assert "Traceback" not in result.output


def test_usage_mistakes_exit_2(project: Path, runner: CliRunner) -> None:
    assert invoke(runner, project, "build", "--now", "yesterday").exit_code == 2
    assert invoke(runner, project, "send", "--dry-run", "--shard", "5/4").exit_code == 2
    assert runner.invoke(cli, ["no-such-command"]).exit_code == 2


def test_live_send_without_smtp_settings_says_what_to_do(project: Path, runner: CliRunner) -> None:
    result = invoke(runner, project, "send", "--now", NOW, "--yes")
    assert result.exit_code == 1
    assert "--dry-run" in result.output


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path, runner: CliRunner) -> None:
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    result = runner.invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert (tmp_path / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_sources_lists_each_source(project: Path, runner: CliRunner) -> None:
    feed = Path(__file__).resolve().parents[2] / "shared/corpus/feeds-feedparser/rss20.xml"
    if not feed.exists():
        pytest.skip("../shared/corpus is not beside the project")
    local = project / "feed.xml"
    shutil.copyfile(feed, local)
    result = invoke(
        runner,
        project,
        "sources",
        "--json",
        "--source",
        str(project / "content/articles.json"),
        "--source",
        str(local),
        "--source",
        str(project / "missing.json"),
    )
    assert result.exit_code == 1, result.output  # a source failed; the JSON is still printed
    data = json.loads(result.stdout)
    kinds = [s["kind"] for s in data["sources"]]
    assert kinds == ["json", "rss", "failed"]
    assert data["sources"][0]["sections"]["news"] >= 10
    assert "missing.json" in data["sources"][2]["error"]


def test_strict_makes_a_failing_source_fatal(project: Path, runner: CliRunner) -> None:
    result = invoke(
        runner,
        project,
        "build",
        "--now",
        NOW,
        "--strict",
        "--source",
        str(project / "content/articles.json"),
        "--source",
        str(project / "missing.json"),
        "--out",
        str(project / "o"),
    )
    assert result.exit_code == 1
    assert "missing.json" in result.output


MEDIA_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>
<title>Harbour</title><link>https://harbour.example/</link>
<item><title>Ferries return to the old harbour</title>
<link>https://harbour.example/news/ferries</link>
<pubDate>Wed, 04 Mar 2026 10:00:00 +0000</pubDate>
<description>The first ferry in a year left the quay at dawn.</description>
<media:content url="https://harbour.example/img/ferry.jpg" medium="image" width="1200" height="800">
<media:description>A white ferry leaving the quay at dawn, gulls overhead</media:description>
</media:content></item>
</channel></rss>
"""


def test_build_uses_the_feeds_own_picture_description_as_alt_text(
    project: Path, runner: CliRunner
) -> None:
    feed = project / "harbour.xml"
    feed.write_text(MEDIA_FEED, encoding="utf-8")
    out = project / "out"
    result = invoke(
        runner, project, "build", "--now", NOW, "--source", str(feed), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    html = (out / "edition.html").read_text(encoding="utf-8")
    image = re.search(
        r'<img class="lead-img" src="https://harbour.example/img/ferry.jpg"[^>]*>', html
    )
    assert image, html[:2000]
    assert 'alt="A white ferry leaving the quay at dawn, gulls overhead"' in image.group(0)


def test_check_reports_and_passes_on_the_sample(project: Path, runner: CliRunner) -> None:
    result = invoke(runner, project, "check", "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "_dmarc." in result.output
    assert "No errors" in result.output


def test_check_names_a_section_the_theme_leaves_light_in_dark_mode(
    project: Path, runner: CliRunner
) -> None:
    clean = invoke(runner, project, "check", "--now", NOW)
    assert "dark-mode-light-block" not in clean.output
    opinion = project / "templates" / "_opinion.mjml.j2"
    text = opinion.read_text(encoding="utf-8")
    assert 'css-class="nl-s opr"' in text
    opinion.write_text(text.replace('css-class="nl-s opr"', 'css-class="opr"'), encoding="utf-8")
    result = invoke(runner, project, "check", "--now", NOW)
    assert result.exit_code == 0, result.output  # a warning: the mail still arrives
    line = next(x for x in result.output.splitlines() if "[dark-mode-light-block]" in x)
    assert '<div class="opr"> #ffffff' in line
    assert 'css-class="nl-s opr"' in line
    assert "dark.css" in line


def test_schedule_list_and_a_slot_run_through_the_cli(project: Path, runner: CliRunner) -> None:
    config = project / "newsletter.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[[schedule]]\nname = "daily"\ncron = "0 7 * * *"\ntimezone = "Europe/London"\n'
        "grace_minutes = 1440\nmax_age_hours = 8000\n",
        encoding="utf-8",
    )
    listed = runner.invoke(cli, ["schedule", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "daily" in listed.output
    assert "Europe/London" in listed.output or "GMT" in listed.output or "BST" in listed.output
    live = invoke(runner, project, "send", "--slot", "nope")
    assert live.exit_code == 1
    assert "daily" in live.output  # names the schedules there are
    first = invoke(runner, project, "send", "--slot", "daily")
    assert first.exit_code == 3, first.output  # the sample's March news is not new: a skip
    assert "skipped" in first.output
    again = invoke(runner, project, "send", "--slot", "daily")
    assert again.exit_code == 0, again.output  # the slot was handled: nothing happens twice
    assert len(list((project / "outbox").glob("*"))) <= 1


def test_dry_run_sample_saves_n_messages_and_lists_everyone(
    project: Path, runner: CliRunner
) -> None:
    outbox = project / "outbox"
    result = invoke(
        runner,
        project,
        "send",
        "--dry-run",
        "--now",
        NOW,
        "--outbox",
        str(outbox),
        "--sample",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["written"], summary["saved"]) == (6, 2)
    folder = Path(summary["folder"])
    assert len(list(folder.glob("*.eml"))) == 2
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["recipients"]) == 6
