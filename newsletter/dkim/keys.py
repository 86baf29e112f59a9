"""DKIM private keys: read the PEM (RSA or Ed25519), say what is wrong, sign, derive the public key.

Nothing here ever quotes the key: problems name what is wrong, never the text.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

RSA_SHA256 = "rsa-sha256"
ED25519_SHA256 = "ed25519-sha256"  # RFC 8463
MIN_KEY_BITS = 1024  # RFC 8301: verifiers must not accept smaller RSA keys
ADVISED_KEY_BITS = 2048  # RFC 8301: signers should use at least this
MAX_VERIFIED_BITS = 4096  # RFC 8301: what every verifier must handle
GENERATE_HINT = "create one with: openssl genrsa -out dkim-private.pem 2048"
ED25519_HINT = "create one with: openssl genpkey -algorithm ed25519 -out dkim-ed25519.pem"

_PKCS1 = padding.PKCS1v15()
_SHA256_DIGEST = utils.Prehashed(hashes.SHA256())
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)


class KeyProblem(ValueError):
    """Why a PEM cannot sign; the message never quotes the key."""


def _private_block(pem: bytes) -> re.Match[str] | None:
    """The PEM block of the private key (the first block if none is a private key)."""
    blocks = list(_PEM.finditer(pem.decode("ascii", "replace")))
    if not blocks:
        return None
    return next((b for b in blocks if "PRIVATE KEY" in b.group(1)), blocks[0])


def _der(block: re.Match[str]) -> bytes | None:
    try:
        return base64.b64decode("".join(block.group(2).split()), validate=True)
    except binascii.Error:
        return None


def _encrypted(block: re.Match[str]) -> bool:
    # RFC 1421 headers ("Proc-Type: 4,ENCRYPTED") mark an encrypted traditional key.
    return "ENCRYPTED" in block.group(1) or ":" in block.group(2)


def _wrap(label: str, der: bytes) -> bytes:
    """The block re-wrapped at 64 columns, alone."""
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode()


def usable_pem(pem: bytes, passphrase: str, passphrase_name: str) -> bytes:
    """Return the private key alone, unencrypted, as the signer reads it; raise KeyProblem.

    ``passphrase`` decrypts an encrypted key; ``passphrase_name`` is where it comes from.
    """
    block = _private_block(pem)
    if block is None:
        raise KeyProblem(
            f"not a PEM private key (expected '-----BEGIN PRIVATE KEY-----'; {GENERATE_HINT})"
        )
    label = block.group(1)
    if "PUBLIC" in label:
        raise KeyProblem("this is a public key; point it at the private key")
    if not label.endswith("PRIVATE KEY"):
        raise KeyProblem(f"a {label} is not supported; use an RSA private key ({GENERATE_HINT})")
    if not _encrypted(block):
        der = _der(block)
        if der is None:
            raise KeyProblem(_unreadable())
        text = _wrap(label, der)
        check_key(load_private_key(text))
        return text
    if not passphrase:
        raise KeyProblem(
            f"the key is encrypted; set {passphrase_name} to its passphrase, or export it "
            "without one (openssl pkey -in KEY -out dkim-private.pem) and protect the file's "
            "permissions"
        )
    try:
        key = serialization.load_pem_private_key(
            block.group(0).encode("ascii"), passphrase.encode("utf-8")
        )
    except (ValueError, TypeError) as err:
        raise KeyProblem(
            f"the passphrase in {passphrase_name} does not decrypt the key (or the key is damaged)"
        ) from err
    checked = check_key(key)
    return checked.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _unreadable() -> str:
    return f"not a readable RSA private key, nor an Ed25519 one ({GENERATE_HINT})"


def load_private_key(pem: bytes) -> PrivateKey:
    """Read an unencrypted PEM private key that DKIM can use; raise KeyProblem otherwise."""
    block = _private_block(pem)
    if block is None:
        raise KeyProblem(
            f"not a PEM private key (expected '-----BEGIN PRIVATE KEY-----'; {GENERATE_HINT})"
        )
    try:
        key = serialization.load_pem_private_key(block.group(0).encode("ascii"), None)
    except TypeError as err:  # encrypted
        raise KeyProblem("the key is encrypted") from err
    except ValueError as err:
        raise KeyProblem(_unreadable()) from err
    return check_key(key)


def check_key(key: object) -> PrivateKey:
    """Return ``key`` if DKIM can sign with it: RSA of 1024 bits or more, or Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.removeprefix("_").removesuffix("PrivateKey") or "such"
        raise KeyProblem(
            f"{kind} keys cannot sign DKIM; use RSA ({GENERATE_HINT}) or Ed25519 ({ED25519_HINT})"
        )
    if key.key_size < MIN_KEY_BITS:
        raise KeyProblem(
            f"the key has {key.key_size} bits; receivers ignore keys under {MIN_KEY_BITS} "
            f"(use {ADVISED_KEY_BITS})"
        )
    return key


def algorithm(key: PrivateKey) -> str:
    """The ``a=`` value this key signs with."""
    return ED25519_SHA256 if isinstance(key, ed25519.Ed25519PrivateKey) else RSA_SHA256


def sign_digest(key: PrivateKey, digest: bytes) -> bytes:
    """Sign the SHA-256 ``digest`` of what a DKIM signature covers, as ``algorithm`` says.

    RSA signs the digest with PKCS#1 v1.5; Ed25519 signs the digest itself (RFC 8463).
    """
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(digest)
    return key.sign(digest, _PKCS1, _SHA256_DIGEST)


def key_type(key: PrivateKey) -> str:
    """The ``k=`` value of the key's DNS record."""
    return "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa"


def describe(key: PrivateKey) -> str:
    """Name the key for people: '2048-bit RSA' or 'Ed25519'."""
    return "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else f"{key.key_size}-bit RSA"


def public_key_base64(key: PrivateKey) -> str:
    """The ``p=`` value: RSA's SubjectPublicKeyInfo, or Ed25519's 32 raw bytes (RFC 8463)."""
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return base64.b64encode(raw).decode("ascii")


def key_warnings(key: PrivateKey) -> list[str]:
    """What to change about a key that works today (its size)."""
    if not isinstance(key, rsa.RSAPrivateKey):
        return []
    bits = key.key_size
    if bits < ADVISED_KEY_BITS:
        return [
            f"the key has {bits} bits; RFC 8301 asks signers for {ADVISED_KEY_BITS} or more: "
            "create a 2048-bit key under a new selector, publish its record, then switch"
        ]
    if bits > MAX_VERIFIED_BITS:
        return [
            f"the key has {bits} bits; receivers need only verify up to {MAX_VERIFIED_BITS} "
            "(RFC 8301), so some may not verify it: use 2048"
        ]
    return []
