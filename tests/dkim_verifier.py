"""dkimpy's verifier for the tests, answering DNS from the records ``check`` prints; keys.

dkimpy checks Ed25519 signatures with PyNaCl, which is not a dependency: its one call
into PyNaCl (64 signature bytes against a 32-byte public key) is served here by the
cryptography package. Everything else (tag parsing, header selection, canonicalization,
body and header hashes) stays dkimpy's own, independent of the signer under test.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from types import SimpleNamespace

import dkim
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from newsletter.dkim.records import dns_records
from newsletter.dkim.settings import DkimSettings, parse_dkim

DOMAIN = "meridianpost.example"


class _BadSignatureError(Exception):
    pass


class _NaclValueError(ValueError):
    pass


class _Base64Encoder:
    pass


class _VerifyKey:
    """The part of ``nacl.signing.VerifyKey`` dkimpy uses."""

    def __init__(self, key: bytes, encoder: object = None) -> None:
        raw = base64.b64decode(key) if encoder is not None else key
        try:
            self._key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as err:
            raise _NaclValueError(str(err)) from err

    def verify(self, message: bytes, signature: bytes) -> bytes:
        try:
            self._key.verify(signature, message)
        except InvalidSignature as err:
            raise _BadSignatureError("signature does not verify") from err
        return message


if not hasattr(dkim, "nacl"):
    dkim.nacl = SimpleNamespace(  # type: ignore[attr-defined]
        signing=SimpleNamespace(VerifyKey=_VerifyKey),
        encoding=SimpleNamespace(Base64Encoder=_Base64Encoder),
        exceptions=SimpleNamespace(
            BadSignatureError=_BadSignatureError, ValueError=_NaclValueError
        ),
    )


def published(settings: DkimSettings) -> dict[bytes, bytes]:
    """The TXT records as DNS would serve them, rebuilt from the zone lines printed."""
    records = {}
    for line in dns_records(settings, DOMAIN):
        if line.startswith(";"):
            continue
        name, _in, _txt, rest = line.split(" ", 3)
        records[name.encode() + b"."] = "".join(re.findall(r'"([^"]*)"', rest)).encode()
    return records


def dkimpy_verify(message: bytes, records: dict[bytes, bytes], index: int = 0) -> bool:
    """Whether dkimpy verifies the ``index``-th DKIM-Signature from the top."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    try:
        return bool(dkim.DKIM(message).verify(idx=index, dnsfunc=dnsfunc))
    except dkim.DKIMException:
        return False


def write_key(path: Path, key: object, passphrase: str = "") -> Path:
    """Write ``key`` as a PKCS#8 PEM, encrypted when a passphrase is given."""
    assert isinstance(
        key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return path


def make_keys(folder: Path) -> dict[str, Path]:
    """RSA 2048 and 1024, Ed25519, an EC key, and encrypted RSA and Ed25519 (passphrase 'pw')."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    return {
        "rsa": write_key(folder / "rsa.pem", rsa_key),
        "ed25519": write_key(folder / "ed25519.pem", ed_key),
        "rsa1024": write_key(folder / "rsa1024.pem", rsa.generate_private_key(65537, 1024)),  # noqa: S505
        "ec": write_key(folder / "ec.pem", ec.generate_private_key(ec.SECP256R1())),
        "rsa-enc": write_key(folder / "rsa-enc.pem", rsa_key, "pw"),
        "ed25519-enc": write_key(folder / "ed25519-enc.pem", ed_key, "pw"),
    }


def settings_for(
    key: Path,
    *also: tuple[str, Path],
    selector: str = "rsa2026",
    environ: dict[str, str] | None = None,
) -> DkimSettings:
    """Settings that sign with ``key`` (and the ``also`` keys: selector, file)."""
    table: dict[str, object] = {"selector": selector, "key_file": str(key)}
    if also:
        table["also"] = [{"selector": s, "key_file": str(path)} for s, path in also]
    settings, problems = parse_dkim(table, key.parent, environ=environ or {}, default_domain=DOMAIN)
    assert problems == [], problems
    assert settings is not None
    return settings
