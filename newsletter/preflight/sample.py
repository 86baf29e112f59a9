"""The sample message: the made-up subscriber it is built for, and its parsed headers and parts."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses

from newsletter.config.settings import Settings
from newsletter.models import Subscriber
from newsletter.preflight.findings import Report, normal

_ANGLE_URLS = re.compile(r"<([^<>]*)>")


def sample_subscriber(settings: Settings) -> Subscriber:
    """A made-up subscriber on the sender's domain, to build the sample message for."""
    return Subscriber(
        email=f"preflight.sample@{settings.sender.domain or 'example.org'}",
        name="Sample Reader",
    )


@dataclass(frozen=True)
class Sample:
    """The parsed sample message and the text of its HTML and plain parts (None if absent)."""

    message: EmailMessage
    html: str | None
    text: str | None

    def header(self, name: str) -> str:
        """The header's value on one line; empty if the header is missing."""
        value = self.message.get(name)
        return "" if value is None else normal(str(value))

    def count(self, name: str) -> int:
        """How many times the header appears."""
        return len(self.message.get_all(name) or [])

    def unsubscribe_urls(self) -> list[str]:
        """The URLs in List-Unsubscribe, in order."""
        return [url.strip() for url in _ANGLE_URLS.findall(self.header("List-Unsubscribe"))]


def parse_sample(data: bytes, out: Report) -> Sample:
    """Parse the message; report MIME defects and parts that cannot be decoded."""
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    for defect in parsed.defects:
        out.warning("mime-defect", f"the message structure has a defect: {defect!r}")
    return Sample(parsed, _part_text(parsed, "html", out), _part_text(parsed, "plain", out))


def _part_text(message: EmailMessage, subtype: str, out: Report) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    try:
        return str(part.get_content())
    except (LookupError, ValueError) as err:
        out.error(
            f"{subtype}-undecodable",
            f"the text/{subtype} part cannot be decoded ({err}); declare a charset like utf-8",
        )
        return None


def domain_of(address_header: str) -> str:
    """The lower-cased domain of the first address in a header; empty if there is none."""
    pairs = getaddresses([address_header])
    address = pairs[0][1] if pairs else ""
    return address.rpartition("@")[2].lower() if "@" in address else ""
