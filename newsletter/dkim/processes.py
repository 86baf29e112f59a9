"""DKIM signing in worker processes: messages in as their personal pieces, fields out, in order.

The sending process spends its one interpreter lock on building and sending messages;
canonicalizing, hashing and the private-key operations run here, in separate processes
that take the cores the sending process leaves idle. A worker signs with its own
``DkimSigner``, so its signatures are exactly those of the sending process.

What crosses the pipe is small: a message joined from pieces goes as the number of its
layout and its personal pieces; the shared pieces of a layout (an edition's template)
go to each worker once. A message without usable pieces goes whole. Each worker is a
fresh interpreter (``python -I``: nothing inherited but the pipes) that receives the
keys once on its standard input, never on its command line or in its environment, and
answers batches in the order they came. A worker ends when its input closes: when the
send closes the pool, or when the sending process dies, however it dies. Workers have
their own process group, so a Ctrl-C at the terminal reaches only the sending process,
which decides what happens to the send. Nothing a worker says quotes a key.
"""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from pathlib import Path
from typing import IO

from newsletter.dkim.canonicalizer import joined_from
from newsletter.dkim.settings import DkimSettings
from newsletter.dkim.signer import DkimSigner
from newsletter.errors import DeliveryError

ToSign = tuple[bytes, Sequence[bytes]]
"""A message's bytes and the pieces they are joined from (none: signed whole)."""

_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the package
_START = (
    f"import sys; sys.path.insert(0, {str(_ROOT)!r}); "
    "from newsletter.dkim.processes import serve; serve()"
)
_CLOSE_SECONDS = 5.0  # for a worker to finish its batch and leave once its input closes
_LAYOUTS_KEPT = 16  # layouts a worker remembers, the latest it was sent; a send has one
_KEY_ITEMS = 4  # selector, domain, where the key comes from, the PEM
_LAYOUT, _SIGN = b"layout", b"sign"  # what a frame to a worker holds
_WHOLE = b"-"  # in place of a layout number: the message comes whole
_SIGNED, _FAILED = b"+", b"-"  # what an answer for one message starts with


@dataclass
class _Worker:
    """One worker process and the layouts it was sent, oldest first."""

    process: subprocess.Popen[bytes]
    layouts: deque[int] = field(default_factory=lambda: deque(maxlen=_LAYOUTS_KEPT))


class SigningProcesses:
    """Worker processes that sign with these settings' keys; batches are answered in order."""

    def __init__(self, settings: DkimSettings, count: int) -> None:
        """Start ``count`` workers. Raises ``OSError`` when a process cannot be started."""
        self._workers: list[_Worker] = []
        self._layouts: dict[tuple[int, tuple[bytes, ...]], int] = {}
        self._numbered = 0
        self._turn = 0
        keys = _key_items(settings)
        try:
            for _ in range(max(1, count)):
                process = subprocess.Popen(
                    [sys.executable, "-I", "-c", _START],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    process_group=0,
                )
                self._workers.append(_Worker(process))
                _write(process.stdin, keys)
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """The workers' process ids."""
        return [worker.process.pid for worker in self._workers]

    def send(self, batch: Sequence[ToSign]) -> int:
        """Hand ``batch`` to the next worker; return its number, for ``receive``.

        Batches given to one worker are answered in the order they were sent.
        """
        number = self._turn
        self._turn = (number + 1) % len(self._workers)
        worker = self._workers[number]
        frames: list[list[bytes]] = []
        items = [_SIGN]
        for data, pieces in batch:
            layout = self._layout(pieces) if pieces and joined_from(data, pieces) else None
            if layout is None:
                items += [_WHOLE, data]
                continue
            if layout not in worker.layouts:
                worker.layouts.append(layout)
                frames.append([_LAYOUT, b"%d" % layout, b"%d" % len(pieces), *pieces[::2]])
            items.append(b"%d" % layout)
            items += pieces[1::2]
        frames.append(items)
        with suppress(OSError):  # a worker that is gone: ``receive`` says so in turn
            for frame in frames:
                _write(worker.process.stdin, frame)
        return number

    def receive(self, number: int) -> list[bytes | DeliveryError]:
        """The oldest batch not yet received from worker ``number``: fields or errors.

        Each message gets its DKIM-Signature fields (CRLF lines) or the error that kept
        it from being signed. Raises ``DeliveryError`` when the worker has ended.
        """
        process = self._workers[number].process
        try:
            answers = _read(process.stdout)
        except (EOFError, OSError, ValueError):
            code = process.poll()
            how = "ended" if code is None else f"ended with exit code {code}"
            raise DeliveryError(f"a DKIM signing process {how} unexpectedly") from None
        return [
            answer[1:] if answer[:1] == _SIGNED else DeliveryError(answer[1:].decode())
            for answer in answers
        ]

    def close(self) -> None:
        """Let every worker finish and end; one that does not end in time is killed."""
        for worker in self._workers:
            _close(worker.process.stdin)
        for worker in self._workers:
            try:
                worker.process.wait(timeout=_CLOSE_SECONDS)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            _close(worker.process.stdout)

    def _layout(self, pieces: Sequence[bytes]) -> int:
        """The number of the layout of messages made of these shared pieces."""
        key = len(pieces), tuple(pieces[::2])
        number = self._layouts.get(key)
        if number is None:
            if len(self._layouts) >= _LAYOUTS_KEPT:  # layouts of earlier editions
                self._layouts.clear()
            number = self._layouts[key] = self._numbered
            self._numbered += 1
        return number


