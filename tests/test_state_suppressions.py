"""The suppression list and the subscribers the tool holds, on every state backend.

Each test runs on SQLite and on PostgreSQL (the ``state`` fixture). What only one
backend has (SQLite's migration from the previous release, PostgreSQL's window behind
the cursor) is tested on that backend.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_server import PostgresServer
from state_backends import SQLITE, StateBackend, schema_for

from newsletter.config.state import PostgresUrl
from newsletter.state import openers
from newsletter.state.lists import Member, Suppression, SuppressionRequest
from newsletter.state.postgres import suppressions as postgres_suppressions
from newsletter.state.sqlite import migrations

AT = datetime(2026, 3, 5, 12, 0, 30, tzinfo=UTC)
STAMP = "2026-03-05T12:00:30.000000Z"


# --------------------------------------------------------------------------- suppressions


def test_a_suppression_is_kept_once_with_its_first_record(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_suppressions(db) as suppressions:
        assert suppressions.count() == 0
        assert suppressions.get("ana@example.org") is None
        assert suppressions.add(
            " Ana@Example.org ", "unsubscribe", "one-click", edition_id="e1", at=AT
        )
        assert not suppressions.add("ana@example.ORG", "complaint", "bounces", detail="abuse")
        assert suppressions.count() == 1
        first = Suppression("Ana@Example.org", "unsubscribe", "one-click", STAMP, "e1", "")
        assert suppressions.get("ANA@example.org") == first
        assert suppressions.all() == [first]


def test_several_suppressions_are_written_together_each_answered_as_add_would(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_suppressions(db) as suppressions:
        suppressions.add("old@example.org", "bounce", "bounces", at=AT)
        cursor, _ = suppressions.changes(0)
        added = suppressions.add_many(
            [
                SuppressionRequest("new@example.org", "unsubscribe", "one-click"),
                SuppressionRequest("OLD@example.org", "unsubscribe", "one-click"),
                SuppressionRequest("New@Example.org", "unsubscribe", "web"),
                SuppressionRequest("two@example.org", "complaint", "bounces", "e2", "abuse"),
            ],
            at=AT,
        )
        assert added == [True, False, False, True]
        assert suppressions.count() == 3
        assert suppressions.get("old@example.org") == Suppression(
            "old@example.org", "bounce", "bounces", STAMP
        )
        assert suppressions.get("two@example.org") == Suppression(
            "two@example.org", "complaint", "bounces", STAMP, "e2", "abuse"
        )
        _, news = suppressions.changes(cursor)
        assert {"new@example.org", "two@example.org"} <= news
        assert suppressions.add_many([]) == []


def test_a_group_with_a_bad_reason_writes_nothing(state: StateBackend, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_suppressions(db) as suppressions:
        with pytest.raises(ValueError, match="reason"):
            suppressions.add_many(
                [
                    SuppressionRequest("a@example.org", "unsubscribe", "web"),
                    SuppressionRequest("b@example.org", "gone", "web"),
                ]
            )
        assert suppressions.count() == 0


def test_an_internationalized_domain_is_one_reader_in_either_form(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_suppressions(db) as suppressions:
        assert suppressions.add("Ana@Bücher.example", "unsubscribe", "one-click", at=AT)
        assert not suppressions.add("ana@xn--bcher-kva.example", "bounce", "bounces")
        assert suppressions.among(["ANA@xn--bcher-kva.example", "ana@bücher.example"]) == {
            "ana@xn--bcher-kva.example"
        }
        _, keys = suppressions.changes(0)
        assert keys == {"ana@xn--bcher-kva.example"}  # as a send names its recipient


def test_the_list_answers_which_addresses_are_suppressed(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_suppressions(db) as suppressions:
        suppressions.add("bo@example.org", "bounce", "bounces", detail="5.1.1", at=AT)
        suppressions.add("cy@example.org", "manual", "cli", at=AT - timedelta(days=1))
        many = [f"reader{n}@example.org" for n in range(1200)]  # more than one batch
        assert suppressions.among([*many, "BO@example.org", "cy@example.org"]) == {
            "bo@example.org",
            "cy@example.org",
        }
        assert suppressions.among([]) == set()
        assert [s.email for s in suppressions.all()] == ["cy@example.org", "bo@example.org"]


def test_removing_lifts_a_suppression_and_says_what_it_was(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_suppressions(db) as suppressions:
        suppressions.add("ana@example.org", "complaint", "bounces", at=AT)
        removed = suppressions.remove("ANA@example.org")
        assert removed == Suppression("ana@example.org", "complaint", "bounces", STAMP)
        assert suppressions.remove("ana@example.org") is None
        assert suppressions.get("ana@example.org") is None
        assert suppressions.count() == 0
        assert suppressions.add("ana@example.org", "manual", "cli")  # may come back


def test_changes_tell_a_reader_what_is_new_and_a_readded_address_again(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_suppressions(db) as writer, state.open_suppressions(db) as reader:
        assert reader.changes(0) == (0, set())
        writer.add("ana@example.org", "unsubscribe", "web")
        writer.add("bo@example.org", "bounce", "bounces")
        cursor, keys = reader.changes(0)
        assert keys == {"ana@example.org", "bo@example.org"}
        again, seen = reader.changes(cursor)
        assert again == cursor
        assert seen <= keys  # a key may come back, never too late
        writer.add("Cy@example.org", "manual", "cli")
        cursor, keys = reader.changes(cursor)
        assert "cy@example.org" in keys
        # An address lifted and suppressed again is new again, wherever its number was.
        writer.remove("cy@example.org")
        writer.add("cy@example.org", "unsubscribe", "web")
        later, keys = reader.changes(cursor)
        assert later > cursor
        assert "cy@example.org" in keys


def test_a_reason_outside_the_list_is_refused(state: StateBackend, tmp_path: Path) -> None:
    with state.open_suppressions(tmp_path / "state.sqlite3") as suppressions:
        with pytest.raises(ValueError, match="'spam' is not one of unsubscribe, bounce"):
            suppressions.add("ana@example.org", "spam", "cli")
        assert suppressions.count() == 0


def test_threads_may_share_a_suppression_list(state: StateBackend, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    errors: list[BaseException] = []
    with state.open_suppressions(db) as suppressions:

        def work(n: int) -> None:
            try:
                for i in range(20):
                    suppressions.add(f"t{n}-{i}@example.org", "manual", "cli")
                    suppressions.changes(0)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert suppressions.count() == 80
        assert len(suppressions.changes(0)[1]) == 80


# --------------------------------------------------------------------------- members


def test_members_join_once_and_a_new_name_updates_them(state: StateBackend, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_members(db) as members:
        assert members.count() == 0
        assert members.add("Ana@Example.org", "Ana", "web", at=AT)
        assert members.add("bo@example.org", source="import", at=AT - timedelta(hours=1))
        assert not members.add("ana@example.org", "Ana Lima", "import")
        assert not members.add("ANA@example.org", "")  # no name given: the name stays
        assert members.count() == 2
        assert members.all() == [
            Member("bo@example.org", "", "import", "2026-03-05T11:00:30.000000Z"),
            Member("Ana@Example.org", "Ana Lima", "web", STAMP),
        ]
        assert members.remove("ANA@example.org")
        assert not members.remove("ana@example.org")
        assert [m.email for m in members.all()] == ["bo@example.org"]


def test_the_lists_share_the_store_with_every_tenant(state: StateBackend, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_members(db) as members, state.open_suppressions(db) as suppressions:
        members.add("ana@example.org")
        suppressions.add("ana@example.org", "unsubscribe", "web")
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "Morning")
    with state.open_members(db) as members, state.open_suppressions(db) as suppressions:
        assert (members.count(), suppressions.count()) == (1, 1)


# --------------------------------------------------------------------------- SQLite migration


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_schema_3_file_gains_the_lists_and_keeps_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "state.sqlite3"
    with monkeypatch.context() as previous:  # the release before: schema 3
        previous.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
        previous.setattr(migrations, "LATEST", 3)
        with SQLITE.open_ledger(db) as ledger:
            ledger.start("2026-03-04-abcd1234", "Morning", 2)
            ledger.finish("2026-03-04-abcd1234", "ana@example.org", "sent", "250 ok")
        with SQLITE.open_history(db) as history:
            history.record("2026-03-04-abcd1234", AT, ["a", "b"])
    assert query(db, "SELECT MAX(version) FROM schema_version") == [(3,)]
    assert not query(db, "SELECT name FROM sqlite_master WHERE name = 'suppressions'")

    with SQLITE.open_suppressions(db) as suppressions:
        assert suppressions.count() == 0
        assert suppressions.add("ana@example.org", "unsubscribe", "web")
    assert query(db, "SELECT MAX(version) FROM schema_version") == [(4,)]
    with SQLITE.open_ledger(db) as ledger:
        assert ledger.summary("2026-03-04-abcd1234")["sent"] == 1
        assert ledger.edition("2026-03-04-abcd1234") is not None
    with SQLITE.open_history(db) as history:
        assert history.recent_article_ids(1) == {"a", "b"}
    tables = {name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"suppressions", "members", "bounce_events", "state_sequences"} <= tables
    indexes = {name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"suppressions_by_seq", "bounce_events_by_address"} <= indexes


def test_the_tables_refuse_values_outside_their_lists(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    with SQLITE.open_members(db):
        pass
    conn = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute(
                "INSERT INTO suppressions VALUES ('a', 'a', 'spam', 'x', '', '', 'now', 1)"
            )
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("INSERT INTO bounce_events VALUES ('r', 'a', '', 'soft?', '', 'now')")
        conn.execute("INSERT INTO bounce_events VALUES ('r', 'a', '', 'hard', '5.1.1', 'now')")
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute("INSERT INTO bounce_events VALUES ('r', 'a', 'e', 'soft', '', 'later')")
    finally:
        conn.close()


# --------------------------------------------------------------------------- PostgreSQL


def test_changes_read_again_behind_the_cursor_for_late_commits(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    place = PostgresUrl(postgres.new_schema(schema_for(tmp_path)))
    with openers.open_suppressions(place) as suppressions:
        suppressions.add("early@example.org", "manual", "cli")
        with psycopg.connect(place.url) as slow:  # numbered first, committed last
            slow.execute(
                "INSERT INTO suppressions (email_key, email, reason, source, at)"
                " VALUES ('slow@example.org', 'slow@example.org', 'unsubscribe', 'web', %s)",
                (STAMP,),
            )
            suppressions.add("fast@example.org", "unsubscribe", "web")
            cursor, keys = suppressions.changes(0)
            assert "slow@example.org" not in keys
            assert "fast@example.org" in keys
            slow.commit()
        _, keys = suppressions.changes(cursor)
        assert "slow@example.org" in keys
    assert postgres_suppressions.CHANGES_WINDOW >= 100
