"""The ``[[schedule]]`` tables of the config, validated into ``Schedule`` settings.

Running them is ``newsletter.schedule``'s job; this module only reads them, so
the config loader can validate every schedule without importing the pipeline.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from newsletter.config.paths import resolve_path, resolve_source
from newsletter.config.settings import DEFAULT_GRACE_MINUTES, Schedule
from newsletter.errors import ConfigError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_CRON_LENGTH = 200
EXAMPLE = '[[schedule]]\nname = "daily"\ncron = "0 7 * * *"\ntimezone = "Europe/London"'


_KEYS = (
    "name",
    "cron",
    "timezone",
    "dry_run",
    "sources",
    "subscribers",
    "outbox",
    "grace_minutes",
    "max_age_hours",
)


class _Table:
    """Typed reads from one ``[[schedule]]`` table, collecting problems."""

    def __init__(self, data: Mapping[str, Any], prefix: str, problems: list[str]) -> None:
        self.data = data
        self.prefix = prefix
        self.problems = problems

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{self.prefix}.{key}: {text}")

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(key, f"expected a string, got {type(value).__name__} {value!r}")
            return None
        return value.strip()

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {value!r}")
            return default
        return value

    def number(self, key: str, low: float, high: float) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, f"expected a number, got {value!r}")
            return None
        if not low <= value <= high or value != value:
            self.problem(key, f"{value!r} is out of range ({low:g} to {high:g})")
            return None
        return float(value)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, 'expected a list of strings, e.g. ["content/articles.json"]')
            return ()
        return tuple(v.strip() for v in value if v.strip())

    def unknown(self) -> None:
        for key in self.data:
            if key not in _KEYS:
                hint = difflib.get_close_matches(str(key), _KEYS, n=1)
                tip = f"; did you mean {hint[0]!r}?" if hint else ""
                self.problem(str(key), f"unknown key{tip}")


def parse_schedules(
    raw: object,
    root: Path,
    *,
    default_timezone: ZoneInfo | None = None,
    config_file: Path | None = None,
) -> tuple[Schedule, ...]:
    """Validate the ``[[schedule]]`` tables; raise one ``ConfigError`` listing every problem."""
    if raw is None:
        return ()
    problems: list[str] = []
    schedules: list[Schedule] = []
    if isinstance(raw, dict):
        problems.append(
            "schedule: write each schedule as an array table, [[schedule]] with double "
            "brackets, not [schedule]"
        )
    elif not isinstance(raw, list):
        problems.append(f"schedule: expected [[schedule]] tables, got {type(raw).__name__}")
    else:
        for index, table in enumerate(raw):
            prefix = f"schedule[{index}]"
            if not isinstance(table, dict):
                problems.append(f"{prefix}: expected a table, got {type(table).__name__}")
                continue
            found = _parse_one(_Table(table, prefix, problems), root, default_timezone)
            if found is not None:
                schedules.append(found)
        problems.extend(_duplicates(raw))
    if problems:
        raise ConfigError(problems, config_file)
    return tuple(schedules)


def _parse_one(t: _Table, root: Path, default_tz: ZoneInfo | None) -> Schedule | None:
    before = len(t.problems)
    name = t.text("name") or ""
    if not name:
        t.problem("name", 'required, e.g. name = "daily"')
    elif not NAME_PATTERN.fullmatch(name):
        t.problem(
            "name",
            f"{name!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
        )
    cron = _cron_expression(t)
    zone = _zone(t, default_tz)
    dry_run = t.flag("dry_run", True)
    outbox = t.text("outbox")
    if outbox and not dry_run:
        t.problem("outbox", "only a dry run writes to an outbox; remove it or set dry_run = true")
    grace = t.number("grace_minutes", 0, 7 * 24 * 60)
    max_age = t.number("max_age_hours", 0.01, 24 * 366)
    subscribers = t.text("subscribers")
    sources = tuple(resolve_source(root, v) for v in t.texts("sources"))
    t.unknown()
    if len(t.problems) > before or zone is None or cron is None:
        return None
    return Schedule(
        name=name,
        cron=cron,
        timezone=zone,
        dry_run=dry_run,
        sources=sources,
        subscribers=resolve_path(root, subscribers) if subscribers else None,
        outbox=resolve_path(root, outbox) if outbox else None,
        grace=timedelta(minutes=DEFAULT_GRACE_MINUTES if grace is None else grace),
        max_age_hours=max_age,
    )


def _cron_expression(t: _Table) -> str | None:
    expr = t.text("cron")
    if not expr:
        if expr is None and "cron" not in t.data:
            t.problem("cron", 'required, e.g. cron = "0 7 * * *" (07:00 every day)')
        elif expr is not None:
            t.problem("cron", 'must not be empty, e.g. cron = "0 7 * * *"')
        return None
    if len(expr) > MAX_CRON_LENGTH or any(c in expr for c in "\r\n\t\0"):
        t.problem("cron", 'must be one short line such as "0 7 * * *"')
        return None
    expr = " ".join(expr.split())
    try:
        it = croniter(expr, datetime(2000, 1, 1), ret_type=datetime)
        it.get_next(datetime)
    except CroniterError as err:
        t.problem(
            "cron",
            f"{expr!r} is not a usable cron expression ({err}); write five fields, "
            'minute hour day-of-month month day-of-week, e.g. "0 7 * * *" for 07:00 '
            'every day or "30 6 * * mon-fri" for 06:30 on weekdays',
        )
        return None
    return expr


def _zone(t: _Table, default: ZoneInfo | None) -> ZoneInfo | None:
    name = t.text("timezone")
    if not name:
        if default is None:
            t.problem("timezone", 'required, an IANA time zone such as "Europe/London"')
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        t.problem(
            "timezone",
            f"{name!r} is not an IANA time zone (for example Europe/London, Asia/Kolkata, "
            "America/New_York)",
        )
        return None


def _duplicates(raw: list[Any]) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for index, table in enumerate(raw):
        name = table.get("name") if isinstance(table, dict) else None
        if not isinstance(name, str) or not name.strip():
            continue
        if name.strip() in seen:
            problems.append(
                f"schedule[{index}].name: {name.strip()!r} is already the name of "
                f"schedule[{seen[name.strip()]}]; each schedule needs its own name"
            )
        else:
            seen[name.strip()] = index
    return problems
