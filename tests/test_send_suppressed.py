"""A send already under way honours a suppression made while it goes.

Real parts: a slow SMTP server on 127.0.0.1 (each message's end of data answered after
a delay), the state in a real SQLite file or on the session's PostgreSQL server, and a
second thread that suppresses addresses through its own ``open_suppressions``, as the
unsubscribe page or the bounce reader would while a send is running.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from smtp_server import Faults, SMTPServer
from state_backends import schema_for

from newsletter.audience import Audience
from newsletter.cli.main import cli
from newsletter.config.load import load_settings
from newsletter.config.settings import Settings
from newsletter.config.state import ENV_STATE_URL
from newsletter.pipeline import BuildOptions
from newsletter.sends.edition import send_edition
from newsletter.sends.plan import SendPlan
from newsletter.state.openers import open_ledger, open_suppressions
from newsletter.state.watch import SuppressionWatch

NOW = datetime.fromisoformat("2026-03-04T18:00:00+05:30")
PEOPLE = 14
LATE = ("reader11@example.org", "Reader12@Example.ORG")  # suppressed mid-send
DELAY = 0.12  # seconds the server takes over each message


@pytest.fixture
def server() -> Iterator[SMTPServer]:
    with SMTPServer(faults=Faults(data_delay=DELAY)) as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: SMTPServer,
) -> Settings:
    """The sample publication sending to the slow server, its state on each backend."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SIGNING_KEY", "suppressed-test-signing-key-0123456789")
    base = load_settings(None)
    people = tmp_path / "people.csv"
    rows = [f"reader{n:02d}@example.org,Reader {n}" for n in range(PEOPLE)]
    people.write_text("email,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    state: dict[str, object] = {}  # SQLite: ./.newsletter, where 'status' looks
    if request.param == "postgresql":
        state["state_url"] = request.getfixturevalue("postgres").new_schema(schema_for(tmp_path))
    paths = dataclasses.replace(base.paths, subscribers=people, **state)  # type: ignore[arg-type]
    smtp = dataclasses.replace(
        base.smtp, host="127.0.0.1", port=server.port, security="none", pool=2
    )
    return dataclasses.replace(base, paths=paths, smtp=smtp)


def suppress_when(server: SMTPServer, settings: Settings, received: int) -> threading.Thread:
    """Suppress ``LATE`` from another thread once the server has ``received`` messages."""

    def work() -> None:
        server.wait_for(lambda: len(server.messages()) >= received, timeout=30)
        with open_suppressions(settings.paths.state) as suppressions:
            for address in LATE:
                suppressions.add(address, "unsubscribe", "one-click", edition_id="mid-send")

    thread = threading.Thread(target=work, name="unsubscriber")
    thread.start()
    return thread


@pytest.mark.parametrize("policy", ["resend", "hold"])
def test_an_unsubscribe_during_a_send_stops_that_message(
    settings: Settings, server: SMTPServer, policy: str
) -> None:
    settings = dataclasses.replace(
        settings, smtp=dataclasses.replace(settings.smtp, in_flight=policy)
    )
    audience = Audience(subscribers_path=settings.paths.subscribers)
    unsubscriber = suppress_when(server, settings, received=3)
    report = send_edition(settings, SendPlan(audience, BuildOptions(now=NOW)))
    unsubscriber.join()

    late = {address.casefold() for address in LATE}
    counts = server.per_recipient()
    assert not late & set(counts)  # the server never saw their messages
    everyone = [f"reader{n:02d}@example.org" for n in range(PEOPLE)]
    assert counts == {address: 1 for address in everyone if address not in late}
    assert report.summary is not None
    assert (report.summary.sent, report.summary.suppressed) == (PEOPLE - 2, 2)
    assert report.suppressed == 2
    assert report.complete
    edition = report.prepared.edition.id
    with open_ledger(settings.paths.state) as ledger:
        failures = ledger.failures(edition)
        assert sorted(failures) == [(a, "failed", "suppressed: unsubscribe") for a in sorted(late)]
        assert ledger.summary(edition)["sent"] == PEOPLE - 2


def test_status_shows_who_was_left_out_and_why(settings: Settings, server: SMTPServer) -> None:
    audience = Audience(subscribers_path=settings.paths.subscribers)
    unsubscriber = suppress_when(server, settings, received=2)
    report = send_edition(settings, SendPlan(audience, BuildOptions(now=NOW)))
    unsubscriber.join()
    edition = report.prepared.edition.id
    url = settings.paths.state_url
    shown = CliRunner().invoke(cli, ["status", edition], env={ENV_STATE_URL: url} if url else {})
    assert shown.exit_code == 0, shown.output
    for address in LATE:
        line = next(x for x in shown.output.splitlines() if address.casefold() in x)
        assert "suppressed: unsubscribe" in line


# --------------------------------------------------------------------------- the watch


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_watch_learns_of_new_suppressions_once_its_view_is_stale(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    clock = Clock()
    with open_suppressions(db) as store, open_suppressions(db) as other:
        store.add("old@example.org", "bounce", "bounces")
        watch = SuppressionWatch(store, fresh_for=0.15, clock=clock)
        assert "old@example.org" in watch
        assert watch.reason("OLD@example.org") == "bounce"
        other.add("new@example.org", "complaint", "bounces")
        clock.now = 0.1
        assert "new@example.org" not in watch  # the view is trusted a moment
        clock.now = 0.2
        assert "new@example.org" in watch
        other.remove("old@example.org")  # lifted: mailed again
        assert watch.reason("old@example.org") is None
        assert len(watch) == 1
        assert watch.reason("nobody@example.org") is None


def test_the_watch_is_asked_from_many_threads_at_once(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    errors: list[BaseException] = []
    with open_suppressions(db) as store, open_suppressions(db) as other:
        watch = SuppressionWatch(store, fresh_for=0.0)
        stop = threading.Event()

        def ask() -> None:
            try:
                while not stop.is_set():
                    watch.reason("someone@example.org")
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for n in range(50):
            other.add(f"t{n}@example.org", "manual", "cli")
        other.add("someone@example.org", "manual", "cli")
        time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()
        assert not errors
        assert watch.reason("someone@example.org") == "manual"
        assert len(watch) == 51
