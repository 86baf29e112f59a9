"""DKIM signing in worker processes: answers in order, layouts kept in step, keys never told."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from dkim_verifier import dkimpy_verify, make_keys, published, settings_for

from newsletter.dkim import processes as processes_module
from newsletter.dkim.processes import SigningProcesses
from newsletter.dkim.settings import DkimSettings
from newsletter.errors import DeliveryError


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("keys"))


def _message(n: int, edition: int = 0) -> tuple[bytes, tuple[bytes, ...]]:
    """A message and its pieces: shared at even positions (per edition), personal at odd."""
    pieces = (
        f"From: News <news@meridianpost.example>\r\nSubject: Edition {edition}\r\n".encode(),
        f"To: r{n}@example.org\r\n".encode(),
        f"Date: Wed, 04 Mar 2026 18:00:00 +0530\r\n\r\nHello  from edition {edition},\r\n".encode(),
        f"reader {n}\r\n".encode(),
        f"\tstory of edition {edition} \r\n\r\n".encode(),
    )
    return b"".join(pieces), pieces


def test_batches_come_back_in_order_and_verify(keys: dict[str, Path]) -> None:
    settings = settings_for(keys["rsa"], ("ed2026", keys["ed25519"]))
    records = published(settings)
    pool = SigningProcesses(settings, 2)
    try:
        batches = [[_message(n) for n in range(start, start + 3)] for start in range(0, 15, 3)]
        numbers = [pool.send(batch) for batch in batches]
        whole = _message(99)[0]
        numbers.append(pool.send([(whole, ())]))
        batches.append([(whole, ())])
        for batch, number in zip(batches, numbers, strict=True):
            answers = pool.receive(number)
            assert len(answers) == len(batch)
            for (data, _pieces), header in zip(batch, answers, strict=True):
                assert isinstance(header, bytes)
                assert dkimpy_verify(header + data, records, 0)
                assert dkimpy_verify(header + data, records, 1)
    finally:
        pool.close()


def test_more_editions_than_a_worker_remembers(keys: dict[str, Path]) -> None:
    editions = processes_module._LAYOUTS_KEPT + 5
    settings = settings_for(keys["ed25519"], selector="ed2026")
    records = published(settings)
    pool = SigningProcesses(settings, 1)
    try:
        for n in range(2 * editions):  # each edition forgotten before it comes again
            data, pieces = _message(n, edition=n % editions)
            (header,) = pool.receive(pool.send([(data, pieces)]))
            assert isinstance(header, bytes)
            assert dkimpy_verify(header + data, records), n
    finally:
        pool.close()


def test_pieces_that_do_not_match_go_whole(keys: dict[str, Path]) -> None:
    settings = settings_for(keys["ed25519"], selector="ed2026")
    pool = SigningProcesses(settings, 1)
    try:
        data, _pieces = _message(1)
        _other, pieces = _message(2)  # the same lengths, another reader
        (header,) = pool.receive(pool.send([(data, pieces)]))
        assert isinstance(header, bytes)
        assert dkimpy_verify(header + data, published(settings))
    finally:
        pool.close()


def test_a_message_that_cannot_be_signed_gets_its_error_in_its_place(
    keys: dict[str, Path],
) -> None:
    pool = SigningProcesses(settings_for(keys["rsa"]), 1)
    try:
        good = _message(1)
        bad = (b"To: r@example.org\r\n\r\nno sender\r\n", ())
        answers = pool.receive(pool.send([good, bad, good]))
        assert isinstance(answers[0], bytes)
        assert isinstance(answers[1], DeliveryError)
        assert "without a From header" in str(answers[1])
        assert isinstance(answers[2], bytes)
    finally:
        pool.close()


def test_a_key_a_worker_cannot_use_is_reported_without_the_key(keys: dict[str, Path]) -> None:
    pem = keys["ec"].read_bytes()
    settings = DkimSettings(
        selector="rsa2026",
        domain="meridianpost.example",
        private_key=pem,
        key_origin="dkim.key_file ec.pem",
    )
    pool = SigningProcesses(settings, 1)
    try:
        (answer,) = pool.receive(pool.send([_message(1)]))
    finally:
        pool.close()
    assert isinstance(answer, DeliveryError)
    message = str(answer)
    assert "dkim.key_file ec.pem" in message
    assert "cannot sign DKIM" in message
    body = re.findall(rb"^[A-Za-z0-9+/=]{16,}$", pem, re.MULTILINE)
    assert body
    assert not any(line.decode()[:16] in message for line in body)


def test_workers_end_when_closed_and_ignore_the_terminal(keys: dict[str, Path]) -> None:
    pool = SigningProcesses(settings_for(keys["ed25519"], selector="ed2026"), 2)
    pids = pool.pids
    assert len(pids) == 2
    assert all(os.getpgid(pid) != os.getpgid(0) for pid in pids)  # Ctrl-C is not theirs
    pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_worker_that_died_is_an_error(keys: dict[str, Path]) -> None:
    pool = SigningProcesses(settings_for(keys["ed25519"], selector="ed2026"), 1)
    try:
        number = pool.send([_message(1)])
        pool.receive(number)
        os.kill(pool.pids[0], signal.SIGKILL)
        number = pool.send([_message(2)])
        with pytest.raises(DeliveryError, match="signing process ended"):
            pool.receive(number)
    finally:
        pool.close()
