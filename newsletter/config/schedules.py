"""The ``[[schedule]]`` tables of the config, validated into ``Schedule`` settings.

Running them is ``newsletter.scheduling``'s job; this module only reads them, so
the config loader can validate every schedule without importing the pipeline.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from newsletter.config.paths import resolve_path, resolve_source
from newsletter.config.reader import TableReader
from newsletter.config.settings import DEFAULT_GRACE_MINUTES, Schedule
from newsletter.errors import ConfigError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_CRON_LENGTH = 200
EXAMPLE = '[[schedule]]\nname = "daily"\ncron = "0 7 * * *"\ntimezone = "Europe/London"'


def parse_schedules(
    raw: object,
    root: Path,
    *,
    default_timezone: ZoneInfo | None = None,
    config_file: Path | None = None,
) -> tuple[Schedule, ...]:
    """Validate the ``[[schedule]]`` tables; raise one ``ConfigError`` listing every problem."""
    problems: list[str] = []
    schedules = read_schedules(raw, root, problems, default_timezone)
    if problems:
        raise ConfigError(problems, config_file)
    return schedules


def read_schedules(
    raw: object, root: Path, problems: list[str], default_timezone: ZoneInfo | None
) -> tuple[Schedule, ...]:
    """Read the ``[[schedule]]`` tables, adding every problem to ``problems``."""
    if raw is None:
        return ()
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
            reader = TableReader(table, problems, f"{prefix}.", qualified_hints=False)
            found = _parse_one(reader, root, default_timezone)
            if found is not None:
                schedules.append(found)
        problems.extend(_duplicates(raw))
    return tuple(schedules)


def _parse_one(t: TableReader, root: Path, default_tz: ZoneInfo | None) -> Schedule | None:
    before = len(t.problems)
    name = t.text("name", "")
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
    outbox = t.text("outbox", "")
    if outbox and not dry_run:
        t.problem("outbox", "only a dry run writes to an outbox; remove it or set dry_run = true")
    grace = t.number("grace_minutes", DEFAULT_GRACE_MINUTES, 0, 7 * 24 * 60)
    max_age = t.number("max_age_hours", None, 0.01, 24 * 366)
    subscribers = t.text("subscribers", "")
    sources = tuple(
        resolve_source(root, v)
        for v in t.strings("sources", (), example='["content/articles.json"]')
        if v
    )
    t.finish()
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
        grace=timedelta(minutes=grace),
        max_age_hours=max_age,
    )


def _cron_expression(t: TableReader) -> str | None:
    expr = t.text("cron", "")
    if not expr:
        if "cron" not in t.data:
            t.problem("cron", 'required, e.g. cron = "0 7 * * *" (07:00 every day)')
        elif isinstance(t.data["cron"], str):  # a value of another type is reported already
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


def _zone(t: TableReader, default: ZoneInfo | None) -> ZoneInfo | None:
    name = t.text("timezone", "")
    if not name:
        if default is None:
            t.problem("timezone", 'required, an IANA time zone such as "Europe/London"')
        return default
    return t.zone("timezone", name)


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
