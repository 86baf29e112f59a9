"""What the workers of one run share: counts, progress, backoff, the breakers and the pause.

The run pauses (see ``pause``) instead of failing anyone when ``BREAKER_THRESHOLD``
connection-level failures or ``REFUSAL_THRESHOLD`` refused recipients come in a row.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from newsletter.delivery.smtp.connection import Relay
from newsletter.state.api import Ledger

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0  # seconds before the first retry; doubled each time, with jitter
BACKOFF_CAP = 60.0  # no wait between retries is longer than this
BREAKER_THRESHOLD = 20  # connection-level failures in a row that pause the run
REFUSAL_THRESHOLD = 50  # permanent refusals in a row that pause the run

Progress = Callable[[str, str], None]


@dataclass
class Run:
    """State shared by the workers of one run: counts, the breaker, the pause."""

    edition_id: str
    relay: Relay
    ledger: Ledger
    stop: threading.Event
    progress: Progress | None
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    backoff_base: float
    backoff_cap: float
    breaker: int
    counts: dict[str, int] = field(default_factory=dict)
    pause_reason: str = ""
    error: BaseException | None = None
    connected: threading.Event = field(default_factory=threading.Event)  # any connection made
    _conn_failures: int = 0
    _refusals: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _progress_lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=random.Random)

    def halted(self) -> bool:
        """Tell whether the workers should stop: a stop, a pause or an error."""
        return self.stop.is_set() or bool(self.pause_reason) or self.error is not None

    def pause(self, reason: str) -> None:
        """Pause the run with ``reason`` (the first reason given wins), password scrubbed."""
        with self._lock:
            if not self.pause_reason:
                self.pause_reason = self.relay.scrub(reason)
                log.warning("sending paused: %s", self.pause_reason)

    def fail(self, err: BaseException) -> None:
        """Stop the run with ``err``, which ``send_messages`` re-raises (the first one wins)."""
        with self._lock:
            if self.error is None:
                self.error = err

    def outcome(self, email: str, state: str) -> None:
        """Count a recipient's final state for this run and report it to ``progress``."""
        with self._lock:
            self.counts[state] = self.counts.get(state, 0) + 1
        if self.progress is not None:
            with self._progress_lock:
                self.progress(email, state)

    def backoff(self, failures: int) -> float:
        """Return the wait after ``failures`` failures in a row: doubled each time, jittered."""
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, failures - 1))
        return delay * (0.5 + self._rng.random() / 2)

    def went_well(self) -> None:
        """Reset both breakers: a message was accepted."""
        with self._lock:
            self._conn_failures = 0
            self._refusals = 0

    def connection_failed(self, reply: str) -> None:
        """Count a connection-level failure; pause when ``breaker`` came in a row."""
        with self._lock:
            self._conn_failures += 1
            count = self._conn_failures
        if count >= self.breaker:
            self.pause(
                f"the server at {self.relay.where} failed {count} times in a row (last: {reply}); "
                "nothing more was sent; run send again to resume"
            )

    def refused(self, reply: str) -> None:
        """Count a refused recipient; pause when ``REFUSAL_THRESHOLD`` came in a row."""
        with self._lock:
            self._refusals += 1
            count = self._refusals
        if count >= REFUSAL_THRESHOLD:
            self.pause(
                f"the server at {self.relay.where} refused {count} recipients in a row (last: "
                f"{reply}); this looks like a relay or policy problem rather than bad "
                "addresses: check the relay's settings (relaying, authentication, sender "
                "domain); the refused ones are recorded failed; run send again to resume"
            )
