"""Subscriber addresses: validated and normalized, and compared ignoring case."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

EDGE_JUNK = " \t\r\n\u00a0\u200b\u2060\ufeff"
_ADDRESS_MAX_BYTES = 254  # RFC 5321, as email-validator enforces it
_MAX_DOMAINS = 10_000
_SIMPLE_LOCAL = re.compile(r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*")


class Addresses:
    """Check addresses with email-validator, reusing its verdict on each domain.

    email-validator checks the part after the @-sign without regard to the part
    before it, and that check is most of its cost. For a plain lower-case local part
    (letters, digits, ``. _ + -``) on a domain it already accepted in this read, its
    result is reproduced exactly: the local part as given, the domain as it normalized
    it, and its 254-byte limit. Every other address goes to email-validator itself.
    """

    def __init__(self) -> None:
        self.domains: dict[str, tuple[str, int]] = {}

    def normalize(self, raw: str) -> str | EmailNotValidError:
        """Return the normalized address in ``raw``, or the validator's complaint."""
        text = raw.strip(EDGE_JUNK)
        local, _at, domain = text.rpartition("@")
        known = self.domains.get(domain)
        simple = _SIMPLE_LOCAL.fullmatch(local) is not None
        if known is not None and simple and len(local) + 1 + known[1] <= _ADDRESS_MAX_BYTES:
            return f"{local}@{known[0]}"
        try:
            result = validate_email(text, check_deliverability=False)
        except EmailNotValidError as err:
            return err
        if simple and result.local_part == local and len(self.domains) < _MAX_DOMAINS:
            longest = max(
                len(domain.encode()), len(result.domain.encode()), len(result.ascii_domain)
            )
            self.domains[domain] = (result.domain, longest)
        return result.normalized


def address_key(address: str) -> int:
    """Return a compact, case-insensitive identity for a normalized address (one process only)."""
    return hash(address.casefold())
