"""DKIM signing at line speed: RSA and Ed25519, dual signatures, oversigning, the fast path.

Every signature is checked by dkimpy (see ``dkim_verifier``), most of them after a trip
through a real SMTP server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dkim_verifier import DOMAIN, dkimpy_verify, make_keys, published, settings_for
from smtp_server import SMTPServer

from newsletter import placeholders
from newsletter.config.settings import Settings, SmtpSettings
from newsletter.delivery.signing import sign_ahead
from newsletter.delivery.smtp.pool import send_messages
from newsletter.dkim import signer as signer_module
from newsletter.dkim.selfcheck import verify
from newsletter.dkim.settings import DkimSettings
from newsletter.dkim.signer import SIGNED_HEADERS, DkimSigner
from newsletter.messages import MessageFactory
from newsletter.models import Digest, Edition, Subscriber
from newsletter.state.openers import open_ledger

SETTINGS = replace(
    Settings(), sender=replace(Settings().sender, reply_to="desk@meridianpost.example")
)
CREATED = datetime(2026, 3, 4, 6, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
# Indentation, runs of spaces, tabs, trailing spaces and a leading dot: all that relaxed
# canonicalization and dot-stuffing change, in the shared pieces and around the slots.
HTML = (
    "<!DOCTYPE html>\n<html lang='en'>\n  <body>\n    <table>\n"
    f"      <tr><td>{placeholders.GREETING}   </td></tr>\n"
    + "".join(f"      <tr><td>\tStory  {i}\t \t here</td></tr>   \n" for i in range(300))
    + f'      <tr><td>Sent to {placeholders.EMAIL}.  <a href="{placeholders.UNSUBSCRIBE_URL}">'
    "Unsubscribe</a></td></tr>\n    </table>\n  </body>\n</html>\n"
)
TEXT = (
    f"{placeholders.GREETING}\n\n.a line that starts with a dot\nTwo  spaces\tand a tab   \n"
    + "word " * 200
    + f"\n\nSent to {placeholders.EMAIL}\nUnsubscribe: {placeholders.UNSUBSCRIBE_URL}\n\n\n"
)
READERS = [
    Subscriber(email=f"reader{n}@example.org", name=name)
    for n, name in enumerate(
        ["Ana  Souza", "", "Zoë\tMüller", "O'Brien, Pat", " Trailing ", "東京 太郎", "Bo"] * 2
    )
]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def factory() -> MessageFactory:
    edition = Edition(
        id="2026-03-04-daily",
        subject="Metro rail  expansion:   what changes",
        preheader="Three new lines",
        html=HTML,
        text=TEXT,
        digest=Digest(lead=None),
        created=CREATED,
    )
    return MessageFactory(edition, SETTINGS, signing_key=b"k" * 32)


def _signers(keys: dict[str, Path]) -> dict[str, DkimSettings]:
    return {
        "rsa": settings_for(keys["rsa"]),
        "ed25519": settings_for(keys["ed25519"], selector="ed2026"),
        "dual": settings_for(keys["rsa"], ("ed2026", keys["ed25519"])),
    }


def _tag(signed: bytes, tag: str, index: int = 0) -> str:
    head = signed.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = re.sub(r"\r?\n[ \t]+", " ", head)
    fields = re.findall(r"^DKIM-Signature:(.*)$", unfolded, re.MULTILINE)
    match = re.search(rf"(?:^|;)\s*{tag}=([^;]*)", fields[index])
    assert match, f"no {tag}= in the signature"
    return "".join(match.group(1).split())


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("kind", ["rsa", "ed25519", "dual"])
def test_signed_ahead_messages_verify_after_an_smtp_round_trip(
    keys: dict[str, Path], factory: MessageFactory, kind: str
) -> None:
    settings = _signers(keys)[kind]
    records = published(settings)
    built = [factory.build(reader, payload=True) for reader in READERS]
    signed = sign_ahead(iter(built), DkimSigner(settings), processes=2, batch=3)
    with SMTPServer() as server, open_ledger(keys["rsa"].parent / f"{kind}.db") as ledger:
        smtp = SmtpSettings(host=server.host, port=server.port, security="none", pool=3)
        summary = send_messages(
            signed, smtp, ledger, "e1", envelope_from="bounces@meridianpost.example"
        )
        received = {m.rcpt_tos[0]: m.data for m in server.messages()}
    assert summary.sent == len(READERS)
    for message in built:
        data = received[message.recipient]
        assert data.endswith(message.data)  # the message itself arrives unchanged
        assert b"\r\n..a line that starts" not in data  # dot-stuffing was undone
        for index in range(len(settings.keys)):
            assert dkimpy_verify(data, records, index), (message.recipient, index)
        ok, covered = verify(data, settings)
        assert ok
        assert {name.lower() for name in SIGNED_HEADERS} <= set(covered)


def test_each_signature_of_a_dual_signed_message_verifies_with_its_key_alone(
    keys: dict[str, Path], factory: MessageFactory
) -> None:
    settings = _signers(keys)["dual"]
    message = factory.build(READERS[0])
    signed = DkimSigner(settings).sign(message.data)
    assert signed.count(b"DKIM-Signature:") == 2
    assert _tag(signed, "a", 0) == "rsa-sha256"
    assert _tag(signed, "a", 1) == "ed25519-sha256"
    assert _tag(signed, "s", 1) == "ed2026"
    assert _tag(signed, "bh", 0) == _tag(signed, "bh", 1)
    rsa_only = published(settings_for(keys["rsa"]))
    ed_only = published(settings_for(keys["ed25519"], selector="ed2026"))
    assert rsa_only.keys().isdisjoint(ed_only.keys())
    assert dkimpy_verify(signed, rsa_only, 0)
    assert not dkimpy_verify(signed, rsa_only, 1)
    assert dkimpy_verify(signed, ed_only, 1)
    assert not dkimpy_verify(signed, ed_only, 0)
    rsa_alone = replace(settings, also=())
    assert verify(signed, rsa_alone)[0]
    assert verify(signed, settings.also[0])[0]


def test_pieces_give_the_same_signature_as_the_whole_message(
    keys: dict[str, Path], factory: MessageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signer_module.time, "time", lambda: 1_800_000_000.0)
    signer = DkimSigner(_signers(keys)["dual"])
    for reader in READERS:
        message = factory.build(reader)
        assert len(message.pieces) > 10
        assert signer.signature(message.data, message.pieces) == signer.signature(message.data)


def test_pieces_that_do_not_match_the_data_are_not_trusted(
    keys: dict[str, Path], factory: MessageFactory
) -> None:
    settings = _signers(keys)["ed25519"]
    message = factory.build(READERS[0])
    other = factory.build(READERS[1])
    header = DkimSigner(settings).signature(message.data, other.pieces)
    assert dkimpy_verify(header + message.data, published(settings))


# --------------------------------------------------------------------------- tampering


def _added_at_top(line: bytes) -> Callable[[bytes], bytes]:
    return lambda m: line + m


def _added_at_bottom(line: bytes) -> Callable[[bytes], bytes]:
    return lambda m: m.replace(b"\r\n\r\n", b"\r\n" + line.rstrip(b"\r\n") + b"\r\n\r\n", 1)


TAMPERING = {
    "subject edited": lambda m: m.replace(b"Subject: Metro rail", b"Subject: Metro ra1l", 1),
    "body edited": lambda m: m.replace(b"Story  7", b"Story  8", 1),
    "a line added to the body": lambda m: m + b"P.S. click here\r\n",
    "second From on top": _added_at_top(b"From: Bank <alerts@bank.example>\r\n"),
    "second From below": _added_at_bottom(b"From: Bank <alerts@bank.example>\r\n"),
    "second To on top": _added_at_top(b"To: someone@else.example\r\n"),
    "second To below": _added_at_bottom(b"To: someone@else.example\r\n"),
    "second Subject on top": _added_at_top(b"Subject: You won\r\n"),
    "second Subject below": _added_at_bottom(b"Subject: You won\r\n"),
    "second List-Unsubscribe": _added_at_top(b"List-Unsubscribe: <https://evil.example/>\r\n"),
}


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize("why", list(TAMPERING))
def test_tampering_breaks_the_signature(
    keys: dict[str, Path], factory: MessageFactory, kind: str, why: str
) -> None:
    settings = _signers(keys)[kind]
    records = published(settings)
    message = factory.build(READERS[0]).data
    header = DkimSigner(settings).signature(message)
    assert dkimpy_verify(header + message, records)
    changed = TAMPERING[why](message)
    assert changed != message
    assert not dkimpy_verify(header + changed, records), why
    assert not verify(header + changed, settings)[0], why


def test_an_unsigned_header_added_in_transit_keeps_the_signature(
    keys: dict[str, Path], factory: MessageFactory
) -> None:
    settings = _signers(keys)["ed25519"]
    signed = DkimSigner(settings).sign(factory.build(READERS[0]).data)
    relayed = b"Received: from relay.example by mx.example\r\n" + signed
    assert dkimpy_verify(relayed, published(settings))


def test_from_to_and_subject_are_oversigned(keys: dict[str, Path], factory: MessageFactory) -> None:
    signed = DkimSigner(_signers(keys)["rsa"]).sign(factory.build(READERS[0]).data)
    names = [n.lower() for n in _tag(signed, "h").split(":")]
    for name in ("from", "to", "subject", "list-unsubscribe", "list-unsubscribe-post"):
        assert names.count(name) == 2, name
    for name in ("date", "message-id", "list-id", "reply-to", "mime-version", "content-type"):
        assert names.count(name) == 1, name


def test_a_header_that_occurs_twice_is_signed_twice_and_oversigned_once_more(
    keys: dict[str, Path],
) -> None:
    settings = _signers(keys)["ed25519"]
    message = (
        b"From: a@meridianpost.example\r\nTo: one@example.org\r\nTo: two@example.org\r\n"
        b"Subject: hi\r\n\r\nbody\r\n"
    )
    signed = DkimSigner(settings).sign(message)
    names = [n.lower() for n in _tag(signed, "h").split(":")]
    assert names.count("to") == 3
    assert dkimpy_verify(signed, published(settings))
    assert not dkimpy_verify(signed.replace(b"To: one@", b"To: 0ne@"), published(settings))


# --------------------------------------------------------------------------- Ed25519


def test_ed25519_signature_of_a_plain_message(keys: dict[str, Path]) -> None:
    settings = _signers(keys)["ed25519"]
    message = (
        b"From: The Meridian Post <newsletter@meridianpost.example>\r\nTo: ana@example.org\r\n"
        b"Subject: Hello\r\n\r\nHello  Ana,\r\n\r\n\r\n"
    )
    signed = DkimSigner(settings).sign(message)
    assert signed.endswith(message)
    assert _tag(signed, "a") == "ed25519-sha256"
    assert _tag(signed, "c") == "relaxed/relaxed"
    assert _tag(signed, "d") == DOMAIN
    assert dkimpy_verify(signed, published(settings))
    header_lines = signed.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in header_lines) <= 78


@pytest.mark.parametrize(
    "body",
    [b"", b"\r\n", b"\r\n\r\n", b"no line end", b"   \r\n", b"a\r\n\r\n \r\n\t\r\n"],
)
def test_bodies_at_the_edges_of_the_canonicalization(keys: dict[str, Path], body: bytes) -> None:
    settings = _signers(keys)["dual"]
    message = b"From: a@meridianpost.example\r\nSubject: edge\r\n\r\n" + body
    signed = DkimSigner(settings).sign(message)
    for index in (0, 1):
        assert dkimpy_verify(signed, published(settings), index), body
    assert verify(signed, settings)[0]


def test_a_header_line_that_is_not_a_field_is_refused(keys: dict[str, Path]) -> None:
    message = b"From: a@meridianpost.example\r\nthis is not a field\r\n\r\nbody\r\n"
    with pytest.raises(Exception, match="not a field"):
        DkimSigner(_signers(keys)["rsa"]).sign(message)
