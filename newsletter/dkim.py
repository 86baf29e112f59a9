"""DKIM: the ``[dkim]`` settings, signing each message, and the DNS records to publish.

dkimpy (and the DNS library it pulls in) is imported only when a key is used, so
loading the settings stays fast.

The private key comes from ``dkim.key_file`` or the ``NEWSLETTER_DKIM_KEY``
environment variable (the PEM text). It never appears in output, errors or reprs.
Signatures are rsa-sha256 with relaxed/relaxed canonicalization and cover the
headers RFC 8058 needs for one-click unsubscribe.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.errors import DeliveryError

ENV_DKIM_KEY = "NEWSLETTER_DKIM_KEY"
ALGORITHM = "rsa-sha256"
MIN_KEY_BITS = 1024
MAX_KEY_FILE_BYTES = 64 * 1024
TXT_CHUNK = 255

SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
"""Always listed in h= (an absent one is signed as absent, so it cannot be added later)."""

SIGNED_IF_PRESENT = ("Reply-To", "MIME-Version", "Content-Type", "Content-Transfer-Encoding")
OVERSIGNED = ("From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post")
"""Listed twice in h=, so a second copy added in transit breaks the signature."""

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)
_RSA_OID = bytes.fromhex("2a864886f70d010101")
_KNOWN_KEYS = ("selector", "domain", "key_file")
_GENERATE_HINT = "create one with: openssl genrsa -out dkim-private.pem 2048"


@dataclass(frozen=True)
class DkimSettings:
    """Who signs (``d=`` domain, selector) and with which RSA key (PEM, never shown)."""

    selector: str
    domain: str
    private_key: bytes = field(repr=False)
    key_origin: str = ""

    @property
    def record_name(self) -> str:
        """The DNS name that holds the public key."""
        return f"{self.selector}._domainkey.{self.domain}"


@dataclass(frozen=True)
class _RsaKey:
    modulus: int
    exponent: int

    @property
    def bits(self) -> int:
        return self.modulus.bit_length()


# --------------------------------------------------------------------------- settings


def parse_dkim(
    table: Mapping[str, Any],
    root: Path,
    *,
    environ: Mapping[str, str] | None = None,
    default_domain: str = "",
) -> tuple[DkimSettings | None, list[str]]:
    """Validate ``[dkim]`` and the key; return the settings (None when off) and all problems."""
    env = os.environ if environ is None else environ
    env_key = env.get(ENV_DKIM_KEY, "")
    problems: list[str] = []
    if not table and not env_key.strip():
        return None, problems
    values = {name: _string(table, name, problems) for name in _KNOWN_KEYS}
    problems += _unknown_keys(table)
    selector = values["selector"]
    domain = (values["domain"] or default_domain).lower().rstrip(".")
    if not selector:
        problems.append(
            "dkim.selector: required, the DNS label of the key (for example 'news2026')"
        )
    elif not _SELECTOR.fullmatch(selector):
        problems.append(
            f"dkim.selector: {selector!r} is not a DNS label (letters, digits, '-', dots)"
        )
    if not domain:
        problems.append("dkim.domain: required, the signing domain (usually the From domain)")
    elif not _DOMAIN.fullmatch(domain):
        problems.append(f"dkim.domain: {domain!r} is not a domain name like example.org")
    pem, origin = _key_text(values["key_file"], env_key, root, problems)
    if pem is None:
        return None, problems
    key_problem = _check_private_key(pem)
    if key_problem:
        problems.append(f"{origin}: {key_problem}")
    if problems:
        return None, problems
    return DkimSettings(
        selector=selector, domain=domain, private_key=_canonical_pem(pem), key_origin=origin
    ), []


def _string(table: Mapping[str, Any], name: str, problems: list[str]) -> str:
    value = table.get(name, "")
    if not isinstance(value, str):
        problems.append(f"dkim.{name}: expected a string, got {type(value).__name__}")
        return ""
    return value.strip()


def _unknown_keys(table: Mapping[str, Any]) -> list[str]:
    problems = []
    for name in table:
        if name in _KNOWN_KEYS:
            continue
        if name in ("key", "private_key"):
            problems.append(
                f"dkim.{name}: do not put the key in the file; use dkim.key_file "
                f"or set {ENV_DKIM_KEY} to the PEM text"
            )
            continue
        hint = difflib.get_close_matches(name, _KNOWN_KEYS, n=1)
        tip = f"; did you mean 'dkim.{hint[0]}'?" if hint else ""
        problems.append(f"dkim.{name}: unknown key{tip}")
    return problems


def _key_text(
    key_file: str, env_key: str, root: Path, problems: list[str]
) -> tuple[bytes | None, str]:
    """Read the PEM from the file or the environment; report a missing or double source."""
    if key_file and env_key.strip():
        problems.append(f"dkim.key_file and {ENV_DKIM_KEY} are both set: keep only one")
        return None, ""
    if env_key.strip():
        text = env_key.replace("\\n", "\n") if "\n" not in env_key.strip() else env_key
        return _normalize_pem(text.encode("utf-8", "replace")), f"${ENV_DKIM_KEY}"
    if not key_file:
        problems.append(
            f"dkim: no key; set dkim.key_file to a PEM private key or {ENV_DKIM_KEY} "
            f"to its text ({_GENERATE_HINT})"
        )
        return None, ""
    path = (root / Path(key_file).expanduser()).resolve()
    origin = f"dkim.key_file {path}"
    try:
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            problems.append(f"{origin}: too large to be a private key")
            return None, origin
        data = path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{origin}: no such file ({_GENERATE_HINT})")
        return None, origin
    except IsADirectoryError:
        problems.append(f"{origin}: is a folder; point it at the PEM key file")
        return None, origin
    except OSError as err:
        problems.append(f"{origin}: cannot read it ({err.strerror})")
        return None, origin
    return _normalize_pem(data), origin


def _normalize_pem(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip() + b"\n"


def _pem_der(pem: bytes) -> tuple[str, bytes | None]:
    """The label and DER body of the PEM block (a private key's, if there are several)."""
    blocks = list(_PEM.finditer(pem.decode("ascii", "replace")))
    if not blocks:
        return "", None
    match = next((b for b in blocks if "PRIVATE KEY" in b.group(1)), blocks[0])
    if ":" in match.group(2):  # RFC 1421 headers: an encrypted traditional key
        return f"ENCRYPTED {match.group(1)}", None
    body = "".join(match.group(2).split())
    try:
        return match.group(1), base64.b64decode(body, validate=True)
    except binascii.Error:
        return match.group(1), None


def _canonical_pem(pem: bytes) -> bytes:
    """Only the private key block, re-wrapped at 64 columns (what the signer reads)."""
    label, der = _pem_der(pem)
    if der is None:
        return pem
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode()


def _check_private_key(pem: bytes) -> str:
    """Explain what is wrong with the key, or return '' when it can sign."""
    label, der = _pem_der(pem)
    if not label:
        return f"not a PEM private key (expected '-----BEGIN PRIVATE KEY-----'; {_GENERATE_HINT})"
    if "ENCRYPTED" in label:
        return (
            "the key is encrypted; export it without a passphrase "
            "(openssl rsa -in KEY -out dkim-private.pem) and protect the file's permissions"
        )
    if "PUBLIC" in label:
        return "this is a public key; point it at the private key"
    if label not in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        return f"a {label} is not supported; use an RSA private key ({_GENERATE_HINT})"
    key = _rsa_from_der(der)
    if key is None:
        return f"not a readable RSA private key ({_GENERATE_HINT})"
    if key.bits < MIN_KEY_BITS:
        return f"the key has {key.bits} bits; receivers ignore keys under {MIN_KEY_BITS} (use 2048)"
    return ""


def _rsa_from_der(der: bytes | None) -> _RsaKey | None:
    from dkim.crypto import UnparsableKeyError, parse_private_key

    if der is None:
        return None
    try:
        parsed = parse_private_key(der)
    except (UnparsableKeyError, ValueError, IndexError, AssertionError):
        return None
    modulus, exponent = parsed["modulus"], parsed["publicExponent"]
    if parsed["prime1"] * parsed["prime2"] != modulus or modulus <= 0:
        return None
    return _RsaKey(modulus=modulus, exponent=exponent)


def _public_key(settings: DkimSettings) -> _RsaKey:
    key = _rsa_from_der(_pem_der(settings.private_key)[1])
    if key is None:
        raise DeliveryError(f"{settings.key_origin}: not a readable RSA private key")
    return key


# --------------------------------------------------------------------------- signing


def _header_names(message: bytes) -> set[str]:
    """The lower-case names of the message's header fields."""
    head = message.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return {
        line.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
        for line in head.splitlines()
        if line[:1] not in (b" ", b"\t") and b":" in line
    }


class DkimSigner:
    """Sign messages with the configured key (rsa-sha256, relaxed/relaxed)."""

    def __init__(self, settings: DkimSettings) -> None:
        problem = _check_private_key(settings.private_key)
        if problem:
            raise DeliveryError(f"{settings.key_origin}: {problem}")
        self.settings = settings
        self._selector = settings.selector.encode("ascii")
        self._domain = settings.domain.encode("ascii")

    def headers_for(self, message: bytes) -> list[str]:
        """The header names h= lists for ``message`` (required, present extras, oversigned)."""
        present = _header_names(message)
        extras = [name for name in SIGNED_IF_PRESENT if name.lower() in present]
        return [*SIGNED_HEADERS, *extras, *OVERSIGNED]

    def sign(self, message: bytes) -> bytes:
        """Return ``message`` with a DKIM-Signature header prepended (line endings kept)."""
        import dkim as dkimpy

        if "from" not in _header_names(message):
            raise DeliveryError("cannot DKIM-sign a message without a From header")
        linesep = b"\r\n" if b"\r\n" in message[:4096] else b"\n"
        try:
            header = dkimpy.sign(
                message,
                self._selector,
                self._domain,
                self.settings.private_key,
                canonicalize=(b"relaxed", b"relaxed"),
                signature_algorithm=ALGORITHM.encode("ascii"),
                include_headers=[h.encode("ascii") for h in self.headers_for(message)],
                linesep=linesep,
            )
        except dkimpy.DKIMException as err:
            raise DeliveryError(f"DKIM signing failed ({type(err).__name__}: {err})") from err
        return bytes(header) + message


# --------------------------------------------------------------------------- DNS


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def public_key_base64(settings: DkimSettings) -> str:
    """The ``p=`` value: the SubjectPublicKeyInfo of the key, base64."""
    key = _public_key(settings)
    rsa_public = _der(0x30, _der_int(key.modulus) + _der_int(key.exponent))
    algorithm = _der(0x30, _der(0x06, _RSA_OID) + _der(0x05, b""))
    spki = _der(0x30, algorithm + _der(0x03, b"\x00" + rsa_public))
    return base64.b64encode(spki).decode("ascii")


def txt_value(settings: DkimSettings) -> str:
    """The TXT record's text: ``v=DKIM1; k=rsa; p=…``."""
    return f"v=DKIM1; k=rsa; p={public_key_base64(settings)}"


def verify(message: bytes, settings: DkimSettings) -> tuple[bool, tuple[str, ...]]:
    """Verify the top DKIM signature against this key's own public key (no DNS); return h=."""
    import dkim as dkimpy

    record = txt_value(settings).encode("ascii")
    name = settings.record_name.encode("ascii")

    def lookup(query: bytes, timeout: int = 5) -> bytes | None:
        return record if query.rstrip(b".").lower() == name.lower() else None

    checker = dkimpy.DKIM(message)
    try:
        ok = bool(checker.verify(dnsfunc=lookup))
    except dkimpy.DKIMException:
        return False, ()
    signed = tuple(h.decode("ascii", "replace").lower() for h in checker.include_headers or ())
    return ok, signed


def txt_strings(value: str) -> list[str]:
    """Split a TXT value into the quoted strings of at most 255 characters DNS allows."""
    return [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]


def aligned(dkim_domain: str, from_domain: str) -> bool:
    """Whether the DKIM d= domain aligns with the From domain (DMARC relaxed alignment)."""
    d, f = dkim_domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return d == f or f.endswith("." + d) or d.endswith("." + f)


def dns_records(settings: DkimSettings | None, sender_domain: str) -> list[str]:
    """Zone-file lines to publish: the DKIM key record, with SPF and DMARC reminders as comments."""
    domain = sender_domain.lower().rstrip(".")
    lines: list[str] = []
    if settings is None:
        lines.append(
            f"; DKIM: not configured, so messages go out unsigned. Add a [dkim] table "
            f"(selector, key_file; {_GENERATE_HINT}) and publish the record this command prints."
        )
    else:
        bits = _public_key(settings).bits
        strings = " ".join(f'"{s}"' for s in txt_strings(txt_value(settings)))
        lines.append(f"; DKIM: publish this TXT record ({bits}-bit RSA, d={settings.domain}):")
        lines.append(f"{settings.record_name} IN TXT {strings}")
        if domain and not aligned(settings.domain, domain):
            lines.append(
                f"; DKIM: d={settings.domain} does not align with the From domain {domain}: "
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
