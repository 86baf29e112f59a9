"""Format times for readers in the publication's zone, whatever the process locale."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def local_time(moment: datetime, zone: tzinfo) -> datetime:
    """Convert to the publication's zone; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def stamp(moment: datetime, zone: tzinfo) -> str:
    """Format a time like ``04-03-2026 17:21 IST`` in the publication's zone."""
    local = local_time(moment, zone)
    return f"{local:%d-%m-%Y %H:%M} {local.tzname() or local.strftime('%z')}".strip()


def long_date(moment: datetime, zone: tzinfo) -> str:
    """Format a date like ``Wednesday, 4 March 2026`` whatever the process locale."""
    local = local_time(moment, zone)
    return f"{_DAYS[local.weekday()]}, {local.day} {_MONTHS[local.month - 1]} {local.year}"
