"""Help and messages read as one tool: --config anywhere, one error prefix, named values."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from newsletter.cli.main import cli

NOW = "2026-03-04T18:00:00+05:30"
# click's names for a value when a command does not say what the value is
VAGUE_METAVARS = {"TEXT", "INTEGER", "FLOAT", "PATH", "FILENAME", "DIRECTORY", "INTEGER RANGE"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    made = CliRunner().invoke(cli, ["init", str(tmp_path / "news"), "--now", NOW])
    assert made.exit_code == 0, made.output
    return tmp_path / "news"


def every_command() -> list[tuple[list[str], click.Command]]:
    """Every command and group, with the words that reach it."""

    def walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
        found = [(path, command)]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += walk(sub, [*path, name])
        return found

    return walk(cli, [])


def test_every_option_has_a_help_line_and_a_named_value() -> None:
    runner = CliRunner()
    for path, command in every_command():
        ctx = click.Context(command, info_name=" ".join(["newsletter", *path]))
        shown = runner.invoke(cli, [*path, "--help"])
        assert shown.exit_code == 0, path
        for param in command.params:
            where = f"{' '.join(path) or 'newsletter'} {param.name}"
            if isinstance(param, click.Option):
                assert len((param.help or "").strip()) > 10, f"{where}: no help line"
                if not param.is_flag:
                    metavar = param.make_metavar(ctx).strip("[]").split(" [")[0]
                    assert metavar not in VAGUE_METAVARS, f"{where}: says only {metavar}"
            else:
                metavar = param.make_metavar(ctx).strip("[].")
                assert metavar.isupper(), f"{where}: {metavar}"
                assert metavar in (command.help or ""), f"{where}: {metavar} not explained"


def test_config_goes_before_or_after_the_command(project: Path) -> None:
    runner = CliRunner()
    config = str(project / "newsletter.toml")
    before = runner.invoke(cli, ["--config", config, "build", "--now", NOW])
    assert before.exit_code == 0, before.output
    after = runner.invoke(cli, ["build", "--config", config, "--now", NOW])
    assert after.exit_code == 0, after.output
    assert (project / "out" / "edition.html").is_file()
    listed = runner.invoke(cli, ["--config", config, "schedule", "list"])
    assert listed.exit_code == 0, listed.output
    assert "bundled sample" not in before.output + listed.output
    both = runner.invoke(cli, ["--config", config, "status", "--config", "other.toml"])
    assert both.exit_code == 2
    assert "error: Invalid value for '--config': given twice" in both.output
    same = runner.invoke(cli, ["--config", config, "status", "--config", config])
    assert same.exit_code == 0, same.output


@pytest.mark.parametrize(
    "args",
    [
        ["build", "--bogus"],
        ["--bogus"],
        ["no-such-command"],
        ["init"],
        ["send", "--limit", "0"],
        ["build", "--now", "yesterday"],
        ["schedule", "list", "--count", "many"],
    ],
)
def test_every_usage_error_reads_error_and_exits_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "error: " in result.stderr
    assert "Error:" not in result.output
    assert "Traceback" not in result.output


def test_a_problem_reads_error_and_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["build", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")


def test_paths_are_shown_as_given(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (project / "bad.toml").write_text('[publication]\nname = "X"\n', encoding="utf-8")
    runner = CliRunner()
    bad = runner.invoke(cli, ["build", "--config", "news/bad.toml"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: news/bad.toml: ")
    config = "news/newsletter.toml"
    built = runner.invoke(cli, ["build", "--config", config, "--now", NOW, "--out", "here"])
    assert built.exit_code == 0, built.output
    assert "wrote here/edition.html" in built.stdout
    sent = runner.invoke(
        cli, ["send", "--config", config, "--now", NOW, "--dry-run", "--outbox", "box"]
    )
    assert sent.exit_code == 0, sent.output
    assert " in box/" in sent.stdout
