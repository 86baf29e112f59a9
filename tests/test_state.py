"""The state layer: one schema with numbered migrations, one time format, every tenant.

The migration tests build a state file as the release before schema versions made it,
in literal SQL (its tables, none of them versioned, and its four time formats), and
check that opening it adopts it in place.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from state_backends import SQLITE, StateBackend

from newsletter.cli.main import cli
from newsletter.errors import StateError
from newsletter.models import Digest, Edition
from newsletter.state.api import SlotRecord
from newsletter.state.sqlite import migrations
from newsletter.state.timestamps import from_stamp, to_stamp

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
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
}

# --------------------------------------------------------------------------- the one format


def test_a_time_round_trips_in_utc() -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    for moment in (
        datetime(2026, 3, 4, 18, 0, tzinfo=kolkata),
        datetime(2026, 3, 4, 12, 30, 0, 123456, tzinfo=UTC),
        datetime(2026, 7, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")),
        datetime(2026, 7, 1, 1, 30, tzinfo=ZoneInfo("UTC")),
    ):
        stamp = to_stamp(moment)
        assert re.fullmatch(STAMP, stamp)
        back = from_stamp(stamp)
        assert back == moment
        assert back.utcoffset() == timedelta(0)
    assert to_stamp(datetime(2026, 3, 4, 18, 0, tzinfo=kolkata)) == "2026-03-04T12:30:00.000000Z"


def test_stamps_have_one_width_and_sort_as_the_times_do() -> None:
    rng = random.Random(7)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    zones = [timezone(timedelta(minutes=m)) for m in (-600, -300, 0, 330, 840)]
    moments = [
        (start + timedelta(seconds=rng.uniform(0, 40 * 365 * 86400))).astimezone(rng.choice(zones))
        for _ in range(500)
    ]
    moments += [start, start + timedelta(microseconds=1), datetime(999, 1, 1, tzinfo=UTC)]
    stamps = [to_stamp(m) for m in moments]
    assert {len(s) for s in stamps} == {27}
    assert sorted(stamps) == [to_stamp(m) for m in sorted(moments)]
    assert to_stamp(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000000Z"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_stamp(datetime(2026, 3, 4, 12, 30))


@pytest.mark.parametrize(
    "text",
    ["2026-03-04T12:30:00+00:00", "2026-03-04T12:30:00.123+00:00", "2026-03-04 12:30:00.000000Z"],
)
def test_other_time_text_is_not_read_as_a_stamp(text: str) -> None:
    with pytest.raises(ValueError, match="not a state timestamp"):
        from_stamp(text)


# --------------------------------------------------------------------------- every tenant


def _edition(created: datetime, edition_id: str = "2026-03-04-abcd1234") -> Edition:
    return Edition(
        id=edition_id,
        subject="Morning",
        preheader="The news",
        html="<p>hello</p>",
        text="hello",
        digest=Digest(lead=None, now=created),
        created=created,
        warnings=("w",),
    )


class _Slot:
    """A slot as ``schedule.Slot`` shows it to the store."""

    key = "daily@2026-03-05T07:00:00"
    schedule = "daily"
    local = datetime(2026, 3, 5, 7, tzinfo=ZoneInfo("America/New_York"))
    at = datetime(2026, 3, 5, 12, tzinfo=UTC)


NOW = datetime(2026, 3, 5, 12, 0, 30, tzinfo=UTC)


def _use_history(state: StateBackend, db: Path) -> None:
    with state.open_history(db) as history:
        history.record("e1", NOW, ["a"])
        assert history.last_edition() == "e1"


def _use_editions(state: StateBackend, db: Path) -> None:
    with state.open_editions(db) as editions:
        editions.save(_edition(NOW), {"lead": None}, NOW)
        found = editions.unfinished()
        assert found is not None
        assert found.edition.created == NOW
        assert found.started_at == "2026-03-05T12:00:30.000000Z"


def _use_ledger(state: StateBackend, db: Path) -> None:
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "Morning")
        ledger.claim("e1", "a@example.org", "<1@x>")
        assert ledger.summary("e1")["in_flight"] == 1
        (status,) = ledger.editions()
        assert status.started.tzinfo is not None


def _use_slots(state: StateBackend, db: Path) -> None:
    with state.open_slots(db) as slots:
        claim = slots.claim(_Slot(), NOW, in_grace=True, retry_failed=False)
        assert claim.kind == "new"
        assert isinstance(claim.record, SlotRecord)
        assert claim.record.slot_utc == "2026-03-05T12:00:00.000000Z"
        assert claim.record.claimed_at == "2026-03-05T12:00:30.000000Z"


def _use_suppressions(state: StateBackend, db: Path) -> None:
    with state.open_suppressions(db) as suppressions:
        assert suppressions.add("ana@example.org", "unsubscribe", "web", at=NOW)
        found = suppressions.get("ana@example.org")
        assert found is not None
        assert found.at == "2026-03-05T12:00:30.000000Z"


def _use_members(state: StateBackend, db: Path) -> None:
    with state.open_members(db) as members:
        assert members.add("bo@example.org", "Bo", "web", at=NOW)
        assert members.all()[0].joined_at == "2026-03-05T12:00:30.000000Z"


TENANTS: dict[str, Callable[[StateBackend, Path], None]] = {
    "history": _use_history,
    "editions": _use_editions,
    "ledger": _use_ledger,
    "slots": _use_slots,
    "suppressions": _use_suppressions,
    "members": _use_members,
}


@pytest.mark.parametrize("tenant", TENANTS)
def test_every_tenant_opens_a_fresh_store(state: StateBackend, tmp_path: Path, tenant: str) -> None:
    TENANTS[tenant](state, tmp_path / "new" / "state.sqlite3")


def test_the_tenants_share_one_store_in_any_order(state: StateBackend, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    for use in reversed(TENANTS.values()):
        use(state, db)
    with state.open_history(db) as history:
        assert history.recent_article_ids(1) == {"a"}


# --------------------------------------------------------------------------- migrations (SQLite)

# The state file of the release before schema versions: every tenant's tables, as each
# created them, and one row each in the time formats they wrote.
OLD_RELEASE = """
CREATE TABLE history_editions (
    edition_id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    recorded INTEGER NOT NULL
);
CREATE INDEX history_editions_created ON history_editions (created DESC, recorded DESC);
CREATE TABLE history_articles (
    edition_id TEXT NOT NULL REFERENCES history_editions (edition_id) ON DELETE CASCADE,
    article_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (edition_id, article_id)
);
CREATE TABLE archive_editions (
    id          TEXT PRIMARY KEY,
    created     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    preheader   TEXT NOT NULL,
    html        TEXT NOT NULL,
    text        TEXT NOT NULL,
    selection   TEXT NOT NULL,
    warnings    TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'sending',
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE ledger_editions (
    edition_id TEXT PRIMARY KEY,
    subject    TEXT NOT NULL DEFAULT '',
    started    TEXT NOT NULL
);
CREATE TABLE ledger_recipients (
    edition_id TEXT NOT NULL,
    email      TEXT NOT NULL,
    message_id TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL
               CHECK (state IN ('pending', 'in_flight', 'sent', 'failed', 'deferred')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    reply      TEXT NOT NULL DEFAULT '',
    updated    TEXT NOT NULL,
    PRIMARY KEY (edition_id, email)
) WITHOUT ROWID;
CREATE TABLE schedule_slots (
    key         TEXT PRIMARY KEY,
    schedule    TEXT NOT NULL,
    slot_local  TEXT NOT NULL,
    slot_utc    TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('claimed', 'sent', 'skipped', 'failed')),
    reason      TEXT NOT NULL DEFAULT '',
    edition     TEXT NOT NULL DEFAULT '',
    sent        INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    deferred    INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    pid         INTEGER,
    claimed_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX schedule_slots_by_time ON schedule_slots (schedule, slot_utc);

-- History: microseconds and Z (already the one format).
INSERT INTO history_editions VALUES ('2026-03-03-old', '2026-03-03T12:30:00.000000Z', 1);
INSERT INTO history_editions VALUES ('2026-03-04-abcd1234', '2026-03-04T12:30:00.000000Z', 2);
INSERT INTO history_articles VALUES ('2026-03-03-old', 'x', 0);
INSERT INTO history_articles VALUES ('2026-03-04-abcd1234', 'a', 0);
INSERT INTO history_articles VALUES ('2026-03-04-abcd1234', 'b', 1);
-- Stored editions: isoformat() with the edition's own offset, microseconds only when set.
INSERT INTO archive_editions VALUES (
    '2026-03-04-abcd1234', '2026-03-04T18:00:00+05:30', 'Morning', 'The news', '<p>hi</p>',
    'hi', '{"lead": null}', '["w"]', 'done', '2026-03-04T12:31:00.250000+00:00',
    '2026-03-04T12:40:00+00:00'
);
INSERT INTO archive_editions VALUES (
    '2026-03-05-ef567890', '2026-03-05T07:00:00-05:00', 'Next', 'More', '<p>x</p>', 'x',
    '{}', '[]', 'sending', '2026-03-05T12:01:00+00:00', NULL
);
-- Ledger: milliseconds and +00:00.
INSERT INTO ledger_editions VALUES (
    '2026-03-04-abcd1234', 'Morning', '2026-03-04T12:31:00.250+00:00'
);
INSERT INTO ledger_recipients VALUES (
    '2026-03-04-abcd1234', 'ana@example.org', '<1@x>', 'sent', 1, '250 ok',
    '2026-03-04T12:31:01.500+00:00'
);
INSERT INTO ledger_recipients VALUES (
    '2026-03-04-abcd1234', 'bo@example.org', '<2@x>', 'deferred', 2, '451 later',
    '2026-03-04T12:31:02.000+00:00'
);
-- Schedules: seconds and +00:00 (slot_local is the wall time in the schedule's zone).
INSERT INTO schedule_slots VALUES (
    'daily@2026-03-04T07:00:00', 'daily', '2026-03-04T07:00:00-05:00',
    '2026-03-04T12:00:00+00:00', 'sent', '', '2026-03-04-abcd1234', 1, 0, 1, 1, 4242,
    '2026-03-04T12:00:05+00:00', '2026-03-04T12:40:00+00:00'
);
"""


def old_release_file(path: Path, script: str = OLD_RELEASE) -> Path:
    """Write a state file as the release before schema versions left it."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(script)
    finally:
        conn.close()
    return path


def query(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_a_file_of_the_previous_release_is_adopted_in_place(tmp_path: Path) -> None:
    db = old_release_file(tmp_path / "state.sqlite3")
    with SQLITE.open_history(db) as history:
        assert history.last_edition() == "2026-03-04-abcd1234"
        assert history.recent_article_ids(2) == {"a", "b", "x"}
    assert query(db, "SELECT version FROM schema_version ORDER BY version") == [
        (n,) for n in range(1, migrations.LATEST + 1)
    ]
    # Every row is still there; every instant is now in the one format, same instant.
    assert query(db, "SELECT COUNT(*) FROM ledger_recipients") == [(2,)]
    assert query(db, "SELECT COUNT(*) FROM archive_editions") == [(2,)]
    for table, column in migrations.TIME_COLUMNS:
        for (value,) in query(db, f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):  # noqa: S608
            assert re.fullmatch(STAMP, value), (table, column, value)
    assert query(
        db, "SELECT created, started_at, finished_at FROM archive_editions ORDER BY id"
    ) == [
        (
            "2026-03-04T12:30:00.000000Z",
            "2026-03-04T12:31:00.250000Z",
            "2026-03-04T12:40:00.000000Z",
        ),
        ("2026-03-05T12:00:00.000000Z", "2026-03-05T12:01:00.000000Z", None),
    ]
    assert query(db, "SELECT updated FROM ledger_recipients ORDER BY email") == [
        ("2026-03-04T12:31:01.500000Z",),
        ("2026-03-04T12:31:02.000000Z",),
    ]


def test_each_tenant_reads_what_the_previous_release_wrote(tmp_path: Path) -> None:
    db = old_release_file(tmp_path / "state.sqlite3")
    with SQLITE.open_editions(db) as editions:
        stored = editions.get("2026-03-04-abcd1234")
        unfinished = editions.unfinished()
        assert editions.ids() == ["2026-03-05-ef567890", "2026-03-04-abcd1234"]
    assert stored is not None
    assert stored.edition.created == datetime(2026, 3, 4, 12, 30, tzinfo=UTC)
    assert (stored.edition.html, stored.edition.warnings, stored.status) == (
        "<p>hi</p>",
        ("w",),
        "done",
    )
    assert unfinished is not None
    assert unfinished.edition.id == "2026-03-05-ef567890"
    with SQLITE.open_ledger(db) as ledger:
        (status,) = ledger.editions()
        assert status.started == datetime(2026, 3, 4, 12, 31, 0, 250000, tzinfo=UTC)
        assert status.counts["sent"] == status.counts["deferred"] == 1
        assert ledger.failures("2026-03-04-abcd1234") == [
            ("bo@example.org", "deferred", "451 later")
        ]
    with SQLITE.open_slots(db) as slots:
        record = slots.latest("daily")
    assert record is not None
    assert record.slot_utc == "2026-03-04T12:00:00.000000Z"
    assert record.slot_local == "2026-03-04T07:00:00-05:00"  # a wall time, left as it was
    assert (record.claimed_at, record.finished_at) == (
        "2026-03-04T12:00:05.000000Z",
        "2026-03-04T12:40:00.000000Z",
    )
    assert datetime.fromisoformat(record.slot_utc) == datetime(2026, 3, 4, 12, tzinfo=UTC)


def test_a_file_with_only_some_tables_gets_the_rest(tmp_path: Path) -> None:
    tables, rows = OLD_RELEASE.split("CREATE TABLE archive_editions")[0], OLD_RELEASE.split("\n")
    history_only = tables + "\n".join(r for r in rows if r.startswith("INSERT INTO history_"))
    db = old_release_file(tmp_path / "state.sqlite3", history_only)
    with SQLITE.open_ledger(db) as ledger:
        ledger.start("e1", "S")
    tables = {name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == TENANT_TABLES | {"schema_version", "state_sequences"}
    assert query(db, "SELECT COUNT(*) FROM history_articles") == [(3,)]


def test_migrations_run_once(tmp_path: Path) -> None:
    db = old_release_file(tmp_path / "state.sqlite3")
    with SQLITE.open_history(db):
        pass
    first = query(db, "SELECT version, applied FROM schema_version")
    conn = sqlite3.connect(db)  # a later write in an old format is not rewritten again
    with conn:
        conn.execute("UPDATE ledger_editions SET started = '2026-03-04T12:31:00.250+00:00'")
    conn.close()
    with SQLITE.open_slots(db), SQLITE.open_history(db):
        pass
    assert query(db, "SELECT version, applied FROM schema_version") == first
    assert query(db, "SELECT started FROM ledger_editions") == [("2026-03-04T12:31:00.250+00:00",)]


def test_a_failing_migration_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = old_release_file(tmp_path / "state.sqlite3")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE ledger_recipients SET updated = 'half done'")
        conn.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS[:1], broken))
    monkeypatch.setattr(migrations, "LATEST", 2)
    with pytest.raises(StateError, match=r"cannot use the state database \(no such table"):
        SQLITE.open_history(db)
    assert not query(db, "SELECT name FROM sqlite_master WHERE name = 'schema_version'")
    assert query(db, "SELECT updated FROM ledger_recipients ORDER BY email") == [
        ("2026-03-04T12:31:01.500+00:00",),
        ("2026-03-04T12:31:02.000+00:00",),
    ]


OPENERS = {
    "history": SQLITE.open_history,
    "editions": SQLITE.open_editions,
    "ledger": SQLITE.open_ledger,
    "slots": SQLITE.open_slots,
    "suppressions": SQLITE.open_suppressions,
    "members": SQLITE.open_members,
}


@pytest.mark.parametrize("tenant", OPENERS)
def test_a_file_from_a_newer_version_is_refused(tmp_path: Path, tenant: str) -> None:
    db = tmp_path / "state.sqlite3"
    with SQLITE.open_history(db):
        pass
    newer = migrations.LATEST + 1
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO schema_version VALUES (?, '2030-01-01T00:00:00.000000Z')", (newer,)
        )
    conn.close()
    message = (
        f"{db}: made by a newer version of newsletter (schema {newer}, this one knows "
        f"{migrations.LATEST}); upgrade newsletter or use another state_dir"
    )
    with pytest.raises(StateError) as refused:
        OPENERS[tenant](db)
    assert str(refused.value) == message
    assert query(db, "SELECT MAX(version) FROM schema_version") == [(newer,)]


# --------------------------------------------------------------------------- issue 13 changes


def test_migration_3_adds_the_recipient_count_unknown_for_old_sends(tmp_path: Path) -> None:
    db = old_release_file(tmp_path / "state.sqlite3")
    with SQLITE.open_ledger(db) as ledger:
        (old,) = ledger.editions()
        assert (old.recipients, old.not_attempted) == (None, None)
        ledger.start("new", "Fresh", 4)
        assert ledger.edition("new") == ledger.editions()[0]
    assert query(db, "SELECT edition_id, recipients FROM ledger_editions ORDER BY started") == [
        ("2026-03-04-abcd1234", None),
        ("new", 4),
    ]
    assert (3,) in query(db, "SELECT version FROM schema_version")


def test_an_edition_is_done_or_abandoned_and_an_abandoned_one_can_start_again(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    later = NOW + timedelta(hours=1)
    with state.open_editions(db) as editions:
        assert editions.last_done() is None
        editions.save(_edition(NOW, "first"), {}, NOW)
        editions.set_status("first", "done", NOW)
        editions.save(_edition(NOW, "second"), {}, later)
        editions.set_status("second", "abandoned", later)
        assert editions.unfinished() is None  # an abandoned edition is never resumed
        done = editions.last_done()
        assert done is not None
        assert (done.edition.id, done.finished_at) == ("first", to_stamp(NOW))
        abandoned = editions.get("second")
        assert abandoned is not None
        assert (abandoned.status, abandoned.finished_at) == ("abandoned", to_stamp(later))
        editions.save(_edition(NOW, "second"), {}, later)  # built again: sending again
        again = editions.unfinished()
        assert again is not None
        assert (again.edition.id, again.finished_at) == ("second", None)
        editions.save(_edition(NOW, "first"), {}, later)  # a done one stays done
        first = editions.get("first")
        assert first is not None
        assert first.status == "done"


def test_history_forgets_an_edition(state: StateBackend, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_history(db) as history:
        history.record("e1", NOW, ["a", "b"])
        history.record("e2", NOW + timedelta(hours=1), ["c"])
        history.forget("e2")
        history.forget("never-recorded")
        assert history.recent_article_ids(5) == {"a", "b"}
        assert history.last_edition() == "e1"


def test_state_migrate_adopts_and_upgrades_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the sample config keeps its state in ./.newsletter
    (tmp_path / ".newsletter").mkdir()
    db = old_release_file(tmp_path / ".newsletter" / "state.sqlite3")
    runner = CliRunner()
    adopted = runner.invoke(cli, ["state", "migrate"])
    assert adopted.exit_code == 0, adopted.output
    latest = migrations.LATEST
    assert adopted.stdout == f"{db}: schema {latest} (tables created, or adopted as they were)\n"
    conn = sqlite3.connect(db)
    with conn:  # back to schema 1: what migrations 3 and 4 added goes too
        conn.execute("DELETE FROM schema_version WHERE version > 1")
        for table in ("suppressions", "state_sequences", "members", "bounce_events"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("ALTER TABLE ledger_editions DROP COLUMN recipients")
    conn.close()
    upgraded = runner.invoke(cli, ["state", "migrate"])
    assert upgraded.stdout == f"{db}: upgraded from schema 1 to {latest}\n"
    again = runner.invoke(cli, ["state", "migrate"])
    assert again.stdout == f"{db}: schema {latest}, already up to date\n"


def test_the_last_done_edition_is_the_one_that_finished_last(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_editions(db) as editions:
        editions.save(_edition(NOW, "early"), {}, NOW)
        editions.save(_edition(NOW, "late"), {}, NOW + timedelta(hours=1))
        editions.set_status("late", "done", NOW + timedelta(hours=2))
        editions.set_status("early", "done", NOW + timedelta(hours=3))  # started first
        editions.save(_edition(NOW, "given-up"), {}, NOW + timedelta(hours=4))
        editions.set_status("given-up", "abandoned", NOW + timedelta(hours=5))
        editions.save(_edition(NOW, "running"), {}, NOW + timedelta(hours=6))
    with state.open_editions(db) as editions:  # as the next process finds it
        done = editions.last_done()
        assert done is not None
        assert (done.edition.id, done.status) == ("early", "done")
        assert done.finished_at == to_stamp(NOW + timedelta(hours=3))
        running = editions.unfinished()
        assert running is not None
        assert (running.edition.id, running.finished_at) == ("running", None)
        editions.set_status("running", "sending", NOW + timedelta(hours=7))
        again = editions.get("running")
        assert again is not None
        assert (again.status, again.finished_at) == ("sending", None)


def test_an_abandoned_edition_stored_again_keeps_what_it_was_stored_with(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    later = NOW + timedelta(hours=1)
    with state.open_editions(db) as editions:
        editions.save(_edition(NOW, "e1"), {"lead": {"id": "a"}}, NOW)
        editions.set_status("e1", "abandoned", later)
        editions.save(_edition(later, "e1"), {"lead": {"id": "b"}}, later)
        stored = editions.get("e1")
        assert stored is not None
        assert (stored.status, stored.finished_at) == ("sending", None)
        assert (stored.started_at, stored.edition.created) == (to_stamp(NOW), NOW)
        assert stored.selection == {"lead": {"id": "a"}}  # byte for byte the first one
        assert editions.ids() == ["e1"]


def test_one_editions_status_counts_its_recipients_and_the_list_size(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_ledger(db) as ledger:
        ledger.start("e1", "Morning", 4)
        ledger.start("e2", "Other", 9)
        for email, outcome in (("a@x.org", "sent"), ("b@x.org", "failed")):
            ledger.claim("e1", email, "<m>")
            ledger.finish("e1", email, outcome, "250" if outcome == "sent" else "550")
        ledger.claim("e1", "c@x.org", "<m>")  # in flight when the send stopped
        ledger.claim("e2", "z@x.org", "<m>")
    with state.open_ledger(db) as ledger:  # as the next process finds it
        found = ledger.edition("e1")
        assert found is not None
        assert (found.id, found.subject, found.recipients) == ("e1", "Morning", 4)
        assert (found.counts["sent"], found.counts["failed"], found.counts["in_flight"]) == (
            1,
            1,
            1,
        )
        assert (found.total, found.not_attempted) == (3, 1)
        assert found == next(e for e in ledger.editions() if e.id == "e1")
        ledger.start("e1", "", None)  # no count: the recorded one stays
        assert ledger.edition("e1") == found
        ledger.start("e1", "", 2)  # a shorter list than those already tried: none left
        shorter = ledger.edition("e1")
        assert shorter is not None
        assert (shorter.recipients, shorter.not_attempted) == (2, 0)
        assert ledger.edition("e3") is None


def test_forgetting_an_edition_leaves_the_others_and_it_may_be_recorded_again(
    state: StateBackend, tmp_path: Path
) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_history(db) as history:
        history.record("e1", NOW, ["a", "b"])
        history.record("e2", NOW + timedelta(hours=1), ["b", "c"])
        history.forget("e1")
        assert history.recent_article_ids(5) == {"b", "c"}
        assert history.last_edition() == "e2"
        history.forget("e2")
        assert history.recent_article_ids(5) == frozenset()
        assert history.last_edition() is None
        history.record("e1", NOW, ["a"])
    with state.open_history(db) as history:
        assert history.recent_article_ids(5) == {"a"}
        assert history.last_edition() == "e1"
