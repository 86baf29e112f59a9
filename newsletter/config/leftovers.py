"""Values left from the starter: the sample publication's own details and example domains.

``newsletter init`` copies the sample's config. Until each of these values is
replaced, mail goes out with The Meridian Post's postal address and phone, and with
links and addresses on domains reserved for examples, which no one can reach.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.config.load import read_config
from newsletter.config.paths import CONFIG_NAME, SAMPLE_DIR
from newsletter.hosts import is_example_domain

# Tables whose sample values stand for the publication's own; the keys in KEPT may stay.
COMPARED = ("publication", "sender", "list")
KEPT = ("publication.language", "publication.timezone", "publication.colors")

# A domain name inside a longer text (a URL, an address, a List-Id); not an address's user part.
_DOMAIN = re.compile(
    r"(?<![\w.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*(?![\w@-])", re.IGNORECASE
)

HINTS = {
    "publication.name": "your publication's name",
    "publication.tagline": "your own tagline, or remove it",
    "publication.site_url": "your website's address",
    "publication.logo_url": "the https:// address of your logo, or remove it to show the name",
    "publication.postal_address": "your postal address (bulk mail must show a real one)",
    "publication.contact_email": "an address your readers can write to, or remove it",
    "publication.contact_phone": "your phone number, or remove it",
    "publication.copyright": "your copyright line, or remove it for '© <year> <name>'",
    "publication.social": "your profile's address, or remove the line",
    "publication.links": "your page's address, or remove the line",
    "sender.name": "the name your mail comes from",
    "sender.address": "the address you send from, on a domain you control (with SPF and DKIM)",
    "sender.reply_to": "where replies should go",
    "list.id": "a dotted name on your domain, such as daily.yourdomain.com",
    "list.name": "your list's name",
    "list.unsubscribe_url": "your unsubscribe page (it gets ?list=…&s=…&token=…)",
    "list.unsubscribe_mailto": "an address that handles unsubscribe mails, or remove it",
    "smtp.host": "your relay's host name",
    "smtp.envelope_from": "the bounce address on your domain",
    "content.sources": "your feed's URL or your own articles file",
}
DEFAULT_HINT = "your own value"


@dataclass(frozen=True)
class Leftover:
    """A config value left from the starter: the sample's own, or on an example domain."""

    key: str
    value: str
    is_sample: bool  # the sample publication's own value
    domain: str  # the example domain in the value; empty if none

    @property
    def hint(self) -> str:
        """What to set instead."""
        general = re.sub(r"\[\d+\]", "", self.key)
        parent = general.rpartition(".")[0]
        return HINTS.get(general) or HINTS.get(parent) or DEFAULT_HINT


def starter_leftovers(config_file: Path) -> list[Leftover]:
    """The values in ``config_file`` left from the starter, in file order."""
    return find_leftovers(read_config(config_file), read_config(SAMPLE_DIR / CONFIG_NAME))


def find_leftovers(data: Mapping[str, Any], sample: Mapping[str, Any]) -> list[Leftover]:
    """The string values of ``data`` that are ``sample``'s own or name an example domain."""
    placeholders = {
        key: value
        for key, value in strings(sample)
        if key.startswith(tuple(f"{table}." for table in COMPARED)) and not key.startswith(KEPT)
    }
    found = []
    for key, value in strings(data):
        domain = next(
            (d for d in _DOMAIN.findall(value) if is_example_domain(d)),
            "",
        )
        is_sample = placeholders.get(key) == value
        if is_sample or domain:
            found.append(Leftover(key, value, is_sample, domain.lower()))
    return found


def strings(data: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every string in parsed TOML with its key in full (``publication.social.RSS``)."""
    if isinstance(data, str):
        yield prefix, data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from strings(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from strings(value, f"{prefix}[{index}]")
