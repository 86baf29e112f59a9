"""A session that comes back: work cut off by a lost server runs again on a new session.

A sender must live through the database restarting under it. ``Resilient.run`` runs a
piece of work in one transaction; when the server goes away (a restart, a failover, a
dropped network: ``psycopg.OperationalError``), it reconnects with a growing pause and
runs the work again, for up to ``patience`` seconds, then raises ``StateUnavailable``
naming the database and the setting. The caller's work must be safe to run again: a
transaction cut off at its commit may have been committed or not.

Threads that share a ``Resilient`` take turns; while one reconnects, the others wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from newsletter.errors import StateUnavailable
from newsletter.state.postgres.connection import explain, session

log = logging.getLogger(__name__)

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]

FIRST_PAUSE_S = 0.05  # before the first reconnection; doubled each time
LONGEST_PAUSE_S = 2.0


class Resilient:
    """The session of one tenant, reopened when the server goes away (``patience`` s at most)."""

    def __init__(self, url: str, conn: Connection, patience: float) -> None:
        self._url = url
        self._conn: Connection | None = conn
        self._patience = patience
        self._lock = threading.RLock()
        self._closed = False

    def run(
        self,
        work: Callable[[Connection], T],
        *,
        transaction: bool = True,
        again: bool = True,
        pipeline: bool = False,
    ) -> T:
        """Run ``work`` (in one transaction unless told not to), again after a lost server.

        Work that cannot run twice (it consumes a stream) says ``again=False``: it fails
        with the first lost server, and the next work reconnects. Work that reads no
        result before its end says ``pipeline``: the transaction's begin, its statements
        and its commit then reach the server in one go.
        """
        with self._lock:
            deadline: float | None = None
            pause = FIRST_PAUSE_S
            while True:
                try:
                    conn = self._session()
                    if not transaction:
                        return work(conn)
                    if pipeline:
                        with conn.pipeline(), conn.transaction():
                            return work(conn)
                    with conn.transaction():
                        return work(conn)
                except psycopg.OperationalError as err:
                    self._drop()
                    if not again:
                        raise
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self._patience
                        if self._patience > 0:
                            log.warning("%s", self._lost(err))
                    if now >= deadline:
                        raise self._gave_up(err) from err
                    time.sleep(min(pause, deadline - now))
                    pause = min(pause * 2, LONGEST_PAUSE_S)

    def _session(self) -> Connection:
        if self._closed:
            raise StateUnavailable(explain(self._url, "the state database session is closed"))
        if self._conn is None:
            self._conn = session(self._url)
            log.warning("%s", explain(self._url, "reconnected to the state database"))
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _lost(self, err: BaseException) -> str:
        return explain(
            self._url,
            f"lost the state database ({_reason(err)}); reconnecting for up to "
            f"{self._patience:g} s ([state] reconnect_seconds)",
        )

    def _gave_up(self, err: BaseException) -> StateUnavailable:
        waited = f"within {self._patience:g} s ([state] reconnect_seconds)"
        return StateUnavailable(
            explain(
                self._url,
                f"the state database did not come back {waited} ({_reason(err)}); start "
                "the server or fix the network, then run the command again",
            )
        )

    def close(self) -> None:
        """Close the session; later work raises ``StateUnavailable``."""
        with self._lock:
            self._closed = True
            self._drop()


def _reason(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
