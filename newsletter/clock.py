"""Time as the tool reads it: the one place that reads the clock, the one ``--now`` parser.

Also how far ahead of now a date must be to count as "in the future" (``FUTURE_SKEW``):
sources warn about such articles, merging never lets them win over a current copy, and
the selection passes them over.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from newsletter.errors import UsageProblem

EXAMPLE_TIME = "2026-03-04T18:00:00+05:30"
FUTURE_SKEW = timedelta(minutes=5)  # clocks disagree a little: this far ahead is still now


def now_utc() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def parse_time(text: str | None) -> datetime | None:
    """Parse an ISO 8601 time as given to ``--now``; a time without an offset stays naive."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageProblem(
            f"{text!r} is not an ISO 8601 time such as {EXAMPLE_TIME}", option="--now"
        ) from None


def in_zone(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` made aware: a naive time is taken as a wall time in ``zone``."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
