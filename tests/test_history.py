"""The sent-articles history, on every state backend (and in a real SQLite file)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from state_backends import SQLITE, StateBackend

from newsletter.errors import NewsletterError

DAY = timedelta(days=1)
START = datetime(2026, 3, 1, 6, tzinfo=UTC)


def test_new_database_is_empty_and_created_with_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nested" / "state.sqlite3"
    with SQLITE.open_history(path) as history:
        assert history.last_edition() is None
        assert history.recent_article_ids(7) == frozenset()
    assert path.is_file()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    # The file has one schema: the history's tables, and every other tenant's.
    assert tables == {
        "history_editions",
        "history_articles",
        "archive_editions",
        "ledger_editions",
        "ledger_recipients",
        "schedule_slots",
        "suppressions",
        "state_sequences",
        "members",
        "bounce_events",
        "schema_version",
    }


def test_recent_ids_across_editions_and_reopen(state: StateBackend, tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with state.open_history(path) as history:
        history.record("2026-03-01", START, ["a", "b"])
        history.record("2026-03-02", START + DAY, ["c", "b"])
    with state.open_history(path) as history:  # a later run sees what earlier runs recorded
        assert history.last_edition() == "2026-03-02"
        assert history.recent_article_ids(1) == {"c", "b"}
        assert history.recent_article_ids(2) == {"a", "b", "c"}
        assert history.recent_article_ids(0) == frozenset()
        history.record("2026-03-03", START + 2 * DAY, ["d"])
        assert history.recent_article_ids(2) == {"b", "c", "d"}


def test_record_is_idempotent_and_replaces(state: StateBackend, tmp_path: Path) -> None:
    with state.open_history(tmp_path / "s.db") as history:
        history.record("e1", START, ["a", "a", "b"])
        history.record("e1", START, ["a", "a", "b"])
        assert history.recent_article_ids(5) == {"a", "b"}
        history.record("e1", START, ["z"])
        assert history.recent_article_ids(5) == {"z"}
        assert history.last_edition() == "e1"


def test_order_is_by_creation_time_in_utc(state: StateBackend, tmp_path: Path) -> None:
    tokyo = timezone(timedelta(hours=9))
    new_york = timezone(timedelta(hours=-5))
    with state.open_history(tmp_path / "s.db") as history:
        history.record("later", datetime(2026, 3, 4, 5, tzinfo=new_york), ["n"])  # 10:00Z
        history.record("earlier", datetime(2026, 3, 4, 18, tzinfo=tokyo), ["t"])  # 09:00Z
        assert history.last_edition() == "later"
        assert history.recent_article_ids(1) == {"n"}
        with pytest.raises(ValueError, match="timezone-aware"):
            history.record("naive", datetime(2026, 3, 4), ["x"])


def test_other_tables_in_the_same_file_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE ledger_messages (id TEXT)")
        db.execute("INSERT INTO ledger_messages VALUES ('m1')")
    with SQLITE.open_history(path) as history:
        history.record("e", START, ["a"])
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id FROM ledger_messages").fetchall() == [("m1",)]


def test_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(NewsletterError, match=r"state\.sqlite3: cannot use the state database"):
        SQLITE.open_history(path)


def test_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with SQLITE.open_history(path) as history:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        other.execute("CREATE TABLE ledger_lock (x INTEGER)")
        timer = threading.Timer(0.3, other.execute, args=("COMMIT",))
        timer.start()
        try:
            history.record("e", START, ["a"])  # blocks until the other writer commits
        finally:
            timer.join()
            other.close()
        assert history.recent_article_ids(1) == {"a"}
