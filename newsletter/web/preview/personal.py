"""One subscriber's message as the preview shows it, and who a typed address names.

The preview shows the exact bytes a send would produce. Any address may be typed into
it, so a message for an address that is not in the list carries ``STAND_IN_TOKEN``
instead of a working unsubscribe link for someone else's address.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage

from newsletter.config.settings import Settings
from newsletter.errors import DeliveryError, SubscriberError
from newsletter.models import Subscriber
from newsletter.pipeline import BuildResult, Messages, normalize_address
from newsletter.preflight.sample import sample_subscriber
from newsletter.subscribers.reader import read_subscribers

SAMPLE = "sample"  # the subscriber query that always means the sample subscriber
MAX_ADDRESS = 320
# The unsubscribe token of an address that is not in the list: visibly not a signature.
STAND_IN_TOKEN = "PREVIEW-ONLY-address-not-in-the-list"  # noqa: S105 - not a secret

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Personal:
    """One subscriber's message: the exact bytes and their decoded parts."""

    subscriber: Subscriber
    is_sample: bool
    data: bytes
    html: str
    text: str
    headers: tuple[tuple[str, str], ...]
    filename: str

    @property
    def html_bytes(self) -> int:
        """Size of the HTML part as Gmail counts it (UTF-8 bytes)."""
        return len(self.html.encode("utf-8"))

    @property
    def query(self) -> str:
        """The ``subscriber`` query value that asks for this message again."""
        return SAMPLE if self.is_sample else self.subscriber.email


def choose_subscriber(
    settings: Settings, choices: tuple[Subscriber, ...], wanted: str, default: str = ""
) -> Subscriber:
    """Find who ``wanted`` (else ``default``) names: the sample, a listed row, or any address."""
    sample = sample_subscriber(settings)
    wanted = wanted.strip() or default.strip()
    if wanted == SAMPLE:
        return sample
    if not wanted or wanted.casefold() == sample.email.casefold():
        return sample
    if len(wanted) > MAX_ADDRESS:
        raise SubscriberError(f"{wanted[:40]!r}…: an address is at most {MAX_ADDRESS} long")
    key = wanted.casefold()
    for listed in choices:
        if listed.email.casefold() == key:
            return listed
    found = _find_subscriber(settings, key)
    if found is not None:
        return found
    return Subscriber(email=normalize_address(wanted), name="")


def _find_subscriber(settings: Settings, key: str) -> Subscriber | None:
    """Look an address up in the whole list (inactive rows too); ``None`` if absent."""
    try:
        for row in read_subscribers(settings.paths.subscribers, include_inactive=True):
            if row.email.casefold() == key:
                return row
    except SubscriberError:
        return None
    return None


def personalize(
    result: BuildResult,
    messages: Messages,
    subscriber: Subscriber,
    *,
    is_sample: bool,
    signed: bool = True,
) -> Personal:
    """Build one subscriber's exact message bytes and decode them for display.

    Unless ``signed``, the unsubscribe links carry ``STAND_IN_TOKEN``.
    """
    outgoing = messages.build(subscriber, token=None if signed else STAND_IN_TOKEN)
    message = email.message_from_bytes(outgoing.data, policy=email.policy.default)
    if not isinstance(message, EmailMessage):
        raise DeliveryError("the message could not be read back")
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    html_body = html_part.get_content() if html_part is not None else ""
    text_body = text_part.get_content() if text_part is not None else ""
    local = _SAFE_NAME.sub("_", outgoing.recipient.partition("@")[0]).strip("._")[:40]
    return Personal(
        subscriber=subscriber,
        is_sample=is_sample,
        data=outgoing.data,
        html=html_body,
        text=text_body,
        headers=tuple((name, str(value)) for name, value in message.items()),
        filename=f"{_SAFE_NAME.sub('_', result.edition.id)}-{local or 'message'}.eml",
    )
