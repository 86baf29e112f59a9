"""Giving up an unfinished edition, refused while it is being sent."""

from __future__ import annotations

from newsletter.bookkeeping import (
    Abandoned,
    give_up,
)
from newsletter.clock import now_utc
from newsletter.config.settings import Settings
from newsletter.config.state import PostgresUrl
from newsletter.errors import DeliveryError, NewsletterError
from newsletter.sends.locks import edition_lock, send_lock
from newsletter.state.openers import open_crew


def abandon_edition(settings: Settings, edition_id: str) -> Abandoned:
    """Give up an unfinished edition: never resumed; the next send builds a new one.

    Its ledger stays for the record; its articles stay counted only if a message of it
    reached someone. Refused while a send is running (with a shared state: while a
    sender holds a lease on it).
    """
    place = settings.paths.state
    if not place.exists():
        raise NewsletterError(
            f"no stored edition {edition_id!r}: nothing was sent from {place.where}"
        )
    if not isinstance(place, PostgresUrl):
        with send_lock(settings, "an edition cannot be given up while it is being sent"):
            return give_up(settings, edition_id, now_utc())
    with edition_lock(settings, wait=False):
        with open_crew(place) as crew:
            live = [w for w in crew.workers(edition_id) if w.live]
        if live:
            who = ", ".join(f"pid {w.pid} on {w.host}" for w in live)
            raise DeliveryError(
                f"edition {edition_id} is being sent by {len(live)} sender(s) ({who}); stop "
                "them or let them finish: an edition cannot be given up while it is being sent"
            )
        return give_up(settings, edition_id, now_utc())
