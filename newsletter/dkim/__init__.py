"""DKIM: the ``[dkim]`` settings and keys, signing, the self-check and the DNS records.

``keys`` reads private keys, ``settings`` the ``[dkim]`` table, ``canon`` holds the
relaxed canonicalization, ``signer`` signs, ``selfcheck`` verifies our own signatures and
``records`` prints and checks what DNS must publish.

The names below stay importable from ``newsletter.dkim`` while callers move to the
modules that hold them.
"""

from newsletter.dkim.records import aligned, dns_records
from newsletter.dkim.selfcheck import verify
from newsletter.dkim.settings import DkimSettings, parse_dkim
from newsletter.dkim.signer import SIGNED_HEADERS, DkimSigner

__all__ = [
    "SIGNED_HEADERS",
    "DkimSettings",
    "DkimSigner",
    "aligned",
    "dns_records",
    "parse_dkim",
    "verify",
]
