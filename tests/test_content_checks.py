"""Content checks that hold in general, as a user meets them on the command line.

Each test builds a project with ``newsletter init``, writes its own content file or
subscriber list into it, and runs the command a user would run.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from newsletter.cli.main import cli
from newsletter.limits import HTML_WARN_BYTES

NOW = "2026-03-04T18:00:00+05:30"
MOMENT = datetime.fromisoformat(NOW)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def project(tmp_path: Path, runner: CliRunner) -> Path:
    """A starter project made by ``newsletter init``."""
    result = runner.invoke(cli, ["init", str(tmp_path / "news"), "--now", NOW])
    assert result.exit_code == 0, result.output
    return tmp_path / "news"


def invoke(runner: CliRunner, project: Path, *args: str) -> click.testing.Result:
    """Run a command against the project's config file."""
    return runner.invoke(cli, [*args[:1], "--config", str(project / "newsletter.toml"), *args[1:]])


def story(ident: str, title: str, hours_ago: float = 1.0, **fields: Any) -> dict[str, Any]:
    """An article of the JSON content format, changed ``hours_ago`` before ``NOW``."""
    when = (MOMENT - timedelta(hours=hours_ago)).isoformat()
    value: dict[str, Any] = {
        "id": ident,
        "title": title,
        "url": f"https://news.example/{ident}",
        "summary": f"<p>What happened in {title.lower()}.</p>",
        "section": "News",
        "published": when,
    }
    value.update(fields)
    return value


def write_content(project: Path, *articles: dict[str, Any]) -> None:
    """Replace the project's content file with ``articles``."""
    path = project / "content" / "articles.json"
    path.write_text(json.dumps({"articles": list(articles)}), encoding="utf-8")


def built(project: Path) -> dict[str, Any]:
    """The edition.json of the last ``build`` into ``out/``."""
    data: dict[str, Any] = json.loads((project / "out" / "edition.json").read_text("utf-8"))
    return data


# --------------------------------------------------------------------------- addresses


def test_to_address_over_the_rfc_5321_limits_is_refused(project: Path, runner: CliRunner) -> None:
    too_long = "a" * 65 + "@example.com"
    result = invoke(
        runner,
        project,
        "send",
        "--dry-run",
        "--now",
        NOW,
        "--to",
        too_long,
        "--outbox",
        str(project / "outbox"),
    )
    assert result.exit_code == 1
    assert f"--to '{too_long}'" in result.output
    assert "65 bytes long; RFC 5321 allows 64" in result.output
    assert "Traceback" not in result.output
    assert not (project / "outbox").exists()


def test_subscriber_rows_over_the_limits_are_skipped_with_a_warning(
    project: Path, runner: CliRunner
) -> None:
    label, local = "b" * 64, "c" * 65
    rows = ["email,name", "ana@example.com,Ana", f"kai@{label}.example,Kai", f"{local}@x.example,"]
    (project / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    outbox = project / "outbox"
    result = invoke(runner, project, "send", "--dry-run", "--now", NOW, "--outbox", str(outbox))
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"subscribers.csv:3: 'kai@{label}.example' is not a valid email address" in output
    assert f"subscribers.csv:4: '{local}@x.example' is not a valid email address" in output
    assert "65 bytes long; RFC 5321 allows 64" in output
    assert len(list(outbox.glob("*/*.eml"))) == 1


# --------------------------------------------------------------------------- URLs


def test_urls_written_wrongly_are_refused_with_a_warning_naming_the_item(
    project: Path, runner: CliRunner
) -> None:
    write_content(
        project,
        story(
            "lead",
            "Harbour gates approved",
            image={"url": "img.example.com/gates.jpg", "alt": "Gates"},
            summary='<p>The vote, <a href="https://ed:hunter2@news.example/v">in full</a>.</p>',
        ),
        story("other", "Rail strike ends", url="https://ed:hunter2@news.example/rail"),
        story("third", "Bridge reopens", url="news.example/bridge"),
    )
    result = invoke(runner, project, "build", "--now", NOW, "--out", str(project / "out"))
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "hunter2" not in output
    assert "article 1 (id 'lead'): 'image.url' 'img.example.com/gates.jpg' has no scheme" in output
    assert "article 1 (id 'lead'): a link in 'summary' 'https://…@news.example/v' carries" in output
    assert "article 2 (id 'other'): 'url' 'https://…@news.example/rail' carries a user" in output
    assert "article 3 (id 'third'): 'url' 'news.example/bridge' has no scheme" in output
    html = (project / "out" / "edition.html").read_text(encoding="utf-8")
    assert "img.example.com" not in html  # never guessed into a path under the site
    assert "hunter2" not in html
    assert built(project)["selection"]["trending"] == []


# --------------------------------------------------------------------------- dates


def test_rfc_822_dates_count_and_undated_articles_are_named(
    project: Path, runner: CliRunner
) -> None:
    write_content(
        project,
        story("lead", "Harbour gates approved", published="Wed, 04 Mar 2026 12:00:00 +0000"),
        story("undated", "Letters from the quay", published=None),
        story("garbled", "Tide tables", published="the day after tomorrow"),
    )
    result = invoke(runner, project, "build", "--now", NOW, "--out", str(project / "out"))
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "article 2 (id 'undated') has no date; 'Letters from the quay' is kept" in output
    assert "article 3 (id 'garbled') has no date (unreadable: 'the day after tomorrow')" in output
    selection = built(project)["selection"]
    assert selection["lead"]["id"] == "lead"  # the RFC 822 date is read, so it can lead
    assert [s["id"] for s in selection["trending"]] == ["garbled", "undated"]


# --------------------------------------------------------------------------- long summaries


def test_one_huge_article_cannot_push_the_edition_over_the_clip(
    project: Path, runner: CliRunner
) -> None:
    paragraph = "<p>The harbour <b>gates</b> will hold back storm surges of up to three metres.</p>"
    write_content(
        project,
        story("huge", "Harbour gates approved", summary=paragraph * 3000),  # about 240 KB
        story("other", "Rail strike ends"),
    )
    out = project / "out"
    result = invoke(runner, project, "build", "--now", NOW, "--out", str(out))
    assert result.exit_code == 0, result.output
    html = (out / "edition.html").read_text(encoding="utf-8")
    assert len(html.encode()) < HTML_WARN_BYTES
    assert built(project)["selection"]["lead"]["id"] == "huge"
    text = (out / "edition.txt").read_text(encoding="utf-8")
    assert "storm surges…\n\nRead the full story" in text  # cut at 600 characters, at a word

    config = project / "newsletter.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("[email]", "[email]\nsummary_max_chars = 120"),
        encoding="utf-8",
    )
    result = invoke(runner, project, "build", "--now", NOW, "--out", str(out), "--force")
    assert result.exit_code == 0, result.output
    text = (out / "edition.txt").read_text(encoding="utf-8")
    kept = "metres.\n\nThe harbour gates will hold back storm surges of…\n\nRead the full story"
    assert kept in text  # 120 characters, cut after a whole word


