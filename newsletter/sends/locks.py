"""Who may send now: the locks that keep sends from mailing anyone twice.

One sender per SQLite state (``send_lock``); on a shared state, one sender at a time
decides which edition is sent and stores it (``edition_lock``), then all send it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from newsletter.config.settings import Settings
from newsletter.errors import DeliveryError
from newsletter.sends.plan import SendHooks
from newsletter.state.openers import open_lock

SEND_LOCK = "live-send.lock"
EDITION_LOCK = "shared-edition.lock"


@contextmanager
def send_lock(
    settings: Settings, why: str = "a second one would mail people twice"
) -> Iterator[None]:
    """Hold the state folder's send lock: one live send (or abandon) at a time."""
    lock = open_lock(settings.paths.state, SEND_LOCK)
    if not lock.acquire():
        raise DeliveryError(
            f"another send is running from {settings.paths.state.where} (pid {lock.holder()}); "
            f"wait for it to finish, or stop it: {why}"
        )
    try:
        yield
    finally:
        lock.release()


@contextmanager
def edition_lock(
    settings: Settings, *, wait: bool = True, hooks: SendHooks = SendHooks()
) -> Iterator[None]:
    """Hold the shared state's edition lock: one sender at a time decides what is sent.

    The sender that holds it finds the edition to join, or builds one and stores it with
    its list; the others wait for it (``wait``), then join what it stored.
    """
    lock = open_lock(settings.paths.state, EDITION_LOCK)
    if not lock.acquire():
        if not wait:
            raise DeliveryError(
                f"a sender (pid {lock.holder()}) is preparing an edition in "
                f"{settings.paths.state.where}; try again when it has started sending"
            )
        hooks.warn(f"waiting for the sender that prepares the edition (pid {lock.holder()})")
        if not lock.acquire(wait=None, stop=hooks.stop or threading.Event()):
            raise DeliveryError("stopped while waiting to join the edition; nothing was sent")
    try:
        yield
    finally:
        lock.release()
