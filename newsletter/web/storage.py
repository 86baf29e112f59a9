"""The service's way to the state: a few threads, each with tenants it opened once.

Handlers never touch the database on the event loop: they ``await storage.call(fn)``,
which runs ``fn(tenants)`` on a state thread. Each thread opens its tenants (the
suppressions and the members) on first use and keeps them, so a request opens no
connection. A SQLite state gets one thread: SQLite writes one at a time anyway, and a
single writer never waits in SQLite's busy handler, which sleeps in steps of
milliseconds; another process (a send) may still hold the file for a moment, which the
state's busy timeout covers. PostgreSQL gets ``POSTGRES_THREADS`` threads.

Unsubscribes are committed in groups: a thread that takes one ``suppress`` also takes
the others already waiting (up to ``MAX_GROUP``) and writes them in one transaction,
so a burst of one-click POSTs costs one commit, not one each, and nobody waits for a
group to fill: a lone request is written at once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from newsletter.state.lists import Members, SuppressionRequest, Suppressions

T = TypeVar("T")

POSTGRES_THREADS = 4
MAX_GROUP = 256  # suppressions written in one transaction at most


@dataclass(frozen=True)
class Openers:
    """How to open each tenant the service uses (``newsletter.state.openers``)."""

    suppressions: Callable[[], Suppressions]
    members: Callable[[], Members]


class Tenants:
    """One thread's open tenants, each opened on first use."""

    def __init__(self, openers: Openers) -> None:
        self._openers = openers
        self._suppressions: Suppressions | None = None
        self._members: Members | None = None

    @property
    def suppressions(self) -> Suppressions:
        """The suppression list."""
        if self._suppressions is None:
            self._suppressions = self._openers.suppressions()
        return self._suppressions

    @property
    def members(self) -> Members:
        """The members who subscribed through the service."""
        if self._members is None:
            self._members = self._openers.members()
        return self._members

    def close(self) -> None:
        """Close whatever was opened."""
        for tenant in (self._suppressions, self._members):
            if tenant is not None:
                tenant.close()
        self._suppressions = self._members = None


_Call = tuple[Callable[[Tenants], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


@dataclass(frozen=True)
class _Suppress:
    request: SuppressionRequest
    future: asyncio.Future[bool]
    loop: asyncio.AbstractEventLoop


_Job = _Call | _Suppress


class Storage:
    """Run calls on the state on ``threads`` threads, each with its own tenants."""

    def __init__(self, openers: Openers, threads: int = 1) -> None:
        self._openers = openers
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"state-{n}", daemon=True)
            for n in range(max(1, threads))
        ]
        self._started = False
        self._lock = threading.Lock()

    async def call(self, fn: Callable[[Tenants], T]) -> T:
        """Run ``fn(tenants)`` on a state thread and return what it returns (or raise)."""
        self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, future, loop))
        return await future

    async def suppress(self, request: SuppressionRequest) -> bool:
        """Suppress one address, committed with the others waiting; True if it was new."""
        self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._jobs.put(_Suppress(request, future, loop))
        return await future

    def _start(self) -> None:
        if self._started:
            return
        with self._lock:
            if not self._started:
                for thread in self._threads:
                    thread.start()
                self._started = True

    def _work(self) -> None:
        tenants = Tenants(self._openers)
        try:
            job = self._jobs.get()
            while job is not None:
                if isinstance(job, _Suppress):
                    job = self._suppress_group(tenants, job)
                    continue
                _run_call(tenants, job)
                job = self._jobs.get()
        finally:
            tenants.close()

    def _suppress_group(self, tenants: Tenants, first: _Suppress) -> _Job | None:
        """Write ``first`` and the suppressions waiting behind it; return the next other job."""
        group = [first]
        following: _Job | None = None
        while len(group) < MAX_GROUP:
            try:
                waiting = self._jobs.get_nowait()
            except queue.Empty:
                break
            if not isinstance(waiting, _Suppress):
                following = waiting
                break
            group.append(waiting)
        try:
            added = tenants.suppressions.add_many([item.request for item in group])
        except Exception as err:  # raised again in each request that waits for it
            for item in group:
                item.loop.call_soon_threadsafe(_fail, item.future, err)
        else:
            for item, new in zip(group, added, strict=True):
                item.loop.call_soon_threadsafe(_resolve, item.future, new)
        if following is None:
            return self._jobs.get()
        return following

    def close(self, timeout: float = 5.0) -> None:
        """Let the calls under way finish, then close every tenant."""
        if not self._started:
            return
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)


def _run_call(tenants: Tenants, job: _Call) -> None:
    fn, future, loop = job
    try:
        value = fn(tenants)
    except Exception as err:  # raised again in the request that waits for it
        loop.call_soon_threadsafe(_fail, future, err)
    else:
        loop.call_soon_threadsafe(_resolve, future, value)


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.cancelled():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], err: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(err)
