"""Preflight findings: what a check reports, how a run collects them, how values are quoted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from newsletter.errors import NewsletterError

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One preflight result: level (error or warning), a stable code, and where + how to fix."""

    level: str
    code: str
    message: str

    def __str__(self) -> str:
        """Show the finding as one line: ``error [code] message``."""
        return f"{self.level} [{self.code}] {self.message}"


class PreflightError(NewsletterError):
    """Preflight found errors: nothing was sent."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        lines = "\n".join(f"  - [{f.code}] {f.message}" for f in self.findings)
        super().__init__(
            f"preflight found {len(self.findings)} error(s), so nothing was sent:\n{lines}\n"
            "Fix them, then run 'newsletter check' again."
        )


def errors(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that stop a send."""
    return [f for f in findings if f.level == ERROR]


def raise_for_errors(findings: Iterable[Finding]) -> None:
    """Raise ``PreflightError`` listing every error, if there is any."""
    found = errors(findings)
    if found:
        raise PreflightError(found)


class Report:
    """Collects findings."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, code: str, message: str) -> None:
        """Add an error."""
        self.findings.append(Finding(ERROR, code, message))

    def warning(self, code: str, message: str) -> None:
        """Add a warning."""
        self.findings.append(Finding(WARNING, code, message))


def show(value: str, limit: int = 80) -> str:
    """A value safe to print: control characters escaped, long values cut."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def listing(values: Sequence[str], limit: int = 3) -> str:
    """The first few values, shown, then how many more there are."""
    shown = ", ".join(show(v) for v in values[:limit])
    return f"{shown} and {len(values) - limit} more" if len(values) > limit else shown


def normal(text: str) -> str:
    """Collapse runs of whitespace to one space, so texts compare and print as one line."""
    return " ".join(text.split())
