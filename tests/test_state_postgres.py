"""The PostgreSQL backend on a real server: schema versions, a crash, locks, passwords.

What every backend does is tested on both by the ``state`` suites (test_state,
test_ledger, test_history); here is what only a database server has. Each test keeps
its state in a schema of its own on the session's server (``pg_server``).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner
from pg_server import PostgresServer
from smtp_server import Faults, SMTPServer
from state_backends import schema_for

from newsletter.cli.main import cli
from newsletter.config.state import ENV_STATE_URL, PostgresUrl, Sharing
from newsletter.errors import DeliveryError, NewsletterError, StateError
from newsletter.state import openers
from newsletter.state.postgres import migrations

TENANT_TABLES = {
    "history_editions",
    "history_articles",
    "archive_editions",
    "ledger_editions",
    "ledger_recipients",
    "schedule_slots",
    "suppressions",
    "members",
    "bounce_events",
    "send_list",
    "send_workers",
}
SECRET = "s3cr%t-pass"  # trust authentication lets any password in
SECRET_IN_URL = "s3cr%25t-pass"
SAMPLE_NOW = "2026-03-04T18:00:00+05:30"  # the date the starter's content is for
NOW = datetime(2026, 3, 5, 12, 0, 30, tzinfo=UTC)

OPENERS: dict[str, Callable[[PostgresUrl], Any]] = {
    "history": openers.open_history,
    "editions": openers.open_editions,
    "ledger": openers.open_ledger,
    "slots": openers.open_slots,
    "suppressions": openers.open_suppressions,
    "members": openers.open_members,
}


@pytest.fixture
def place(postgres: PostgresServer, tmp_path: Path) -> PostgresUrl:
    """A fresh, empty state: a schema of its own."""
    return PostgresUrl(postgres.new_schema(schema_for(tmp_path)))


def query(place: PostgresUrl, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` in the state's schema through a session of its own."""
    with psycopg.connect(place.url, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def with_password(place: PostgresUrl) -> PostgresUrl:
    return PostgresUrl(place.url.replace("newsletter@", f"newsletter:{SECRET_IN_URL}@", 1))


def assert_hidden(text: str) -> None:
    assert SECRET not in text
    assert SECRET_IN_URL not in text


class _Slot:
    """A slot as ``scheduling.timeline.Slot`` shows it to the store."""

    key = "daily@2026-03-05T07:00:00"
    schedule = "daily"
    local = datetime(2026, 3, 5, 7, tzinfo=ZoneInfo("America/New_York"))
    at = datetime(2026, 3, 5, 12, tzinfo=UTC)


# --------------------------------------------------------------------------- schema


def test_a_new_database_gets_the_schema_once(place: PostgresUrl) -> None:
    created = openers.migrate(place)
    assert (created.before, created.after) == (0, migrations.LATEST)
    assert created.where == place.where
    tables = query(place, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    assert {name for (name,) in tables} == TENANT_TABLES | {"schema_version"}
    again = openers.migrate(place)
    assert not again.changed
    assert again.describe() == f"{place.where}: schema {migrations.LATEST}, already up to date"
    versions = query(place, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(n,) for n in range(1, migrations.LATEST + 1)]


def test_senders_opening_a_new_database_at_once_migrate_it_once(place: PostgresUrl) -> None:
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def open_ledger(n: int) -> None:
        start.wait()
        try:
            with openers.open_ledger(place) as ledger:
                ledger.start("e1", f"Sender {n}")
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=open_ledger, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    versions = query(place, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(n,) for n in range(1, migrations.LATEST + 1)]


def test_a_database_from_a_newer_version_is_refused(place: PostgresUrl) -> None:
    secret = with_password(place)
    openers.migrate(secret)
    newer = migrations.LATEST + 1
    query(place, f"INSERT INTO schema_version VALUES ({newer}, '2030-01-01T00:00:00.000000Z')")  # noqa: S608
    message = (
        f"{secret.where}: made by a newer version of newsletter (schema {newer}, this one knows "
        f"{migrations.LATEST}); upgrade newsletter or use another database"
    )
    for opener in (*OPENERS.values(), openers.migrate):
        with pytest.raises(StateError) as refused:
            opener(secret)
        assert str(refused.value) == message
    assert_hidden(message)
    assert query(place, "SELECT MAX(version) FROM schema_version") == [(newer,)]


# --------------------------------------------------------------------------- a crash


def test_what_was_committed_survives_a_server_crash(
    postgres: PostgresServer, place: PostgresUrl
) -> None:
    with openers.open_ledger(place) as ledger:
        ledger.start("e1", "S")
        for n in range(50):
            ledger.claim("e1", f"r{n}@example.org", f"<{n}>", wait=False)
            ledger.finish("e1", f"r{n}@example.org", "sent", "250 ok")
        ledger.claim("e1", "last@example.org", "<last>")  # durable when it returns
        postgres.stop("immediate")
        postgres.resume()
        # The old session died with the server: the ledger opens a new one and goes on.
        ledger.finish("e1", "last@example.org", "sent", "250 ok")
        ledger.flush()
    with openers.open_ledger(place) as again:
        states = again.states("e1")
    expected = {f"r{n}@example.org": "sent" for n in range(50)}
    assert states == {**expected, "last@example.org": "sent"}
    with openers.open_history(place) as history:  # every tenant opens again
        history.record("e1", NOW, ["a"])
        assert history.last_edition() == "e1"


def test_a_ledger_whose_server_does_not_come_back_says_so(
    postgres: PostgresServer, place: PostgresUrl
) -> None:
    impatient = PostgresUrl(with_password(place).url, Sharing(reconnect_seconds=0.5))
    with openers.open_ledger(impatient) as ledger:
        ledger.start("e1", "S")
        ledger.claim("e1", "r@example.org", "<r>")
        postgres.stop("immediate")
        try:
            ledger.finish("e1", "r@example.org", "sent", "250 ok")
            with pytest.raises(DeliveryError) as lost:  # it does not hang
                ledger.flush()
        finally:
            postgres.resume()
    text = str(lost.value)
    assert text.startswith(
        f"the delivery ledger failed to record deliveries: {impatient.where}: the state database "
        "did not come back within 0.5 s ([state] reconnect_seconds)"
    )
    assert_hidden(text)
    with openers.open_ledger(place) as again:
        assert again.states("e1") == {"r@example.org": "in_flight"}


# --------------------------------------------------------------------------- locks


def test_one_sender_at_a_time_per_database(place: PostgresUrl) -> None:
    first = openers.open_lock(place, "live-send.lock")
    second = openers.open_lock(place, "live-send.lock")
    other = openers.open_lock(place, "schedule-send.lock")
    assert first.acquire()
    try:
        assert not second.acquire(wait=0.1)
        assert second.holder() == f"{os.getpid()} on {socket.gethostname()}"
        assert other.acquire()  # another name is another lock
        other.release()
    finally:
        first.release()
    assert second.acquire()
    second.release()
    assert second.holder() == "unknown"


def test_two_schedulers_claiming_one_slot_make_one_new_claim(place: PostgresUrl) -> None:
    stores = [openers.open_slots(place), openers.open_slots(place)]
    start = threading.Barrier(2)
    kinds: list[str] = []

    def claim(n: int) -> None:
        start.wait()
        kinds.append(stores[n].claim(_Slot(), NOW, in_grace=True, retry_failed=False).kind)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert sorted(kinds) == ["new", "resume"]


# --------------------------------------------------------------------------- passwords


def test_a_password_in_the_url_is_never_shown(place: PostgresUrl) -> None:
    secret = with_password(place)
    assert_hidden(str(secret))
    assert_hidden(repr(secret))
    with openers.open_ledger(secret) as ledger:
        ledger.start("e1", "S")
    assert_hidden(openers.migrate(secret).describe())


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://newsletter:{SECRET_IN_URL}@/state?host=/nonexistent",
        "postgresql://newsletter:s3cr%zzt-pass@/state?host=/nonexistent",  # libpq quotes it
        f"postgresql://newsletter@/state?host=/nonexistent&password={SECRET_IN_URL}",
    ],
)
def test_errors_about_a_url_do_not_show_its_password(url: str) -> None:
    for opener in (*OPENERS.values(), openers.migrate):
        with pytest.raises(NewsletterError) as failed:
            opener(PostgresUrl(url))
        text = str(failed.value)
        assert text.startswith("postgresql://newsletter")
        assert_hidden(text)
        assert "s3cr%zzt" not in text


