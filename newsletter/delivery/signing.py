"""Sign outgoing messages ahead of the SMTP pool: in worker processes, in order, a bounded window.

The sending threads take messages one at a time under a lock and share one interpreter
lock; signing among them would make them wait for each other. Here batches of messages
go to worker processes (``dkim.processes``) that canonicalize, hash and sign them on
the cores the sending process leaves idle, while earlier messages are sent; this process
only hands over the personal pieces and puts the fields that come back on top. At most
a few batches per worker are in flight, so memory stays flat whatever the size of the
list. A send of a single batch is signed here: starting processes would cost more.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

from newsletter.dkim.processes import SigningProcesses
from newsletter.dkim.signer import DkimSigner
from newsletter.models import OutgoingMessage
from newsletter.wire import dot_stuff

log = logging.getLogger(__name__)

BATCH = 8  # messages per hand-off to a worker: fewer round trips
BATCHES_AHEAD = 3  # per worker

_Outcome = OutgoingMessage | Exception


@dataclass(frozen=True)
class _InFlight:
    """A batch a worker is signing, and the error that ends it, if any."""

    messages: list[OutgoingMessage]
    error: Exception | None
    worker: int


def signing_processes() -> int:
    """One worker process per core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def signed(message: OutgoingMessage, signer: DkimSigner) -> OutgoingMessage:
    """``message`` with its DKIM-Signature fields on top (and on top of its SMTP payload)."""
    return _with_header(message, signer.signature(message.data, message.pieces))


def sign_ahead(
    messages: Iterable[OutgoingMessage],
    signer: DkimSigner,
    *,
    processes: int | None = None,
    batch: int = BATCH,
) -> Generator[OutgoingMessage, None, None]:
    """Yield ``messages`` signed, in their order, the next few signed in worker processes.

    An error raised while producing or signing a message is raised when its turn comes,
    after every message before it. Closing the generator ends the workers.
    """
    source = iter(messages)
    first, exhausted = _take(source, batch)
    if exhausted:
        yield from _raising(_sign_here(first, signer))
        return
    workers = processes or signing_processes()
    try:
        pool = SigningProcesses(signer.settings, workers)
    except OSError as err:
        log.warning("cannot start DKIM signing processes (%s); signing in this one", err)
        yield from _raising(_sign_here(first, signer))
        yield from (signed(message, signer) for message in source)
        return
    window: deque[_InFlight] = deque()
    try:
        chunk = first
        while True:
            while chunk and len(window) < workers * BATCHES_AHEAD:
                window.append(_send(pool, chunk))
                chunk, exhausted = ([], True) if exhausted else _take(source, batch)
            if not window:
                return
            yield from _raising(_received(pool, window.popleft()))
    finally:
        pool.close()


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


def _raising(outcomes: Iterable[_Outcome]) -> Iterator[OutgoingMessage]:
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
        yield outcome


def _sign_here(items: Iterable[_Outcome], signer: DkimSigner) -> Iterator[_Outcome]:
    for item in items:
        if isinstance(item, Exception):
            yield item
            return
        try:
            yield signed(item, signer)
        except Exception as err:  # raised in order by sign_ahead
            yield err
            return


def _send(pool: SigningProcesses, chunk: list[_Outcome]) -> _InFlight:
    """Hand the chunk's messages to a worker (those before an error that ends it)."""
    messages = [item for item in chunk if not isinstance(item, Exception)]
    error = next((item for item in chunk if isinstance(item, Exception)), None)
    return _InFlight(messages, error, pool.send([(m.data, m.pieces) for m in messages]))


def _received(pool: SigningProcesses, batch: _InFlight) -> Iterator[_Outcome]:
    """The batch's messages with the fields its worker sends back, or their errors."""
    for message, header in zip(batch.messages, pool.receive(batch.worker), strict=True):
        if isinstance(header, Exception):
            yield header
            return
        yield _with_header(message, header)
    if batch.error is not None:
        yield batch.error


def _with_header(message: OutgoingMessage, header: bytes) -> OutgoingMessage:
    payload = None if message.payload is None else dot_stuff(header) + message.payload
    return OutgoingMessage(
        message.recipient,
        message.message_id,
        header + message.data,
        payload,
        envelope_from=message.envelope_from,
    )
