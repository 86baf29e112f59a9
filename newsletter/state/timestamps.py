"""The one way the state file writes a time: UTC text whose order is the time order.

``2026-03-04T12:30:00.000000Z``: always 27 characters (microseconds written even when
zero, the year padded to four digits), so comparing or sorting the text compares the
times, in SQL as in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime

STAMP_LENGTH = len("2026-03-04T12:30:00.000000Z")


def to_stamp(moment: datetime) -> str:
    """Write an aware time as the state file's UTC text; refuse a naive one."""
    # The ledger stamps every state change: UTC times (the clock's) take the short way,
    # and isoformat is the quickest exact writer.
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(
                f"the state file needs timezone-aware times, not the naive {moment.isoformat()}"
            )
        moment = moment.astimezone(UTC)
    return f"{moment.isoformat(timespec='microseconds')[:26]}Z"


def from_stamp(text: str) -> datetime:
    """Read a time written by ``to_stamp`` (aware, in UTC); refuse any other text."""
    if len(text) != STAMP_LENGTH or text[-1] != "Z" or text[10] != "T" or text[19] != ".":
        raise ValueError(f"{text!r} is not a state timestamp such as 2026-03-04T12:30:00.000000Z")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
