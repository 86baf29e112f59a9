"""Signed tokens for links in messages: an HMAC of the list id and the subscriber's address.

A token proves that a link was made by this list for one address, so the endpoint that
receives it needs no table of links. The address travels next to it as a
``subscriber_ref`` (base64url), never in plain text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

DEVELOPMENT_KEY = b"newsletter development signing key: NOT SECRET, never use for live sends"
TOKEN_LENGTH = 32  # base64url characters: 192 bits of the HMAC-SHA256


@dataclass(frozen=True)
class Purpose:
    """Say what a token allows; a label gives the purpose its own key, so tokens never cross."""

    label: bytes = b""

    def __post_init__(self) -> None:
        # Every token's HMAC input holds a line break ("list id\naddress"), so a label
        # without one never makes a derived key that equals a token we publish.
        if b"\n" in self.label:
            raise ValueError("a token purpose's label must not hold a line break")

    def key(self, signing_key: bytes) -> bytes:
        """Return the key of this purpose's HMACs: ``signing_key``, or one derived by the label."""
        return (
            hmac.new(signing_key, self.label, hashlib.sha256).digest()
            if self.label
            else signing_key
        )


# Unsubscribe tokens predate purposes and are keyed by the signing key itself, so every
# link already sent keeps working. A new kind of token (confirming a subscription, VERP
# bounce addresses) is a ``Purpose`` with a label of its own.
UNSUBSCRIBE = Purpose()
CONFIRM_SUBSCRIPTION = Purpose(b"confirm-subscription")  # the link in a confirmation email
SUBSCRIBE_FORM = Purpose(b"subscribe-form")  # the subscribe form's anti-forgery token
VERP = Purpose(b"verp-return-path")  # the token in a return path (bounces)


class Signer:
    """Make one purpose's tokens for one list: the key and list id are hashed once."""

    __slots__ = ("_prefix",)

    def __init__(self, signing_key: bytes, list_id: str, purpose: Purpose = UNSUBSCRIBE) -> None:
        self._prefix = hmac.new(purpose.key(signing_key), f"{list_id}\n".encode(), hashlib.sha256)

    def token(self, email: str) -> str:
        """Sign ``email``, casefolded: HMAC-SHA256, base64url without padding, 32 characters."""
        mac = self._prefix.copy()
        mac.update(email.casefold().encode())
        return base64.urlsafe_b64encode(mac.digest())[:TOKEN_LENGTH].decode("ascii")

    def verify(self, email: str, token: str) -> bool:
        """Check a token for ``email`` in constant time."""
        expected = self.token(email).encode("ascii")
        return hmac.compare_digest(expected, token.encode("utf-8", "replace"))

    def seal(self, *fields: str) -> str:
        """Sign several fields as one token, case kept (an expiry, an address, a name …).

        No field may hold a line break, so fields never run into each other.
        """
        if any("\n" in value for value in fields):
            raise ValueError("a sealed field must not hold a line break")
        mac = self._prefix.copy()
        mac.update("\n".join(fields).encode())
        return base64.urlsafe_b64encode(mac.digest())[:TOKEN_LENGTH].decode("ascii")

    def opens(self, token: str, *fields: str) -> bool:
        """Check a token made by ``seal`` for these fields, in constant time."""
        if any("\n" in value for value in fields):
            return False
        expected = self.seal(*fields).encode("ascii")
        return hmac.compare_digest(expected, token.encode("utf-8", "replace"))


def unsubscribe_token(key: bytes, list_id: str, email: str) -> str:
    """Sign ``email`` for ``list_id``: HMAC-SHA256, base64url without padding, 32 characters."""
    return Signer(key, list_id).token(email)


def verify_token(key: bytes, list_id: str, email: str, token: str) -> bool:
    """Check an unsubscribe token in constant time."""
    return Signer(key, list_id).verify(email, token)


