"""The ``[publication]`` table: who publishes, shown in the masthead and footer."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from newsletter.config.reader import TableReader
from newsletter.config.settings import Colors, Link, Publication


def read_publication(top: TableReader) -> Publication:
    """Read ``[publication]`` with its colours, social profiles and footer links."""
    p = top.table("publication")
    tz = p.zone("timezone", p.text("timezone", "UTC")) or ZoneInfo("UTC")
    c = p.table("colors")
    colors = Colors(
        **{
            name: _hex_colour(c, name, getattr(Colors(), name))
            for name in Colors.__dataclass_fields__
        }
    )
    c.finish()
    name = p.text("name", "")
    if not name:
        p.problem("name", "required (the publication's name)")
    publication = Publication(
        name=name,
        site_url=p.url("site_url", "", required=True),
        logo_url=p.url("logo_url", ""),
        tagline=p.text("tagline", ""),
        language=p.text("language", "en") or "en",
        timezone=tz,
        postal_address=p.text("postal_address", ""),
        contact_email=p.address("contact_email", ""),
        contact_phone=p.text("contact_phone", ""),
        copyright=p.text("copyright", ""),
        colors=colors,
        social=_links(p, "social"),
        links=_links(p, "links"),
    )
    if not publication.postal_address:
        p.problem("postal_address", "required (bulk mail must show a postal address)")
    p.finish()
    return publication


def _hex_colour(reader: TableReader, name: str, default: str) -> str:
    value = reader.text(name, default)
    digits = value[1:]
    if not (
        value.startswith("#")
        and len(digits) in (3, 6)
        and all(c in "0123456789abcdefABCDEF" for c in digits)
    ):
        reader.problem(name, f"{value!r} is not a colour like #12355b")
        return default
    return value


def _links(reader: TableReader, name: str) -> tuple[Link, ...]:
    table = reader.table(name)
    links: list[Link] = []
    for label in list(table.data):
        url = table.url(label, "")
        if url:
            links.append(Link(label=label, url=url))
    table.finish()
    return tuple(links)
