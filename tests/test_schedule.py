"""Scheduled sends: slots in local time, exactly once, catch-up, expiry, locks, shutdown."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from newsletter.cli.process import stop_on_signals
from newsletter.config.paths import SAMPLE_DIR
from newsletter.config.schedules import parse_schedules
from newsletter.config.settings import Paths, Schedule, Settings
from newsletter.errors import (
    EXIT_NOTHING_NEW,
    EXIT_OK,
    EXIT_PROBLEM,
    ConfigError,
    ContentError,
    NewsletterError,
    NothingToSend,
)
from newsletter.locks import FileLock
from newsletter.models import Article
from newsletter.pipeline import StaleNews, check_fresh, lookback_within
from newsletter.scheduling.listing import format_upcoming, upcoming
from newsletter.scheduling.outcome import Delivery, SlotOutcome, SlotRun
from newsletter.scheduling.runner import run_forever, run_slot
from newsletter.scheduling.sending import max_age
from newsletter.scheduling.timeline import Slot, latest_slot, place, slots_after
from newsletter.state.openers import open_slots

NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
ROOT = Path(__file__).resolve().parent.parent


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def make_settings(tmp_path: Path) -> Settings:
    paths = replace(Paths(), state_dir=tmp_path / "state", outbox=tmp_path / "outbox")
    return replace(Settings(), paths=paths)


def daily(cron: str = "0 7 * * *", zone: ZoneInfo = NEW_YORK, **kw: object) -> Schedule:
    return Schedule(name=str(kw.pop("name", "daily")), cron=cron, timezone=zone, **kw)  # type: ignore[arg-type]


def take(schedule: Schedule, after: datetime, count: int) -> list[Slot]:
    return list(itertools.islice(slots_after(schedule, after), count))


def rows(settings: Settings) -> list[tuple[str, str, str]]:
    with sqlite3.connect(settings.paths.state_db) as conn:
        return conn.execute(
            "SELECT key, state, reason FROM schedule_slots ORDER BY slot_utc"
        ).fetchall()


# --------------------------------------------------------------------------- fakes


class FakeClock:
    """A clock the runner reads and a sleep that moves it, stopping at ``end``."""

    def __init__(self, start: datetime, end: datetime, stop: threading.Event) -> None:
        self.now = start
        self.end = end
        self.stop = stop
        self.naps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += timedelta(seconds=seconds)
        if self.now >= self.end:
            self.stop.set()


@dataclass
class Sent:
    key: str
    at: datetime
    resuming: bool
    previous: str


@dataclass
class FakePipeline:
    """Stands in for build + send; each call can be steered by ``script``."""

    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    script: list[str] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    prepared: list[SlotRun] = field(default_factory=list)
    during_send: Callable[[SlotRun], None] | None = None
    send_seconds: float = 0.0

    def __call__(
        self, run: SlotRun, started: Callable[[str], None], stop: threading.Event
    ) -> Delivery:
        self.prepared.append(run)
        action = self.script.pop(0) if self.script else "send"
        if action == "nothing":
            raise NothingToSend("nothing new to send since the last edition")
        if action == "stale":
            raise StaleNews("stale: the lead story is 30 h old")
        if action == "broken":
            raise ContentError("content/articles.json: not JSON; fix the file")
        if action == "bug":
            raise RuntimeError("a bug, not a user problem")
        edition = f"ed-{run.slot.wall:%Y%m%d%H%M%S}"
        started(edition)
        if self.during_send:
            self.during_send(run)
        if self.send_seconds:
            time.sleep(self.send_seconds)
        self.sent.append(Sent(run.slot.key, self.clock(), run.resuming, run.previous_edition))
        if action == "interrupt":
            stop.set()
            return Delivery(edition=edition, sent=2, complete=False)
        return Delivery(edition=edition, sent=3, where="dry run to test")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def run_days(
    settings: Settings,
    schedule: Schedule,
    start: datetime,
    end: datetime,
    pipeline: FakePipeline | None = None,
    max_nap: float = 600,
) -> tuple[FakePipeline, FakeClock]:
    stop = threading.Event()
    clock = FakeClock(start, end, stop)
    fake = pipeline or FakePipeline()
    fake.clock = clock
    run_forever(
        settings,
        stop,
        schedules=[schedule],
        clock=clock,
        sleep=clock.sleep,
        send=fake,
        max_nap=max_nap,
    )
    return fake, clock


# --------------------------------------------------------------------------- slots and DST


def test_a_seven_oclock_slot_stays_at_seven_local_across_both_changes() -> None:
    schedule = daily("0 7 * * *")
    for start in (utc(2026, 3, 3), utc(2026, 10, 28)):
        slots = take(schedule, start, 10)
        assert [s.local.hour for s in slots] == [7] * 10
        assert len({s.local.date() for s in slots}) == 10
        offsets = {s.at.hour for s in slots}
        assert offsets == {11, 12}, "UTC time moves by an hour, local time does not"


def test_a_time_skipped_by_spring_forward_runs_once_right_after_the_gap() -> None:
    slots = take(daily("30 2 * * *"), utc(2026, 3, 6), 4)
    change_day = [s for s in slots if s.wall.date() == datetime(2026, 3, 8).date()]
    assert len(change_day) == 1
    assert change_day[0].at == utc(2026, 3, 8, 7, 0)
    assert change_day[0].local.strftime("%H:%M %Z") == "03:00 EDT"
    assert change_day[0].key == "daily@2026-03-08T02:30:00"
    assert change_day[0].shifted
    assert [s.wall.day for s in slots] == [6, 7, 8, 9]


def test_a_time_repeated_by_fall_back_runs_once_at_its_first_occurrence() -> None:
    slots = take(daily("30 1 * * *"), utc(2026, 10, 30), 4)
    assert [s.wall.day for s in slots] == [30, 31, 1, 2]
    change_day = slots[2]
    assert change_day.at == utc(2026, 11, 1, 5, 30)
    assert change_day.local.strftime("%H:%M %Z") == "01:30 EDT"


def test_several_times_inside_the_gap_collapse_into_one_slot() -> None:
    schedule = daily("*/15 2 * * *")
    slots = take(schedule, utc(2026, 3, 8, 5), 5)
    assert slots[0].key == "daily@2026-03-08T02:00:00"
    assert slots[0].at == utc(2026, 3, 8, 7)
    assert slots[1].wall == datetime(2026, 3, 9, 2, 0)
    assert latest_slot(schedule, utc(2026, 3, 8, 7, 20)) == slots[0]


def test_latest_slot_inside_the_repeated_hour_is_the_first_occurrence() -> None:
    schedule = daily("30 1 * * *")
    # 06:40 UTC is 01:40 EST, the second 01:40 of the night; the slot ran at 01:30 EDT.
    slot = latest_slot(schedule, utc(2026, 11, 1, 6, 40))
    assert slot is not None
    assert slot.at == utc(2026, 11, 1, 5, 30)
    assert latest_slot(schedule, utc(2026, 11, 1, 5, 29)).wall.day == 31  # type: ignore[union-attr]


def test_place_puts_gap_times_at_the_end_of_a_half_hour_gap() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # clocks go 02:00 -> 02:30 in October
    at = place(datetime(2026, 10, 4, 2, 15), lord_howe)
    assert at.astimezone(lord_howe).strftime("%H:%M") == "02:30"
    assert place(datetime(2026, 10, 4, 2, 45), lord_howe).astimezone(lord_howe).minute == 45


ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
EXPRESSIONS = [
    "0 7 * * *",
    "30 2 * * *",
    "30 1 * * *",
    "*/15 * * * *",
    "15 2 * * sun",
    "0 */3 * * *",
]


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    expr=st.sampled_from(EXPRESSIONS),
    offset=st.integers(min_value=0, max_value=400 * 24 * 3600),
)
def test_latest_and_next_slots_agree_everywhere(zone: str, expr: str, offset: int) -> None:
    schedule = daily(expr, ZoneInfo(zone))
    now = utc(2026, 1, 1) + timedelta(seconds=offset)
    latest = latest_slot(schedule, now)
    assert latest is not None
    assert latest.at <= now
    following = take(schedule, latest.at, 3)
    assert following[0].at > now, "no slot between the latest one and now"
    assert take(schedule, latest.at - timedelta(microseconds=1), 1) == [latest]
    assert all(a.at < b.at and a.wall < b.wall for a, b in itertools.pairwise(following))


def test_each_local_wall_time_is_one_slot_on_a_fall_back_day() -> None:
    slots = [s for s in take(daily("0 * * * *"), utc(2026, 11, 1, 3), 30) if s.wall.day == 1]
    assert [s.wall.hour for s in slots] == list(range(24))
    assert len({s.key for s in slots}) == 24


# --------------------------------------------------------------------------- config


def test_parse_schedules_reads_every_field_and_resolves_paths(tmp_path: Path) -> None:
    raw = [
        {
            "name": "daily",
            "cron": "0  7 * * mon-fri",
            "timezone": "America/New_York",
            "dry_run": True,
            "sources": ["content/a.json", "https://feeds.example.org/rss"],
            "subscribers": "people.csv",
            "outbox": "out/box",
            "grace_minutes": 90,
            "max_age_hours": 20,
        },
        {"name": "weekly", "cron": "0 9 * * sun", "dry_run": False},
    ]
    daily_s, weekly = parse_schedules(raw, tmp_path, default_timezone=KOLKATA)
    assert daily_s.cron == "0 7 * * mon-fri"
    assert daily_s.timezone.key == "America/New_York"
    assert daily_s.sources == (str(tmp_path / "content/a.json"), "https://feeds.example.org/rss")
    assert daily_s.subscribers == tmp_path / "people.csv"
    assert daily_s.outbox == tmp_path / "out/box"
    assert daily_s.grace == timedelta(minutes=90)
    assert daily_s.max_age_hours == 20
    assert weekly.timezone == KOLKATA
    assert not weekly.dry_run
    assert weekly.grace == timedelta(hours=1)
    assert weekly.max_age_hours is None
    assert parse_schedules(None, tmp_path) == ()


def test_parse_schedules_reports_every_problem_with_its_key(tmp_path: Path) -> None:
    raw = [
        {"name": "daily", "cron": "61 7 * * *", "timezone": "Mars/Olympus", "grace_minuts": 5},
        {"name": "daily", "cron": "0 0 30 2 *", "dry_run": "yes", "max_age_hours": True},
        {"cron": "0 7 * * *", "timezone": "UTC", "dry_run": False, "outbox": "x"},
        {"name": "bad name!", "timezone": "UTC", "grace_minutes": -1},
        "not a table",
    ]
    with pytest.raises(ConfigError) as caught:
        parse_schedules(raw, tmp_path, config_file=tmp_path / "newsletter.toml")
    problems = caught.value.problems
    text = "\n".join(problems)
    for expected in (
        "schedule[0].cron: '61 7 * * *' is not a usable cron expression",
        "schedule[0].timezone: 'Mars/Olympus' is not an IANA time zone",
        "schedule[0].grace_minuts: unknown key; did you mean 'grace_minutes'?",
        "schedule[1].cron: '0 0 30 2 *'",
        "schedule[1].dry_run: expected true or false",
        "schedule[1].max_age_hours: expected a number",
        "schedule[1].name: 'daily' is already the name of schedule[0]",
        "schedule[2].name: required",
        "schedule[2].outbox: only a dry run writes to an outbox",
        "schedule[3].name: 'bad name!'",
        "schedule[3].cron: required",
        "schedule[3].grace_minutes: -1 is out of range",
        "schedule[4]: expected a table",
    ):
        assert expected in text, expected
    assert str(tmp_path / "newsletter.toml") in str(caught.value)


def test_a_single_bracket_schedule_table_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[\[schedule\]\] with double brackets"):
        parse_schedules({"name": "daily", "cron": "0 7 * * *"}, tmp_path)


def test_a_schedule_without_a_time_zone_needs_a_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"schedule\[0\]\.timezone: required"):
        parse_schedules([{"name": "daily", "cron": "0 7 * * *"}], tmp_path)


def test_hostile_cron_values_are_rejected_without_crashing(tmp_path: Path) -> None:
    for value in ("0 7 * * *\n0 8 * * *", "x" * 500, "@reboot", "H 7 * * *", "", 7):
        raw = [{"name": "d", "cron": value, "timezone": "UTC"}]
        with pytest.raises(ConfigError, match=r"schedule\[0\]\.cron"):
            parse_schedules(raw, tmp_path)


def test_run_slot_names_the_schedules_when_the_name_is_wrong(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="did you mean 'daily'"):
        run_slot(settings, "dialy", schedules=[daily()], send=FakePipeline())
    with pytest.raises(ConfigError, match=r"no \[\[schedule\]\]"):
        run_slot(settings, "daily", schedules=[], send=FakePipeline())


# --------------------------------------------------------------------------- the daemon


def test_runner_sends_each_day_at_seven_local_through_spring_forward(settings: Settings) -> None:
    fake, _ = run_days(settings, daily(), utc(2026, 3, 6, 12), utc(2026, 3, 10))
    assert [s.key for s in fake.sent] == [f"daily@2026-03-0{d}T07:00:00" for d in (6, 7, 8, 9)]
    assert [s.at.astimezone(NEW_YORK).strftime("%H:%M:%S") for s in fake.sent] == ["07:00:00"] * 4
    assert [state for _k, state, _r in rows(settings)] == ["sent"] * 4


def test_runner_naps_at_most_a_minute_between_checks(settings: Settings) -> None:
    fake, clock = run_days(
        settings, daily(), utc(2026, 3, 4, 11, 50), utc(2026, 3, 4, 12, 5), max_nap=60
    )
    assert clock.naps[:10] == [60.0] * 10
    assert [s.at for s in fake.sent] == [utc(2026, 3, 4, 12)]


def test_runner_sends_a_repeated_time_once_on_the_fall_back_night(settings: Settings) -> None:
    fake, _ = run_days(settings, daily("30 1 * * *"), utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
    assert [(s.key, s.at) for s in fake.sent] == [
        ("daily@2026-11-01T01:30:00", utc(2026, 11, 1, 5, 30)),
        ("daily@2026-11-02T01:30:00", utc(2026, 11, 2, 6, 30)),
    ]


def test_runner_sends_a_skipped_time_once_on_the_spring_forward_night(settings: Settings) -> None:
    fake, _ = run_days(settings, daily("*/20 2 * * *"), utc(2026, 3, 7, 12), utc(2026, 3, 8, 12))
    assert [(s.key, s.at) for s in fake.sent] == [("daily@2026-03-08T02:00:00", utc(2026, 3, 8, 7))]


def test_the_slot_is_claimed_in_the_database_before_anything_is_sent(settings: Settings) -> None:
    seen: list[str | None] = []

    def look(run: SlotRun) -> None:
        with open_slots(settings.paths.state_db) as store:
            record = store.get(run.slot.key)
            seen.append(record.state if record else None)

    fake = FakePipeline(during_send=look)
    run_slot(settings, "daily", utc(2026, 3, 4, 12, 1), schedules=[daily()], send=fake)
    assert seen == ["claimed"]
    assert rows(settings)[0][:2] == ("daily@2026-03-04T07:00:00", "sent")


def test_a_restart_never_sends_a_slot_twice(settings: Settings) -> None:
    schedule = daily()
    first, _ = run_days(settings, schedule, utc(2026, 3, 4, 11, 59), utc(2026, 3, 4, 12, 5))
    second, _ = run_days(settings, schedule, utc(2026, 3, 4, 12, 5), utc(2026, 3, 4, 12, 30))
    outcome = run_slot(
        settings, "daily", utc(2026, 3, 4, 12, 40), schedules=[schedule], send=second
    )
    assert len(first.sent) == 1
    assert second.sent == []
    assert second.prepared == []
    assert outcome.state == "done"
    assert outcome.exit_code == EXIT_OK
    assert "already sent" in outcome.describe()


def test_a_missed_slot_within_grace_is_caught_up_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    schedule = daily()
    run_slot(settings, "daily", utc(2026, 3, 3, 12), schedules=[schedule], send=FakePipeline())
    caplog.set_level(logging.INFO, logger="newsletter.schedule")
    fake, _ = run_days(settings, schedule, utc(2026, 3, 4, 12, 40), utc(2026, 3, 4, 13, 30))
    assert [(s.key, s.at) for s in fake.sent] == [
        ("daily@2026-03-04T07:00:00", utc(2026, 3, 4, 12, 40))
    ]
    assert any("caught up 40 min late" in r.getMessage() for r in caplog.records)


def test_several_missed_slots_never_become_a_burst(settings: Settings) -> None:
    hourly = daily("0 * * * *", grace=timedelta(hours=2))
    run_slot(settings, "daily", utc(2026, 3, 4, 0, 0, 5), schedules=[hourly], send=FakePipeline())
    fake, _ = run_days(settings, hourly, utc(2026, 3, 4, 5, 30), utc(2026, 3, 4, 7, 30))
    assert [(s.key, s.at) for s in fake.sent] == [
        ("daily@2026-03-04T00:00:00", utc(2026, 3, 4, 5, 30)),  # only the latest missed slot
        ("daily@2026-03-04T01:00:00", utc(2026, 3, 4, 6)),
        ("daily@2026-03-04T02:00:00", utc(2026, 3, 4, 7)),
    ]


def test_a_slot_missed_beyond_grace_is_skipped_and_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    hourly = daily("0 * * * *", grace=timedelta(minutes=10))
    run_slot(settings, "daily", utc(2026, 3, 4, 0, 0, 5), schedules=[hourly], send=FakePipeline())
    caplog.set_level(logging.INFO, logger="newsletter.schedule")
    fake, _ = run_days(settings, hourly, utc(2026, 3, 4, 5, 30), utc(2026, 3, 4, 6, 30))
    assert [s.key for s in fake.sent] == ["daily@2026-03-04T01:00:00"]
    assert ("daily@2026-03-04T00:00:00", "skipped") in [r[:2] for r in rows(settings)]
    missed = [r.getMessage() for r in caplog.records if "missed" in r.getMessage()]
    assert len(missed) == 1
    assert "missed by 30 min, beyond the 10 min grace window" in missed[0]
    assert "4 earlier slot(s) also missed" in missed[0]


def test_a_first_start_long_after_a_slot_does_not_report_it_missed(settings: Settings) -> None:
    fake, _ = run_days(settings, daily(), utc(2026, 3, 4, 15), utc(2026, 3, 5, 12, 30))
    assert [s.key for s in fake.sent] == ["daily@2026-03-05T07:00:00"]
    assert [r[:2] for r in rows(settings)] == [("daily@2026-03-05T07:00:00", "sent")]


def test_nothing_new_and_stale_news_skip_the_slot(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="newsletter.schedule")
    fake = FakePipeline(script=["nothing", "stale", "send"])
    fake, _ = run_days(settings, daily(), utc(2026, 3, 4, 11, 59), utc(2026, 3, 6, 12, 30), fake)
    assert [r[:2] for r in rows(settings)] == [
        ("daily@2026-03-04T07:00:00", "skipped"),
        ("daily@2026-03-05T07:00:00", "skipped"),
        ("daily@2026-03-06T07:00:00", "sent"),
    ]
    assert len(fake.prepared) == 3, "a skipped slot is not tried again"
    lines = [r.getMessage() for r in caplog.records]
    assert any("skipped: nothing new to send" in line for line in lines)
    assert any("skipped: stale" in line for line in lines)


def test_a_failed_slot_is_logged_and_not_retried_by_the_runner(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakePipeline(script=["broken"])
    fake, _ = run_days(settings, daily(), utc(2026, 3, 4, 11, 59), utc(2026, 3, 4, 12, 50), fake)
    assert len(fake.prepared) == 1
    assert rows(settings)[0][1] == "failed"
    assert "not JSON" in rows(settings)[0][2]
    assert any(r.levelno == logging.ERROR and "failed" in r.getMessage() for r in caplog.records)
    retried = run_slot(settings, "daily", utc(2026, 3, 4, 12, 55), schedules=[daily()], send=fake)
    assert retried.state == "sent", "an explicit run retries a failed slot within grace"


def test_an_interrupted_send_resumes_the_same_slot_and_edition(settings: Settings) -> None:
    fake = FakePipeline(script=["interrupt"])
    schedule = daily()
    fake, _ = run_days(settings, schedule, utc(2026, 3, 4, 11, 59), utc(2026, 3, 4, 13), fake)
    assert rows(settings)[0][:2] == ("daily@2026-03-04T07:00:00", "claimed")
    again, _ = run_days(settings, schedule, utc(2026, 3, 4, 15), utc(2026, 3, 4, 15, 5))
    assert [(s.key, s.resuming, s.previous) for s in again.sent] == [
        ("daily@2026-03-04T07:00:00", True, "ed-20260304070000")
    ]
    with open_slots(settings.paths.state_db) as store:
        record = store.get("daily@2026-03-04T07:00:00")
    assert record is not None
    assert (record.state, record.sent, record.attempts) == ("sent", 5, 2)


def test_a_crash_mid_slot_leaves_it_claimed_and_the_next_run_resumes(settings: Settings) -> None:
    fake = FakePipeline(script=["bug"])
    with pytest.raises(RuntimeError):
        run_slot(settings, "daily", utc(2026, 3, 4, 12, 1), schedules=[daily()], send=fake)
    assert rows(settings)[0][1] == "claimed"
    outcome = run_slot(settings, "daily", utc(2026, 3, 4, 20), schedules=[daily()], send=fake)
    assert outcome.state == "sent"
    assert outcome.resumed
    assert fake.sent[0].resuming


def test_stop_ends_the_runner_between_slots(settings: Settings) -> None:
    stop = threading.Event()
    clock = FakeClock(utc(2026, 3, 4), utc(2030, 1, 1), stop)
    naps = 0

    def sleep(seconds: float) -> None:
        nonlocal naps
        naps += 1
        clock.sleep(seconds)
        if naps == 3:
            stop.set()

    fake = FakePipeline()
    run_forever(settings, stop, schedules=[daily()], clock=clock, sleep=sleep, send=fake)
    assert naps == 3
    assert fake.sent == []


# --------------------------------------------------------------------------- run_slot


def test_run_slot_outcomes_and_exit_codes(settings: Settings) -> None:
    schedule = daily()
    fake = FakePipeline(script=["nothing"])
    skipped = run_slot(settings, "daily", utc(2026, 3, 4, 12, 5), schedules=[schedule], send=fake)
    assert (skipped.state, skipped.exit_code) == ("skipped", EXIT_NOTHING_NEW)
    sent = run_slot(settings, "daily", utc(2026, 3, 5, 12, 5), schedules=[schedule], send=fake)
    assert (sent.state, sent.exit_code, sent.edition) == ("sent", EXIT_OK, "ed-20260305070000")
    assert sent.delivery.sent == 3
    late = run_slot(settings, "daily", utc(2026, 3, 6, 15), schedules=[schedule], send=fake)
    assert (late.state, late.exit_code) == ("skipped", EXIT_NOTHING_NEW)
    assert "missed by 3 h, beyond the 1 h grace window" in late.reason
    assert len(fake.prepared) == 2
    future = daily("0 7 * * * 0 2030")
    idle = run_slot(settings, "daily", utc(2026, 3, 6), schedules=[future], send=fake)
    assert (idle.state, idle.exit_code) == ("idle", EXIT_OK)
    assert "2030-01-01 07:00" in idle.describe()
    failed = SlotOutcome("daily", "failed", reason="x")
    assert failed.exit_code == EXIT_PROBLEM
    partial = SlotOutcome("daily", "sent", delivery=Delivery(sent=9, deferred=1))
    assert partial.exit_code == EXIT_PROBLEM


def test_two_concurrent_runs_of_one_slot_send_it_once(settings: Settings) -> None:
    fake = FakePipeline(send_seconds=0.3)
    outcomes: list[str] = []

    def one() -> None:
        outcome = run_slot(
            settings, "daily", utc(2026, 3, 4, 12, 1), schedules=[daily()], send=fake
        )
        outcomes.append(outcome.state)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(outcomes) == ["done", "done", "done", "sent"]
    assert len(fake.sent) == 1


# --------------------------------------------------------------------------- locks


def test_a_second_runner_is_refused_while_one_holds_the_lock(settings: Settings) -> None:
    held = FileLock(settings.paths.state_dir / "schedule-runner.lock")
    assert held.acquire()
    try:
        pattern = rf"\(pid {os.getpid()}\) is already running"
        with pytest.raises(NewsletterError, match=pattern):
            run_forever(settings, threading.Event(), schedules=[daily()], send=FakePipeline())
    finally:
        held.release()
    assert held.acquire()
    held.release()


def test_a_lock_held_by_a_killed_process_is_released(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from newsletter.locks import FileLock
            assert FileLock(Path({str(path)!r})).acquire()
            print("held", flush=True)
            time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        lock = FileLock(path)
        assert not lock.acquire(wait=0.2)
        assert lock.holder() == str(holder.pid)
        holder.kill()
        holder.wait(timeout=10)
        assert lock.acquire(wait=5)
        lock.release()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_stop_on_signals_sets_the_event_and_restores_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop = threading.Event()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) == before


# --------------------------------------------------------------------------- freshness


def article(hours_old: float | None, now: datetime) -> Article:
    when = None if hours_old is None else now - timedelta(hours=hours_old)
    return Article(id="a", title="Harbour\nbarrier", url="https://x.example/a", published=when)


def test_check_fresh_skips_a_lead_older_than_the_max_age() -> None:
    now = utc(2026, 3, 4, 12)
    check_fresh(article(23, now), now, timedelta(hours=24))
    with pytest.raises(StaleNews, match=r"more than 24 h before") as caught:
        check_fresh(article(25, now), now, timedelta(hours=24))
    assert "\n" not in str(caught.value), "titles cannot break the log line"
    with pytest.raises(StaleNews, match="has no date"):
        check_fresh(article(None, now), now, timedelta(hours=24))
    assert isinstance(caught.value, NothingToSend)


def test_a_schedule_narrows_the_lookback_to_its_max_age() -> None:
    base = Settings()
    narrowed = lookback_within(base, max_age(base, daily(max_age_hours=12)))
    assert narrowed.selection.lookback_hours == 12
    assert lookback_within(base, max_age(base, daily(max_age_hours=500))) is base
    assert lookback_within(base, max_age(base, daily())) is base


# --------------------------------------------------------------------------- listing


def test_upcoming_lists_local_and_utc_times_and_the_last_run(settings: Settings) -> None:
    schedules = [daily(), daily("30 6 * * *", KOLKATA, name="india", dry_run=False)]
    run_slot(settings, "daily", utc(2026, 3, 7, 12, 1), schedules=schedules, send=FakePipeline())
    items = upcoming(settings, utc(2026, 3, 7, 12, 30), 2, schedules=schedules)
    assert [s.key for s in items[0].slots] == [
        "daily@2026-03-08T07:00:00",
        "daily@2026-03-09T07:00:00",
    ]
    assert items[0].last is not None
    assert items[0].last.state == "sent"
    assert items[1].last is None
    text = "\n".join(format_upcoming(items))
    assert "Sun 2026-03-08 07:00:00 EDT (-0400)   2026-03-08 11:00:00 UTC" in text
    assert "Sat 2026-03-07 07:00:00 EST" not in text
    assert "india: '30 6 * * *' in Asia/Kolkata, live" in text
    assert "2026-03-08 06:30:00 IST (+0530)   2026-03-08 01:00:00 UTC" in text
    assert "last: 2026-03-07T07:00:00-05:00 sent (edition ed-20260307070000, 3 sent)" in text


def test_upcoming_does_not_create_a_state_database(settings: Settings) -> None:
    items = upcoming(settings, utc(2026, 3, 7), 1, schedules=[daily()])
    assert len(items[0].slots) == 1
    assert not settings.paths.state_db.exists()


# --------------------------------------------------------------------------- the real pipeline

SCRIPT = textwrap.dedent("""
    import logging, sys, threading
    from pathlib import Path
    from newsletter.scheduling.runner import run_forever, run_slot
    from newsletter.cli.process import stop_on_signals
    from newsletter.config.load import load_settings
    from newsletter.errors import NewsletterError

    config = Path(sys.argv[1])
    settings = load_settings(config)
    schedules = settings.schedules
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            if sys.argv[2] == "run":
                run_forever(settings, stop, schedules=schedules)
            else:
                outcome = run_slot(settings, sys.argv[3], schedules=schedules, stop=stop)
                print(outcome.state, flush=True)
                sys.exit(outcome.exit_code)
    except NewsletterError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