def test_state_migrate_creates_then_finds_the_schema(place: PostgresUrl) -> None:
    secret = with_password(place)
    runner = CliRunner()
    first = runner.invoke(cli, ["state", "migrate"], env={ENV_STATE_URL: secret.url})
    assert first.exit_code == 0, first.output
    assert first.stdout == (  # the sample config's note goes to stderr
        f"{secret.where}: schema {migrations.LATEST} (tables created, or adopted as they were)\n"
    )
    again = runner.invoke(cli, ["state", "migrate"], env={ENV_STATE_URL: secret.url})
    assert again.output.endswith("already up to date\n")
    assert_hidden(first.output + again.output)


# --------------------------------------------------------------------------- a live send


def _project(tmp_path: Path, port: int, people: int) -> Path:
    project = tmp_path / "news"
    assert CliRunner().invoke(cli, ["init", str(project), "--now", SAMPLE_NOW]).exit_code == 0
    rows = ["email,name", *(f"reader{n}@example.org,Reader {n}" for n in range(people))]
    (project / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = project / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
    config.write_text(text.replace("[smtp]\n", smtp, 1), encoding="utf-8")
    return config


def test_a_live_send_keeps_its_state_in_the_database(tmp_path: Path, place: PostgresUrl) -> None:
    secret = with_password(place)
    environ = {ENV_STATE_URL: secret.url, "NEWSLETTER_SIGNING_KEY": "test-signing-key-0123"}
    runner = CliRunner()
    with SMTPServer() as server:
        config = str(_project(tmp_path, server.port, 6))
        send = ["send", "--config", config, "--now", SAMPLE_NOW, "--yes"]
        sent = runner.invoke(cli, send, env=environ)
        assert sent.exit_code == 0, sent.output
        assert len(server.per_recipient()) == 6
    status = runner.invoke(cli, ["status", "--config", config], env=environ)
    assert status.exit_code == 0, status.output
    assert status.output.splitlines()[1].split()[3] == "6"  # SENT
    assert not (tmp_path / "news" / ".newsletter" / "state.sqlite3").exists()
    assert query(place, "SELECT COUNT(*) FROM ledger_recipients WHERE state = 'sent'") == [(6,)]
    assert query(place, "SELECT state, sent FROM send_workers") == [("done", 6)]  # one sender
    assert_hidden(sent.output + status.output)


def test_a_database_of_schema_1_gains_the_recipient_count(place: PostgresUrl) -> None:
    with psycopg.connect(place.url, autocommit=True) as conn:  # what the first release made
        migrations.MIGRATIONS[0](conn)
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TEXT)")
        conn.execute("INSERT INTO schema_version VALUES (1, '2026-03-01T00:00:00.000000Z')")
        conn.execute(
            "INSERT INTO ledger_editions VALUES ('old', 'Sent before', "
            "'2026-03-04T12:30:00.000000Z')"
        )
    upgraded = openers.migrate(place)
    assert (upgraded.before, upgraded.after) == (1, migrations.LATEST)
    with openers.open_ledger(place) as ledger:
        old = ledger.edition("old")
        assert old is not None
        assert (old.subject, old.recipients, old.not_attempted) == ("Sent before", None, None)
        ledger.start("new", "Fresh", 4)
        assert [(e.id, e.recipients) for e in ledger.editions()] == [("new", 4), ("old", None)]
    assert query(place, "SELECT version FROM schema_version ORDER BY version") == [
        (n,) for n in range(1, migrations.LATEST + 1)
    ]


