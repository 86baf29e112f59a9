"""Every live send, however started, stops at the preflight gate before the first message.

The theme's footer loses its unsubscribe link (a preflight error); each entry point
(``send``, ``send --to``, ``send --slot``, ``schedule run`` and a dry run) must refuse,
and the real SMTP server on 127.0.0.1 must receive nothing. A control run with the
footer intact proves the same setup does deliver.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from smtp_server import SMTPServer

from newsletter.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
UNSUBSCRIBE_LINK = (
    '<p class="legal"><a class="ll" href="{{ slots.unsubscribe_url }}">Unsubscribe</a></p>'
)
SCHEDULE = """
[[schedule]]
name = "daily"
cron = "* * * * *"
timezone = "UTC"
dry_run = false
grace_minutes = 60
"""


def make_project(tmp_path: Path, port: int, *, broken: bool) -> Path:
    """A starter project (its content dated to now), three readers, the test server, a schedule."""
    project = tmp_path / "news"
    assert CliRunner().invoke(cli, ["init", str(project)]).exit_code == 0
    (project / "subscribers.csv").write_text(
        "email,name\nana@example.org,Ana\nbo@example.org,Bo\ncy@example.org,Cy\n",
        encoding="utf-8",
    )
    config = project / "newsletter.toml"
    text = config.read_text(encoding="utf-8").replace(
        '[smtp]\n# host = "smtp.example.org"',
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n',
    )
    config.write_text(text + SCHEDULE, encoding="utf-8")
    if broken:
        footer = project / "templates" / "_footer.mjml.j2"
        theme = footer.read_text(encoding="utf-8")
        assert UNSUBSCRIBE_LINK in theme
        footer.write_text(theme.replace(UNSUBSCRIBE_LINK, ""), encoding="utf-8")
    return config


def env() -> dict[str, str]:
    return {"NEWSLETTER_SIGNING_KEY": "gate-test-signing-key-0123456789"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env())


def refused_by_preflight(result: Result | str) -> bool:
    text = result if isinstance(result, str) else result.output
    return "preflight found" in text and "unsubscribe" in text.lower()


@pytest.fixture
def server() -> SMTPServer:
    with SMTPServer() as running:
        yield running


def test_the_control_send_delivers(server: SMTPServer, tmp_path: Path) -> None:
    config = make_project(tmp_path, server.port, broken=False)
    result = invoke("send", "--config", str(config), "--yes")
    assert result.exit_code == 0, result.output
    assert len(server.messages()) == 3


def test_send_stops_at_the_gate(server: SMTPServer, tmp_path: Path) -> None:
    config = make_project(tmp_path, server.port, broken=True)
    result = invoke("send", "--config", str(config), "--yes")
    assert result.exit_code == 1
    assert refused_by_preflight(result), result.output
    assert server.messages() == []


def test_a_test_copy_stops_at_the_gate(server: SMTPServer, tmp_path: Path) -> None:
    config = make_project(tmp_path, server.port, broken=True)
    result = invoke("send", "--config", str(config), "--to", "me@example.org", "--yes")
    assert result.exit_code == 1
    assert refused_by_preflight(result), result.output
    assert server.messages() == []


def test_a_slot_run_stops_at_the_gate(server: SMTPServer, tmp_path: Path) -> None:
    config = make_project(tmp_path, server.port, broken=True)
    result = invoke("send", "--config", str(config), "--slot", "daily", "--yes")
    assert result.exit_code == 1, result.output
    assert "failed: preflight found" in result.output
    assert refused_by_preflight(result), result.output
    assert server.messages() == []


def test_a_dry_run_stops_at_the_gate(server: SMTPServer, tmp_path: Path) -> None:
    config = make_project(tmp_path, server.port, broken=True)
    outbox = tmp_path / "outbox"
    result = invoke("send", "--config", str(config), "--dry-run", "--outbox", str(outbox))
    assert result.exit_code == 1
    assert refused_by_preflight(result), result.output
    assert not outbox.exists()
    assert server.messages() == []


@pytest.mark.slow
def test_the_scheduler_stops_at_the_gate(server: SMTPServer, tmp_path: Path) -> None:
    config = make_project(tmp_path, server.port, broken=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "schedule", "run", "--config", str(config)],
        cwd=ROOT,
        env={**os.environ, **env(), "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "newsletter check" in line:  # the last line of the preflight failure
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    log = "".join(lines)
    assert "daily " in log, log
    assert "failed: preflight found" in log, log
    assert refused_by_preflight(log), log
    assert server.messages() == []
