"""Saying when the sample or a starter placeholder is in use: the run, the config, the list."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli.main import cli
from newsletter.config.leftovers import find_leftovers, starter_leftovers
from newsletter.config.load import read_config
from newsletter.config.paths import CONFIG_NAME, SAMPLE_DIR
from newsletter.hosts import is_example_domain

NOW = "2026-03-04T18:00:00+05:30"
SAMPLE_NOTE = "using the bundled sample publication"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    made = CliRunner().invoke(cli, ["init", str(tmp_path / "news"), "--now", NOW])
    assert made.exit_code == 0, made.output
    return tmp_path / "news"


def check(project: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["check", "--config", str(project / CONFIG_NAME), "--now", NOW]
    )
    return result.exit_code, result.output


def test_example_domains() -> None:
    for host in ("meridianpost.example", "EXAMPLE.com", "a.b.example.org.", "x.invalid", "t.test"):
        assert is_example_domain(host), host
    for host in ("example.co.uk", "myexample.com", "examples.org", "news.example-co.com"):
        assert not is_example_domain(host), host


def test_outside_a_project_the_sample_is_named_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["build", "--now", NOW])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(SAMPLE_NOTE) == 1
    assert SAMPLE_NOTE not in result.stdout
    assert next(line for line in result.stderr.splitlines() if SAMPLE_NOTE in line).startswith(
        "note: no ./newsletter.toml, --config or $NEWSLETTER_CONFIG"
    )
    for args in (["status"], ["schedule", "list"]):
        assert runner.invoke(cli, args).stderr.count(SAMPLE_NOTE) == 1, args


def test_with_a_config_the_sample_is_not_mentioned(project: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--config", str(project / CONFIG_NAME)])
    assert result.exit_code == 0, result.output
    assert SAMPLE_NOTE not in result.output


def test_the_starter_config_is_all_placeholders(project: Path) -> None:
    found = {left.key: left for left in starter_leftovers(project / CONFIG_NAME)}
    for key in (
        "publication.name",
        "publication.postal_address",
        "publication.contact_phone",
        "publication.social.LinkedIn",
        "publication.links.Privacy",
        "sender.address",
        "list.id",
        "list.unsubscribe_url",
    ):
        assert found[key].is_sample, key
    assert found["sender.address"].domain == "meridianpost.example"
    assert "postal address" in found["publication.postal_address"].hint
    for kept in ("publication.timezone", "publication.language", "publication.colors.primary"):
        assert kept not in found


def test_own_values_are_not_placeholders_but_example_domains_are() -> None:
    sample = read_config(SAMPLE_DIR / CONFIG_NAME)
    own = {
        "publication": {"name": "Harbor Ledger", "timezone": "Asia/Kolkata"},
        "sender": {"address": "first.test@harborledger.com"},
        "smtp": {"host": "smtp.example.org"},
        "content": {"sources": ["content/a.json", "https://feeds.example.net/rss"]},
    }
    found = find_leftovers(own, sample)
    assert [(f.key, f.domain, f.is_sample) for f in found] == [
        ("smtp.host", "smtp.example.org", False),
        ("content.sources[1]", "feeds.example.net", False),
    ]
    assert found[0].hint == "your relay's host name"
    assert found[1].hint.startswith("your feed's URL")


def test_check_names_each_starter_value_and_what_to_set(project: Path) -> None:
    code, output = check(project)
    assert code == 0, output
    assert "[starter-value] publication.postal_address is 'The Meridian Post, 4th Floor" in output
    assert "set your postal address" in output
    assert "[starter-value] publication.contact_phone is '+91 484 555 0142'" in output
    assert "[starter-value] sender.address is 'newsletter@meridianpost.example'" in output
    assert "[starter-content]" in output
    assert "[subscribers-example]" in output
    assert "subscribers: 6 to mail in" in output


def test_check_reports_the_rows_of_the_subscriber_list(project: Path) -> None:
    (project / "subscribers.csv").write_text(
        "email,name\nana@harbor.org,Ana\nnot-an-address,Bo\nANA@harbor.org,Ana again\n",
        encoding="utf-8",
    )
    code, output = check(project)
    assert code == 0, output
    assert "subscribers: 1 to mail in" in output
    assert "1 invalid, 1 duplicate row(s)" in output
    assert "[subscriber-row]" in output
    assert "subscribers.csv:3:" in output
    assert "[subscribers-example]" not in output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"email,name\n", "the file has a header but no rows"),
        (b"email,name,status\na@harbor.org,A,unsubscribed\n", "no active subscribers"),
        (b"\xff\xfe\x00bad", "subscribers.csv"),
    ],
)
def test_check_fails_on_a_list_with_no_one_to_mail(
    project: Path, content: bytes, expected: str
) -> None:
    (project / "subscribers.csv").write_bytes(content)
    code, output = check(project)
    assert code == 1, output
    assert "error: [subscribers]" in output
    assert expected in output
    assert "Traceback" not in output


def test_check_fails_on_a_missing_list(project: Path) -> None:
    (project / "subscribers.csv").unlink()
    code, output = check(project)
    assert code == 1
    assert "error: [subscribers]" in output
    assert "subscribers.csv" in output