def test_a_bad_day_with_the_state_in_the_database(tmp_path: Path, place: PostgresUrl) -> None:
    secret = with_password(place)
    environ = {ENV_STATE_URL: secret.url, "NEWSLETTER_SIGNING_KEY": "test-signing-key-0123"}
    runner = CliRunner()
    with SMTPServer(faults=Faults(mail_reply="550 5.7.1 sender not allowed")) as server:
        config = str(_project(tmp_path, server.port, 3))

        def run(*args: str) -> Any:
            return runner.invoke(cli, [args[0], "--config", config, *args[1:]], env=environ)

        send = ("send", "--now", SAMPLE_NOW, "--yes")
        refused = run(*send)
        assert refused.exit_code == 1, refused.output
        assert query(place, "SELECT COUNT(*) FROM history_editions") == [(0,)]  # reached nobody
        (listed,) = json.loads(run("status", "--json").stdout)
        edition = listed["id"]
        assert listed["recipients"] == 3  # status adds up: the count is in the database
        assert sum(listed["counts"].values()) + listed["not_attempted"] == 3

        with openers.open_crew(secret) as crew:  # a sender on another host holds a lease
            sender = crew.join(edition, 30)
            busy = run("status", edition, "--abandon")
            crew.leave(sender, "stopped", "resend", {})
        assert busy.exit_code == 1
        assert f"is being sent by 1 sender(s) (pid {os.getpid()} on {socket.gethostname()})" in (
            busy.output
        )
        abandoned = run("status", edition, "--abandon")
        assert abandoned.exit_code == 0, abandoned.output
        assert "No message went out" in abandoned.output
        assert query(place, f"SELECT status FROM archive_editions WHERE id = '{edition}'") == [  # noqa: S608
            ("abandoned",)
        ]

        server.faults.mail_reply = ""
        sent = run(*send)
        assert sent.exit_code == 0, sent.output
        assert len(server.per_recipient()) == 3
        soon = run(*send)  # the last finished edition is in the database
        assert soon.exit_code == 3, soon.output
        assert "min_interval_hours = 12" in soon.output
    assert query(place, "SELECT COUNT(*) FROM history_editions") == [(1,)]
    assert not (tmp_path / "news" / ".newsletter" / "state.sqlite3").exists()
    assert_hidden(refused.output + busy.output + abandoned.output + sent.output + soon.output)