# --------------------------------------------------------------------------- merging


def test_a_future_dated_copy_does_not_make_the_story_vanish(
    project: Path, runner: CliRunner
) -> None:
    write_content(
        project,
        story("gates", "Harbour gates approved", hours_ago=2, pinned=True),
        story("rail", "Rail strike ends", hours_ago=3),
    )
    ahead = story("gates-wire", "Harbour gates approved", hours_ago=-30)  # a wrong clock
    (project / "content" / "ahead.json").write_text(json.dumps([ahead]), encoding="utf-8")
    config = project / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('sources = ["content/articles.json"]', 'sources = ["content/articles.json",'
                     ' "content/ahead.json"]'),
        encoding="utf-8",
    )  # fmt: skip
    result = invoke(runner, project, "build", "--now", NOW, "--out", str(project / "out"))
    assert result.exit_code == 0, result.output
    assert built(project)["selection"]["lead"]["id"] == "gates"
    output = " ".join(result.output.split())
    assert "'Harbour gates approved' is dated in the future" in output
    assert "(current; this copy is dated in the future)" in output


# --------------------------------------------------------------------------- near-duplicate titles


def test_stories_sharing_most_words_are_not_merged(project: Path, runner: CliRunner) -> None:
    write_content(
        project,
        story("approves", "Council approves harbour budget", hours_ago=1, pinned=True),
        story("rejects", "Council rejects harbour budget", hours_ago=2),
        story("four", "4 killed in motorway crash near Leeds", hours_ago=3),
        story("three", "3 killed in motorway crash near Leeds", hours_ago=4),
        story("again", "Council approves the harbour budget", hours_ago=5),  # the same story
    )
    result = invoke(runner, project, "build", "--now", NOW, "--out", str(project / "out"))
    assert result.exit_code == 0, result.output
    selection = built(project)["selection"]
    assert selection["lead"]["id"] == "approves"
    assert [s["id"] for s in selection["trending"]] == ["rejects", "four", "three"]
    output = " ".join(result.output.split())
    assert (
        "dropped 1 duplicate: 'Council approves the harbour budget' (title like 'Council"
        " approves harbour budget' from the same source (newer))" in output
    )


# --------------------------------------------------------------------------- the editor's pick


def test_a_lead_that_matches_nothing_is_an_error_naming_it(
    project: Path, runner: CliRunner
) -> None:
    write_content(
        project,
        story("gates", "Harbour gates approved", hours_ago=2),
        story("rail", "Rail strike ends", hours_ago=3),
        story("later", "Tomorrow's tide tables", hours_ago=-48),
    )
    out = str(project / "out")
    wrong = "https://news.example/gate"
    result = invoke(runner, project, "build", "--now", NOW, "--out", out, "--lead", wrong)
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"error: --lead '{wrong}' matches no article in the sources (by URL or id)" in output
    assert "leave --lead out to let the selection choose" in output
    assert "Traceback" not in output
    assert not (project / "out").exists()

    later = invoke(runner, project, "build", "--now", NOW, "--out", out, "--lead", "later")
    assert later.exit_code == 1
    assert "'Tomorrow's tide tables' is dated in the future" in " ".join(later.output.split())

    right = invoke(runner, project, "build", "--now", NOW, "--out", out, "--lead", "rail")
    assert right.exit_code == 0, right.output
    assert built(project)["selection"]["lead"]["id"] == "rail"

    config = project / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[selection]", f'[selection]\nlead_url = "{wrong}"'), "utf-8")
    result = invoke(runner, project, "build", "--now", NOW, "--out", out, "--force")
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"[selection] lead_url '{wrong}' matches no article" in output
    assert "update or remove lead_url in [selection] of the config" in output
