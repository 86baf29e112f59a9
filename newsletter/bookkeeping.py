"""What a live send keeps about its edition beside the ledger, and the rules that read it.

- **History:** an edition's articles count as sent (and stay out of the next editions)
  only once a message of it was accepted by the server, or may have been (``in_flight``
  in the ledger: the server may have taken it in the instant before a crash). A send
  that reached nobody blocks nothing.
- **Status:** a stored edition is ``sending`` until its send finishes (``done``) or a
  person gives it up (``abandoned``); only a ``sending`` one is resumed.
- **Spacing:** a send by hand does not start a new edition within ``[send]
  min_interval_hours`` of the last one that finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from newsletter.config.settings import Settings
from newsletter.errors import NewsletterError, NothingToSend, StateUnavailable
from newsletter.models import Edition
from newsletter.state.api import REACHED_STATES, Ledger
from newsletter.state.openers import open_editions, open_history, open_ledger
from newsletter.state.timestamps import from_stamp

log = logging.getLogger(__name__)

Progress = Callable[[str, str], None]
REACHED = REACHED_STATES  # ledger states of a message the server took, or may have


class TooSoon(NothingToSend):
    """A new edition so soon after the last would mail everyone twice: a skip (exit 3)."""


def selected_ids(selection: Mapping[str, Any]) -> Sequence[str]:
    """The ids of every article an edition's selection holds."""
    ids = [selection["lead"]["id"]] if selection.get("lead") else []
    ids += [a["id"] for a in selection.get("trending", [])]
    ids += [a["id"] for a in selection.get("opinion", [])]
    return ids


def reached(counts: Mapping[str, int]) -> int:
    """How many of an edition's messages were (or may have been) accepted by the server."""
    return sum(counts.get(state, 0) for state in REACHED)


def count_articles(settings: Settings, edition: Edition, selection: Mapping[str, Any]) -> None:
    """Record the edition's articles in the history: from now on they count as sent."""
    with open_history(settings.paths.state) as history:
        history.record(edition.id, edition.created, selected_ids(selection))


def count_if_reached(
    settings: Settings, edition: Edition, selection: Mapping[str, Any], ledger: Ledger
) -> bool:
    """Count the edition's articles if the ledger shows a message reached someone."""
    if not reached(ledger.summary(edition.id)):
        return False
    count_articles(settings, edition, selection)
    return True


class CountOnFirstAcceptance:
    """A progress hook: the first message the server accepts makes the articles count.

    It runs on the sending threads, one call at a time (``send_messages`` serializes
    progress calls), then hands every call on to ``then``.
    """

    def __init__(
        self,
        settings: Settings,
        edition: Edition,
        selection: Mapping[str, Any],
        then: Progress | None,
        *,
        counted: bool = False,
    ) -> None:
        self.settings, self.edition, self.selection = settings, edition, selection
        self.then = then
        self.counted = counted

    def __call__(self, email: str, state: str) -> None:
        """Note one recipient's outcome.

        A database that is away for the moment (a restart) does not stop the send: the
        articles are counted at the next acceptance instead.
        """
        if state == "sent" and not self.counted:
            try:
                count_articles(self.settings, self.edition, self.selection)
                self.counted = True
            except StateUnavailable as err:
                log.warning("%s; the edition's articles are counted at the next acceptance", err)
        if self.then is not None:
            self.then(email, state)


def unfinished_edition(settings: Settings) -> tuple[Edition, dict[str, Any]] | None:
    """The edition whose live send was interrupted, if any (resumed before building anew)."""
    if not settings.paths.state.exists():
        return None
    with open_editions(settings.paths.state) as archive:
        found = archive.unfinished()
    if found is None:
        return None
    return found.edition, dict(found.selection)


def check_spacing(settings: Settings, now: datetime) -> None:
    """Raise ``TooSoon`` if the last edition finished less than the minimum interval ago."""
    interval = settings.send.min_interval
    if not interval or not settings.paths.state.exists():
        return
    with open_editions(settings.paths.state) as archive:
        last = archive.last_done()
    if last is None or last.finished_at is None:
        return
    finished = from_stamp(last.finished_at)
    if now - finished >= interval:
        return
    raise TooSoon(
        f"edition {last.edition.id} ({last.edition.subject}) finished {_ago(now - finished)}, at "
        f"{finished:%Y-%m-%d %H:%M} UTC; a new edition now would mail everyone a second "
        f"newsletter ([send] min_interval_hours = {settings.send.min_interval_hours:g}). "
        f"Send after {finished + interval:%Y-%m-%d %H:%M} UTC, or add --allow-early if a "
        "second edition is intended"
    )


def _ago(span: timedelta) -> str:
    minutes = max(span.total_seconds() / 60, 0)
    return f"{minutes:.0f} min ago" if minutes < 90 else f"{minutes / 60:.1f} h ago"


@dataclass(frozen=True)
class Abandoned:
    """An edition given up: its id and subject, and how many messages reached someone."""

    edition_id: str
    subject: str
    reached: int


def give_up(settings: Settings, edition_id: str, now: datetime) -> Abandoned:
    """Mark an unfinished edition abandoned; its articles count only if it reached someone.

    The caller holds the send lock. The ledger is kept as it is, for the record.
    """
    with open_editions(settings.paths.state) as archive:
        stored = archive.get(edition_id)
        if stored is None:
            raise NewsletterError(
                f"no stored edition {edition_id!r}: only a live send stores one (not a test "
                "copy or a dry run); 'newsletter status' lists the editions"
            )
        if stored.status != "sending":
            raise NewsletterError(
                f"edition {edition_id} is already {stored.status}; there is nothing to abandon"
            )
        with open_ledger(settings.paths.state) as ledger:
            went_out = reached(ledger.summary(edition_id))
        if went_out:
            count_articles(settings, stored.edition, stored.selection)
        else:  # an earlier release counted the articles before the first message
            with open_history(settings.paths.state) as history:
                history.forget(edition_id)
        archive.set_status(edition_id, "abandoned", now)
    return Abandoned(edition_id, stored.edition.subject, went_out)
