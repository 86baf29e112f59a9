"""The delivery ledger: states per recipient, durable claims, batched outcomes, summaries.

Most tests run on every state backend (``state``); those that look inside the SQLite
file, or kill a writer, use ``SQLITE``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from state_backends import SQLITE, StateBackend

from newsletter.errors import DeliveryError
from newsletter.state.api import STATES, EditionStatus

ROOT = Path(__file__).resolve().parent.parent


def peek(state: StateBackend, db: Path, edition: str = "e1") -> dict[str, str]:
    """Read states through a separate connection, as another process would."""
    return state.peek_states(db, edition)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "nested" / "state.sqlite3"


def test_creates_the_folder_and_uses_wal(db: Path) -> None:
    with SQLITE.open_ledger(db) as ledger:
        ledger.start("e1", "Morning")
    assert db.is_file()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert {"ledger_editions", "ledger_recipients"} <= tables
    # One schema for the file: every name belongs to a tenant, or is the schema's version.
    tenants = ("history_", "archive_", "ledger_", "schedule_", "schema_version", "sqlite_")
    tenants += ("suppressions", "state_sequences", "members", "bounce_events")
    assert all(name.startswith(tenants) for name in tables)


def test_start_is_idempotent_and_fills_a_blank_subject(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "")
        ledger.start("e1", "Tuesday's digest")
        ledger.start("e1", "Another subject")
        ledger.start("e2", "Second")
        editions = {e.id: e for e in ledger.editions()}
    assert set(editions) == {"e1", "e2"}
    assert editions["e1"].subject == "Tuesday's digest"


def test_claim_is_visible_to_other_connections_at_once(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "S")
        ledger.claim("e1", "Ana@Example.org", "<1@x>")
        assert peek(state, db) == {"ana@example.org": "in_flight"}


def _eventually(
    state: StateBackend, db: Path, wanted: dict[str, str], seconds: float = 5.0
) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if peek(state, db) == wanted:
            return True
        time.sleep(0.005)
    return False


def test_finish_is_committed_in_the_background(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "S")
        ledger.claim("e1", "a@example.org", "<1@x>")
        ledger.finish("e1", "a@example.org", "sent", "250 ok")
        # Nobody claims or flushes: the committer makes it durable on its own.
        assert _eventually(state, db, {"a@example.org": "sent"})
        ledger.finish("e1", "b@example.org", "failed", "550 no such user")
        ledger.flush()
        assert peek(state, db)["b@example.org"] == "failed"


def test_a_queued_claim_is_durable_once_settled(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "S")
        first = ledger.claim("e1", "a@example.org", "<1@x>", wait=False)
        second = ledger.claim("e1", "b@example.org", "<2@x>", wait=False)
        assert second > first
        ledger.settle(second)
        assert peek(state, db) == {"a@example.org": "in_flight", "b@example.org": "in_flight"}
        ledger.settle(first)  # already durable: returns at once


def test_writes_after_close_are_refused(state: StateBackend, db: Path) -> None:
    ledger = state.open_ledger(db)
    ledger.finish("e1", "a@example.org", "sent", "250 ok")
    ledger.close()
    with pytest.raises(DeliveryError, match="closed"):
        ledger.finish("e1", "b@example.org", "sent", "250 ok")
    with state.open_ledger(db) as again:
        assert again.states("e1") == {"a@example.org": "sent"}


def test_close_commits_pending_outcomes(state: StateBackend, db: Path) -> None:
    ledger = state.open_ledger(db)
    ledger.start("e1", "S")
    ledger.claim("e1", "a@example.org", "<1@x>")
    ledger.finish("e1", "a@example.org", "deferred", "451 later")
    ledger.close()
    ledger.close()
    with state.open_ledger(db) as again:
        assert again.states("e1") == {"a@example.org": "deferred"}
        assert again.failures("e1") == [("a@example.org", "deferred", "451 later")]


def test_states_summary_failures(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "S")
        outcomes = {
            "a@example.org": ("sent", "250 2.0.0 queued"),
            "b@example.org": ("failed", "550 5.1.1 unknown user"),
            "c@example.org": ("deferred", "451 4.7.1 greylisted"),
        }
        for email, (state, reply) in outcomes.items():
            ledger.claim("e1", email, f"<{email}>")
            ledger.finish("e1", email, state, reply)
        ledger.claim("e1", "D@example.org", "<d>")
        ledger.claim("e2", "a@example.org", "<other edition>")
        assert ledger.states("e1") == {
            "a@example.org": "sent",
            "b@example.org": "failed",
            "c@example.org": "deferred",
            "d@example.org": "in_flight",
        }
        summary = ledger.summary("e1")
        assert set(summary) == set(STATES)
        assert summary == {"pending": 0, "in_flight": 1, "sent": 1, "failed": 1, "deferred": 1}
        assert ledger.failures("e1") == [
            ("c@example.org", "deferred", "451 4.7.1 greylisted"),
            ("b@example.org", "failed", "550 5.1.1 unknown user"),
            ("d@example.org", "in_flight", ""),
        ]
        assert ledger.summary("unknown") == dict.fromkeys(STATES, 0)


def test_claim_counts_attempts_and_keeps_the_message_id(db: Path) -> None:
    with SQLITE.open_ledger(db) as ledger:
        for n in range(3):
            ledger.claim("e1", "a@example.org", f"<{n}@x>")
            ledger.finish("e1", "a@example.org", "deferred", f"451 try {n}")
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT attempts, message_id, reply FROM ledger_recipients").fetchone()
    finally:
        conn.close()
    assert row == (3, "<2@x>", "451 try 2")


def test_finish_rejects_states_that_are_not_outcomes(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger, pytest.raises(ValueError, match="in_flight"):
        ledger.finish("e1", "a@example.org", "in_flight", "")


def test_long_replies_are_cut(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.finish("e1", "a@example.org", "failed", "550 " + "x" * 10_000)
        ((_, _, reply),) = ledger.failures("e1")
    assert reply.startswith("550 x")
    assert len(reply) <= 2000


def test_editions_newest_first_with_counts_and_plain_data(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("older", "Monday")
        time.sleep(0.01)
        ledger.start("newer", "Tuesday")
        ledger.claim("newer", "a@example.org", "<1>")
        ledger.finish("newer", "a@example.org", "sent", "250")
        ledger.claim("newer", "b@example.org", "<2>")
        editions = ledger.editions()
    assert [e.id for e in editions] == ["newer", "older"]
    newer = editions[0]
    assert isinstance(newer, EditionStatus)
    assert newer.counts["sent"] == 1
    assert newer.counts["in_flight"] == 1
    assert newer.total == 2
    assert newer.needs_attention == 1
    assert editions[1].total == 0
    assert newer.started.tzinfo is not None
    # The status command prints these as JSON.
    json.dumps([dataclasses.asdict(e) for e in editions], default=str)


def test_threads_share_one_ledger(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "S")

        def work(worker: int) -> None:
            for n in range(150):
                email = f"w{worker}-{n}@example.org"
                ledger.claim("e1", email, f"<{worker}.{n}>")
                ledger.finish("e1", email, "sent" if n % 3 else "deferred", "250")

        threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        summary = ledger.summary("e1")
    assert summary["sent"] == 600
    assert summary["deferred"] == 300
    assert summary["in_flight"] == 0


def test_states_of_a_large_edition_are_quick(db: Path) -> None:
    with SQLITE.open_ledger(db) as ledger:
        ledger.finish("big", "first@example.org", "sent", "250 ok")
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO ledger_recipients (edition_id, email, state, updated) "
            "VALUES ('big', ?, 'sent', '2026-01-01T00:00:00+00:00')",
            ((f"reader{n}@example.org",) for n in range(1, 100_000)),
        )
    conn.close()
    with SQLITE.open_ledger(db) as ledger:
        began = time.perf_counter()
        states = ledger.states("big")
        elapsed = time.perf_counter() - began
    assert len(states) == 100_000
    assert states["reader99999@example.org"] == states["first@example.org"] == "sent"
    assert elapsed < 2.0


def test_an_unusable_state_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DeliveryError, match="state folder") as info:
        SQLITE.open_ledger(blocker / "state.sqlite3")
    assert str(blocker) in str(info.value)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "state.sqlite3"
    bad.write_bytes(b"this is not a database, just text that happens to be here" * 20)
    with pytest.raises(DeliveryError, match=r"state\.sqlite3"):
        SQLITE.open_ledger(bad)


KILLED_WRITER = r"""
import sys
from pathlib import Path
from newsletter.state.openers import open_ledger
ledger = open_ledger(Path(sys.argv[1]))
ledger.start("e1", "S")
n = 0
while True:
    email = f"r{n}@example.org"
    ledger.claim("e1", email, f"<{n}>")
    print(n, flush=True)
    ledger.finish("e1", email, "sent", "250")
    n += 1
