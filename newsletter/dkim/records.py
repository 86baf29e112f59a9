"""The DNS side of DKIM: the TXT records to publish and alignment with the From domain."""

from __future__ import annotations

from newsletter.dkim.keys import (
    GENERATE_HINT,
    KeyProblem,
    PrivateKey,
    describe,
    key_type,
    key_warnings,
    load_private_key,
    public_key_base64,
)
from newsletter.dkim.settings import DkimSettings
from newsletter.errors import DeliveryError

TXT_CHUNK = 255


def _key(settings: DkimSettings) -> PrivateKey:
    try:
        return load_private_key(settings.private_key)
    except KeyProblem as problem:
        raise DeliveryError(f"{settings.key_origin}: {problem}") from None


def txt_value(settings: DkimSettings) -> str:
    """The TXT record's text: ``v=DKIM1; k=rsa; p=…`` (``k=ed25519`` for Ed25519)."""
    key = _key(settings)
    return f"v=DKIM1; k={key_type(key)}; p={public_key_base64(key)}"


def txt_strings(value: str) -> list[str]:
    """Split a TXT value into the quoted strings of at most 255 characters DNS allows."""
    return [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]


def aligned(dkim_domain: str, from_domain: str) -> bool:
    """Whether the DKIM d= domain aligns with the From domain (DMARC relaxed alignment)."""
    d, f = dkim_domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return d == f or f.endswith("." + d) or d.endswith("." + f)


def dns_records(settings: DkimSettings | None, sender_domain: str) -> list[str]:
    """Zone-file lines to publish: each DKIM key's record, with SPF and DMARC reminders."""
    domain = sender_domain.lower().rstrip(".")
    lines: list[str] = []
    if settings is None:
        lines.append(
            f"; DKIM: not configured, so messages go out unsigned. Add a [dkim] table "
            f"(selector, key_file; {GENERATE_HINT}) and publish the record this command prints."
        )
    else:
        for one in settings.keys:
            key = _key(one)
            strings = " ".join(f'"{s}"' for s in txt_strings(txt_value(one)))
            lines.append(f"; DKIM: publish this TXT record ({describe(key)}, d={one.domain}):")
            lines.append(f"{one.record_name} IN TXT {strings}")
            lines += [f"; DKIM: {one.selector}: {warning}" for warning in key_warnings(key)]
        for dkim_domain in dict.fromkeys(one.domain for one in settings.keys):
            if domain and not aligned(dkim_domain, domain):
                lines.append(
                    f"; DKIM: d={dkim_domain} does not align with the From domain {domain}: "
                    "DMARC will fail; set dkim.domain to the From domain"
                )
    lines.append(
        f"; SPF: {domain} needs a TXT record that authorizes your SMTP relay, for example "
        '"v=spf1 include:<your relay\'s SPF domain> -all" (ask your provider for the include)'
    )
    lines.append(
        f'; DMARC: _dmarc.{domain} IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@{domain}" '
        "(required by Gmail and Yahoo for bulk senders; move to p=quarantine after "
        "reading the reports)"
    )
    return lines
