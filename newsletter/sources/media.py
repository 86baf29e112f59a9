"""Read the descriptions Media RSS gives its pictures, from a feed's raw XML.

feedparser folds ``media:description`` and ``media:title`` into the item's own summary
and title, so the link between a picture and its description is lost there. This reads
them again with the standard library's XML parser, only after ``sniff.check_entities``
has refused external and nested entity declarations (expat never fetches external
entities either). A document the strict parser cannot read yields nothing: its pictures
keep the fallback alt text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .sniff import as_text

MEDIA_NAMESPACES = ("http://search.yahoo.com/mrss/", "http://search.yahoo.com/mrss")
ITEM_TAGS = frozenset({"item", "entry"})
TEXT_TAGS = ("description", "title")  # in this order: a description says more than a title
PICTURE_TAGS = frozenset({"content", "thumbnail"})


@dataclass(frozen=True)
class MediaText:
    """What a feed says about one picture: its own words, and the words its group or item
    gives every picture in it."""

    own: str = ""
    shared: str = ""


def _local(tag: object) -> tuple[str, str]:
    """Split an ElementTree tag into (namespace, local name)."""
    text = str(tag)
    if text.startswith("{"):
        namespace, _, name = text[1:].partition("}")
        return namespace, name
    return "", text


def _is_media(element: ET.Element, names: frozenset[str] | tuple[str, ...]) -> bool:
    namespace, name = _local(element.tag)
    return namespace in MEDIA_NAMESPACES and name in names


def _words(holder: ET.Element) -> str:
    """The first non-empty media:description or media:title directly inside ``holder``."""
    for wanted in TEXT_TAGS:
        for child in holder:
            if _is_media(child, (wanted,)):
                text = "".join(child.itertext()).strip()
                if text:
                    return text
    return ""


def _pictures(holder: ET.Element, shared: str, found: dict[str, MediaText]) -> None:
    """Record the pictures directly inside ``holder`` (an item or a media:group)."""
    for child in holder:
        if _is_media(child, ("group",)):
            _pictures(child, _words(child) or shared, found)
        elif _is_media(child, PICTURE_TAGS):
            url = (child.get("url") or "").strip()
            if url and url not in found:
                found[url] = MediaText(_words(child), shared)


def media_texts(data: bytes) -> dict[str, MediaText]:
    """Map each Media RSS picture's URL (as written in the feed) to what the feed says of it."""
    if not any(ns in as_text(data) for ns in MEDIA_NAMESPACES):
        return {}
    try:
        root = ET.fromstring(data)  # noqa: S314 - entities are checked before parsing
    except (ET.ParseError, ValueError, LookupError):
        return {}
    found: dict[str, MediaText] = {}
    try:
        for element in root.iter():
            if _local(element.tag)[1] in ITEM_TAGS:
                _pictures(element, _words(element), found)
    except RecursionError:  # media:group nested beyond reason
        return {}
    return found
