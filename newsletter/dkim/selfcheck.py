"""Check the signatures our keys made on a message, against the keys' own public halves.

Used by the preflight to prove a configuration signs correctly, before any DNS exists.
It reads the message from scratch (no piece, no cache of the signer), so a mistake in
the signer's shortcuts shows here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from newsletter.dkim.canon import (
    body_part,
    canonical_fields,
    joined_body,
    on_the_wire,
    relaxed_field,
    split_fields,
    split_message,
    tags,
)
from newsletter.dkim.keys import KeyProblem, PrivateKey, algorithm, load_private_key
from newsletter.dkim.settings import DkimSettings

_B_VALUE = re.compile(rb"([;\s]b[ \t]*=)[^;]*")  # the b= tag's value, left out of the hash


def verify(message: bytes, settings: DkimSettings) -> tuple[bool, tuple[str, ...]]:
    """Verify the signature of every configured key (no DNS); return the headers all cover.

    False when a configured key has no signature, or one that does not verify.
    """
    data = on_the_wire(message)
    head, body = split_message(data)
    try:
        raw = split_fields(head)
        fields = canonical_fields(head)
    except ValueError:
        return False, ()
    digest = hashlib.sha256(joined_body([body_part(body)])).digest()
    body_hash = base64.b64encode(digest).decode("ascii")
    covered: list[tuple[str, ...]] = []
    for key_settings in settings.keys:
        try:
            key = load_private_key(key_settings.private_key)
        except KeyProblem:
            return False, ()
        found = [
            (name, value)
            for name, value in raw
            if name.strip().lower() == b"dkim-signature"
            and _is_for(tags(value.decode("ascii", "replace")), key_settings)
        ]
        if not found:
            return False, ()
        names = _check(found[0], fields, body_hash, key)
        if names is None:
            return False, ()
        covered.append(names)
    common = set.intersection(*(set(names) for names in covered)) if covered else set()
    return bool(covered), tuple(n for n in covered[0] if n in common) if covered else ()


def _is_for(signature: dict[str, str], settings: DkimSettings) -> bool:
    return (
        signature.get("d", "").lower().rstrip(".") == settings.domain
        and signature.get("s", "") == settings.selector
    )


def _check(
    field: tuple[bytes, bytes],
    fields: list[tuple[bytes, bytes]],
    body_hash: str,
    key: PrivateKey,
) -> tuple[str, ...] | None:
    """The names the signature covers if it verifies, else None."""
    name, value = field
    signature = tags(value.decode("ascii", "replace"))
    if (
        signature.get("v") != "1"
        or signature.get("a") != algorithm(key)
        or signature.get("c") != "relaxed/relaxed"
        or "l" in signature
        or signature.get("bh") != body_hash
    ):
        return None
    names = tuple(n.strip().lower() for n in signature.get("h", "").split(":") if n.strip())
    used: dict[str, int] = {}
    signed = b""
    for wanted in names:
        instances = [c for n, c in fields if n == wanted.encode("ascii", "replace")]
        taken = used.get(wanted, 0)
        if taken < len(instances):
            used[wanted] = taken + 1
            signed += instances[-1 - taken]
    signed += relaxed_field(name, _B_VALUE.sub(rb"\1", value))[:-2]
    try:
        raw = base64.b64decode(signature.get("b", ""), validate=True)
        public = key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(raw, hashlib.sha256(signed).digest())
        else:
            public.verify(raw, signed, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return None
    return names
