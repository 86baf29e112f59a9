"""Dry run: write every recipient's message to files instead of sending. No network.

The edition's folder is written under a temporary sibling name and moved into place
at the end, so a crash never leaves a half-written folder under the real name, and
``force`` replaces an old folder only once the new one is complete.

Three shapes: one ``.eml`` file per recipient (the default), one ``messages.mbox``
(mboxrd), or either of them limited to a sample of the first N messages. The manifest
always lists every recipient. One file per recipient costs the file system a file
creation each, which dominates a dry run of a large list; mbox or a sample avoid it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from newsletter.errors import DeliveryError, OutputExistsError
from newsletter.messages import EXAMPLE_READER, MessageFactory
from newsletter.models import Edition, OutgoingMessage, Subscriber

MODES = ("eml", "mbox")
MBOX_NAME = "messages.mbox"
MANIFEST_NAME = "manifest.json"
MAX_SLUG = 60
MAX_LISTED_SKIPS = 100  # skipped recipients named in the manifest; the rest are counted

_EDITION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9._+-]+")
_MBOX_FROM = re.compile(rb"\n(>*From )")
_MBOX_CHUNK = 1 << 20


@dataclass(frozen=True)
class DryRunResult:
    """Where a dry run wrote its files and how many messages it wrote.

    ``written`` counts the recipients built and listed in the manifest; ``saved`` the
    messages saved as files or mbox entries (fewer than ``written`` only with a sample).
    """

    folder: Path
    written: int
    manifest: Path
    skipped: int
    saved: int


def slug(address: str) -> str:
    """Make a short file-name-safe form of an address: ``ana@example.com`` → ``ana-example.com``."""
    text = _SLUG_UNSAFE.sub("_", address.casefold().replace("@", "-", 1))
    text = re.sub(r"\.{2,}", ".", text).strip("._-")[:MAX_SLUG].rstrip(".")
    return text or "recipient"


def mbox_from_line(sender: str, created: datetime) -> bytes:
    """Return the ``From `` separator line that starts a message in an mbox file."""
    when = created.astimezone(UTC) if created.tzinfo else created
    stamp = f"{when:%a %b} {when.day:2d} {when:%H:%M:%S %Y}"
    return f"From {sender or 'MAILER-DAEMON'} {stamp}\n".encode("ascii", "replace")


def _has_from_line(body: bytes) -> bool:
    """Tell whether a line of ``body`` starts with ``From `` after any number of ``>``."""
    start = body.find(b"From ")
    while start >= 0:
        line = start
        while line and body[line - 1] == 0x3E:  # ">"
            line -= 1
        if line == 0 or body[line - 1] == 0x0A:  # "\n"
            return True
        start = body.find(b"From ", start + 5)
    return False


def mbox_entry(data: bytes) -> bytes:
    """Turn CRLF message bytes into an mboxrd entry body: LF lines, ``From `` lines quoted."""
    body = b"\n".join(data.split(b"\r\n"))  # one pass; replace() searches twice
    if _has_from_line(body):
        body = _MBOX_FROM.sub(rb"\n>\1", b"\n" + body)[1:]
    return body if body.endswith(b"\n") else body + b"\n"


class _Manifest:
    """Write ``manifest.json`` as recipients arrive, never holding the list in memory."""

    def __init__(self, stream: IO[str], edition: Edition, mode: str, sample: int | None) -> None:
        self.stream = stream
        self.mode = mode
        self.count = 0
        head = {
            "edition": edition.id,
            "subject": edition.subject,
            "preheader": edition.preheader,
            "created": edition.created.isoformat(),
            "html_bytes": edition.html_size,
            "text_bytes": len(edition.text.encode("utf-8")),
            "mode": mode,
        }
        if sample is not None:
            head["sample"] = sample
        stream.write("{\n")
        for key, value in head.items():
            stream.write(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n")
        stream.write('  "recipients": [')

    def add(self, entry: Mapping[str, Any]) -> None:
        """Append one recipient's entry."""
        separator = ",\n    " if self.count else "\n    "
        self.stream.write(separator + json.dumps(entry, ensure_ascii=False))
        self.count += 1

    def close(self, tail: Mapping[str, Any]) -> None:
        """Finish the recipient list and write the closing fields."""
        self.stream.write("\n  ]" if self.count else "]")
        for key, value in tail.items():
            text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
            self.stream.write(f",\n  {json.dumps(key)}: {text.replace(chr(10), chr(10) + '  ')}")
        self.stream.write("\n}\n")


