"""The archive's documents: the index, the feed and each edition's page, as bytes.

One builder for both ways the archive is published: the service answers with these
bytes, and ``archive export`` writes the very same into files. Links between them are
relative (``<id>/``, ``../``, ``feed.xml``), so an export works wherever it is hosted;
the feed's links are the public URLs under ``[web] public_url``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from newsletter.archive.feed import FEED_NAME, atom_feed
from newsletter.archive.public import public_html
from newsletter.archive.published import edition_out, editions_out, stored_editions
from newsletter.config.settings import Settings
from newsletter.rendering.dates import local_time, long_date
from newsletter.rendering.pages import PageRenderer
from newsletter.state.api import ArchivedEdition, EditionEntry

INDEX_PAGE = "archive.html"
BANNER = "archive_banner.html"
INDEX_NAME = "index.html"  # an export's file for a folder's page


def page_path(edition_id: str) -> str:
    """Where an export keeps an edition's page (the service answers ``<id>/``)."""
    return f"{edition_id}/{INDEX_NAME}"


class ArchiveSite:
    """Build the archive's documents from the state, with the theme's web pages."""

    def __init__(self, settings: Settings, pages: PageRenderer | None = None) -> None:
        self.settings = settings
        self.pages = pages if pages is not None else PageRenderer(settings)

    def _when(self, entry: EditionEntry | ArchivedEdition) -> dict[str, str]:
        created = entry.created if isinstance(entry, EditionEntry) else entry.edition.created
        zone = self.settings.publication.timezone
        return {"date": long_date(created, zone), "date_iso": f"{local_time(created, zone):%F}"}

    def index(self, entries: Sequence[EditionEntry]) -> bytes:
        """The index page: every edition, newest first, with its date, subject and preheader."""
        editions: list[dict[str, Any]] = [
            {
                "id": entry.id,
                "href": f"{entry.id}/",
                "subject": entry.subject,
                "preheader": entry.preheader,
                **self._when(entry),
            }
            for entry in entries
        ]
        context = {"editions": editions, "feed_href": FEED_NAME}
        return self.pages.render(INDEX_PAGE, context).encode("utf-8")

    def feed(self, entries: Sequence[EditionEntry]) -> bytes:
        """The Atom feed of the newest editions."""
        return atom_feed(self.settings, entries)

    def page(self, stored: ArchivedEdition) -> bytes:
        """One edition's page: its email HTML as anyone may see it."""
        edition = stored.edition
        banner = self.pages.render(
            BANNER,
            {"subject": edition.subject, "index_href": "../", **self._when(stored)},
        )
        return public_html(edition.html, self.settings, banner).encode("utf-8")

    def current_index(self) -> bytes:
        """The index as the state has it now."""
        return self.index(editions_out(self.settings))

    def current_feed(self) -> bytes:
        """The feed as the state has it now."""
        return self.feed(editions_out(self.settings))

    def current_page(self, edition_id: str) -> bytes | None:
        """The page of ``edition_id`` if that edition went out, else None."""
        stored = edition_out(self.settings, edition_id)
        return self.page(stored) if stored is not None else None

    def paths(self, entries: Sequence[EditionEntry]) -> list[str]:
        """The path in an export of every document ``documents`` makes of ``entries``."""
        return [INDEX_NAME, FEED_NAME, *(page_path(entry.id) for entry in entries)]

    def documents(self, entries: Sequence[EditionEntry]) -> Iterator[tuple[str, bytes]]:
        """Each document of the archive of ``entries`` with its path in an export, in turn."""
        yield INDEX_NAME, self.index(entries)
        yield FEED_NAME, self.feed(entries)
        for stored in stored_editions(self.settings, entries):
            yield page_path(stored.edition.id), self.page(stored)