""")


def fresh_project(tmp_path: Path, cron: str, zone: str = "UTC") -> Path:
    """Copy the sample publication with its articles moved to the last few hours."""
    content = tmp_path / "content"
    content.mkdir()
    data = json.loads((SAMPLE_DIR / "content" / "articles.json").read_text(encoding="utf-8"))
    stamps = [
        datetime.fromisoformat(a[k])
        for a in data["articles"]
        for k in ("published", "updated")
        if a.get(k)
    ]
    shift = datetime.now(UTC) - timedelta(minutes=30) - max(stamps)
    for item in data["articles"]:
        for key in ("published", "updated"):
            if item.get(key):
                item[key] = (datetime.fromisoformat(item[key]) + shift).isoformat()
    (content / "articles.json").write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "people.csv").write_text(
        "email,name\nana@example.com,Ana\nbo@example.org,Bo\n", encoding="utf-8"
    )
    config = (SAMPLE_DIR / "newsletter.toml").read_text(encoding="utf-8")
    config += textwrap.dedent(f"""
        [subscribers]
        file = "people.csv"

        [output]
        outbox = "outbox"
        state_dir = "state"

        [[schedule]]
        name = "daily"
        cron = "{cron}"
        timezone = "{zone}"
        max_age_hours = 24
    """)
    (tmp_path / "newsletter.toml").write_text(config, encoding="utf-8")
    (tmp_path / "run.py").write_text(SCRIPT, encoding="utf-8")
    return tmp_path / "newsletter.toml"


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(config.parent / "run.py"), str(config), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def soon(seconds: int) -> str:
    """A cron expression (seconds field last) for one instant ``seconds`` from now, in UTC."""
    t = datetime.now(UTC) + timedelta(seconds=seconds)
    return f"{t.minute} {t.hour} {t.day} {t.month} * {t.second}"


def editions(config: Path) -> list[Path]:
    outbox = config.parent / "outbox"
    return sorted(p for p in outbox.iterdir() if p.is_dir()) if outbox.exists() else []


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def slot_states(config: Path) -> list[tuple[str, str]]:
    db = config.parent / "state" / "state.sqlite3"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT key, state FROM schedule_slots").fetchall()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def project_settings(config: Path) -> tuple[Settings, tuple[Schedule, ...]]:
    """Load a project's settings and schedules the way the CLI will."""
    import tomllib

    from newsletter.config.load import parse_settings

    data = tomllib.loads(config.read_text(encoding="utf-8"))
    raw = data.pop("schedule", None)
    settings = parse_settings(data, config.parent, config_file=config)
    return settings, parse_schedules(raw, config.parent)


