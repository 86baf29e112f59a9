"""Wake coroutines on any event loop when a thread says something changed.

The preview rebuilds on a thread; its event streams wait on the server's event loop.
A waiter registers before it checks its condition, so a change between the check and
the wait is never missed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import suppress


class Notifier:
    """Let coroutines wait for a condition that ``notify`` (from any thread) may have met."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self) -> None:
        """Wake every waiter to check its condition again."""
        with self._lock:
            waiting = list(self._waiting)
        for loop, event in waiting:
            with suppress(RuntimeError):  # that loop has closed: nobody to wake
                loop.call_soon_threadsafe(event.set)

    async def wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Return once ``ready()`` holds (True) or after ``timeout`` seconds (False)."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.add(entry)
        try:
            async with asyncio.timeout(timeout):
                while not ready():
                    await entry[1].wait()
                    entry[1].clear()
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiting.discard(entry)
        return True
