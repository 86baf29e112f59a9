"""The archive's Atom feed (RFC 4287): one entry per edition that went out, newest first.

Built with ``xml.etree``, so every title and summary is escaped as XML needs. Each
entry's id is its page's public URL, its time when its send began (an edition never
changes after), its summary the preheader. The same entries give the same bytes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from newsletter.config.settings import Settings
from newsletter.state.api import EditionEntry

ATOM = "http://www.w3.org/2005/Atom"
FEED_NAME = "feed.xml"
FEED_ENTRIES = 50  # the newest editions; the index lists every one
MEDIA_TYPE = "application/atom+xml"
_NO_EDITION_YET = datetime(1970, 1, 1, tzinfo=UTC)  # an empty feed's fixed time
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # no XML 1.0 holds these


def atom_time(moment: datetime) -> str:
    """An RFC 3339 time in UTC, to the second: ``2026-03-04T12:30:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = _NOT_XML.sub("", text)
    return element


def _link(parent: ET.Element, rel: str, href: str, media_type: str) -> None:
    ET.SubElement(parent, "link", {"rel": rel, "type": media_type, "href": href})


def atom_feed(settings: Settings, entries: Sequence[EditionEntry]) -> bytes:
    """The feed of ``entries`` (newest first), as UTF-8 XML."""
    web, publication = settings.web, settings.publication
    shown = list(entries[:FEED_ENTRIES])
    feed = ET.Element("feed", {"xmlns": ATOM, _XML_LANG: publication.language})
    _text(feed, "id", web.archive_url)
    _text(feed, "title", settings.list.name or publication.name)
    if publication.tagline:
        _text(feed, "subtitle", publication.tagline)
    updated = max((entry.started for entry in shown), default=_NO_EDITION_YET)
    _text(feed, "updated", atom_time(updated))
    _link(feed, "self", web.archive_url + FEED_NAME, MEDIA_TYPE)
    _link(feed, "alternate", web.archive_url, "text/html")
    author = ET.SubElement(feed, "author")
    _text(author, "name", publication.name)
    _text(author, "uri", publication.site_url)
    for entry in shown:
        item = ET.SubElement(feed, "entry")
        url = web.edition_url(entry.id)
        _text(item, "id", url)
        _text(item, "title", entry.subject)
        _text(item, "updated", atom_time(entry.started))
        _text(item, "published", atom_time(entry.started))
        _link(item, "alternate", url, "text/html")
        if entry.preheader:
            _text(item, "summary", entry.preheader, type="text")
    ET.indent(feed)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
