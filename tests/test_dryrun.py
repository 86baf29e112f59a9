"""Dry run: .eml files (or one mbox) and a streamed manifest, never overwriting silently."""

from __future__ import annotations

import json
import mailbox
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import idna
import pytest

from newsletter import placeholders
from newsletter.config.settings import Settings
from newsletter.delivery.dryrun import (
    MBOX_NAME,
    DryRunResult,
    mbox_entry,
    mbox_from_line,
    slug,
    write_outbox,
)
from newsletter.errors import DeliveryError, OutputExistsError
from newsletter.messages import EXAMPLE_READER, MessageFactory
from newsletter.models import Digest, Edition, Subscriber
from newsletter.tokens import verify_token

KEY = b"dry-run test key"
SAFE_NAME = re.compile(r"\A\d{5}-[a-z0-9._+-]{1,60}\.eml\Z")

HTML = (
    f"<!DOCTYPE html><html><body><p>{placeholders.GREETING}</p>"
    + "".join(f'<p style="margin:0">Story {i} — día</p>' for i in range(400))
    + f"<p>Sent to {placeholders.EMAIL}. "
    + f'<a href="{placeholders.UNSUBSCRIBE_URL}">Unsubscribe</a></p>'
    "</body></html>"
)
TEXT = (
    f"{placeholders.GREETING}\n\nFrom the desk: today's stories\n>From quoted already\n"
    f"Sent to {placeholders.EMAIL}\nUnsubscribe: {placeholders.UNSUBSCRIBE_URL}\n"
)


def make_edition(**changes: Any) -> Edition:
    edition = Edition(
        id="2026-03-04-daily",
        subject="Metro rail expansion — what changes",
        preheader="Three new lines",
        html=HTML,
        text=TEXT,
        digest=Digest(lead=None),
        created=datetime(2026, 3, 4, 1, 0, tzinfo=UTC),
        warnings=("HTML is close to the clipping limit",),
    )
    return replace(edition, **changes)


def factory_for(edition: Edition, *, key: bytes | None = KEY) -> MessageFactory:
    return MessageFactory(edition, Settings(), signing_key=key)


SUBSCRIBERS = [
    Subscriber(email="ana@example.com", name="Ana Silva", line=2),
    Subscriber(email="bob@bücher.de", name='Bob "The Builder", Jr. <x@y>', line=3),
    Subscriber(email="eve@example.org", name="Eve\r\nBcc: all@example.com", line=4),
    Subscriber(email="../../etc/passwd@example.com", name="", line=5),
    Subscriber(email="zoë@example.net", name="Zoë", line=6),
]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to open a network connection."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the dry run touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def envelope(address: str) -> str:
    """The address as it must appear in To: the domain in ASCII, the local part as is."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{idna.encode(domain, uts46=True).decode()}"


def recipients_in(data: bytes) -> list[str]:
    """Every address in the To header, read as UTF-8 (RFC 6532) and unfolded."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    found = re.findall(r"^To:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.MULTILINE)
    assert len(found) == 1
    return [address for _, address in getaddresses([found[0].replace("\r\n", "")])]


def manifest_of(result: DryRunResult) -> dict[str, Any]:
    data = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_writes_one_eml_per_recipient_that_parses_back(tmp_path: Path, no_network: None) -> None:
    edition = make_edition()
    result = write_outbox(edition, factory_for(edition), SUBSCRIBERS, tmp_path / "outbox")
    assert result.folder == tmp_path / "outbox" / edition.id
    assert result.written == len(SUBSCRIBERS)
    assert result.skipped == 0
    names = sorted(p.name for p in result.folder.iterdir())
    emls = [n for n in names if n.endswith(".eml")]
    assert sorted(set(names) - set(emls)) == ["edition.html", "edition.txt", "manifest.json"]
    assert len(emls) == len(SUBSCRIBERS)
    assert emls[0] == "00001-ana-example.com.eml"
    for name in emls:
        assert SAFE_NAME.match(name), name
        assert ".." not in name
    html, text = factory_for(edition).parts(EXAMPLE_READER)
    assert (result.folder / "edition.html").read_bytes().decode("utf-8") == html
    assert (result.folder / "edition.txt").read_bytes().decode("utf-8") == text
    assert "XNLSLOT" not in html + text  # the slots are filled for an example reader

    manifest = manifest_of(result)
    for sub, entry in zip(SUBSCRIBERS, manifest["recipients"], strict=True):
        data = (result.folder / entry["file"]).read_bytes()
        assert entry["email"] == sub.email
        assert entry["bytes"] == len(data)
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        assert b"\n" not in data.replace(b"\r\n", b"")
        message = parse(data)
        assert message["Message-ID"] == entry["message_id"]
        assert message["Bcc"] is None
        assert recipients_in(data) == [envelope(sub.email)]
        plain = message.get_body(("plain",))
        page = message.get_body(("html",))
        assert plain is not None
        assert page is not None
        assert isinstance(plain, EmailMessage)
        assert isinstance(page, EmailMessage)
        text, markup = plain.get_content(), page.get_content()
        assert f"Sent to {sub.email}" in text
        assert placeholders.EMAIL not in markup
        assert placeholders.GREETING not in text
        token = re.search(r"token=([A-Za-z0-9_-]+)", text)
        assert token
        assert verify_token(KEY, Settings().list.id, sub.email, token.group(1))


