"""Several real ``newsletter send --yes`` processes sharing one edition through PostgreSQL.

The processes run against the SMTP test server with the state in a schema of the test
PostgreSQL server (``pg_server``); what each recipient got is counted at the SMTP
server. The first message of the list hangs at the server until the test releases it
(``Faults.hang``): that holds one sender mid-send while the others join, so "mid-send"
does not depend on timing. Leases are short.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from pg_server import PostgresServer
from smtp_server import Faults, SMTPServer
from state_backends import schema_for

from newsletter.cli.main import cli
from newsletter.config.state import ENV_STATE_URL, PostgresUrl
from newsletter.delivery.smtp.pool import CLAIM_AHEAD, UNRECORDED
from newsletter.state import openers

pytestmark = pytest.mark.slow

SAMPLE_NOW = "2026-03-04T18:00:00+05:30"
ROOT = Path(__file__).resolve().parents[1]
FIRST = "reader00@example.org"
PATIENCE = 60.0  # seconds a test waits for something that should happen soon


def reader(n: int) -> str:
    return f"reader{n:02d}@example.org"


@dataclass
class Shared:
    """A project whose state is a schema of the test server, and its SMTP server."""

    config: Path
    place: PostgresUrl
    server: SMTPServer
    people: int
    tmp: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            ENV_STATE_URL: self.place.url,
            "NEWSLETTER_SIGNING_KEY": "test-signing-key-0123",
        }

    def start(self, *args: str, name: str = "send") -> subprocess.Popen[bytes]:
        """Start ``newsletter send --yes`` (or ``args``) as a process of its own."""
        command = args or ("send", "--now", SAMPLE_NOW, "--yes")
        log = (self.tmp / f"{name}-{time.monotonic_ns()}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "newsletter", *command, "--config", str(self.config)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp,
        )  # fmt: skip

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.place.url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def senders(self) -> list[tuple[int, int, str]]:
        """Every sender that joined: its number, process id and state."""
        if not self.query("SELECT to_regclass('send_workers')")[0][0]:
            return []
        return [(int(w), int(p), str(s)) for w, p, s in self.query(
            "SELECT id, pid, state FROM send_workers ORDER BY id"
        )]  # fmt: skip

    def ledger(self) -> dict[str, str]:
        return dict(self.query("SELECT email, state FROM ledger_recipients"))

    def edition_status(self) -> str:
        return str(self.query("SELECT status FROM archive_editions")[0][0])

    def cli(self, *args: str) -> Any:
        env = {ENV_STATE_URL: self.place.url}
        return CliRunner().invoke(cli, [args[0], "--config", str(self.config), *args[1:]], env=env)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = PATIENCE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def finish(process: subprocess.Popen[bytes], timeout: float = PATIENCE) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.fixture
def shared(postgres: PostgresServer, tmp_path: Path) -> Iterator[Shared]:
    """A project of 40 subscribers sending to a slow server; the state is shared."""
    people = 40
    faults = Faults(data_delay=0.05, hang={FIRST})
    with SMTPServer(faults=faults) as server:
        project = tmp_path / "news"
        init = CliRunner().invoke(cli, ["init", str(project), "--now", SAMPLE_NOW])
        assert init.exit_code == 0, init.output
        rows = ["email,name", *(f"{reader(n)},Reader {n}" for n in range(people))]
        (project / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        config = project / "newsletter.toml"
        text = config.read_text(encoding="utf-8")
        smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\npool = 1\n'
        text = text.replace("[smtp]\n", smtp, 1)
        text += "\n[state]\nlease_seconds = 2\nreconnect_seconds = 30\n"
        config.write_text(text, encoding="utf-8")
        place = PostgresUrl(postgres.new_schema(schema_for(tmp_path)))
        yield Shared(config, place, server, people, tmp_path)
        server.release()


def start_three(shared: Shared) -> list[subprocess.Popen[bytes]]:
    """Three senders; the first to claim is held at the first message until all joined."""
    senders = [shared.start(name=f"sender{n}") for n in range(3)]
    wait_for(lambda: len(shared.senders()) == 3, "three senders joined")
    return senders


def logs(shared: Shared) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(shared.tmp.glob("*.log")))


def test_senders_share_an_edition_and_mail_everyone_once(shared: Shared) -> None:
    senders = start_three(shared)
    wait_for(lambda: len(shared.server.messages()) >= 4, "the others sent meanwhile")
    status = shared.cli("status")
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    shown = [line for line in lines if line.strip().startswith("#")]
    assert len(shown) == 3, status.output
    assert all(" live" in line for line in shown), status.output
    shared.server.release()
    codes = [finish(p) for p in senders]
    assert codes == [0, 0, 0], logs(shared)
    got = shared.server.per_recipient()
    assert got == {reader(n): 1 for n in range(shared.people)}
    assert set(shared.ledger().values()) == {"sent"}
    assert shared.edition_status() == "done"
    counts = shared.query("SELECT state, sent FROM send_workers ORDER BY id")
    assert [state for state, _ in counts] == ["done", "done", "done"]
    assert sum(sent for _, sent in counts) == shared.people
    assert all(sent for _, sent in counts)  # each took its part
    assert shared.query("SELECT COUNT(*) FROM history_editions") == [(1,)]
    later = shared.start(name="late")  # the edition is complete: nothing new, or too soon
    assert finish(later) == 3, logs(shared)
    detail = json.loads(
        shared.cli("status", shared.query("SELECT id FROM archive_editions")[0][0], "--json").stdout
    )
    assert detail["counts"]["sent"] == shared.people
    assert [w["state"] for w in detail["workers"]] == ["done", "done", "done"]


@pytest.mark.parametrize("in_flight", ["resend", "hold"])
def test_a_killed_senders_part_is_finished_by_the_others(shared: Shared, in_flight: str) -> None:
    text = shared.config.read_text(encoding="utf-8")
    shared.config.write_text(text.replace("pool = 1\n", f'pool = 1\nin_flight = "{in_flight}"\n'))
    senders = start_three(shared)
    wait_for(lambda: shared.server.count_for(FIRST) == 1, "the first message is under way")
    holder = shared.query(
        "SELECT w.pid FROM send_workers AS w JOIN ledger_recipients AS r ON r.worker = w.id"
        " WHERE r.email = %s",
        (FIRST,),
    )[0][0]
    victim = next(p for p in senders if p.pid == holder)
    victim.send_signal(signal.SIGKILL)
    assert finish(victim) == -signal.SIGKILL
    shared.server.release()
    others = [p for p in senders if p is not victim]
    assert [finish(p) for p in others] == [0, 0], logs(shared)
    got = shared.server.per_recipient()
    assert set(got) == {reader(n) for n in range(shared.people)}  # nobody lost
    # Only the message under way at the kill may come twice, and only under resend.
    assert {a: n for a, n in got.items() if n > 1} == ({FIRST: 2} if in_flight == "resend" else {})
    ledger = shared.ledger()
    held = {a for a, s in ledger.items() if s != "sent"}
    assert held == (set() if in_flight == "resend" else {FIRST})
    assert ledger.get(FIRST) == ("sent" if in_flight == "resend" else "in_flight")
    assert shared.edition_status() == "done"
    states = [state for _, pid, state in shared.senders() if pid == holder]
    assert states == ["lost"]
    status = shared.cli("status", shared.query("SELECT id FROM archive_editions")[0][0])
    assert "lost" in status.output
    if in_flight == "hold":
        assert f"held      {FIRST}" in status.output


def test_a_sender_frozen_past_its_lease_sends_nothing_it_no_longer_holds(shared: Shared) -> None:
    senders = start_three(shared)
    wait_for(lambda: shared.server.count_for(FIRST) == 1, "the first message is under way")
    holder = shared.query(
        "SELECT w.pid FROM send_workers AS w JOIN ledger_recipients AS r ON r.worker = w.id"
        " WHERE r.email = %s",
        (FIRST,),
    )[0][0]
    frozen = next(p for p in senders if p.pid == holder)
    frozen.send_signal(signal.SIGSTOP)
    try:  # the others take its recipients over once its lease has run out
        wait_for(lambda: shared.server.count_for(FIRST) == 2, "another sender took it over")
        shared.server.release()  # both tries of the first message are accepted now
        others = [p for p in senders if p is not frozen]
        assert [finish(p) for p in others] == [0, 0], logs(shared)
        assert set(shared.ledger().values()) == {"sent"}
    finally:
        frozen.send_signal(signal.SIGCONT)
    assert finish(frozen) == 0, logs(shared)  # it learns its lease is gone, joins again
    got = shared.server.per_recipient()
    assert {a: n for a, n in got.items() if n > 1} == {FIRST: 2}  # the one it had under way
    assert set(got) == {reader(n) for n in range(shared.people)}
    assert "took its recipients over; joining the edition again" in logs(shared)
    assert shared.edition_status() == "done"


def test_a_database_restart_mid_send_loses_and_doubles_nothing(
    shared: Shared, postgres: PostgresServer
) -> None:
    text = shared.config.read_text(encoding="utf-8")
    shared.config.write_text(text.replace("lease_seconds = 2", "lease_seconds = 15"))
    senders = [shared.start(name=f"sender{n}") for n in range(2)]
    wait_for(lambda: len(shared.senders()) == 2, "two senders joined")
    wait_for(lambda: len(shared.server.messages()) >= 5, "sending is under way")
    postgres.stop("immediate")
    try:
        time.sleep(1.0)
    finally:
        postgres.resume()
    shared.server.release()
    assert [finish(p) for p in senders] == [0, 0], logs(shared)
    got = shared.server.per_recipient()
    assert set(got) == {reader(n) for n in range(shared.people)}
    doubled = sum(n - 1 for n in got.values())
    assert doubled <= len(senders) * (CLAIM_AHEAD + UNRECORDED)  # the in-flight window
    assert set(shared.ledger().values()) == {"sent"}
    assert shared.edition_status() == "done"
    assert "reconnected to the state database" in logs(shared)


def test_a_database_that_does_not_come_back_stops_the_send_clearly(
    shared: Shared, postgres: PostgresServer
) -> None:
    text = shared.config.read_text(encoding="utf-8")
    shared.config.write_text(text.replace("reconnect_seconds = 30", "reconnect_seconds = 1"))
    sender = shared.start(name="alone")
    wait_for(lambda: shared.server.count_for(FIRST) == 1, "the first message is under way")
    postgres.stop("immediate")
    try:
        shared.server.release()
        assert finish(sender) == 1
    finally:
        postgres.resume()
    said = logs(shared)
    assert "did not come back within 1 s ([state] reconnect_seconds)" in said
    assert "Traceback" not in said
    again = shared.start(name="again")  # once it is back, a send finishes the edition
    assert finish(again) == 0, logs(shared)
    got = shared.server.per_recipient()
    assert set(got) == {reader(n) for n in range(shared.people)}
    assert sum(n - 1 for n in got.values()) <= CLAIM_AHEAD + UNRECORDED
    assert set(shared.ledger().values()) == {"sent"}


def test_a_suppression_added_mid_send_is_honoured(shared: Shared) -> None:
    before, last = reader(1), reader(shared.people - 1)
    with openers.open_suppressions(shared.place) as suppressions:
        suppressions.add(before, "bounce", "bounces")  # left out of the stored list
    sender = shared.start(name="alone")
    wait_for(lambda: shared.server.count_for(FIRST) == 1, "the first message is under way")
    with openers.open_suppressions(shared.place) as suppressions:
        suppressions.add(last, "unsubscribe", "one-click")  # caught when it is claimed
    shared.server.release()
    assert finish(sender) == 0, logs(shared)
    got = shared.server.per_recipient()
    assert got == {reader(n): 1 for n in range(shared.people) if reader(n) not in (before, last)}
    (listed,) = json.loads(shared.cli("status", "--json").stdout)
    assert listed["recipients"] == shared.people - 1  # status adds up
    assert listed["counts"]["sent"] == shared.people - 2
    assert listed["counts"]["failed"] == 1
    detail = json.loads(shared.cli("status", listed["id"], "--json").stdout)
    assert detail["failures"] == [[last, "failed", "suppressed: unsubscribe"]]
    assert "suppressed: 2 address(es) left out (1 of them suppressed while it was sending)" in (
        logs(shared)
    )


def test_readers_at_internationalized_domains_are_mailed_once_and_the_send_ends(
    shared: Shared,
) -> None:
    """The list names the domain in Unicode, the wire in ASCII: one reader, one ledger row."""
    listed = shared.config.parent / "subscribers.csv"
    rows = listed.read_text(encoding="utf-8").splitlines()
    rows[-2:] = ["zoë@bücher.example,Zoë", "Ana@Bücher.Example,Ana"]
    listed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with openers.open_suppressions(shared.place) as suppressions:
        suppressions.add("ana@xn--bcher-kva.example", "unsubscribe", "one-click")
    sender = shared.start(name="idn")
    shared.server.release()
    assert finish(sender) == 0, logs(shared)
    got = shared.server.per_recipient()
    assert got["zoë@xn--bcher-kva.example"] == 1
    assert not any("ana@" in address.lower() for address in got)  # suppressed in either form
    assert set(got.values()) == {1}
    assert len(got) == shared.people - 1
    assert set(shared.ledger().values()) == {"sent"}
    assert shared.edition_status() == "done"


def test_shard_is_refused_when_the_senders_share_the_state(shared: Shared) -> None:
    sender = shared.start("send", "--now", SAMPLE_NOW, "--yes", "--shard", "1/2", name="shard")
    assert finish(sender) == 2
    assert "run 'newsletter send' on each host without --shard" in logs(shared)
    assert shared.server.per_recipient() == {}


def test_two_schedulers_on_a_shared_state_send_a_slot_once(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    with SMTPServer(faults=Faults(data_delay=0.02)) as server:
        project = tmp_path / "news"
        init = CliRunner().invoke(cli, ["init", str(project)])  # articles dated now
        assert init.exit_code == 0, init.output
        rows = ["email,name", *(f"{reader(n)},Reader {n}" for n in range(10))]
        (project / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        config = project / "newsletter.toml"
        text = config.read_text(encoding="utf-8")
        smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
        due = datetime.now(UTC) + timedelta(seconds=10)  # one slot, seconds field last
        cron = f"{due.minute} {due.hour} {due.day} {due.month} * {due.second}"
        text = text.replace("[smtp]\n", smtp, 1) + (
            f'\n[[schedule]]\nname = "daily"\ncron = "{cron}"\ntimezone = "UTC"\ndry_run = false\n'
        )
        config.write_text(text, encoding="utf-8")
        shared = Shared(
            config, PostgresUrl(postgres.new_schema(schema_for(tmp_path))), server, 10, tmp_path
        )
        schedulers = [shared.start("schedule", "run", name=f"scheduler{n}") for n in range(2)]
        try:
            wait_for(
                lambda: (
                    shared.query("SELECT to_regclass('schedule_slots')")[0][0] is not None
                    and shared.query("SELECT state FROM schedule_slots") == [("sent",)]
                ),
                "the slot was sent",
            )
            wait_for(lambda: logs(shared).count("daily") >= 2, "both schedulers saw the slot")
        finally:
            for scheduler in schedulers:
                scheduler.send_signal(signal.SIGTERM)
        assert [finish(s) for s in schedulers] == [0, 0], logs(shared)
    assert server.per_recipient() == {reader(n): 1 for n in range(10)}
    assert shared.query("SELECT state, attempts FROM schedule_slots") == [("sent", 1)]
