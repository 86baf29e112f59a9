"""One reader for every table of the config: typed values, all problems collected.

A problem names its key in full (``publication.site_url: ...``, ``schedule[0].cron: ...``)
so a person can find it in the file; keys nobody read are reported as unknown, with
the closest known key as a hint, because they are usually typos.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.sanitize import url_mistake, url_refusal

D = TypeVar("D")


class TableReader:
    """Reads typed values from a TOML table, collecting problems instead of stopping.

    A "did you mean" hint names the key in full, as problems do; with
    ``qualified_hints=False`` it names the key as written inside the table, which
    reads better for an entry of an array of tables (``schedule[0].``).
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        problems: list[str],
        prefix: str = "",
        *,
        qualified_hints: bool = True,
    ) -> None:
        self.data = dict(data)
        self.problems = problems
        self.prefix = prefix
        self.qualified_hints = qualified_hints
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        """The full name of ``name``, as problems show it."""
        return f"{self.prefix}{name}"

    def problem(self, name: str, text: str) -> None:
        """Record a problem with the value of ``name``."""
        self.problems.append(f"{self.key(name)}: {text}")

    def raw(self, name: str, default: Any = None) -> Any:
        """Mark ``name`` as known and return its value unchecked (``default`` when absent)."""
        self.seen.add(name)
        return self.data.get(name, default)

    def _get(self, name: str, kind: type | tuple[type, ...], what: str) -> Any:
        self.seen.add(name)
        if name not in self.data:
            return None
        value = self.data[name]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.problem(name, f"expected {what}, got {value!r}")
            return None
        if not isinstance(value, kind):
            self.problem(name, f"expected {what}, got {type(value).__name__} {value!r}")
            return None
        return value

    def text(self, name: str, default: str) -> str:
        """Read a string, stripped."""
        value = self._get(name, str, "a string")
        return default if value is None else value.strip()

    def flag(self, name: str, default: bool) -> bool:
        """Read true or false."""
        value = self._get(name, bool, "true or false")
        return default if value is None else bool(value)

    def whole(self, name: str, default: int, low: int = 0, high: int = 10**9) -> int:
        """Read a whole number between ``low`` and ``high``."""
        value = self._get(name, int, "a whole number")
        if value is None:
            return default
        if not low <= value <= high:
            self.problem(name, f"{value} is out of range ({low} to {high})")
            return default
        return int(value)

    def number(self, name: str, default: D, low: float = 0.0, high: float = 1e12) -> float | D:
        """Read a number between ``low`` and ``high`` (NaN is never between)."""
        value = self._get(name, (int, float), "a number")
        if value is None:
            return default
        if not low <= value <= high:
            self.problem(name, f"{value} is out of range ({low} to {high})")
            return default
        return float(value)

    def strings(self, name: str, default: tuple[str, ...], *, example: str = "") -> tuple[str, ...]:
        """Read a list of strings, each stripped; with ``example``, show it for any mistake."""
        value = self.raw(name) if example else self._get(name, list, "a list of strings")
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(
                name,
                f"expected a list of strings, e.g. {example}"
                if example
                else "every entry must be a string",
            )
            return default
        return tuple(v.strip() for v in value)

    def table(self, name: str) -> TableReader:
        """A reader for the table ``name`` (empty when absent), sharing the problem list."""
        value = self._get(name, dict, "a table")
        return TableReader(value or {}, self.problems, f"{self.key(name)}.")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """Read one of ``choices``."""
        value = self.text(name, default)
        if value not in choices:
            self.problem(name, f"{value!r} is not one of {', '.join(choices)}")
            return default
        return value

    def url(self, name: str, default: str, *, required: bool = False) -> str:
        """Read an absolute http(s) URL."""
        value = self.text(name, default)
        if not value:
            if required:
                self.problem(name, "required (an absolute https:// URL)")
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problem(
                name,
                f"{value!r} is not an absolute http(s) URL "
                "(write it like https://example.org/page)",
            )
            return default
        if url_mistake(value):
            self.problem(name, url_refusal(value))
            return default
        return value

    def address(self, name: str, default: str, *, required: bool = False) -> str:
        """Read an email address."""
        value = self.text(name, default)
        if not value:
            if required:
                self.problem(name, "required (an email address)")
            return value
        if "@" not in value or any(c in value for c in ' \r\n<>,"') or value.startswith("@"):
            self.problem(name, f"{value!r} is not an email address")
            return default
        return value

    def zone(self, name: str, value: str) -> ZoneInfo | None:
        """Find the IANA time zone ``value`` read from ``name``; None (reported) if none."""
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, "America"
            self.problem(
                name,
                f"{value!r} is not an IANA time zone "
                "(for example Europe/London, Asia/Kolkata, America/New_York)",
            )
            return None

    def finish(self) -> None:
        """Report keys nobody asked for: usually typos."""
        for name in self.data:
            if name not in self.seen:
                hint = difflib.get_close_matches(name, sorted(self.seen), n=1)
                tip = ""
                if hint:
                    known = self.key(hint[0]) if self.qualified_hints else hint[0]
                    tip = f"; did you mean {known!r}?"
                self.problem(name, f"unknown key{tip}")
