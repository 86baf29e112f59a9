"""Signed values that expire: the subscribe form's token and the confirmation link.

Both are sealed with the signing key under a purpose of their own (``tokens``), so
neither can stand in for the other or for an unsubscribe token, and both carry their
expiry (Unix seconds) inside the seal:

- the form token is ``<expires>.<nonce>.<seal>``: it shows that a POST comes from a
  form this service handed out lately (with the Origin check, from this site);
- the confirmation link is ``{web.confirm_url}?s=<address>&n=<name>&e=<expires>&token=<seal>``,
  address and name in base64url (``tokens.subscriber_ref``), so no pending subscription
  needs storing: the link itself is the proof.
"""

from __future__ import annotations

import binascii
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from newsletter.tokens import (
    CONFIRM_SUBSCRIPTION,
    SUBSCRIBE_FORM,
    Signer,
    read_subscriber_ref,
    subscriber_ref,
)

FORM_SECONDS = 2 * 3600  # a subscribe form may be sent this long after it was shown

Clock = Callable[[], float]


class FormTokens:
    """Hand out and check the subscribe form's tokens."""

    def __init__(self, key: bytes, list_id: str, *, clock: Clock = time.time) -> None:
        self._signer = Signer(key, list_id, SUBSCRIBE_FORM)
        self._clock = clock

    def issue(self) -> str:
        """A new token, good for ``FORM_SECONDS``."""
        expires = str(int(self._clock()) + FORM_SECONDS)
        nonce = secrets.token_urlsafe(9)
        return f"{expires}.{nonce}.{self._signer.seal(expires, nonce)}"

    def valid(self, token: str) -> bool:
        """Whether ``token`` is one of ours and has not expired."""
        expires, _, rest = token.partition(".")
        nonce, _, seal = rest.partition(".")
        if not (expires.isdigit() and nonce and seal):
            return False
        return self._signer.opens(seal, expires, nonce) and int(expires) >= self._clock()


@dataclass(frozen=True)
class Subscription:
    """What a valid confirmation link asks for."""

    email: str
    name: str


@dataclass(frozen=True)
class Expired:
    """A confirmation link that was ours but is too old."""


class ConfirmLinks:
    """Make and read the links of confirmation emails."""

    def __init__(
        self, key: bytes, list_id: str, url: str, hours: float, *, clock: Clock = time.time
    ) -> None:
        self._signer = Signer(key, list_id, CONFIRM_SUBSCRIPTION)
        self._url = url
        self._seconds = int(hours * 3600)
        self._clock = clock

    def link(self, email: str, name: str) -> str:
        """The confirmation link for ``email`` (and the name given with it)."""
        address, named = subscriber_ref(email), subscriber_ref(name)
        expires = str(int(self._clock()) + self._seconds)
        token = self._signer.seal(expires, address, named)
        return f"{self._url}?{urlencode({'s': address, 'n': named, 'e': expires, 'token': token})}"

    def read(self, query: Mapping[str, str]) -> Subscription | Expired | None:
        """What a link's query asks for; ``Expired`` if too old, ``None`` if not ours."""
        address, named = query.get("s", ""), query.get("n", "")
        expires, token = query.get("e", ""), query.get("token", "")
        if not (address and expires.isdigit() and token):
            return None
        if not self._signer.opens(token, expires, address, named):
            return None
        if int(expires) < self._clock():
            return Expired()
        try:
            return Subscription(read_subscriber_ref(address), read_subscriber_ref(named))
        except (binascii.Error, UnicodeError, ValueError):
            return None
