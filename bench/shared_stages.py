"""Stages of senders sharing an edition through PostgreSQL, run in fresh processes.

``share_setup`` stores an edition and its list of synthetic recipients as the first
sender of a shared send does (``PostgresCrew.store_list``, ``COPY``); ``share_ledger``
is one sender of that edition with no SMTP: it claims batches through the crew, marks
each recipient ``in_flight`` through its ledger, settles the claim where the message
data would go out and records ``sent``, with ``pool`` threads as the SMTP pool does.
Several ``share_ledger`` processes may run at once on one edition.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import workload

from newsletter.config.state import PostgresUrl
from newsletter.delivery.crew import BATCH_PER_CONNECTION, MIN_BATCH
from newsletter.delivery.lease import Lease
from newsletter.delivery.smtp.pool import CLAIM_AHEAD, UNRECORDED
from newsletter.models import Digest, Edition, Subscriber
from newsletter.state.api import Ledger
from newsletter.state.openers import open_crew, open_editions, open_ledger
from newsletter.state.sharing import Crew

Params = dict[str, Any]
EDITION = "2026-03-04-benchshared"
POLICY = "resend"


def _subscribers(count: int) -> Iterator[Subscriber]:
    for index, row in enumerate(r for r in workload.rows(count) if r.status == "active"):
        yield Subscriber(email=row.email, name=row.name, line=index + 2)


def share_setup(params: Params) -> Params:
    """Store the edition (sending) and its list; time the stored list (``COPY``)."""
    place = PostgresUrl(params["url"])
    now = datetime.now(UTC)
    with open_editions(place) as archive:
        digest = Digest(lead=None, now=now)
        edition = Edition(EDITION, "Bench", "", "<p>", "text", digest=digest, created=now)
        archive.save(edition, {}, now)
    with open_ledger(place) as ledger:
        ledger.start(EDITION, "Bench")
    began = time.perf_counter()
    with open_crew(place) as crew:
        stored = crew.store_list(EDITION, _subscribers(params["count"]), POLICY)
    return {"seconds": time.perf_counter() - began, "messages": stored}


class _Claims:
    """The recipients this sender claims from the crew, a batch at a time, for its threads."""

    def __init__(self, crew: Crew, worker: int, batch: int) -> None:
        self._crew, self._worker, self._batch = crew, worker, batch
        self._lock = threading.Lock()
        self._got: collections.deque[str] = collections.deque()
        self._done = False
        self.batches = 0

    def take(self) -> str | None:
        with self._lock:
            if not self._got and not self._done:
                claimed = self._crew.claim(EDITION, self._worker, self._batch, POLICY)
                self.batches += 1
                self._got.extend(s.email for s in claimed.subscribers)
                self._done = not claimed.subscribers
            return self._got.popleft() if self._got else None


def _work(book: Ledger, claims: _Claims, counted: list[int]) -> None:
    """Claim ahead, settle, record ``sent``: the SMTP pool's ledger traffic (pool.py)."""
    ahead: collections.deque[tuple[str, int]] = collections.deque()
    sent: collections.deque[int] = collections.deque(maxlen=UNRECORDED)
    done = 0
    while True:
        if ahead:
            email, ticket = ahead.popleft()
        else:
            found = claims.take()
            if found is None:
                break
            email, ticket = found, book.claim(EDITION, found, f"<{found}>", wait=False)
        while len(ahead) < CLAIM_AHEAD and (fresh := claims.take()) is not None:
            ahead.append((fresh, book.claim(EDITION, fresh, f"<{fresh}>", wait=False)))
        if len(sent) == UNRECORDED:
            ticket = max(ticket, sent[0])
        book.settle(ticket)
        sent.append(book.finish(EDITION, email, "sent", "250 2.0.0 Ok: queued"))
        done += 1
    counted.append(done)


def share_ledger(params: Params) -> Params:
    """Be one sender of the stored edition, without SMTP, until nothing is left to claim."""
    place = PostgresUrl(params["url"])
    pool = params["pool"]
    lease_crew = open_crew(place)
    asked = time.monotonic()
    worker = lease_crew.join(EDITION, place.sharing.lease_seconds)
    counted: list[int] = []
    lease = Lease(lease_crew, worker, place.sharing.lease_seconds, asked, lambda: {})
    try:
        with open_ledger(place, lease) as book, open_crew(place) as crew:
            claims = _Claims(crew, worker, max(MIN_BATCH, BATCH_PER_CONNECTION * pool))
            began, wall = time.perf_counter(), time.time()
            threads = [
                threading.Thread(target=_work, args=(book, claims, counted)) for _ in range(pool)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            book.flush()
            seconds, ended = time.perf_counter() - began, time.time()
            crew.leave(worker, "done", POLICY, {"sent": sum(counted)})
    finally:
        lease.close()
    recipients = sum(counted)
    return {
        "seconds": seconds,
        "messages": 2 * recipients,
        "recipients": recipients,
        "batches": claims.batches,
        "began_at": wall,
        "ended_at": ended,
    }
