"""Nothing sensitive leaks from a source: not a file's bytes, not a feed URL's password."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli.main import cli
from newsletter.config.settings import Settings
from newsletter.sources import read_source
from newsletter.sources.masking import hide, masked

NOW = "2026-03-04T18:00:00+05:30"
SECRET_LINE = "root:x:0:0:hunter2-SECRET-token:/root:/bin/bash"
PASSWORD = "pa55-w0rd!"


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("https://user:secret@host.example/feed", "https://user:***@host.example/feed"),
        ("https://TOKEN123@host.example/feed", "https://***@host.example/feed"),
        (
            "https://host.example/feed?token=abc&page=2",
            "https://host.example/feed?token=***&page=2",
        ),
        ("https://host.example/feed?api_key=abc", "https://host.example/feed?api_key=***"),
        ("https://host.example/feed?page=2", "https://host.example/feed?page=2"),
        ("content/articles.json", "content/articles.json"),
        ("/srv/news/feed.xml", "/srv/news/feed.xml"),
    ],
)
def test_masked_shows_a_source_without_its_credentials(spec: str, shown: str) -> None:
    assert masked(spec) == shown


def test_hide_takes_every_form_of_the_secret_out() -> None:
    spec = "https://user:p%40ss-word@host.example/feed"
    text = f"{spec}: cannot fetch (nonnumeric port: 'p@ss-word@host.example'); p%40ss-word"
    hidden = hide(text, spec)
    assert hidden.startswith("https://user:***@host.example/feed: ")
    assert "p@ss-word" not in hidden
    assert "p%40ss-word" not in hidden


@pytest.mark.parametrize(
    "data",
    [
        f"{SECRET_LINE}\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n".encode(),
        b"AWS_SECRET_ACCESS_KEY=hunter2-SECRET-token\n",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nhunter2-SECRET-token\n",
        b"\x00\x01hunter2-SECRET-token\x00\x02",
    ],
)
def test_a_file_that_is_not_a_feed_is_described_not_quoted(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(data)
    report = read_source(str(path), Settings())
    assert report.error is not None
    assert report.error.startswith(f"{path}: neither JSON nor an RSS/Atom feed")
    assert "not repeated here" in report.error
    assert "hunter2" not in repr(report)
    assert "root:x" not in report.error


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def project(tmp_path: Path) -> Path:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "news"), "--now", NOW])
    assert result.exit_code == 0, result.output
    return tmp_path / "news"


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sources_args(project: Path) -> list[str]:
    secret_file = project / "passwd"
    secret_file.write_text(SECRET_LINE + "\n", encoding="utf-8")
    feed = f"http://editor:{PASSWORD}@127.0.0.1:{dead_port()}/feed.xml"
    return [
        "--source",
        str(project / "content" / "articles.json"),
        "--source",
        str(secret_file),
        "--source",
        feed,
    ]


def assert_clean(text: str) -> None:
    assert "hunter2" not in text
    assert SECRET_LINE[:20] not in text
    assert PASSWORD not in text


def test_the_sources_command_shows_neither_bytes_nor_passwords(project: Path) -> None:
    config = ["--config", str(project / "newsletter.toml")]
    args = sources_args(project)
    for extra in ([], ["--json"]):
        result = CliRunner().invoke(cli, ["sources", *config, *args, *extra])
        assert result.exit_code == 1, result.output  # two of the sources failed
        assert_clean(result.output)
        assert "editor:***@127.0.0.1" in result.output
        assert "neither JSON nor an RSS/Atom feed" in result.output
    strict = CliRunner().invoke(cli, ["sources", *config, *args, "--strict"])
    assert strict.exit_code == 1
    assert_clean(strict.output)


def test_build_and_dry_run_files_show_neither_bytes_nor_passwords(project: Path) -> None:
    config = ["--config", str(project / "newsletter.toml")]
    args = [*sources_args(project), "--now", NOW]
    out = project / "out-secrets"
    build = CliRunner().invoke(cli, ["build", *config, *args, "--out", str(out)])
    assert build.exit_code == 0, build.output
    assert_clean(build.output)
    edition = (out / "edition.json").read_text(encoding="utf-8")
    assert_clean(edition)
    warnings = json.loads(edition)["warnings"]
    assert any("editor:***@127.0.0.1" in w for w in warnings)

    outbox = project / "outbox-secrets"
    dry = CliRunner().invoke(
        cli,
        ["send", *config, *args, "--dry-run", "--outbox", str(outbox)],
        env={"NEWSLETTER_SIGNING_KEY": "test-signing-key-0123456789"},
    )
    assert dry.exit_code == 0, dry.output
    assert_clean(dry.output)
    manifests = list(outbox.rglob("manifest.json"))
    assert manifests
    for manifest in manifests:
        assert_clean(manifest.read_text(encoding="utf-8"))
