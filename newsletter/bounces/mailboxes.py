"""The bounce mailbox on disk: a maildir folder or an mbox file, read message by message.

Every mailbox gives its messages as ``Mail`` (the bytes, or why they could not be read)
and is told which ones were handled (``done``): a maildir moves them from ``new/`` to
``cur/`` with the seen flag (``S``), the way a mail client does; an mbox file is left as
it is. Reading again is harmless either way: the bounce log knows every report handled.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from newsletter.errors import MailboxError

_SEEN = "S"


@dataclass(frozen=True)
class Mail:
    """One message of a mailbox: its bytes, or ``problem`` when they could not be read.

    ``ref`` is how the mailbox names it (a file name, a UID, a position).
    """

    ref: str
    raw: bytes = b""
    problem: str = ""


class Mailbox(Protocol):
    """Where reports are read from."""

    where: str  # the mailbox as messages name it (never with a password)
    warnings: list[str]  # what went wrong marking messages: said once, never fatal

    def messages(self) -> Iterator[Mail]:
        """Every message to read, in order."""

    def done(self, mail: Mail) -> None:
        """Mark ``mail`` as handled, as this kind of mailbox can."""

    def close(self) -> None:
        """Let go of the mailbox."""


class Maildir:
    """A maildir folder (``cur/``, ``new/``, ``tmp/``): every message in ``new/`` and ``cur/``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)
        self.warnings: list[str] = []
        if not (folder / "cur").is_dir() or not (folder / "new").is_dir():
            what = "does not exist" if not folder.exists() else "is not a maildir"
            raise MailboxError(
                f"{folder}: {what} (no cur/ and new/ folders); give the folder that holds "
                "cur/, new/ and tmp/, or --mbox FILE for a single mailbox file"
            )

    def messages(self) -> Iterator[Mail]:
        """Every message in ``new/`` and then ``cur/``, by file name, as they were at the start."""
        refs = [f"{sub}/{name}" for sub in ("new", "cur") for name in self._names(sub)]
        for ref in refs:
            try:
                yield Mail(ref, (self.folder / ref).read_bytes())
            except FileNotFoundError:
                continue  # taken away meanwhile (by a mail client)
            except OSError as err:
                yield Mail(ref, problem=f"cannot read the file ({err.strerror})")

    def _names(self, sub: str) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.folder / sub) if not n.startswith("."))
        except OSError as err:
            raise MailboxError(f"{self.folder / sub}: cannot list ({err.strerror})") from err

    def done(self, mail: Mail) -> None:
        """Move a message of ``new/`` to ``cur/`` and flag it seen (``:2,S``)."""
        sub, _, name = mail.ref.partition("/")
        base, info, flags = name.partition(":2,")
        if sub == "cur" and info and _SEEN in flags:
            return
        target = f"{base}:2,{''.join(sorted(set(flags) | {_SEEN}))}"
        try:
            os.rename(self.folder / sub / name, self.folder / "cur" / target)
        except FileNotFoundError:
            return
        except OSError as err:
            note = (
                f"{self.folder}: cannot mark messages as read ({err.strerror}); they are "
                "read again next time, which changes nothing"
            )
            if note not in self.warnings:
                self.warnings.append(note)

    def close(self) -> None:
        """Nothing to let go of."""


class Mbox:
    """An mbox file, read as it is and never changed."""

    def __init__(self, file: Path) -> None:
        self.where = str(file)
        self.warnings: list[str] = []
        try:
            with file.open("rb") as handle:
                start = handle.read(5)
        except FileNotFoundError:
            raise MailboxError(f"{file}: no such file; give an mbox file") from None
        except IsADirectoryError:
            raise MailboxError(f"{file}: a folder, not an mbox file; use --maildir") from None
        except OSError as err:
            raise MailboxError(f"{file}: cannot read ({err.strerror})") from err
        if start and start != b"From ":
            raise MailboxError(
                f"{file}: not an mbox file (it does not start with a 'From ' line); give a "
                "file in mbox format, or --maildir DIR for a maildir folder"
            )
        self._box = mailbox.mbox(file, create=False)

    def messages(self) -> Iterator[Mail]:
        """Every message, first to last."""
        for number, key in enumerate(self._box.iterkeys(), 1):
            yield Mail(f"message {number}", self._box.get_bytes(key))

    def done(self, mail: Mail) -> None:
        """Leave the file as it is."""

    def close(self) -> None:
        """Close the file."""
        self._box.close()
