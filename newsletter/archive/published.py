"""The editions that went out, read from the state: what the archive shows.

An edition went out when a message of it reached someone (``EditionStore.went_out``):
a live send that delivered at least one message, finished, still under way or given
up since. Dry runs and test copies (``send --to``) are never stored, so never shown.
Only ids of the renderer's own form are shown: one is a folder name in an export.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from newsletter.config.settings import Settings
from newsletter.rendering.renderer import EDITION_ID_PATTERN
from newsletter.state.api import ArchivedEdition, EditionEntry
from newsletter.state.openers import open_editions

_EDITION_ID = re.compile(EDITION_ID_PATTERN)


def is_edition_id(text: str) -> bool:
    """Whether ``text`` has the form of an edition id (``2026-03-04-0a1b2c3d``)."""
    return _EDITION_ID.fullmatch(text) is not None


def editions_out(settings: Settings) -> list[EditionEntry]:
    """Every edition that went out, newest first (none when nothing was ever sent)."""
    if not settings.paths.state.exists():
        return []
    with open_editions(settings.paths.state) as store:
        return [entry for entry in store.went_out() if is_edition_id(entry.id)]


def edition_out(settings: Settings, edition_id: str) -> ArchivedEdition | None:
    """The stored edition ``edition_id`` if it went out, else None."""
    if not is_edition_id(edition_id) or not settings.paths.state.exists():
        return None
    with open_editions(settings.paths.state) as store:
        if all(entry.id != edition_id for entry in store.went_out()):
            return None
        return store.get(edition_id)


def stored_editions(
    settings: Settings, entries: Sequence[EditionEntry]
) -> Iterator[ArchivedEdition]:
    """The stored editions of ``entries`` (from ``editions_out``), one at a time, in order."""
    if not entries:
        return
    with open_editions(settings.paths.state) as store:
        for entry in entries:
            stored = store.get(entry.id)
            if stored is not None:
                yield stored
