"""The one send path (``send_edition``): build or resume, the gate, the ledger.

Real parts: the bundled sample publication, a real SQLite state folder and a real
SMTP server on 127.0.0.1. Entry-point tests through the CLI are in test_send_gate.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dkim_verifier import make_keys, settings_for
from smtp_server import SMTPServer

from newsletter.audience import Audience
from newsletter.bookkeeping import TooSoon, check_spacing, unfinished_edition
from newsletter.clock import now_utc
from newsletter.config.load import load_settings
from newsletter.config.settings import SendRules, Settings
from newsletter.delivery import signing as signing_module
from newsletter.dkim.processes import SigningProcesses
from newsletter.errors import DeliveryError, NewsletterError, NothingToSend
from newsletter.locks import FileLock
from newsletter.pipeline import BuildOptions, build_edition
from newsletter.sends.abandon import abandon_edition
from newsletter.sends.edition import send_edition
from newsletter.sends.locks import SEND_LOCK
from newsletter.sends.plan import DryRun, Prepared, Resume, SendHooks, SendPlan

NOW = datetime.fromisoformat("2026-03-04T18:00:00+05:30")
LATER = NOW + timedelta(hours=5)
PEOPLE = 12


@pytest.fixture
def server() -> Iterator[SMTPServer]:
    with SMTPServer() as running:
        yield running


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SMTPServer) -> Settings:
    """The sample publication with its state in tmp_path, sending to the test server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SIGNING_KEY", "pipeline-test-signing-key-0123456789")
    base = load_settings(None)
    people = tmp_path / "people.csv"
    rows = [f"reader{n:02d}@example.org,Reader {n}" for n in range(PEOPLE)]
    people.write_text("email,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    paths = dataclasses.replace(base.paths, subscribers=people, state_dir=tmp_path / "state")
    smtp = dataclasses.replace(
        base.smtp, host="127.0.0.1", port=server.port, security="none", pool=1
    )
    return dataclasses.replace(base, paths=paths, smtp=smtp)


def plan(settings: Settings, **changes: object) -> SendPlan:
    audience = Audience(subscribers_path=settings.paths.subscribers)
    return dataclasses.replace(SendPlan(audience, BuildOptions(now=NOW)), **changes)  # type: ignore[arg-type]


def interrupt_after(count: int) -> SendHooks:
    """Hooks that stop a live send once ``count`` recipients are done."""
    stop = threading.Event()
    done: list[str] = []

    def progress(email: str, _state: str) -> None:
        done.append(email)
        if len(done) >= count:
            stop.set()

    return SendHooks(progress=progress, stop=stop)


def test_a_live_send_reaches_everyone_once_and_records_the_edition(
    settings: Settings, server: SMTPServer
) -> None:
    report = send_edition(settings, plan(settings))
    assert report.complete
    assert report.summary is not None
    assert report.summary.sent == PEOPLE
    assert set(server.per_recipient().values()) == {1}
    assert unfinished_edition(settings) is None
    again = send_edition(settings, plan(settings))
    assert not again.prepared.resumed
    assert not ids(report.prepared.selection) & ids(again.prepared.selection)


def test_a_stopped_signed_send_leaves_no_signing_process_behind(
    settings: Settings, server: SMTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[SigningProcesses] = []

    class Recorded(SigningProcesses):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(signing_module, "SigningProcesses", Recorded)
    (tmp_path / "keys").mkdir()
    keys = make_keys(tmp_path / "keys")
    signed = dataclasses.replace(settings, dkim=settings_for(keys["ed25519"], selector="ed2026"))
    report = send_edition(signed, plan(signed), interrupt_after(3))
    assert report.stopped
    assert len(started) == 1
    for pid in started[0].pids:  # closed and reaped when the send returned
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def ids(selection: dict[str, Any]) -> set[str]:
    items = [selection["lead"], *selection["trending"], *selection["opinion"]]
    return {item["id"] for item in items}


def test_an_interrupted_send_is_resumed_as_the_same_edition(
    settings: Settings, server: SMTPServer
) -> None:
    first = send_edition(settings, plan(settings), interrupt_after(3))
    assert first.stopped
    assert not first.complete
    edition = first.prepared.edition.id
    found = unfinished_edition(settings)
    assert found is not None
    assert found[0].id == edition
    later = plan(settings, build=BuildOptions(now=LATER))
    second = send_edition(settings, later)
    assert second.prepared.resumed
    assert second.prepared.edition.id == edition
    assert second.complete
    assert len(server.per_recipient()) == PEOPLE
    assert max(server.per_recipient().values()) <= 2  # only the one in flight may repeat


def test_a_test_copy_never_resumes_and_never_counts_as_the_edition(
    settings: Settings, server: SMTPServer
) -> None:
    send_edition(settings, plan(settings), interrupt_after(2))
    interrupted = unfinished_edition(settings)
    assert interrupted is not None
    to = Audience(subscribers_path=settings.paths.subscribers, to="me@example.org")
    copy = send_edition(settings, plan(settings, audience=to, resume=None))
    assert not copy.prepared.resumed
    assert server.count_for("me@example.org") == 1
    assert unfinished_edition(settings) == interrupted


def test_a_slot_resumes_only_its_own_or_a_fresh_edition(
    settings: Settings, server: SMTPServer
) -> None:
    send_edition(settings, plan(settings), interrupt_after(2))
    found = unfinished_edition(settings)
    assert found is not None
    edition = found[0]
    warnings: list[str] = []
    too_new = Resume(not_before=edition.created + timedelta(hours=1))
    other = send_edition(settings, plan(settings, resume=too_new), SendHooks(warn=warnings.append))
    assert not other.prepared.resumed
    assert other.prepared.edition.id != edition.id
    assert any("older than the max age" in w for w in warnings)
    own = Resume(edition_id=edition.id, not_before=edition.created + timedelta(hours=1))
    resumed = send_edition(settings, plan(settings, resume=own))
    assert resumed.prepared.resumed
    assert resumed.prepared.edition.id == edition.id


def test_declining_at_the_last_word_sends_nothing_and_stores_nothing(
    settings: Settings, server: SMTPServer
) -> None:
    def decline(_prepared: Prepared) -> None:
        raise NewsletterError("not now")

    with pytest.raises(NewsletterError, match="not now"):
        send_edition(settings, plan(settings), SendHooks(ready=decline))
    assert server.messages() == []
    assert unfinished_edition(settings) is None
    assert send_edition(settings, plan(settings)).summary is not None  # history untouched


def test_a_dry_run_writes_files_and_records_nothing(
    settings: Settings, server: SMTPServer, tmp_path: Path
) -> None:
    dry = DryRun(outbox=tmp_path / "outbox")
    report = send_edition(settings, plan(settings, dry_run=dry, resume=None))
    assert report.written is not None
    assert report.written.written == PEOPLE
    assert server.messages() == []
    live = send_edition(settings, plan(settings))  # the dry run recorded no history
    assert live.prepared.edition.id == report.prepared.edition.id


def test_a_live_send_needs_a_signing_key(settings: Settings, server: SMTPServer) -> None:
    unsigned = dataclasses.replace(settings, signing_key=b"")
    with pytest.raises(NewsletterError, match="NEWSLETTER_SIGNING_KEY"):
        send_edition(unsigned, plan(unsigned))
    assert server.messages() == []


def test_a_schedule_max_age_narrows_the_lookback(settings: Settings) -> None:
    fresh = build_edition(settings, BuildOptions(now=NOW, max_age=timedelta(hours=24)))
    assert fresh.edition.digest.lead is not None
    with pytest.raises(NothingToSend, match="lookback"):  # the lookback shrinks to the max age
        build_edition(settings, BuildOptions(now=NOW, max_age=timedelta(minutes=5)))


def test_a_time_without_offset_is_in_the_publication_zone(settings: Settings) -> None:
    naive = NOW.astimezone(settings.publication.timezone).replace(tzinfo=None)
    assert build_edition(settings, BuildOptions(now=naive)).edition.id == (
        build_edition(settings, BuildOptions(now=NOW)).edition.id
    )


def test_a_send_that_reached_nobody_counts_no_article(
    settings: Settings, server: SMTPServer
) -> None:
    built = build_edition(settings, BuildOptions(now=NOW))
    server.faults.mail_reply = "550 5.7.1 sender refused"
    report = send_edition(settings, plan(settings))
    assert report.summary is not None
    assert report.summary.paused
    assert server.messages() == []
    assert build_edition(settings, BuildOptions(now=NOW)).selection == built.selection
    server.faults.mail_reply = ""
    resumed = send_edition(settings, plan(settings))
    assert resumed.prepared.resumed
    assert resumed.complete
    after = build_edition(settings, BuildOptions(now=NOW))  # now they went out
    assert not ids(after.selection) & ids(built.selection)


def test_a_spaced_plan_refuses_a_new_edition_but_resumes_an_unfinished_one(
    settings: Settings, server: SMTPServer
) -> None:
    spaced = plan(settings, spaced=True)
    first = send_edition(settings, spaced)
    assert first.complete
    with pytest.raises(TooSoon, match=first.prepared.edition.id):
        send_edition(settings, spaced)
    assert len(server.messages()) == PEOPLE
    interrupted = send_edition(settings, plan(settings), interrupt_after(2))  # as --allow-early
    assert interrupted.stopped
    resumed = send_edition(settings, spaced)  # resuming is never refused
    assert resumed.prepared.resumed
    assert resumed.prepared.edition.id == interrupted.prepared.edition.id
    copy = Audience(subscribers_path=settings.paths.subscribers, to="me@example.org")
    assert send_edition(settings, plan(settings, audience=copy, resume=None, spaced=True)).complete


def test_the_interval_runs_from_when_the_last_edition_finished(settings: Settings) -> None:
    report = send_edition(settings, plan(settings))
    assert report.complete
    finished = now_utc()
    with pytest.raises(TooSoon, match="min_interval_hours = 12"):
        check_spacing(settings, finished + timedelta(hours=11))
    check_spacing(settings, finished + timedelta(hours=12, seconds=1))
    off = dataclasses.replace(settings, send=SendRules(min_interval_hours=0))
    check_spacing(off, finished)


def test_build_warnings_reach_the_hook_before_nothing_new(settings: Settings) -> None:
    warnings: list[str] = []
    later = plan(settings, build=BuildOptions(now=NOW + timedelta(days=300)))
    with pytest.raises(NothingToSend) as nothing:
        send_edition(settings, later, SendHooks(warn=warnings.append))
    assert warnings  # a schedule logs these before its "skipped" line
    assert nothing.value.warnings == ()  # already told: the command line does not repeat them


def test_an_edition_is_not_abandoned_while_a_send_runs(
    settings: Settings, server: SMTPServer
) -> None:
    interrupted = send_edition(settings, plan(settings), interrupt_after(2))
    edition = interrupted.prepared.edition.id
    lock = FileLock(settings.paths.state_dir / SEND_LOCK)
    assert lock.acquire()
    try:
        with pytest.raises(DeliveryError, match="cannot be given up while it is being sent"):
            abandon_edition(settings, edition)
    finally:
        lock.release()
    done = abandon_edition(settings, edition)
    assert done.reached >= 2
    assert unfinished_edition(settings) is None
