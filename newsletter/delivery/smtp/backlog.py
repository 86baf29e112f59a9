"""The messages of a run still to try: due retries first, then fresh ones, repeats skipped."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from newsletter.delivery.smtp.run import Run
from newsletter.models import OutgoingMessage
from newsletter.redaction import mask_address
from newsletter.state.api import normalize_email

log = logging.getLogger(__name__)


@dataclass
class Item:
    """One message of the run, with what its tries so far left behind."""

    message: OutgoingMessage
    key: str
    failures: int = 0  # failed tries in this run
    reply: str = ""  # the last failure
    recorded: bool = True  # whether the ledger already has the last failure
    ticket: int = 0  # the ledger ticket of a claim made ahead of the attempt, if any


class Backlog:
    """The messages still to try: due retries first, then the next fresh message."""

    def __init__(
        self, messages: Iterable[OutgoingMessage], known: Mapping[str, str], run: Run
    ) -> None:
        self._fresh: Iterator[OutgoingMessage] | None = iter(messages)
        self._known = known
        self._run = run
        self._hold = run.relay.smtp.in_flight == "hold"
        self._seen: set[str] = set()
        self._retries: list[tuple[float, int, Item]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()

    def take(self) -> tuple[Item | None, float]:
        """Return a message to try, or ``(None, wait)``: retry in ``wait`` s, or 0 when done."""
        with self._lock:
            now = self._run.clock()
            if self._retries and self._retries[0][0] <= now:
                return heapq.heappop(self._retries)[2], 0.0
            item = self._next_fresh()
            if item is not None:
                return item, 0.0
            if self._retries:
                return None, max(self._retries[0][0] - now, 1e-3)
            return None, 0.0

    def _next_fresh(self) -> Item | None:
        while self._fresh is not None:
            message = next(self._fresh, None)
            if message is None:
                self._fresh = None
                break
            key = normalize_email(message.recipient)
            verdict = self._verdict(key)
            if verdict is None:
                self._seen.add(key)
                return Item(message, key)
            log.debug("%s: %s", mask_address(message.recipient), verdict)
            self._run.outcome(message.recipient, verdict)
        return None

    def take_fresh(self, limit: int) -> list[Item]:
        """Return up to ``limit`` messages not tried yet in this run (no retries)."""
        items: list[Item] = []
        with self._lock:
            while len(items) < limit:
                item = self._next_fresh()
                if item is None:
                    break
                items.append(item)
        return items

    def _verdict(self, key: str) -> str | None:
        if key in self._seen:
            return "skipped"
        state = self._known.get(key)
        if state in ("sent", "failed"):
            return "skipped"
        if state == "in_flight" and self._hold:
            return "held"
        return None

    def retry(self, item: Item, due: float) -> None:
        """Put ``item`` back, to be taken again once the clock reaches ``due``."""
        with self._lock:
            heapq.heappush(self._retries, (due, next(self._order), item))

    def drain(self) -> list[Item]:
        """Remove and return every retry still waiting (the run is over)."""
        with self._lock:
            items = [entry[2] for entry in self._retries]
            self._retries.clear()
            return items
