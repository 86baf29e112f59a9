"""Subscriber addresses: validated and normalized, and compared ignoring case.

An address is what email-validator accepts (syntax only, no DNS) within every length
limit of RFC 5321: at most 64 octets before the @-sign, 63 in a label of the domain,
253 in the domain and 254 in the whole address. email-validator enforces all of them
by default but the first (only in its "strict" mode, and in characters rather than
octets), so that one is checked here.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, EmailSyntaxError, validate_email

from newsletter.limits import ADDRESS_MAX_OCTETS, LOCAL_PART_MAX_OCTETS

EDGE_JUNK = " \t\r\n\u00a0\u200b\u2060\ufeff"
_MAX_DOMAINS = 10_000
_SIMPLE_LOCAL = re.compile(r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*")


class Addresses:
    """Check addresses with email-validator, reusing its verdict on each domain.

    email-validator checks the part after the @-sign without regard to the part
    before it, and that check is most of its cost. For a plain lower-case local part
    (letters, digits, ``. _ + -``) on a domain it already accepted in this read, its
    result is reproduced exactly: the local part as given, the domain as it normalized
    it, and the length limits. Every other address goes to email-validator itself.
    """

    def __init__(self) -> None:
        self.domains: dict[str, tuple[str, int]] = {}

    def normalize(self, raw: str) -> str | EmailNotValidError:
        """Return the normalized address in ``raw``, or the validator's complaint."""
        text = raw.strip(EDGE_JUNK)
        local, _at, domain = text.rpartition("@")
        known = self.domains.get(domain)
        simple = _SIMPLE_LOCAL.fullmatch(local) is not None
        if (
            known is not None
            and simple
            and len(local) <= LOCAL_PART_MAX_OCTETS
            and len(local) + 1 + known[1] <= ADDRESS_MAX_OCTETS
        ):
            return f"{local}@{known[0]}"
        try:
            result = validate_email(text, check_deliverability=False)
        except EmailNotValidError as err:
            return err
        octets = len(result.local_part.encode("utf-8"))
        if octets > LOCAL_PART_MAX_OCTETS:
            return EmailSyntaxError(
                f"The part before the @-sign is {octets} bytes long; RFC 5321 allows"
                f" {LOCAL_PART_MAX_OCTETS}."
            )
        if simple and result.local_part == local and len(self.domains) < _MAX_DOMAINS:
            longest = max(
                len(domain.encode()), len(result.domain.encode()), len(result.ascii_domain)
            )
            self.domains[domain] = (result.domain, longest)
        return result.normalized


def check_address(raw: str) -> str | EmailNotValidError:
    """Return one address normalized by the same rule as a list's, or the complaint."""
    return Addresses().normalize(raw)


def address_key(address: str) -> int:
    """Return a compact, case-insensitive identity for a normalized address (one process only)."""
    return hash(address.casefold())


def mask_address(address: str) -> str:
    """Show an address in a log or a message without giving it away: ``a***@example.org``."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
