"""The rate limit of a run (``smtp.rate``), one for all its connections."""

from __future__ import annotations

import threading
from collections.abc import Callable


class RateLimiter:
    """Hand out send times spaced 1/rate apart, shared by every connection of a run."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._next: float | None = None

    def reserve(self) -> float:
        """Return the time at which the caller may start its next transaction."""
        with self._lock:
            now = self._clock()
            if not self._interval:
                return now
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + self._interval
            return slot
