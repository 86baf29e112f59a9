"""What a live send leaves behind on a bad day, through the command line.

A send that reached nobody blocks no article; one killed after some acceptances counts
its articles at once; an unfinished edition can be abandoned; a second send soon after
a finished one is refused unless asked for; ``status`` adds up for an interrupted send.
Real parts: the starter project, a real SMTP server on 127.0.0.1, real subprocesses.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from smtp_server import Faults, SMTPServer
from test_send_cli import NOW, env, make_project, run_until_killed, selected_ids
from test_send_gate import make_project as fresh_project

from newsletter.cli.main import cli


def run(project: Path, *args: str) -> Result:
    config = str(project / "newsletter.toml")
    return CliRunner().invoke(cli, [args[0], "--config", config, *args[1:]], env=env())


def built_ids(project: Path) -> set[str]:
    result = run(project, "build", "--now", NOW, "--force")
    assert result.exit_code == 0, result.output
    return selected_ids(project / "out" / "edition.json")


def only_edition(project: Path) -> dict[str, Any]:
    listed = run(project, "status", "--json")
    assert listed.exit_code == 0, listed.output
    (edition,) = json.loads(listed.stdout)
    return dict(edition)


def test_a_send_that_reached_nobody_blocks_nothing_and_can_be_abandoned(tmp_path: Path) -> None:
    with SMTPServer(faults=Faults(mail_reply="550 5.7.1 sender not allowed")) as server:
        project = make_project(tmp_path, server.port, 3, 'security = "none"')
        first = built_ids(project)
        refused = run(project, "send", "--now", NOW, "--yes")
        assert refused.exit_code == 1, refused.output
        assert server.messages() == []
        assert built_ids(project) == first  # nothing went out, so nothing is held back
        edition = only_edition(project)["id"]
        shown = run(project, "status", edition)
        assert f"'newsletter status {edition} --abandon'" in shown.output

        abandoned = run(project, "status", edition, "--abandon")
        assert abandoned.exit_code == 0, abandoned.output
        assert "will not be resumed" in abandoned.output
        assert "No message went out" in abandoned.output
        assert "abandoned" in run(project, "status", edition).output
        again = run(project, "status", edition, "--abandon")
        assert again.exit_code == 1
        assert "already abandoned" in again.output

        server.faults.mail_reply = ""
        sent = run(project, "send", "--now", NOW, "--yes")
        assert sent.exit_code == 0, sent.output
        assert "Resuming" not in sent.output  # a new send, not the abandoned one resumed
        assert set(server.per_recipient().values()) == {1}
        assert len(server.per_recipient()) == 3
        assert not built_ids(project) & first  # now they went out


@pytest.mark.slow
def test_a_killed_send_counts_its_articles_and_abandoning_keeps_them(tmp_path: Path) -> None:
    with SMTPServer(faults=Faults(data_delay=0.02)) as server:
        project = make_project(tmp_path, server.port, 80, 'security = "none"\npool = 2')
        first = built_ids(project)
        run_until_killed(project, server, after=10)
        assert len(server.messages()) < 80
        assert not built_ids(project) & first  # counted at the first acceptance, not at the end
        edition = only_edition(project)["id"]
        abandoned = run(project, "status", edition, "--abandon")
        assert abandoned.exit_code == 0, abandoned.output
        assert "stay counted as sent" in abandoned.output
        assert not built_ids(project) & first


def test_a_second_send_soon_after_is_refused_unless_asked_for(tmp_path: Path) -> None:
    with SMTPServer() as server:
        project = make_project(tmp_path, server.port, 2, 'security = "none"')
        assert run(project, "send", "--now", NOW, "--yes").exit_code == 0
        edition = only_edition(project)["id"]
        again = run(project, "send", "--now", NOW, "--yes")
        assert again.exit_code == 3, again.output
        assert f"edition {edition}" in again.output
        assert "min_interval_hours = 12" in again.output
        assert "--allow-early" in again.output
        assert len(server.messages()) == 2

        copy = run(project, "send", "--now", NOW, "--yes", "--to", "me@example.com")
        assert copy.exit_code == 0, copy.output
        dry = run(project, "send", "--now", NOW, "--dry-run", "--outbox", str(tmp_path / "o"))
        assert dry.exit_code == 0, dry.output

        early = run(project, "send", "--now", NOW, "--yes", "--allow-early")
        assert early.exit_code == 0, early.output
        assert len(server.messages()) == 2 + 1 + 2

        config = project / "newsletter.toml"
        config.write_text(
            config.read_text(encoding="utf-8") + "\n[send]\nmin_interval_hours = 0\n", "utf-8"
        )
        off = run(project, "send", "--now", NOW, "--yes")
        assert "min_interval_hours" not in off.output, off.output


def test_a_schedule_slot_is_not_held_back_by_the_interval(tmp_path: Path) -> None:
    with SMTPServer() as server:
        config = fresh_project(tmp_path, server.port, broken=False)
        project = config.parent
        assert run(project, "send", "--yes").exit_code == 0
        slot = run(project, "send", "--slot", "daily", "--yes")
        assert slot.exit_code == 0, slot.output  # the slot itself guards against twice
        assert len(server.messages()) == 3 + 3
        refused = run(project, "send", "--slot", "daily", "--yes", "--allow-early")
        assert refused.exit_code == 2


def status_numbers(text: str) -> dict[str, int]:
    """The columns of ``status EDITION``: 'Edition X: sent 3, failed 0, …; N recipient(s)'."""
    line = next(row for row in text.splitlines() if row.startswith("Edition "))
    counts = line.split(": ", 1)[1].split(";")[0]
    return {name: int(n) for name, n in (part.rsplit(" ", 1) for part in counts.split(", "))}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "policy", "flight"),
    [(signal.SIGTERM, "resend", "in flight"), (signal.SIGKILL, "hold", "held")],
)
def test_status_adds_up_for_an_interrupted_send(
    tmp_path: Path, sig: signal.Signals, policy: str, flight: str
) -> None:
    people = 60
    with SMTPServer(faults=Faults(data_delay=0.02)) as server:
        project = make_project(
            tmp_path, server.port, people, f'security = "none"\npool = 2\nin_flight = "{policy}"'
        )
        run_until_killed(project, server, after=12, sig=sig)
        edition = only_edition(project)
        assert edition["recipients"] == people
        assert sum(edition["counts"].values()) + edition["not_attempted"] == people
        assert edition["not_attempted"] > 0

        shown = run(project, "status", edition["id"])
        assert shown.exit_code == 0, shown.output
        numbers = status_numbers(shown.output)
        columns = ("sent", "failed", "deferred", flight, "pending", "not yet attempted")
        assert set(columns) <= set(numbers), shown.output
        assert sum(numbers[c] for c in columns) == people, shown.output
        assert f"{people} recipient(s) in all" in shown.output
        assert "interrupted before everyone was tried" in shown.output

        as_json = json.loads(run(project, "status", edition["id"], "--json").stdout)
        assert as_json["recipients"] == people
        assert sum(as_json["counts"].values()) + as_json["not_attempted"] == people
        assert as_json["in_flight_policy"] == policy

        table = run(project, "status").output.splitlines()
        assert table[0].split()[-3:] == ["NOT", "TRIED", "SUBJECT"]
        row = table[1].split()
        assert sum(int(n) for n in row[3:9]) == people

        resumed = run(project, "send", "--yes")
        assert "Resuming edition" in resumed.output
        done = run(project, "status", edition["id"])
        assert "not yet attempted 0" in done.output
