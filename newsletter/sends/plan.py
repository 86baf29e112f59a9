"""What one send is asked to do, how its caller follows it, and what it did.

``SendPlan`` (who, what to build, how to deliver), ``SendHooks`` (warnings, the last
word, progress, a stop) and ``SendReport`` (who it reached, the summary).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from newsletter.audience import (
    Audience,
    Reach,
)
from newsletter.delivery.dryrun import DryRunResult
from newsletter.delivery.smtp.outcome import SendSummary
from newsletter.models import Edition
from newsletter.pipeline import BuildOptions
from newsletter.preflight.findings import Finding
from newsletter.subscribers.reader import SubscriberScan


@dataclass(frozen=True)
class Resume:
    """Which interrupted live edition a send finishes before it builds a new one.

    ``edition_id``: always this one (a slot resuming its own edition). Otherwise the
    most recent interrupted edition, if it was created at or after ``not_before`` (any
    age when ``None``).
    """

    edition_id: str = ""
    not_before: datetime | None = None


@dataclass(frozen=True)
class DryRun:
    """Write the messages to ``outbox`` instead of sending them."""

    outbox: Path
    force: bool = False
    mode: str = "eml"
    sample: int | None = None


@dataclass(frozen=True)
class SendPlan:
    """Everything one send needs to know: who, what to build, and how to deliver.

    ``resume`` is ``None`` for sends that never finish an interrupted edition (test
    copies, dry runs). A plan with ``dry_run`` touches no network. ``spaced``: a new
    live edition is refused within ``[send] min_interval_hours`` of the last finished
    one (a send by hand; a schedule's slot is its own guard, and ``--allow-early``
    drops it); test copies, dry runs and resuming are never refused.
    """

    audience: Audience
    build: BuildOptions = BuildOptions()
    resume: Resume | None = Resume()
    dry_run: DryRun | None = None
    spaced: bool = False

    @property
    def test_copy(self) -> bool:
        """Whether this send is a test copy to one address (``--to``)."""
        return self.audience.to is not None


@dataclass(frozen=True)
class Prepared:
    """An edition that passed the preflight gate, about to go out.

    ``list_size``: how many recipients the edition's list in the state holds, when the
    senders sharing it stored it already (``None``: the list is read from its file).
    """

    edition: Edition
    selection: dict[str, Any]
    resumed: bool
    findings: tuple[Finding, ...] = ()
    list_size: int | None = None


def _ignore(*_args: object) -> None:
    return None


@dataclass(frozen=True)
class SendHooks:
    """How a caller follows a send: warnings, a last word before it starts, progress.

    ``ready`` runs after the preflight gate and before the first message; raising
    there (a declined confirmation) stops the send with nothing sent. ``stop`` ends a
    live send after the messages under way.
    """

    warn: Callable[[str], None] = _ignore
    ready: Callable[[Prepared], None] = _ignore
    progress: Callable[[str, str], None] | None = None
    stop: threading.Event | None = None


@dataclass(frozen=True)
class SendReport:
    """What one send did: the edition, who it reached, the live summary or dry-run result."""

    prepared: Prepared
    reach: Reach
    summary: SendSummary | None = None
    written: DryRunResult | None = None
    stopped: bool = False

    @property
    def scan(self) -> SubscriberScan:
        """What reading the subscriber list found."""
        return self.reach.scan

    @property
    def suppressed(self) -> int:
        """Recipients left out as suppressed: before the send, and since it began."""
        during = self.summary.suppressed if self.summary is not None else 0
        return self.reach.suppressed + during

    @property
    def complete(self) -> bool:
        """Whether the send reached its end (not paused, not stopped)."""
        return not self.stopped and (self.summary is None or not self.summary.paused)