class _Skips:
    """Count skipped recipients and keep the first few reasons for the manifest."""

    def __init__(self) -> None:
        self.count = 0
        self.reasons: list[str] = []

    def add(self, reason: str) -> None:
        self.count += 1
        if len(self.reasons) < MAX_LISTED_SKIPS:
            self.reasons.append(reason)

    def warnings(self) -> list[str]:
        more = self.count - len(self.reasons)
        return self.reasons + ([f"... and {more} more skipped recipient(s)"] if more else [])


def _check_target(
    edition: Edition, outbox: Path, mode: str, force: bool, sample: int | None
) -> Path:
    """Validate the arguments and return the edition's final folder."""
    if mode not in MODES:
        raise DeliveryError(f"dry-run mode {mode!r} is not one of {', '.join(MODES)}")
    if sample is not None and sample < 0:
        raise DeliveryError(
            f"dry-run sample {sample} is negative; give how many messages to save (0 or more)"
        )
    if not _EDITION_ID.match(edition.id) or ".." in edition.id:
        raise DeliveryError(
            f"edition id {edition.id!r} cannot be a folder name; it may hold only letters, "
            "digits, '.', '_' and '-'"
        )
    folder = outbox / edition.id
    if (folder.exists() or folder.is_symlink()) and not force:
        raise OutputExistsError(
            f"{folder} already exists; use --force to replace it, or choose another --outbox"
        )
    return folder


def _write_file(path: str, data: bytes) -> None:
    """Write a new file without fsync: a dry run favours speed over durability."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class _EmlFiles:
    """Save each message as its own ``NNNNN-address.eml`` file."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)

    def save(self, number: int, email: str, data: bytes) -> dict[str, Any]:
        """Write message ``number`` to its own file; return its manifest fields."""
        name = f"{number:05d}-{slug(email)}.eml"
        _write_file(os.path.join(self.folder, name), data)
        return {"file": name}

    def close(self) -> None:
        """Nothing to finish: every file is complete once written."""


class _Mbox:
    """Append each message to one mboxrd file, noting where it starts."""

    def __init__(self, folder: Path, separator: bytes) -> None:
        self.stream = (folder / MBOX_NAME).open("wb", buffering=_MBOX_CHUNK)
        self.separator = separator
        self.offset = 0

    def save(self, number: int, email: str, data: bytes) -> dict[str, Any]:
        """Append one message; return its manifest fields."""
        body = mbox_entry(data)
        self.stream.write(self.separator)
        self.stream.write(body)
        self.stream.write(b"\n")
        entry = {"file": MBOX_NAME, "offset": self.offset}
        self.offset += len(self.separator) + len(body) + 1
        return entry

    def close(self) -> None:
        """Flush and close the mbox file."""
        self.stream.close()


def _fill(
    folder: Path,
    manifest: _Manifest,
    factory: MessageFactory,
    subscribers: Iterable[Subscriber],
    progress: Callable[[int], None] | None,
    sample: int | None,
) -> _Skips:
    """Save every recipient's message (or the first ``sample``) and list each in the manifest."""
    skips = _Skips()
    seen: set[str] = set()
    separator = mbox_from_line(factory.settings.sender.address, factory.edition.created)
    saver = _Mbox(folder, separator) if manifest.mode == "mbox" else _EmlFiles(folder)
    try:
        for subscriber in subscribers:
            message = _message(factory, subscriber, seen, skips)
            if message is not None:
                entry: dict[str, Any] = {
                    "email": subscriber.email,
                    "message_id": message.message_id,
                }
                if sample is None or manifest.count < sample:
                    entry.update(saver.save(manifest.count + 1, subscriber.email, message.data))
                entry["bytes"] = len(message.data)
                manifest.add(entry)
            if progress is not None:
                progress(1)
    finally:
        saver.close()
    return skips


