"""The lists the state keeps of readers: suppressions, the members the tool holds, bounces.

Protocols and records, as in ``state.api``; the backends implement them and
``state.openers`` opens them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from newsletter.state.api import Closing

# --------------------------------------------------------------------------- suppressions

SUPPRESSION_REASONS = ("unsubscribe", "bounce", "complaint", "manual")


@dataclass(frozen=True)
class Suppression:
    """An address that no send may mail, with when, why and from where.

    ``reason``: one of ``SUPPRESSION_REASONS``. ``source``: where it came from, such as
    ``one-click``, ``web``, ``mailto``, ``bounces``, ``cli``, ``import``. ``detail``: a
    short note for a person (a DSN status such as ``5.1.1``); never a token.
    """

    email: str  # as first recorded; the key is ``normalize_email(email)``
    reason: str
    source: str
    at: str  # a ``timestamps`` stamp (UTC)
    edition_id: str = ""  # the edition it came from, "" if none
    detail: str = ""


@dataclass(frozen=True)
class SuppressionRequest:
    """One address to suppress, as ``Suppressions.add_many`` takes it."""

    email: str
    reason: str
    source: str
    edition_id: str = ""
    detail: str = ""


class Suppressions(Closing, Protocol):
    """The suppression list: unsubscribes, hard bounces, complaints and manual entries.

    Keyed by ``normalize_email``. Every send and dry run leaves these addresses out, and a
    send under way checks them when it claims a recipient.
    """

    def add(
        self,
        email: str,
        reason: str,
        source: str,
        *,
        edition_id: str = "",
        detail: str = "",
        at: datetime | None = None,
    ) -> bool:
        """Suppress ``email``; True if it was not suppressed before (a repeat keeps the first).

        Backends that subclass this protocol inherit it: one ``add_many`` of one request.
        """
        return self.add_many([SuppressionRequest(email, reason, source, edition_id, detail)], at)[0]

    def add_many(
        self, requests: Sequence[SuppressionRequest], at: datetime | None = None
    ) -> list[bool]:
        """Suppress several addresses in one transaction (one commit); ``add``'s answer each."""

    def remove(self, email: str) -> Suppression | None:
        """Lift the suppression of ``email``; return what was removed, or None."""

    def get(self, email: str) -> Suppression | None:
        """The suppression of ``email``, or None."""

    def among(self, emails: Iterable[str]) -> set[str]:
        """The ``normalize_email`` keys of those of ``emails`` that are suppressed."""

    def changes(self, cursor: int) -> tuple[int, set[str]]:
        """Keys suppressed since ``cursor`` (0: all) and the cursor to pass next time.

        A send under way calls this to learn of new suppressions cheaply; a key may come
        back more than once, never too late.
        """

    def all(self) -> list[Suppression]:
        """Every suppression, oldest first."""

    def count(self) -> int:
        """How many addresses are suppressed."""


# --------------------------------------------------------------------------- members


@dataclass(frozen=True)
class Member:
    """A subscriber the tool holds (confirmed through the subscribe form, or imported)."""

    email: str
    name: str
    source: str  # web | import
    joined_at: str  # a ``timestamps`` stamp (UTC)


class Members(Closing, Protocol):
    """The subscribers the tool holds, keyed by ``normalize_email``; all are confirmed."""

    def add(
        self, email: str, name: str = "", source: str = "web", at: datetime | None = None
    ) -> bool:
        """Add or update a confirmed subscriber; True if the address was new."""

    def remove(self, email: str) -> bool:
        """Remove a subscriber; True if there was one."""

    def all(self) -> list[Member]:
        """Every member, in the order they joined."""

    def count(self) -> int:
        """How many members there are."""


# --------------------------------------------------------------------------- bounce events

BOUNCE_KINDS = ("hard", "soft", "complaint", "unsubscribe")


@dataclass(frozen=True)
class BounceEvent:
    """What one report from the bounce mailbox said of one address.

    ``kind``: one of ``BOUNCE_KINDS``. ``status``: the RFC 3463 code of a bounce
    (``5.1.1``), "" if none. ``edition_id``: the edition the report is about, "" if unknown.
    """

    email: str  # the key is ``normalize_email(email)``
    kind: str
    at: datetime
    edition_id: str = ""
    status: str = ""


class BounceLog(Closing, Protocol):
    """Every report read from the bounce mailbox, by what it said of each address.

    A report is known by its key (its Message-ID, else a hash of its bytes): one that is
    recorded is never acted on again, so reading a mailbox twice changes nothing the
    second time. Soft bounces are counted per address over a window of time.
    """

    def seen(self, report_key: str) -> bool:
        """Whether a report with this key was recorded."""

    def record(self, report_key: str, events: Sequence[BounceEvent]) -> int:
        """Record what one report said, all in one transaction; return how many were new."""

    def count(self, email: str, kind: str, since: datetime, until: datetime) -> int:
        """How many events of ``kind`` ``email`` had from ``since`` to ``until`` (inclusive)."""

    def history(self, email: str) -> list[BounceEvent]:
        """Every event of ``email``, oldest first."""