def serve() -> None:
    """Run one worker: read the keys, then sign batches until the input ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sending process decides when to stop
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the answers own standard output; anything else goes aside
    try:
        keys = _read(source)
    except EOFError:
        return
    signer: DkimSigner | DeliveryError
    try:
        signer = DkimSigner(_settings(keys))
    except DeliveryError as err:  # names the key's origin and what is wrong, never the key
        signer = err
    layouts: dict[int, tuple[int, list[bytes]]] = {}
    while True:
        try:
            frame = _read(source)
        except EOFError:
            return
        if frame[0] == _LAYOUT:
            number, count, *shared = frame[1:]
            layouts.pop(int(number), None)
            if len(layouts) >= _LAYOUTS_KEPT:  # forgets the oldest sent, as the sender does
                del layouts[next(iter(layouts))]
            layouts[int(number)] = int(count), shared
            continue
        answers = _signed(signer, layouts, frame[1:])
        try:
            _write(sink, answers)
        except BrokenPipeError:  # the sending process is gone
            return


def _key_items(settings: DkimSettings) -> list[bytes]:
    """The keys as a worker receives them: selector, domain, origin and PEM of each."""
    items: list[bytes] = []
    for key in settings.keys:
        items += [key.selector.encode(), key.domain.encode(), key.key_origin.encode()]
        items.append(key.private_key)
    return items


def _settings(items: list[bytes]) -> DkimSettings:
    """The settings the keys came in (see ``_key_items``)."""
    keys = [
        DkimSettings(
            selector=items[at].decode(),
            domain=items[at + 1].decode(),
            key_origin=items[at + 2].decode(),
            private_key=items[at + 3],
        )
        for at in range(0, len(items), _KEY_ITEMS)
    ]
    first, *also = keys
    return DkimSettings(
        first.selector, first.domain, first.private_key, first.key_origin, tuple(also)
    )


def _signed(
    signer: DkimSigner | DeliveryError,
    layouts: dict[int, tuple[int, list[bytes]]],
    items: list[bytes],
) -> list[bytes]:
    """Sign the messages of a batch: a field block or an error for each."""
    answers: list[bytes] = []
    pieces: tuple[bytes, ...]
    at = 0
    while at < len(items):
        if items[at] == _WHOLE:
            data, pieces = items[at + 1], ()
            at += 2
        else:
            count, shared = layouts[int(items[at])]
            personal = items[at + 1 : at + 1 + count // 2]
            at += 1 + count // 2
            joined: list[bytes] = [b""] * count
            joined[::2], joined[1::2] = shared, personal
            pieces, data = tuple(joined), b"".join(joined)
        try:
            if isinstance(signer, DeliveryError):
                raise signer
            answers.append(_SIGNED + signer.signature(data, pieces))
        except DeliveryError as err:
            answers.append(_FAILED + str(err).encode())
        except Exception as err:  # told to the sending process, in the message's turn
            answers.append(_FAILED + f"DKIM signing failed: {type(err).__name__}: {err}".encode())
    return answers


def _write(stream: IO[bytes] | None, items: Sequence[bytes]) -> None:
    """Write byte strings as one frame: their count, their lengths, then the bytes."""
    assert stream is not None
    stream.write(struct.pack(f">I{len(items)}I", len(items), *map(len, items)))
    stream.write(b"".join(items))
    stream.flush()


def _read(stream: IO[bytes] | None) -> list[bytes]:
    """Read one frame written by ``_write``; ``EOFError`` when the stream ends first."""
    assert stream is not None
    (count,) = struct.unpack(">I", _exactly(stream, 4))
    lengths = struct.unpack(f">{count}I", _exactly(stream, 4 * count))
    data = _exactly(stream, sum(lengths))
    return [data[start:end] for start, end in pairwise(accumulate(lengths, initial=0))]


def _exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise EOFError
    return data


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with suppress(OSError):  # a worker that is already gone
            stream.close()
