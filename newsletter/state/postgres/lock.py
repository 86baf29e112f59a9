"""Advisory locks in the state database: one holder per database and name, across hosts.

The PostgreSQL counterpart of ``newsletter.locks.FileLock``: a session-level advisory
lock, held by a session of its own, so it is released when the holder lets go, when
its process dies, or when its connection is lost (the server ends the session). A
lock's name becomes a pair of keys in the ``newsletter`` namespace, so other
applications that share the database keep their own locks.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import psycopg

from newsletter.errors import NewsletterError

_NAMESPACE = "newsletter"
POLL_S = 0.05

Connection = psycopg.Connection[tuple[Any, ...]]


def session_name() -> str:
    """How this process names its sessions: ``newsletter <pid>@<host>`` (``holder`` reads it)."""
    return f"{_NAMESPACE} {os.getpid()}@{socket.gethostname()}"[:63]


def _key(text: str) -> int:
    return zlib.crc32(text.encode("utf-8")) & 0x7FFF_FFFF


def advisory_key(name: str) -> tuple[int, int]:
    """The two keys of the advisory lock called ``name`` (the namespace's and the name's)."""
    return _key(_NAMESPACE), _key(name)


class AdvisoryLock:
    """An exclusive advisory lock called ``name``, on a session that ``connect`` opens."""

    def __init__(self, connect: Callable[[], Connection], name: str) -> None:
        self._connect = connect
        self.name = name
        self._keys = advisory_key(name)
        self._conn: Connection | None = None

    def acquire(self, wait: float | None = 0.0, stop: threading.Event | None = None) -> bool:
        """Take the lock; wait up to ``wait`` seconds (``None``: until ``stop`` is set)."""
        conn = self._connect()
        deadline = None if wait is None else time.monotonic() + wait
        try:
            while not self._try(conn):
                out_of_time = deadline is not None and time.monotonic() >= deadline
                if out_of_time or (stop is not None and stop.is_set()):
                    conn.close()
                    return False
                if stop is not None:
                    stop.wait(POLL_S)
                else:
                    time.sleep(POLL_S)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return True

    def _try(self, conn: Connection) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", self._keys).fetchone()
        return bool(row and row[0])

    def release(self) -> None:
        """Let go of the lock (closing its session lets go of it in any case)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", self._keys)
            except psycopg.Error:
                pass  # a lost session holds nothing
            finally:
                conn.close()

    def holder(self) -> str:
        """The holder's process id and host, as its session names them, or ``unknown``."""
        try:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT a.application_name FROM pg_locks AS l"
                    " JOIN pg_stat_activity AS a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted"
                    " AND l.database = (SELECT oid FROM pg_database"
                    "                   WHERE datname = current_database())"
                    " AND l.classid = %s AND l.objid = %s AND l.objsubid = 2",
                    self._keys,
                ).fetchone()
        except (psycopg.Error, NewsletterError):
            return "unknown"
        name = str(row[0]) if row else ""
        pid, _, host = name.removeprefix(f"{_NAMESPACE} ").partition("@")
        if not name.startswith(f"{_NAMESPACE} ") or not pid.isdigit():
            return "unknown"
        return f"{pid} on {host}" if host else pid
