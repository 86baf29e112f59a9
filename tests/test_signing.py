"""Signing ahead of the SMTP pool: order kept, errors in their place, a bounded window.

The workers never outlive the stream: they end when it is closed, when it ends with an
error, and when the process that started them dies.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dkim_verifier import dkimpy_verify, make_keys, published, settings_for

from newsletter.delivery import signing as signing_module
from newsletter.delivery.signing import BATCHES_AHEAD, sign_ahead, signed
from newsletter.dkim.processes import SigningProcesses
from newsletter.dkim.signer import DkimSigner
from newsletter.errors import DeliveryError, SubscriberError
from newsletter.models import OutgoingMessage
from newsletter.wire import dot_stuff

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> DkimSigner:
    keys = make_keys(tmp_path_factory.mktemp("keys"))
    return DkimSigner(settings_for(keys["ed25519"], selector="ed2026"))


def _message(n: int, sender: bool = True) -> OutgoingMessage:
    head = "From: News <news@meridianpost.example>\r\n" if sender else ""
    data = f"{head}To: r{n}@example.org\r\nSubject: {n}\r\n\r\n.Hello {n}\r\n".encode()
    return OutgoingMessage(f"r{n}@example.org", f"<{n}@x>", data, dot_stuff(data) + b".\r\n")


def _counted(
    count: int, pulled: list[int], fail_at: int | None = None
) -> Iterator[OutgoingMessage]:
    for n in range(count):
        if n == fail_at:
            raise SubscriberError(f"row {n} is broken")
        pulled.append(n)
        yield _message(n, sender=n != fail_at)


def _drain(stream: Iterator[OutgoingMessage], got: list[str]) -> None:
    for message in stream:
        got.append(message.recipient)


def test_messages_come_out_signed_in_their_order(signer: DkimSigner) -> None:
    records = published(signer.settings)
    out = list(sign_ahead(_counted(100, []), signer, processes=3, batch=4))
    assert [m.recipient for m in out] == [f"r{n}@example.org" for n in range(100)]
    for n, message in enumerate(out):
        original = _message(n)
        assert message.data.endswith(original.data)
        assert message.payload is not None
        assert message.payload.endswith(original.payload or b"")
        header = message.data[: -len(original.data)]
        assert message.payload == header + original.payload  # the header needs no stuffing
        assert message.pieces == ()
        assert dkimpy_verify(message.data, records)


def test_each_message_keeps_its_own_envelope_sender(signer: DkimSigner) -> None:
    """A VERP return path survives signing, in the workers and in this process."""
    source = [dataclasses.replace(_message(n), envelope_from=f"b+{n}@x.example") for n in range(9)]
    out = list(sign_ahead(source, signer, processes=2, batch=4))
    assert [m.envelope_from for m in out] == [f"b+{n}@x.example" for n in range(9)]
    assert signed(source[0], signer).envelope_from == "b+0@x.example"


def test_only_a_few_batches_are_signed_ahead(signer: DkimSigner) -> None:
    pulled: list[int] = []
    stream = sign_ahead(_counted(1000, pulled), signer, processes=2, batch=5)
    for _ in range(3):
        next(stream)
    assert len(pulled) <= 2 * BATCHES_AHEAD * 5 + 5
    stream.close()
    assert not any(t.name.startswith("dkim") for t in threading.enumerate())


def test_an_error_from_the_list_comes_after_the_messages_before_it(signer: DkimSigner) -> None:
    got: list[str] = []
    stream = sign_ahead(_counted(50, [], fail_at=13), signer, processes=2, batch=4)
    with pytest.raises(SubscriberError, match="row 13"):
        _drain(stream, got)
    assert got == [f"r{n}@example.org" for n in range(13)]


def test_a_signing_error_comes_in_its_place(signer: DkimSigner) -> None:
    source = [_message(n, sender=n != 6) for n in range(20)]
    got: list[str] = []
    with pytest.raises(DeliveryError, match="without a From header"):
        _drain(sign_ahead(source, signer, processes=2, batch=4), got)
    assert got == [f"r{n}@example.org" for n in range(6)]


def test_a_message_without_payload_stays_without(signer: DkimSigner) -> None:
    bare = OutgoingMessage("r@example.org", "<1@x>", _message(1).data)
    out = signed(bare, signer)
    assert out.payload is None
    assert out.data.endswith(bare.data)
    assert list(sign_ahead([], signer)) == []


# --------------------------------------------------------------------------- the workers


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[SigningProcesses]:
    """The worker pools ``sign_ahead`` starts during the test."""
    started: list[SigningProcesses] = []

    class Recorded(SigningProcesses):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(signing_module, "SigningProcesses", Recorded)
    return started


def _ended(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # not reaped yet (another process's child): a zombie has ended
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def _wait_ended(pids: list[int], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not all(_ended(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_workers_end_when_the_stream_is_closed(
    signer: DkimSigner, pools: list[SigningProcesses]
) -> None:
    stream = sign_ahead(_counted(1000, []), signer, processes=2, batch=5)
    for _ in range(3):
        next(stream)
    (pool,) = pools
    assert len(pool.pids) == 2
    assert not any(_ended(pid) for pid in pool.pids)
    stream.close()
    assert all(_ended(pid) for pid in pool.pids)


def test_the_workers_end_when_the_stream_ends_with_an_error(
    signer: DkimSigner, pools: list[SigningProcesses]
) -> None:
    with pytest.raises(SubscriberError, match="row 30"):
        _drain(sign_ahead(_counted(100, [], fail_at=30), signer, processes=2, batch=4), [])
    (pool,) = pools
    assert all(_ended(pid) for pid in pool.pids)


def test_a_worker_that_dies_is_an_error_in_its_turn(
    signer: DkimSigner, pools: list[SigningProcesses]
) -> None:
    stream = sign_ahead(_counted(1000, []), signer, processes=2, batch=4)
    next(stream)
    (pool,) = pools
    os.kill(pool.pids[1], signal.SIGKILL)
    got: list[str] = []
    with pytest.raises(DeliveryError, match="signing process ended"):
        _drain(stream, got)
    assert got == [f"r{n}@example.org" for n in range(1, len(got) + 1)]
    assert all(_ended(pid) for pid in pool.pids)


def test_the_workers_end_with_the_process_that_started_them(
    signer: DkimSigner, tmp_path: Path
) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(signer.settings.private_key)
    script = f"""