"""


@pytest.mark.slow
def test_a_killed_writer_leaves_a_consistent_file(db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(db)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert child.stdout is not None
    claimed = -1
    for line in child.stdout:
        claimed = int(line)
        if claimed >= 300:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    with SQLITE.open_ledger(db) as ledger:
        states = ledger.states("e1")
    # Every claim announced before the kill is durable; nobody is ahead of their claim.
    assert all(f"r{n}@example.org" in states for n in range(claimed + 1))
    in_flight = [e for e, s in states.items() if s == "in_flight"]
    assert len(in_flight) == 1
    assert set(states.values()) <= {"sent", "in_flight"}


def test_start_records_how_many_the_send_sets_out_to_reach(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "Morning", 3)
        ledger.claim("e1", "a@example.org", "<1>")
        ledger.finish("e1", "a@example.org", "sent", "250")
        ledger.start("e1", "")  # the pool's own start keeps the count
        status = ledger.edition("e1")
        assert status is not None
        assert (status.recipients, status.total, status.not_attempted) == (3, 1, 2)
        ledger.start("e1", "Morning", 5)  # a resume against a longer list: the new count
        assert [e.recipients for e in ledger.editions()] == [5]
        assert ledger.edition("nope") is None
        ledger.start("old", "Sent by an earlier release")
        old = ledger.edition("old")
        assert old is not None
        assert (old.recipients, old.not_attempted) == (None, None)


def test_a_recipient_written_twice_in_one_group_lands_as_two_writes(
    state: StateBackend, db: Path
) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "S")
        ledger.claim("e1", "a@example.org", "<1@x>", wait=False)
        ledger.claim("e1", "b@example.org", "<2@x>", wait=False)
        ledger.claim("e1", "A@example.org", "<3@x>", wait=False)  # the same recipient again
        ledger.finish("e1", "b@example.org", "deferred", "451 later")
        ledger.finish("e1", "b@example.org", "failed", "550 gone")
        ledger.finish("e1", "a@example.org", "deferred", "452 full")
        ledger.flush()
        assert peek(state, db) == {"a@example.org": "deferred", "b@example.org": "failed"}
        assert sorted(ledger.failures("e1")) == [
            ("a@example.org", "deferred", "452 full"),
            ("b@example.org", "failed", "550 gone"),
        ]


def test_interleaved_claims_and_outcomes_land_in_the_order_queued(
    state: StateBackend, db: Path
) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "S")
        for n in range(6):  # a pool's traffic: the next claim, then the last outcome
            ledger.claim("e1", f"r{n}@example.org", f"<{n}@x>", wait=False)
            if n:
                ledger.finish("e1", f"r{n - 1}@example.org", "sent", "250 ok")
        ledger.finish("e1", "r5@example.org", "deferred", "451 later")
        ledger.claim("e1", "R5@example.org", "<6@x>", wait=False)  # tried again at once
        ledger.finish("e1", "r0@example.org", "failed", "550 a late bounce")
        ledger.flush()
        assert peek(state, db) == {
            **{f"r{n}@example.org": "sent" for n in range(1, 5)},
            "r0@example.org": "failed",
            "r5@example.org": "in_flight",
        }
        assert ledger.failures("e1") == [
            ("r0@example.org", "failed", "550 a late bounce"),
            ("r5@example.org", "in_flight", ""),
        ]
