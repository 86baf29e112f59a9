"""What the workers of one run share: counts, progress, backoff, the breakers and the pause.

The run pauses (see ``pause``) instead of failing anyone when ``BREAKER_THRESHOLD``
connection-level failures come in a row, or when the relay seems to refuse everyone
(see ``RefusalWindow``): refusals of single addresses never pause it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from newsletter.delivery.smtp.blame import Blame, blame
from newsletter.delivery.smtp.connection import Relay
from newsletter.state.api import Ledger

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0  # seconds before the first retry; doubled each time, with jitter
BACKOFF_CAP = 60.0  # no wait between retries is longer than this
BREAKER_THRESHOLD = 20  # connection-level failures in a row that pause the run
REFUSAL_WINDOW = 50  # the last recipient outcomes the refusal breaker looks at
REFUSAL_MINIMUM = 10  # relay-level refusals in the window before it may pause the run
REFUSAL_SHARE = 0.8  # ... and the share of the window's outcomes they must be

Progress = Callable[[str, str], None]
Suppressed = Callable[[str], str | None]  # why an address may not be mailed now, or None


@dataclass(frozen=True)
class Outcome:
    """One recipient's final answer from the server, as the refusal breaker keeps it."""

    email: str
    reply: str
    blame: Blame | None  # None: accepted

    @property
    def domain(self) -> str:
        """The recipient's domain, casefolded."""
        return self.email.rpartition("@")[2].casefold()


class RefusalWindow:
    """The last ``REFUSAL_WINDOW`` outcomes: do they show a relay that refuses everyone?

    The share counts, not a streak: a list whose first hundred rows are unknown users
    is not a relay refusing everyone, and a relay that refuses everyone is seen after
    ``REFUSAL_MINIMUM`` refusals, wherever it starts. A refusal counts against the relay
    when its reply blames the relay, or blames policy in more than one domain of the
    window (one domain's policy is that domain's business).
    """

    def __init__(self, size: int = REFUSAL_WINDOW) -> None:
        self._recent: deque[Outcome] = deque(maxlen=size)

    def add(self, outcome: Outcome) -> None:
        """Remember one outcome (the oldest is forgotten once the window is full)."""
        self._recent.append(outcome)

    def relay_refusals(self) -> list[Outcome]:
        """Return the refusals of the window that count against the relay."""
        refused = [o for o in self._recent if o.blame in (Blame.RELAY, Blame.POLICY)]
        policy_domains = {o.domain for o in refused if o.blame is Blame.POLICY}
        if len(policy_domains) < 2:
            return [o for o in refused if o.blame is Blame.RELAY]
        return refused

    def refusing_everyone(self) -> bool:
        """Tell whether the relay-level refusals are enough, and enough of the window."""
        count = len(self.relay_refusals())
        return count >= REFUSAL_MINIMUM and count >= REFUSAL_SHARE * len(self._recent)

    def __len__(self) -> int:
        return len(self._recent)


@dataclass
class Run:
    """State shared by the workers of one run: counts, the breakers, the pause."""

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
    suppressed: Suppressed | None = None
    counts: dict[str, int] = field(default_factory=dict)
    pause_reason: str = ""
    error: BaseException | None = None
    connected: threading.Event = field(default_factory=threading.Event)  # any connection made
    _conn_failures: int = 0
    _window: RefusalWindow = field(default_factory=RefusalWindow)
    _refusing: bool = False  # the refusal breaker tripped: relay-level refusals are deferred
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _progress_lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=random.Random)

    def halted(self) -> bool:
        """Tell whether the workers should stop: a stop, a pause or an error."""
        return self.stop.is_set() or bool(self.pause_reason) or self.error is not None

    def pause(self, reason: str) -> None:
        """Pause the run with ``reason`` (the first reason given wins), password scrubbed.

        Whoever started the send reports the reason (it is the summary's), so it is
        logged below warning: a user sees it once.
        """
        with self._lock:
            if not self.pause_reason:
                self.pause_reason = self.relay.scrub(reason)
                log.info("sending paused: %s", self.pause_reason)

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

    def went_well(self, email: str) -> None:
        """Note an accepted message: the connection breaker resets, the window learns it."""
        with self._lock:
            self._conn_failures = 0
            self._window.add(Outcome(email, "", None))

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

    def refused(self, email: str, reply: str) -> None:
        """Record a recipient the server refused for good: failed, unless the relay is at fault.

        When the window shows the relay refusing everyone, the run pauses and the
        refusals that count against the relay are recorded deferred (earlier ones
        recorded failed are changed), so the next run tries them again.
        """
        outcome = Outcome(email, reply, blame(reply))
        with self._lock:
            self._window.add(outcome)
            tripped = not self._refusing and self._window.refusing_everyone()
            blamed = self._window.relay_refusals()
            if tripped:
                self._refusing = True
                for earlier in blamed:
                    if earlier is not outcome:
                        self._defer(earlier)
            deferred = self._refusing and any(o is outcome for o in blamed)
            self.ledger.finish(self.edition_id, email, "deferred" if deferred else "failed", reply)
        if tripped:
            self.pause(
                f"the server at {self.relay.where} refused {len(blamed)} of the last "
                f"{len(self._window)} recipients for reasons not about the addresses (last: "
                f"{reply}); the relay seems to refuse everyone: check its settings (relaying, "
                "authentication, the sender's domain); those recipients are kept for the "
                "next run; run send again to resume"
            )
        self.outcome(email, "deferred" if deferred else "failed")

    def _defer(self, earlier: Outcome) -> None:
        """Turn an earlier failed refusal into a deferred one (holding ``_lock``)."""
        self.ledger.finish(self.edition_id, earlier.email, "deferred", earlier.reply)
        self.counts["failed"] = self.counts.get("failed", 0) - 1
        self.counts["deferred"] = self.counts.get("deferred", 0) + 1
