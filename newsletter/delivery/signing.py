"""Sign outgoing messages ahead of the SMTP pool: on threads, in order, a bounded window.

The sending threads take messages one at a time under a lock; signing there would make
them wait for each other. Here messages are signed in small batches by a few threads
while earlier ones are sent: RSA signing runs in OpenSSL without the interpreter lock,
so it uses the cores the sending threads leave idle. At most a few batches per thread
are signed ahead, so memory stays flat whatever the size of the list.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from newsletter.dkim.signer import DkimSigner
from newsletter.models import OutgoingMessage
from newsletter.wire import dot_stuff

BATCH = 8  # messages per task: fewer hand-offs between threads
BATCHES_AHEAD = 3  # per signing thread

_Outcome = OutgoingMessage | Exception


def signing_threads() -> int:
    """One signing thread per core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def signed(message: OutgoingMessage, signer: DkimSigner) -> OutgoingMessage:
    """``message`` with its DKIM-Signature fields on top (and on top of its SMTP payload)."""
    header = signer.signature(message.data, message.pieces)
    payload = None if message.payload is None else dot_stuff(header) + message.payload
    return OutgoingMessage(message.recipient, message.message_id, header + message.data, payload)


def sign_ahead(
    messages: Iterable[OutgoingMessage],
    signer: DkimSigner,
    *,
    threads: int | None = None,
    batch: int = BATCH,
) -> Iterator[OutgoingMessage]:
    """Yield ``messages`` signed, in their order, signing the next few on other threads.

    An error raised while producing or signing a message is raised when its turn comes,
    after every message before it.
    """
    workers = threads or signing_threads()
    source = iter(messages)
    window: deque[Future[list[_Outcome]]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dkim")
    try:
        exhausted = False
        while True:
            while not exhausted and len(window) < workers * BATCHES_AHEAD:
                chunk, exhausted = _take(source, batch)
                if chunk:
                    window.append(pool.submit(_sign_batch, chunk, signer))
            if not window:
                return
            for outcome in window.popleft().result():
                if isinstance(outcome, Exception):
                    raise outcome
                yield outcome
    finally:
        for future in window:
            future.cancel()
        pool.shutdown(wait=True)


def _take(source: Iterator[OutgoingMessage], count: int) -> tuple[list[_Outcome], bool]:
    """The next ``count`` messages (an error ends the list); True when nothing is left."""
    chunk: list[_Outcome] = []
    try:
        for _ in range(count):
            chunk.append(next(source))
    except StopIteration:
        return chunk, True
    except Exception as err:  # raised in order by sign_ahead
        chunk.append(err)
        return chunk, True
    return chunk, False


def _sign_batch(chunk: list[_Outcome], signer: DkimSigner) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    for item in chunk:
        if isinstance(item, Exception):
            outcomes.append(item)
            continue
        try:
            outcomes.append(signed(item, signer))
        except Exception as err:  # raised in order by sign_ahead
            outcomes.append(err)
    return outcomes
