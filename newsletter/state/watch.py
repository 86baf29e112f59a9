"""A send's live view of the suppression list: every suppressed key, kept fresh cheaply.

The watch reads the whole list once, then only what is new (``Suppressions.changes``),
and only when its view is older than ``FRESH_FOR`` when asked. So a send under way
learns of an unsubscribe within about that long, at the cost of one small query per
``FRESH_FOR`` however fast it sends. Asking never waits for the database while another
thread is already refreshing: it answers from the view it has, at most that much older.

A removal is not among the changes: a key stays in the view until ``reason`` finds its
suppression gone (then the address may be mailed again). A recipient a send leaves out
this way is recorded ``failed`` with the reply ``suppressed: <reason>``
(``suppressed_reply``), so ``newsletter status`` shows who and why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from newsletter.state.api import normalize_email
from newsletter.state.lists import Suppressions

FRESH_FOR = 0.15  # seconds a view is trusted before it is refreshed on the next question
SUPPRESSED = "suppressed: "  # how the ledger's reply of a recipient left out starts


def suppressed_reply(reason: str) -> str:
    """The ledger's reply for a recipient a send left out as suppressed (``failed``)."""
    return f"{SUPPRESSED}{reason}"


class SuppressionWatch:
    """Every suppressed key, as the suppression list had it at most ``fresh_for`` ago.

    May be asked by several threads at once (the store must allow it, as both backends'
    suppression lists do).
    """

    def __init__(
        self,
        suppressions: Suppressions,
        *,
        fresh_for: float = FRESH_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = suppressions
        self._fresh_for = fresh_for
        self._clock = clock
        self._lock = threading.Lock()
        self._cursor, self._keys = suppressions.changes(0)
        self._checked = clock()

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` (a ``normalize_email`` key) is suppressed, as of a moment ago."""
        self._refresh_if_stale()
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def snapshot(self) -> frozenset[str]:
        """The suppressed keys as the view has them now (a copy that does not change)."""
        return frozenset(self._keys)

    def reason(self, email: str) -> str | None:
        """Why ``email`` may not be mailed now (``unsubscribe``, ``bounce`` …), or None."""
        key = normalize_email(email)
        if key not in self:
            return None
        found = self._store.get(email)  # rare: only for an address in the view
        if found is None:  # lifted since the view learned of it
            self._keys.discard(key)
            return None
        return found.reason

    def refresh(self) -> None:
        """Learn what was suppressed since the last look (waits for a refresh under way)."""
        with self._lock:
            self._learn()

    def _refresh_if_stale(self) -> None:
        if self._clock() - self._checked < self._fresh_for:
            return
        if not self._lock.acquire(blocking=False):
            return  # another thread is refreshing: answer from the view as it is
        try:
            if self._clock() - self._checked >= self._fresh_for:
                self._learn()
        finally:
            self._lock.release()

    def _learn(self) -> None:
        """Add the keys suppressed since the cursor (called holding ``_lock``)."""
        self._cursor, fresh = self._store.changes(self._cursor)
        self._keys.update(fresh)
        self._checked = self._clock()
