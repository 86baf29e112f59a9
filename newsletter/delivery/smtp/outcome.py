"""What sending produced: the outcome of one try for a recipient, and a run's summary."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class Kind(enum.Enum):
    """How one try for one recipient ended, and so what happens next."""

    SENT = "sent"
    FAILED = "failed"  # permanent, for this recipient
    RETRY = "retry"  # temporary, for this recipient
    RECONNECT = "reconnect"  # temporary, for the connection or the server
    UNKNOWN = "unknown"  # the data went out, the answer was lost
    FATAL = "fatal"  # a run-level problem: pause


@dataclass(frozen=True)
class Result:
    """The outcome of one try, with the server's reply or the reason."""

    kind: Kind
    reply: str


@dataclass(frozen=True)
class SendSummary:
    """What one run of ``send_messages`` did."""

    edition_id: str
    sent: int
    failed: int
    deferred: int
    skipped: int
    held: int
    seconds: float
    paused: bool
    pause_reason: str
    suppressed: int = 0  # left out as suppressed after the send began

    @property
    def rate(self) -> float:
        """Messages accepted per second over the run."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON-ready values, the rate included."""
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["rate"] = round(self.rate, 2)
        return data
