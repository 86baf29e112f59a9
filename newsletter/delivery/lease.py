"""A sender's lease on the recipients it claimed in a shared edition, kept alive by a heartbeat.

The lease runs on the database server's clock: every renewal sets it to end
``lease_seconds`` after the server's now. Here it is measured from the moment the
renewal was asked for, on this host's steady clock, a little short of its length
(``MARGIN``); the server's end can only be later. A heartbeat thread, on a session of its
own, renews it every third of its length and records the sender's counts on the way.

``hold`` is the fence before any message data goes out (the ledger calls it once the
recipient's claim is committed): while the lease runs it returns at once; once this host
cannot be sure of it (the database is away, or the heartbeat is late), it waits for the
next renewal; if the renewal finds the lease lost (the other senders took the recipients
over) it raises ``LeaseLost``, and when the database does not come back in time, the
error that says so. So no recipient is mailed by a sender that no longer holds it,
whatever the hosts' clocks say.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from newsletter.errors import DeliveryError, NewsletterError
from newsletter.state.sharing import Crew

log = logging.getLogger(__name__)

MARGIN = 0.2  # of the lease: what this host holds back for its clock and the way there
BEATS = 3  # renewals per lease length
WAIT_SLICE = 0.1


class LeaseLost(DeliveryError):
    """The sender's lease ran out and the others took its recipients over."""


class Lease:
    """The lease of sender ``worker``, granted when ``granted`` (``clock``) was read.

    ``counts`` gives the sender's counts (``sent``, ``failed``, ``deferred``) for each
    renewal. ``crew`` is the heartbeat's own; ``close`` stops the heartbeat and closes it.
    """

    def __init__(
        self,
        crew: Crew,
        worker: int,
        seconds: float,
        granted: float,
        counts: Callable[[], Mapping[str, int]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._crew, self._worker, self._seconds = crew, worker, seconds
        self._counts, self._clock = counts, clock
        self._until = granted + seconds * (1 - MARGIN)
        self._failure: NewsletterError | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="lease", daemon=True)
        self._beat.start()

    @property
    def worker(self) -> int:
        """The sender's number."""
        return self._worker

    def hold(self) -> None:
        """Return while the lease surely runs; wait for a renewal; raise when it is lost."""
        with self._changed:
            while True:
                if self._failure is not None:
                    raise self._failure
                if self._clock() < self._until:
                    return
                if self._stop.is_set():
                    raise LeaseLost(f"sender {self._worker} left the edition")
                self._changed.wait(WAIT_SLICE)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._seconds / BEATS):
            asked = self._clock()
            try:
                renewed = self._crew.renew(self._worker, self._seconds, self._counts())
            except NewsletterError as err:  # the database did not come back in time
                self._fail(err)
                return
            if not renewed:
                self._fail(
                    LeaseLost(
                        f"sender {self._worker}: its lease ran out before it could be renewed "
                        f"([state] lease_seconds = {self._seconds:g}), and the other senders "
                        "took its recipients over"
                    )
                )
                return
            with self._changed:
                self._until = max(self._until, asked + self._seconds * (1 - MARGIN))
                self._changed.notify_all()

    def _fail(self, err: NewsletterError) -> None:
        log.info("lease of sender %d: %s", self._worker, err)
        with self._changed:
            self._failure = err
            self._changed.notify_all()

    def close(self) -> None:
        """Stop renewing (the lease then runs out on its own, unless the sender left)."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._beat.join()
        self._crew.close()
