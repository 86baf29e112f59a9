"""Dry run: write every recipient's message to files instead of sending. No network.

The edition's folder is written under a temporary sibling name and moved into place
at the end, so a crash never leaves a half-written folder under the real name, and
``force`` replaces an old folder only once the new one is complete.
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
from newsletter.messages import MessageFactory
from newsletter.models import Edition, OutgoingMessage, Subscriber

MODES = ("eml", "mbox")
MBOX_NAME = "messages.mbox"
MANIFEST_NAME = "manifest.json"
MAX_SLUG = 60
MAX_LISTED_SKIPS = 100  # skipped recipients named in the manifest; the rest are counted

_EDITION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9._+-]+")
_MBOX_FROM = re.compile(rb"\n(>*From )")


@dataclass(frozen=True)
class DryRunResult:
    """Where a dry run wrote its files and how many messages it wrote."""

    folder: Path
    written: int
    manifest: Path
    skipped: int


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


def mbox_entry(data: bytes) -> bytes:
    """Turn CRLF message bytes into an mboxrd entry body: LF lines, ``From `` lines quoted."""
    body = data.replace(b"\r\n", b"\n")
    if b"From " in body:
        body = _MBOX_FROM.sub(rb"\n>\1", b"\n" + body)[1:]
    return body if body.endswith(b"\n") else body + b"\n"


class _Manifest:
    """Write ``manifest.json`` as recipients arrive, never holding the list in memory."""

    def __init__(self, stream: IO[str], edition: Edition, mode: str) -> None:
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


def _check_target(edition: Edition, outbox: Path, mode: str, force: bool) -> Path:
    """Validate the arguments and return the edition's final folder."""
    if mode not in MODES:
        raise DeliveryError(f"dry-run mode {mode!r} is not one of {', '.join(MODES)}")
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


def _fill(
    folder: Path,
    manifest: _Manifest,
    factory: MessageFactory,
    subscribers: Iterable[Subscriber],
    progress: Callable[[int], None] | None,
) -> _Skips:
    """Write every recipient's message into ``folder`` and list it in the manifest."""
    edition = factory.edition
    skips = _Skips()
    seen: set[str] = set()
    mbox = (folder / MBOX_NAME).open("wb", buffering=1 << 20) if manifest.mode == "mbox" else None
    separator = mbox_from_line(factory.settings.sender.address, edition.created)
    offset = 0
    try:
        for subscriber in subscribers:
            message = _message(factory, subscriber, seen, skips)
            if message is not None:
                entry: dict[str, Any] = {
                    "email": subscriber.email,
                    "message_id": message.message_id,
                }
                if mbox is None:
                    name = f"{manifest.count + 1:05d}-{slug(subscriber.email)}.eml"
                    _write_file(os.path.join(folder, name), message.data)
                    entry.update(file=name, bytes=len(message.data))
                else:
                    chunk = separator + mbox_entry(message.data) + b"\n"
                    mbox.write(chunk)
                    entry.update(file=MBOX_NAME, offset=offset, bytes=len(message.data))
                    offset += len(chunk)
                manifest.add(entry)
            if progress is not None:
                progress(1)
    finally:
        if mbox is not None:
            mbox.close()
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
) -> DryRunResult:
    """Write ``outbox/<edition id>/``: one ``.eml`` per recipient (or one mbox) and a manifest.

    ``progress`` is called with 1 for every subscriber handled (written or skipped).
    Raise ``OutputExistsError`` if the folder exists and ``force`` is false.
    """
    folder = _check_target(edition, outbox, mode, force)
    staging = outbox / f".{edition.id}.tmp-{secrets.token_hex(4)}"
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    except OSError as err:
        raise DeliveryError(f"{outbox}: cannot create the outbox folder: {err.strerror}") from err
    try:
        (staging / "edition.html").write_text(edition.html, encoding="utf-8", newline="")
        (staging / "edition.txt").write_text(edition.text, encoding="utf-8", newline="")
        with (staging / MANIFEST_NAME).open("w", encoding="utf-8", buffering=1 << 20) as stream:
            manifest = _Manifest(stream, edition, mode)
            skips = _fill(staging, manifest, factory, subscribers, progress)
            warnings = [*edition.warnings, *extra_warnings, *skips.warnings()]
            if factory.uses_development_key:
                warnings.append(
                    "unsubscribe links are signed with the development key; "
                    "set NEWSLETTER_SIGNING_KEY before a live send"
                )
            manifest.close(
                {
                    "recipient_count": manifest.count,
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
        folder=folder, written=manifest.count, manifest=folder / MANIFEST_NAME, skipped=skips.count
    )