def subscriber_ref(email: str) -> str:
    """Encode an address for the unsubscribe URL (base64url), so no plain address is in a URL.

    Plain addresses in URLs are scored by spam filters and end up in web server logs.
    """
    return base64.urlsafe_b64encode(email.encode("utf-8")).rstrip(b"=").decode("ascii")


def read_subscriber_ref(ref: str) -> str:
    """Decode ``subscriber_ref`` (for the web endpoint that handles unsubscribes)."""
    padded = ref + "=" * (-len(ref) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")


# --------------------------------------------------------------------------- VERP return paths

VERP_EDITION_LENGTH = 6  # hex digits of the edition id's hash: tells editions apart
VERP_TAG_LENGTH = 16  # hex digits of the recipient's HMAC: 64 bits
VERP_TOKEN_LENGTH = VERP_EDITION_LENGTH + VERP_TAG_LENGTH
VERP_EXTRA = 1 + VERP_TOKEN_LENGTH  # what VERP adds to the local part: "+" and the token
MAX_LOCAL_PART = 64  # octets before the "@" (RFC 5321)

# Lower-case hex: it survives mail systems that change the case of a local part, and it is
# quick to make (a message's return path costs one HMAC, about a microsecond and a half).


def verp_edition_tag(edition_id: str) -> str:
    """The edition's part of a VERP token: a short hash of its id (public, not a secret)."""
    return hashlib.sha256(edition_id.encode("utf-8")).hexdigest()[:VERP_EDITION_LENGTH]


class EditionReturnPath:
    """One edition's VERP return paths: ``local+EEEEEETTTTTTTTTTTTTTTT@domain`` (hex digits).

    ``E`` is the edition's tag, ``T`` an HMAC of the list id, the edition id and the
    recipient's address, so a bounce names its edition and recipient, and nobody without
    the signing key can make one that names another subscriber.
    """

    __slots__ = ("_head", "_prefix", "_tail", "edition_id", "edition_tag")

    def __init__(self, key: bytes, list_id: str, edition_id: str, local: str, domain: str) -> None:
        self.edition_id = edition_id
        self.edition_tag = verp_edition_tag(edition_id)
        self._prefix = hmac.new(key, f"{list_id}\n{edition_id}\n".encode(), hashlib.sha256)
        self._head = f"{local}+{self.edition_tag}"
        self._tail = f"@{domain}"

    def tag(self, email: str) -> str:
        """The recipient's part of the token, for ``email`` casefolded."""
        mac = self._prefix.copy()
        mac.update(email.casefold().encode())
        return mac.hexdigest()[:VERP_TAG_LENGTH]

    def address(self, email: str) -> str:
        """The return path of this edition's message to ``email``."""
        return f"{self._head}{self.tag(email)}{self._tail}"


class ReturnPath:
    """VERP return paths of one list on one bounce address (``local@domain``)."""

    __slots__ = ("_key", "_list_id", "_pattern", "domain", "local")

    def __init__(self, signing_key: bytes, list_id: str, address: str) -> None:
        local, _, domain = address.rpartition("@")
        self.local, self.domain = local, domain
        self._key = VERP.key(signing_key)
        self._list_id = list_id
        self._pattern = re.compile(
            rf"(?<![\w.+-]){re.escape(local)}\+([0-9a-f]{{{VERP_TOKEN_LENGTH}}})"
            rf"@{re.escape(domain)}(?![\w-]|\.\w)",
            re.IGNORECASE,
        )

    def edition(self, edition_id: str) -> EditionReturnPath:
        """The return paths of one edition (its key prefix hashed once)."""
        return EditionReturnPath(self._key, self._list_id, edition_id, self.local, self.domain)

    def tokens_in(self, text: str) -> list[tuple[str, str]]:
        """Every ``(edition tag, recipient tag)`` of a return path of ours found in ``text``."""
        found: list[tuple[str, str]] = []
        for match in self._pattern.finditer(text):
            token = match.group(1).lower()
            pair = (token[:VERP_EDITION_LENGTH], token[VERP_EDITION_LENGTH:])
            if pair not in found:
                found.append(pair)
        return found
