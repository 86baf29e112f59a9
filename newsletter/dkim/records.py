"""The DNS side of DKIM: the TXT records to publish, alignment, and what DNS publishes now.

The lookup of published records is a function passed in (``lookup_txt`` asks DNS), so
it can be replaced; the check reports a missing record, another key, or a revoked one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from newsletter.dkim.canon import tags
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
LOOKUP_SECONDS = 5.0

Lookup = Callable[[str], "str | None"]
"""The text of the TXT record at a DNS name (strings joined), None if there is none.

Raises ``OSError`` when the question cannot be asked or answered (no network, timeout).
"""


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


# --------------------------------------------------------------------------- what DNS says


@dataclass(frozen=True)
class Published:
    """What DNS publishes for one key: ``ok``, ``warning`` (not there yet) or ``error``."""

    level: str
    message: str


def lookup_txt(name: str) -> str | None:
    """Ask DNS for the TXT record at ``name`` (dnspython, through dkimpy's helper)."""
    import dkim  # loaded only for this check: the DNS library is slow to import
    import dkim.dnsplug

    try:
        found = dkim.dnsplug.get_txt(name.encode("ascii"), timeout=LOOKUP_SECONDS)
    except (dkim.DnsTimeoutError, OSError) as err:
        raise OSError(f"DNS lookup failed: {err}") from err
    except Exception as err:  # the DNS library's own errors: no answer to give
        raise OSError(f"DNS lookup failed ({type(err).__name__})") from err
    return None if found is None else bytes(found).decode("ascii", "replace")


def published(settings: DkimSettings, lookup: Lookup = lookup_txt) -> list[Published]:
    """Compare each key with the record DNS publishes at its selector."""
    return [_compare(one, lookup) for one in settings.keys]


def _compare(settings: DkimSettings, lookup: Lookup) -> Published:
    name = settings.record_name
    try:
        text = lookup(name + ".")
    except OSError as err:
        return Published("warning", f"could not look up {name}: {err}")
    if text is None:
        return Published(
            "warning", f"{name} has no TXT record yet: publish the record printed above"
        )
    key = _key(settings)
    record = tags(text)
    want_type = key_type(key)
    if record.get("v", "DKIM1") != "DKIM1":
        return Published("error", f"{name} holds a TXT record that is not a DKIM key (v=)")
    if "p" in record and not record["p"]:
        return Published(
            "error", f"{name} publishes a revoked key (empty p=): publish the record above"
        )
    if record.get("k", "rsa") != want_type:
        return Published(
            "error",
            f"{name} publishes a k={record.get('k', 'rsa')} key, but {settings.key_origin} is "
            f"{describe(key)}: publish the record above, or point the selector at its own key",
        )
    if "sha256" not in record.get("h", "sha256").split(":"):
        return Published("error", f"{name} allows only h={record['h']}; remove the h= tag")
    if record.get("p") != public_key_base64(key):
        return Published(
            "error",
            f"{name} publishes another key than {settings.key_origin}: every signature would "
            "fail; publish the record above (or use the key the record belongs to)",
        )
    return Published("ok", f"{name} publishes this key")