def test_run_slot_with_the_real_pipeline_writes_one_dry_run_edition(tmp_path: Path) -> None:
    config = fresh_project(tmp_path, "* * * * *")
    settings, schedules = project_settings(config)
    first = run_slot(settings, "daily", schedules=schedules)
    assert first.state == "sent", first.describe()
    assert first.delivery.sent == 2
    assert len(editions(config)) == 1
    assert list(editions(config)[0].glob("*.eml"))
    again = run_slot(settings, "daily", schedules=schedules)
    assert again.state == "done"
    assert len(editions(config)) == 1


def test_a_stale_editors_pick_is_not_sent(tmp_path: Path) -> None:
    config = fresh_project(tmp_path, "* * * * *")
    settings, schedules = project_settings(config)
    data = json.loads((tmp_path / "content" / "articles.json").read_text(encoding="utf-8"))
    old = data["articles"][0]
    old["published"] = old["updated"] = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    (tmp_path / "content" / "articles.json").write_text(json.dumps(data), encoding="utf-8")
    settings = replace(settings, selection=replace(settings.selection, lead_url=old["url"]))
    outcome = run_slot(settings, "daily", schedules=schedules)
    assert outcome.state == "skipped", outcome.describe()
    assert "stale" in outcome.reason
    assert editions(config) == []