import sys
sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests")!r}]
from pathlib import Path
from dkim_verifier import settings_for
from newsletter.dkim.processes import SigningProcesses
pool = SigningProcesses(settings_for(Path({str(key)!r}), selector="ed2026"), 2)
print(*pool.pids, flush=True)
sys.stdin.read()
"""
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    pids = [int(pid) for pid in child.stdout.readline().split()]
    assert len(pids) == 2
    assert not any(_ended(pid) for pid in pids)
    child.kill()  # no chance to clean up
    child.wait()
    assert _wait_ended(pids)


def test_a_short_send_is_signed_without_workers(
    signer: DkimSigner, pools: list[SigningProcesses]
) -> None:
    records = published(signer.settings)
    out = list(sign_ahead(_counted(5, []), signer, processes=2, batch=8))
    assert [m.recipient for m in out] == [f"r{n}@example.org" for n in range(5)]
    assert all(dkimpy_verify(m.data, records) for m in out)
    assert pools == []


def test_without_workers_messages_are_signed_here(
    signer: DkimSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_start(*args: Any, **kwargs: Any) -> None:
        raise OSError("no processes left")

    monkeypatch.setattr(signing_module, "SigningProcesses", cannot_start)
    records = published(signer.settings)
    out = list(sign_ahead(_counted(30, []), signer, processes=2, batch=4))
    assert [m.recipient for m in out] == [f"r{n}@example.org" for n in range(30)]
    assert all(dkimpy_verify(m.data, records) for m in out)
