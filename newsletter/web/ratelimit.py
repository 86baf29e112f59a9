"""How often a client may ask: at most N requests per period for each key, in bounded memory.

A sliding log per key (the times of its last N requests), so a burst at the end of one
minute and another at the start of the next cannot double the rate. The keys least
recently seen are forgotten beyond ``max_keys``, so a flood of addresses cannot fill
the memory. Used from the event loop only (no locking). The limits are per process:
several worker processes each keep their own.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 50_000


class SlidingLimit:
    """Allow at most ``limit`` events per ``period`` seconds for each key."""

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.limit = max(1, limit)
        self.period = period
        self._clock = clock
        self._max_keys = max_keys
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, key: str = "") -> bool:
        """Count one event for ``key`` if it is within the limit; say whether it was."""
        now = self._clock()
        times = self._seen.get(key)
        if times is None:
            times = self._seen[key] = deque(maxlen=self.limit)
            while len(self._seen) > self._max_keys:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(key)
        if len(times) == self.limit and now - times[0] < self.period:
            return False
        times.append(now)
        return True

    def retry_after(self, key: str = "") -> int:
        """Whole seconds until ``key`` may ask again (at least 1)."""
        times = self._seen.get(key)
        if not times or len(times) < self.limit:
            return 1
        return max(1, int(times[0] + self.period - self._clock()) + 1)