def _message(
    factory: MessageFactory, subscriber: Subscriber, seen: set[str], skips: _Skips
) -> OutgoingMessage | None:
    """Build one recipient's message, or record why the recipient is skipped."""
    where = f" (line {subscriber.line})" if subscriber.line else ""
    if not subscriber.active:
        skips.add(f"{subscriber.email}{where}: status {subscriber.status!r}, not mailed")
        return None
    key = subscriber.email.casefold()
    if key in seen:
        skips.add(f"{subscriber.email}{where}: duplicate address, mailed once")
        return None
    try:
        message = factory.build(subscriber)
    except DeliveryError as err:
        skips.add(str(err))
        return None
    seen.add(key)
    return message


def _swap(staging: Path, folder: Path, *, force: bool) -> None:
    """Move the finished ``staging`` folder to ``folder``, replacing an old one only with force."""
    if not (folder.exists() or folder.is_symlink()):
        os.rename(staging, folder)
        return
    if not force:
        raise OutputExistsError(
            f"{folder} appeared while the dry run was writing; use --force to replace it, "
            "or choose another --outbox"
        )
    retired = folder.with_name(f".{folder.name}.old-{secrets.token_hex(4)}")
    os.rename(folder, retired)
    try:
        os.rename(staging, folder)
    except OSError:
        os.rename(retired, folder)
        raise
    if retired.is_dir() and not retired.is_symlink():
        shutil.rmtree(retired)
    else:
        retired.unlink()


def write_outbox(
    edition: Edition,
    factory: MessageFactory,
    subscribers: Iterable[Subscriber],
    outbox: Path,
    *,
    force: bool = False,
    selection: Mapping[str, Any] | None = None,
    extra_warnings: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    mode: str = "eml",
    sample: int | None = None,
) -> DryRunResult:
    """Write ``outbox/<edition id>/``: one ``.eml`` per recipient (or one mbox) and a manifest.

    With ``sample`` only the first ``sample`` messages are saved; every recipient is
    still built, checked and listed in the manifest with its message's size, which
    keeps a dry run of a large list fast and small. ``progress`` is called with 1 for
    every subscriber handled (written or skipped). Raise ``OutputExistsError`` if the
    folder exists and ``force`` is false.
    """
    folder = _check_target(edition, outbox, mode, force, sample)
    staging = outbox / f".{edition.id}.tmp-{secrets.token_hex(4)}"
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    except OSError as err:
        raise DeliveryError(f"{outbox}: cannot create the outbox folder: {err.strerror}") from err
    try:
        html, text = factory.parts(EXAMPLE_READER)  # the edition as an unnamed reader sees it
        (staging / "edition.html").write_text(html, encoding="utf-8", newline="")
        (staging / "edition.txt").write_text(text, encoding="utf-8", newline="")
        with (staging / MANIFEST_NAME).open("w", encoding="utf-8", buffering=1 << 20) as stream:
            manifest = _Manifest(stream, edition, mode, sample)
            skips = _fill(staging, manifest, factory, subscribers, progress, sample)
            saved = manifest.count if sample is None else min(sample, manifest.count)
            warnings = [*edition.warnings, *extra_warnings, *skips.warnings()]
            if factory.uses_development_key:
                warnings.append(
                    "unsubscribe links are signed with the development key; "
                    "set NEWSLETTER_SIGNING_KEY before a live send"
                )
            manifest.close(
                {
                    "recipient_count": manifest.count,
                    "saved": saved,
                    "skipped": skips.count,
                    "selection": dict(selection or {}),
                    "warnings": warnings,
                }
            )
        _swap(staging, folder, force=force)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise DeliveryError(f"{folder}: cannot write the dry-run output: {err}") from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DryRunResult(
        folder=folder,
        written=manifest.count,
        manifest=folder / MANIFEST_NAME,
        skipped=skips.count,
        saved=saved,
    )