@pytest.mark.slow
def test_runner_process_sends_at_the_slot_and_stops_cleanly_on_sigterm(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    config = fresh_project(tmp_path, soon(6))
    runner = start(config, "run")
    processes.append(runner)
    assert wait_for(lambda: len(editions(config)) == 1, 40), runner.stderr
    assert wait_for(lambda: [s for _k, s in slot_states(config)] == ["sent"], 10)
    runner.send_signal(signal.SIGTERM)
    _out, err = runner.communicate(timeout=20)
    assert runner.returncode == 0, err
    assert "sent edition" in err
    assert "scheduler stopped" in err
    assert len(editions(config)) == 1


@pytest.mark.slow
def test_two_runners_started_at_once_send_one_edition(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    config = fresh_project(tmp_path, soon(6))
    runners = [start(config, "run"), start(config, "run")]
    processes.extend(runners)
    assert wait_for(lambda: any(r.poll() is not None for r in runners), 20)
    refused = next(r for r in runners if r.poll() is not None)
    running = next(r for r in runners if r is not refused)
    _out, err = refused.communicate(timeout=10)
    assert refused.returncode == EXIT_PROBLEM
    assert "already running" in err
    assert wait_for(lambda: len(editions(config)) == 1, 40)
    running.send_signal(signal.SIGTERM)
    running.communicate(timeout=20)
    assert running.returncode == 0
    assert len(editions(config)) == 1


@pytest.mark.slow
def test_an_external_cron_firing_twice_at_once_sends_one_edition(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    config = fresh_project(tmp_path, "* * * * *")
    runs = [start(config, "slot", "daily"), start(config, "slot", "daily")]
    processes.extend(runs)
    results = sorted(r.communicate(timeout=60)[0].strip() for r in runs)
    assert results == ["done", "sent"]
    assert len(editions(config)) == 1
    assert [s for _k, s in slot_states(config)] == ["sent"]


def live_project(tmp_path: Path, server_port: int, people: int) -> tuple[Settings, list[Schedule]]:
    config = fresh_project(tmp_path, "* * * * *")
    lines = ["email,name"] + [f"reader{i}@example.org,Reader {i}" for i in range(people)]
    (tmp_path / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings, _ = project_settings(config)
    smtp = replace(settings.smtp, host="127.0.0.1", port=server_port, security="none", pool=1)
    settings = replace(settings, smtp=smtp, signing_key=b"k" * 32)
    live = Schedule(
        name="daily", cron="* * * * *", timezone=UTC_ZONE, dry_run=False, max_age_hours=24
    )
    return settings, [live]


UTC_ZONE = ZoneInfo("UTC")


def test_a_live_slot_is_delivered_once_through_a_real_smtp_server(tmp_path: Path) -> None:
    from smtp_server import SMTPServer

    with SMTPServer() as server:
        settings, schedules = live_project(tmp_path, server.port, 3)
        moment = datetime.now(UTC)  # one moment: a new minute would be a new slot
        first = run_slot(settings, "daily", moment, schedules=schedules)
        again = run_slot(settings, "daily", moment, schedules=schedules)
        assert first.state == "sent", first.describe()
        assert first.delivery.sent == 3
        assert again.state == "done"
        assert sorted(server.per_recipient().values()) == [1, 1, 1]


def test_a_live_slot_stopped_mid_send_resumes_without_sending_twice(tmp_path: Path) -> None:
    from smtp_server import Faults, SMTPServer

    with SMTPServer(faults=Faults(data_delay=0.05)) as server:
        settings, schedules = live_project(tmp_path, server.port, 30)
        moment = datetime.now(UTC)  # one moment: a new minute would be a new slot
        stop = threading.Event()
        outcomes: list[SlotOutcome] = []
        worker = threading.Thread(
            target=lambda: outcomes.append(
                run_slot(settings, "daily", moment, schedules=schedules, stop=stop)
            )
        )
        worker.start()
        server.wait_for(lambda: len(server.messages()) >= 3, timeout=20)
        stop.set()
        worker.join(timeout=30)
        assert outcomes[0].state == "interrupted", outcomes[0].describe()
        assert [s for _k, s, _r in rows(settings)] == ["claimed"]
        partial = len(server.messages())
        assert 3 <= partial < 30
        resumed = run_slot(settings, "daily", moment, schedules=schedules)
        assert resumed.state == "sent", resumed.describe()
        assert resumed.resumed
        assert resumed.edition == outcomes[0].edition
        assert resumed.delivery.sent == 30 - partial
        assert len(server.per_recipient()) == 30
        assert set(server.per_recipient().values()) == {1}


def test_the_list_marks_a_slot_moved_by_the_clock_change(settings: Settings) -> None:
    items = upcoming(settings, utc(2026, 3, 7, 12), 2, schedules=[daily("30 2 * * *")])
    lines = format_upcoming(items)
    assert lines[1].endswith("2026-03-08 07:00:00 UTC   (02:30 does not exist that day)")
    assert "Sun 2026-03-08 03:00:00 EDT" in lines[1]
    assert "does not exist" not in lines[2]
