"""The first hour: ``newsletter init`` makes a project that builds today, as printed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli.invocation import command_name
from newsletter.cli.main import cli
from newsletter.config.paths import SAMPLE_DIR
from newsletter.config.starter import ARTICLES, SAMPLE_NOW, dated, sample_shift

ROOT = Path(__file__).resolve().parent.parent


def article_times(project: Path) -> list[datetime]:
    data = json.loads((project / ARTICLES).read_text(encoding="utf-8"))
    return [
        datetime.fromisoformat(a[key])
        for a in data["articles"]
        for key in ("published", "updated")
        if a.get(key)
    ]


def test_a_new_project_builds_with_no_now_and_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["init", str(tmp_path / "news")])
    assert made.exit_code == 0, made.output
    newest = max(article_times(tmp_path / "news"))
    assert timedelta(0) < datetime.now(UTC) - newest < timedelta(hours=1)

    monkeypatch.chdir(tmp_path / "news")
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    built = runner.invoke(cli, ["build"])
    assert built.exit_code == 0, built.output
    assert "wrote out/edition.html" in built.output  # the path as it reads from here
    assert "bundled sample" not in built.output
    again = runner.invoke(cli, ["build"])
    assert again.exit_code == 0, again.output
    sent = runner.invoke(cli, ["send", "--dry-run"])
    assert sent.exit_code == 0, sent.output
    assert "This was a dry run" in sent.output


def test_the_printed_next_steps_work_as_printed(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NEWSLETTER_CONFIG", None)
    made = subprocess.run(
        [sys.executable, "-m", "newsletter", "init", "my news"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    steps = [line.strip() for line in made.stdout.splitlines() if line.startswith("  ")]
    assert steps[0] == "cd 'my news'"
    assert [step.split("#")[0].split()[-1] for step in steps[1:]] == [
        "build",
        "check",
        "--dry-run",
    ]
    script = "set -e\n" + "\n".join(steps)
    ran = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "wrote out/preview.html" in ran.stdout
    assert "No errors" in ran.stdout
    assert "This was a dry run" in ran.stdout
    assert (tmp_path / "my news" / "out" / "edition.html").is_file()


def test_init_dates_the_articles_to_now_given(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["init", str(tmp_path / "a"), "--now", "2030-01-02T08:00"])
    assert made.exit_code == 0, made.output
    newest = max(article_times(tmp_path / "a"))
    assert newest == datetime.fromisoformat("2030-01-02T07:21:00+05:30")  # naive: sample's zone
    bad = runner.invoke(cli, ["init", str(tmp_path / "b"), "--now", "soon"])
    assert bad.exit_code == 2
    assert not (tmp_path / "b").exists()


def test_dating_moves_every_time_by_whole_minutes() -> None:
    text = (SAMPLE_DIR / ARTICLES).read_text(encoding="utf-8")
    assert dated(text, timedelta(0)) == text
    assert sample_shift(SAMPLE_NOW + timedelta(days=3, seconds=59.9)) == timedelta(days=3)
    before = json.loads(text)["articles"][0]
    after = json.loads(dated(text, timedelta(days=1)))["articles"][0]
    assert datetime.fromisoformat(after["published"]) == datetime.fromisoformat(
        before["published"]
    ) + timedelta(days=1)
    assert after["title"] == before["title"]


def test_the_command_to_type_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = "/opt/py thon/bin/python3"
    assert command_name("/x/newsletter/__main__.py", python) == f"'{python}' -m newsletter"
    assert command_name("/usr/lib/pytest", python) == f"'{python}' -m newsletter"

    bin_dir = tmp_path / "venv dir" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "newsletter"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert command_name(str(script), python) == f"'{script}'"  # not on PATH: the full path
    monkeypatch.setenv("PATH", str(bin_dir))
    assert command_name(str(script), python) == "newsletter"
