"""Dry run of a large list: a sample of messages saved, every recipient in the manifest."""

from __future__ import annotations

import json
import mailbox
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter import placeholders
from newsletter.config.settings import Settings
from newsletter.delivery.dryrun import MBOX_NAME, DryRunResult, mbox_entry, write_outbox
from newsletter.errors import DeliveryError
from newsletter.messages import MessageFactory
from newsletter.models import Digest, Edition, Subscriber

EDITION = Edition(
    id="2026-03-04-daily",
    subject="Metro rail expansion",
    preheader="Three new lines",
    html=f"<html><body><p>{placeholders.GREETING}</p><p>{placeholders.EMAIL}</p>"
    f'<a href="{placeholders.UNSUBSCRIBE_URL}">x</a></body></html>',
    text=f"{placeholders.GREETING}\nFrom the desk\n{placeholders.EMAIL}\n"
    f"{placeholders.UNSUBSCRIBE_URL}\n",
    digest=Digest(lead=None),
    created=datetime(2026, 3, 4, 1, 0, tzinfo=UTC),
)
PEOPLE = [Subscriber(email=f"reader{n}@example.com", name=f"Reader {n}", line=n) for n in range(7)]


def factory() -> MessageFactory:
    return MessageFactory(EDITION, Settings(), signing_key=b"sample test key")


def manifest_of(result: DryRunResult) -> dict[str, Any]:
    data = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_sample_saves_the_first_messages_and_lists_everyone(tmp_path: Path) -> None:
    result = write_outbox(EDITION, factory(), PEOPLE, tmp_path, sample=3)
    assert (result.written, result.saved, result.skipped) == (7, 3, 0)
    emls = sorted(p.name for p in result.folder.glob("*.eml"))
    assert emls == [
        "00001-reader0-example.com.eml",
        "00002-reader1-example.com.eml",
        "00003-reader2-example.com.eml",
    ]
    manifest = manifest_of(result)
    assert manifest["sample"] == 3
    assert manifest["saved"] == 3
    assert manifest["recipient_count"] == 7
    entries = manifest["recipients"]
    assert [e["email"] for e in entries] == [p.email for p in PEOPLE]
    assert [e.get("file") for e in entries] == [*emls, None, None, None, None]
    full = factory()
    for person, entry in zip(PEOPLE, entries, strict=True):
        message = full.build(person)
        assert entry["message_id"] == message.message_id
        assert entry["bytes"] == len(message.data)
    for name, entry in zip(emls, entries, strict=False):
        assert (result.folder / name).read_bytes() == full.build(PEOPLE[int(name[:5]) - 1]).data
        assert entry["bytes"] == (result.folder / name).stat().st_size


def test_skipped_recipients_do_not_use_sample_places(tmp_path: Path) -> None:
    people = [
        Subscriber(email="broken address", line=2),
        Subscriber(email="gone@example.com", status="unsubscribed", line=3),
        *PEOPLE[:3],
    ]
    result = write_outbox(EDITION, factory(), people, tmp_path, sample=2)
    assert (result.written, result.saved, result.skipped) == (3, 2, 2)
    assert len(list(result.folder.glob("*.eml"))) == 2


def test_sample_in_mbox_mode_holds_only_the_sample(tmp_path: Path) -> None:
    result = write_outbox(EDITION, factory(), PEOPLE, tmp_path, mode="mbox", sample=2)
    box = mailbox.mbox(result.folder / MBOX_NAME, create=False)
    try:
        ids = [m["Message-ID"] for m in box]
    finally:
        box.close()
    entries = manifest_of(result)["recipients"]
    assert ids == [e["message_id"] for e in entries[:2]]
    assert all("offset" not in e and "file" not in e for e in entries[2:])
    assert entries[1]["offset"] > entries[0]["offset"] == 0


def test_sample_of_zero_writes_only_the_manifest(tmp_path: Path) -> None:
    result = write_outbox(EDITION, factory(), PEOPLE, tmp_path, sample=0)
    assert result.saved == 0
    assert not list(result.folder.glob("*.eml"))
    assert len(manifest_of(result)["recipients"]) == len(PEOPLE)


def test_a_sample_larger_than_the_list_saves_everyone(tmp_path: Path) -> None:
    result = write_outbox(EDITION, factory(), PEOPLE, tmp_path, sample=1000)
    assert result.saved == len(PEOPLE)
    assert "sample" in manifest_of(result)


def test_without_a_sample_the_manifest_says_everything_was_saved(tmp_path: Path) -> None:
    result = write_outbox(EDITION, factory(), PEOPLE[:2], tmp_path)
    manifest = manifest_of(result)
    assert result.saved == 2
    assert manifest["saved"] == 2
    assert "sample" not in manifest


def test_negative_sample_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="sample -1"):
        write_outbox(EDITION, factory(), PEOPLE, tmp_path / "outbox", sample=-1)
    assert not (tmp_path / "outbox").exists()


def test_mbox_offsets_point_at_each_message(tmp_path: Path) -> None:
    edition = replace(EDITION, text=EDITION.text + "From here\n>From there\n")
    make = MessageFactory(edition, Settings(), signing_key=b"k")
    result = write_outbox(edition, make, PEOPLE, tmp_path, mode="mbox")
    raw = (result.folder / MBOX_NAME).read_bytes()
    entries = manifest_of(result)["recipients"]
    starts = [m.start() for m in re.finditer(rb"^From ", raw, re.MULTILINE)]
    assert starts == [e["offset"] for e in entries]
    assert b"\n>From here" in raw
    assert b"\n>>From there" in raw


def reference_entry(data: bytes) -> bytes:
    """The mboxrd rule spelled out: every line matching ``>*From `` gets one more ``>``."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    quoted = [b">" + line if re.match(rb">*From ", line) else line for line in lines]
    body = b"\n".join(quoted)
    return body if body.endswith(b"\n") else body + b"\n"


PIECES = st.sampled_from(
    [b"From ", b">From ", b">>From ", b"From", b"> From ", b"\r\n", b"\n", b">", b"x", b" ", b"F"]
)


@given(st.lists(PIECES, max_size=30).map(b"".join))
def test_mbox_entry_quotes_exactly_the_from_lines(data: bytes) -> None:
    assert mbox_entry(data) == reference_entry(data)