def test_manifest_describes_edition_selection_and_warnings(tmp_path: Path) -> None:
    edition = make_edition()
    selection = {"lead": {"id": "a1", "title": "Lead"}, "trending": [], "opinion": []}
    result = write_outbox(
        edition,
        factory_for(edition, key=b""),
        SUBSCRIBERS[:2],
        tmp_path,
        selection=selection,
        extra_warnings=["3 subscriber rows were invalid"],
    )
    manifest = manifest_of(result)
    assert manifest["edition"] == edition.id
    assert manifest["subject"] == edition.subject
    assert manifest["preheader"] == edition.preheader
    assert datetime.fromisoformat(manifest["created"]) == edition.created
    assert manifest["html_bytes"] == len(edition.html.encode())
    assert manifest["text_bytes"] == len(edition.text.encode())
    assert manifest["recipient_count"] == 2
    assert manifest["skipped"] == 0
    assert manifest["selection"] == selection
    warnings = manifest["warnings"]
    assert "HTML is close to the clipping limit" in warnings
    assert "3 subscriber rows were invalid" in warnings
    assert any("development key" in w for w in warnings)


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    edition = make_edition()
    first = write_outbox(edition, factory_for(edition), SUBSCRIBERS[:1], tmp_path)
    before = sorted(p.name for p in first.folder.iterdir())
    with pytest.raises(OutputExistsError, match=r"--force.*--outbox"):
        write_outbox(edition, factory_for(edition), SUBSCRIBERS, tmp_path)
    assert sorted(p.name for p in first.folder.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [edition.id]


def test_force_replaces_the_folder_and_leaves_nothing_behind(tmp_path: Path) -> None:
    edition = make_edition()
    write_outbox(edition, factory_for(edition), SUBSCRIBERS, tmp_path)
    (tmp_path / edition.id / "stale.txt").write_text("old")
    result = write_outbox(edition, factory_for(edition), SUBSCRIBERS[:2], tmp_path, force=True)
    names = sorted(p.name for p in result.folder.iterdir())
    assert "stale.txt" not in names
    assert len([n for n in names if n.endswith(".eml")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [edition.id]


def test_a_failure_midway_keeps_the_old_folder_and_cleans_up(tmp_path: Path) -> None:
    edition = make_edition()
    write_outbox(edition, factory_for(edition), SUBSCRIBERS[:3], tmp_path)

    def broken() -> Iterator[Subscriber]:
        yield SUBSCRIBERS[0]
        raise RuntimeError("subscriber source failed")

    with pytest.raises(RuntimeError, match="subscriber source failed"):
        write_outbox(edition, factory_for(edition), broken(), tmp_path, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [edition.id]
    kept = [p for p in (tmp_path / edition.id).iterdir() if p.suffix == ".eml"]
    assert len(kept) == 3


def test_bad_inactive_and_duplicate_recipients_are_skipped(tmp_path: Path) -> None:
    edition = make_edition()
    subscribers = [
        SUBSCRIBERS[0],
        Subscriber(email="no-at-sign", line=9),
        Subscriber(email="ANA@example.com", line=10),
        Subscriber(email="gone@example.com", status="unsubscribed", line=11),
        Subscriber(email="a@example.com\r\nBcc: x@y.z", line=12),
        SUBSCRIBERS[4],
    ]
    calls: list[int] = []
    result = write_outbox(
        edition, factory_for(edition), subscribers, tmp_path, progress=calls.append
    )
    assert result.written == 2
    assert result.skipped == 4
    assert sum(calls) == len(subscribers)
    manifest = manifest_of(result)
    assert [r["email"] for r in manifest["recipients"]] == ["ana@example.com", "zoë@example.net"]
    text = "\n".join(manifest["warnings"])
    assert "line 9" in text
    assert "line 10" in text
    assert "duplicate" in text
    assert "line 11" in text
    assert "unsubscribed" in text
    assert "line 12" in text


def test_mbox_mode_holds_every_message_and_quotes_from_lines(
    tmp_path: Path, no_network: None
) -> None:
    edition = make_edition()
    result = write_outbox(edition, factory_for(edition), SUBSCRIBERS, tmp_path, mode="mbox")
    names = sorted(p.name for p in result.folder.iterdir())
    assert names == sorted(["edition.html", "edition.txt", "manifest.json", MBOX_NAME])
    raw = (result.folder / MBOX_NAME).read_bytes()
    assert b"\r\n" not in raw
    assert b"\n>From the desk" in raw
    assert b"\n>>From quoted already" in raw
    assert b"\nFrom the desk" not in raw
    manifest = manifest_of(result)
    assert manifest["mode"] == "mbox"
    assert len(manifest["recipients"]) == len(SUBSCRIBERS)
    for entry in manifest["recipients"]:
        assert raw[entry["offset"] :].startswith(b"From newsletter@meridianpost.example ")
        assert entry["file"] == MBOX_NAME
    box = mailbox.mbox(result.folder / MBOX_NAME, create=False)
    try:
        messages = list(box)
    finally:
        box.close()
    assert len(messages) == len(SUBSCRIBERS)
    ids = [m["Message-ID"] for m in messages]
    assert ids == [r["message_id"] for r in manifest["recipients"]]
    for message in messages:
        assert message.get_content_type() == "multipart/alternative"
    for sub in SUBSCRIBERS:
        assert (
            f"<{envelope(sub.email)}>".encode() in raw
            or f"To: {envelope(sub.email)}\n".encode() in raw
        )


def test_mbox_helpers() -> None:
    line = mbox_from_line("news@example.org", datetime(2026, 3, 4, 1, 2, 3, tzinfo=UTC))
    assert line == b"From news@example.org Wed Mar  4 01:02:03 2026\n"
    entry = mbox_entry(b"Subject: x\r\n\r\nFrom a\r\n>From b\r\nnot From c")
    assert entry == b"Subject: x\n\n>From a\n>>From b\nnot From c\n"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("ana@example.com", "ana-example.com"),
        ("../../etc/passwd@example.com", "etc_passwd-example.com"),
        ("a/b\\c@x.org", "a_b_c-x.org"),
        ("zoë@bücher.de", "zo_-b_cher.de"),
        ("...@...", "recipient"),
    ],
)
def test_slugs_are_safe_file_names(address: str, expected: str) -> None:
    assert slug(address) == expected


def test_slugs_are_capped_and_never_traverse() -> None:
    text = slug("x" * 64 + "@" + "sub." * 40 + "example.com")
    assert len(text) <= 60
    for hostile in ("..@..", "\x00@\x00", "./.@./.", "/@/", "CON@..."):
        value = slug(hostile)
        assert "/" not in value
        assert "\x00" not in value
        assert ".." not in value
        assert value not in (".", "..", "")


@pytest.mark.parametrize("edition_id", ["../escape", "a/b", "", ".hidden", "a\x00b", "x" * 200])
def test_unsafe_edition_ids_are_refused(tmp_path: Path, edition_id: str) -> None:
    edition = make_edition(id=edition_id)
    with pytest.raises(DeliveryError, match="edition id"):
        write_outbox(edition, factory_for(edition), SUBSCRIBERS[:1], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    edition = make_edition()
    with pytest.raises(DeliveryError, match="mode"):
        write_outbox(edition, factory_for(edition), SUBSCRIBERS, tmp_path, mode="maildir")


def test_unwritable_outbox_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    edition = make_edition()
    with pytest.raises(DeliveryError, match="cannot create the outbox"):
        write_outbox(edition, factory_for(edition), SUBSCRIBERS, blocker / "outbox")


def test_many_recipients_stream_with_sequential_names(tmp_path: Path) -> None:
    edition = make_edition()
    count = 1500
    subscribers = (Subscriber(email=f"reader{i}@example.com") for i in range(count))
    result = write_outbox(edition, factory_for(edition), subscribers, tmp_path)
    assert result.written == count
    manifest = manifest_of(result)
    files = [r["file"] for r in manifest["recipients"]]
    assert files[0] == "00001-reader0-example.com.eml"
    assert files[-1] == f"{count:05d}-reader{count - 1}-example.com.eml"
    assert len(set(files)) == count
    assert len(os.listdir(result.folder)) == count + 3
