"""The bounce events on every state backend: reports recorded once, soft bounces counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from state_backends import StateBackend

from newsletter.state.lists import BounceEvent

AT = datetime(2026, 3, 5, 12, 0, 30, tzinfo=UTC)


def test_a_report_is_recorded_once_with_every_address(state: StateBackend, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    hard = BounceEvent("Ana@Example.org", "hard", AT, "e1", "5.1.1")
    other = BounceEvent("bo@example.org", "hard", AT, "e1", "5.1.1")
    with state.open_bounce_log(db) as log:
        assert not log.seen("<r1@mx.example>")
        assert log.record("<r1@mx.example>", [hard, other]) == 2
        assert log.seen("<r1@mx.example>")
        assert log.record("<r1@mx.example>", [hard]) == 0  # a second reading changes nothing
        assert log.record("<r2@mx.example>", []) == 0
        assert not log.seen("<r2@mx.example>")
    with state.open_bounce_log(db) as again:  # what another process sees
        assert again.seen("<r1@mx.example>")
        assert again.history("ANA@example.org") == [
            BounceEvent("ana@example.org", "hard", AT, "e1", "5.1.1")
        ]


def test_soft_bounces_are_counted_over_a_window(state: StateBackend, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    with state.open_bounce_log(db) as log:
        for day in (0, 10, 20, 40):
            event = BounceEvent("joy@example.net", "soft", AT + timedelta(days=day), "", "4.2.2")
            log.record(f"<soft{day}@mx.example>", [event])
        log.record("<c@mx.example>", [BounceEvent("joy@example.net", "complaint", AT)])
        window = timedelta(days=30)
        assert log.count("joy@example.net", "soft", AT, AT + window) == 3
        later = AT + timedelta(days=40)
        assert log.count("JOY@example.net", "soft", later - window, later) == 3  # inclusive
        just_after = later - window + timedelta(microseconds=1)
        assert log.count("joy@example.net", "soft", just_after, later) == 2
        assert log.count("joy@example.net", "complaint", AT, AT) == 1
        assert log.count("nobody@example.net", "soft", AT, later) == 0
        kinds = [e.kind for e in log.history("joy@example.net")]
        assert kinds == ["complaint", "soft", "soft", "soft", "soft"]  # by time, then report


def test_an_unknown_kind_is_refused(state: StateBackend, tmp_path: Path) -> None:
    with state.open_bounce_log(tmp_path / "state.sqlite3") as log:
        with pytest.raises(ValueError, match="bounce kind 'delayed'"):
            log.record("<d@mx.example>", [BounceEvent("a@example.org", "delayed", AT)])
        assert not log.seen("<d@mx.example>")
