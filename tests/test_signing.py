"""Signing ahead of the SMTP pool: order kept, errors in their place, a bounded window."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from dkim_verifier import dkimpy_verify, make_keys, published, settings_for

from newsletter.delivery.signing import BATCHES_AHEAD, sign_ahead, signed
from newsletter.dkim.signer import DkimSigner
from newsletter.errors import DeliveryError, SubscriberError
from newsletter.models import OutgoingMessage
from newsletter.wire import dot_stuff


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
    out = list(sign_ahead(_counted(100, []), signer, threads=3, batch=4))
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


def test_only_a_few_batches_are_signed_ahead(signer: DkimSigner) -> None:
    pulled: list[int] = []
    stream = sign_ahead(_counted(1000, pulled), signer, threads=2, batch=5)
    for _ in range(3):
        next(stream)
    assert len(pulled) <= 2 * BATCHES_AHEAD * 5 + 5
    stream.close()
    assert not any(t.name.startswith("dkim") for t in threading.enumerate())


def test_an_error_from_the_list_comes_after_the_messages_before_it(signer: DkimSigner) -> None:
    got: list[str] = []
    stream = sign_ahead(_counted(50, [], fail_at=13), signer, threads=2, batch=4)
    with pytest.raises(SubscriberError, match="row 13"):
        _drain(stream, got)
    assert got == [f"r{n}@example.org" for n in range(13)]


def test_a_signing_error_comes_in_its_place(signer: DkimSigner) -> None:
    source = [_message(n, sender=n != 6) for n in range(20)]
    got: list[str] = []
    with pytest.raises(DeliveryError, match="without a From header"):
        _drain(sign_ahead(source, signer, threads=2, batch=4), got)
    assert got == [f"r{n}@example.org" for n in range(6)]


def test_a_message_without_payload_stays_without(signer: DkimSigner) -> None:
    bare = OutgoingMessage("r@example.org", "<1@x>", _message(1).data)
    out = signed(bare, signer)
    assert out.payload is None
    assert out.data.endswith(bare.data)
    assert list(sign_ahead([], signer)) == []
