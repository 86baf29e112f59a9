"""The preview's state: the latest snapshot, rebuilt when a watched file changes.

``PreviewApp`` polls the files on a thread; event streams wait for a new version on
the server's event loop (``changed``); each subscriber's message is built once per
snapshot and kept in a small cache.
"""

from __future__ import annotations

import secrets
import threading

from newsletter.errors import NewsletterError
from newsletter.preflight.sample import sample_subscriber
from newsletter.web.preview.notify import Notifier
from newsletter.web.preview.personal import Personal, choose_subscriber, personalize
from newsletter.web.preview.snapshots import PreviewOptions, Snapshot, build_snapshot

POLL_SECONDS = 0.4
SETTLE_SECONDS = 0.15
SETTLE_LIMIT = 20
CACHE_SIZE = 32
JOIN_SECONDS = 5.0


class PreviewApp:
    """Keeps the latest snapshot, rebuilds it when watched files change, personalizes it."""

    def __init__(self, options: PreviewOptions, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.options = options
        self.poll_seconds = poll_seconds
        self._instance = secrets.token_hex(4)
        self._count = 0
        self._lock = threading.RLock()
        self._notifier = Notifier()
        self._stop = threading.Event()
        self._cache: dict[tuple[str, str], Personal] = {}
        self._cache_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._snapshot = build_snapshot(options, self._next_version())

    def _next_version(self) -> str:
        with self._lock:
            self._count += 1
            return f"{self._instance}-{self._count}"

    @property
    def snapshot(self) -> Snapshot:
        """The latest snapshot."""
        with self._lock:
            return self._snapshot

    def rebuild(self) -> Snapshot:
        """Build a new snapshot now and wake everyone waiting for a change."""
        snapshot = build_snapshot(self.options, self._next_version())
        with self._lock:
            self._snapshot = snapshot
        with self._cache_lock:
            self._cache.clear()
        self._notifier.notify()
        return snapshot

    def check(self) -> bool:
        """Rebuild if a watched file changed (once the files stop changing); say if it did."""
        current = self.snapshot
        mark = current.watch.signature()
        if mark == current.signature:
            return False
        for _ in range(SETTLE_LIMIT):
            if self._stop.wait(SETTLE_SECONDS):
                return False
            again = current.watch.signature()
            if again == mark:
                break
            mark = again
        self.rebuild()
        return True

    def start(self) -> None:
        """Watch the files in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="preview-watch", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.check()

    def stop(self) -> None:
        """Stop watching and end every open event stream; returns at once."""
        self._stop.set()
        self._notifier.notify()

    def close(self) -> None:
        """Stop, and wait for the watching thread to end."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_SECONDS)

    @property
    def closed(self) -> bool:
        """Whether ``stop`` (or ``close``) was called."""
        return self._stop.is_set()

    async def changed(self, version: str, timeout: float) -> Snapshot:
        """The snapshot once its version differs from ``version``, or on timeout or stop."""
        await self._notifier.wait(lambda: self.snapshot.version != version or self.closed, timeout)
        return self.snapshot

    def personal(self, snapshot: Snapshot, wanted: str) -> Personal:
        """Build (or reuse) the message for ``wanted``; raise ``NewsletterError`` if unusable."""
        if snapshot.settings is None or snapshot.result is None or snapshot.messages is None:
            raise NewsletterError("the edition could not be built; see the problem above")
        key = (snapshot.version, wanted.strip().casefold())
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        subscriber = choose_subscriber(
            snapshot.settings, snapshot.choices, wanted, self.options.subscriber
        )
        sample = subscriber == sample_subscriber(snapshot.settings)
        made = personalize(
            snapshot.result,
            snapshot.messages,
            subscriber,
            is_sample=sample,
            signed=sample or bool(subscriber.line),  # listed rows have their CSV line
        )
        with self._cache_lock:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = made
        return made
