"""DKIM: settings validation, signatures checked by dkimpy's own verifier, DNS records."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import dkim
import pytest
from dkim import dknewkey

from newsletter.dkim.records import dns_records, txt_strings
from newsletter.dkim.selfcheck import verify
from newsletter.dkim.settings import ENV_DKIM_KEY, DkimSettings, parse_dkim
from newsletter.dkim.signer import SIGNED_HEADERS, DkimSigner
from newsletter.errors import DeliveryError

DOMAIN = "meridianpost.example"


def _openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Keys made fresh for the run: PKCS#8 (dkimpy's keygen), PKCS#1, small, encrypted, public."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to generate test keys")
    folder = tmp_path_factory.mktemp("keys")
    paths = {name: folder / f"{name}.pem" for name in ("pkcs8", "pkcs1", "small", "enc", "pub")}
    dknewkey.GenRSAKeys(str(paths["pkcs8"]), verbose=False)
    _openssl("genrsa", "-traditional", "-out", str(paths["pkcs1"]), "1024")
    _openssl("genrsa", "-out", str(paths["small"]), "512")
    _openssl(
        "pkey",
        "-in",
        str(paths["pkcs8"]),
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        str(paths["enc"]),
    )
    _openssl("pkey", "-in", str(paths["pkcs8"]), "-pubout", "-out", str(paths["pub"]))
    return paths


def _settings(path: Path, selector: str = "news2026") -> DkimSettings:
    settings, problems = parse_dkim(
        {"selector": selector, "key_file": str(path)},
        path.parent,
        environ={},
        default_domain=DOMAIN,
    )
    assert problems == []
    assert settings is not None
    return settings


def _message(*, linesep: str = "\r\n", extra: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage(policy=SMTP.clone(linesep=linesep))
    headers = {
        "From": "The Meridian Post <newsletter@meridianpost.example>",
        "To": "Ana Souza <ana@example.org>",
        "Subject": "Marivel approves a tidal barrier",
        "Date": "Wed, 04 Mar 2026 18:00:00 +0530",
        "Message-ID": "<2026-03-04.abc@meridianpost.example>",
        "List-Id": "The Meridian Post Daily <daily.meridianpost.example>",
        "List-Unsubscribe": "<https://meridianpost.example/unsubscribe?t=opaque123>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        **(extra or {}),
    }
    for name, value in headers.items():
        msg[name] = value
    msg.set_content("Hello Ana,\n\nToday's stories.\n" * 40)
    msg.add_alternative(
        "<html lang='en'><body><p>Hello Ana,</p>" + "<p>Story</p>" * 400 + "</body></html>",
        subtype="html",
    )
    return msg.as_bytes()


def _dns_from_records(settings: DkimSettings) -> dict[bytes, bytes]:
    """Rebuild the TXT value the way a DNS server would from the printed zone line."""
    line = next(r for r in dns_records(settings, DOMAIN) if not r.startswith(";"))
    name, _in, _txt, rest = line.split(" ", 3)
    value = "".join(re.findall(r'"([^"]*)"', rest))
    return {name.encode() + b".": value.encode()}


def _verify(signed: bytes, settings: DkimSettings) -> bool:
    records = _dns_from_records(settings)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return bool(dkim.verify(signed, dnsfunc=dnsfunc))


def _tag(signed: bytes, tag: str) -> str:
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = re.sub(r"\r?\n[ \t]+", " ", header)
    match = re.search(rf"DKIM-Signature:.*?\b{tag}=([^;]*)", unfolded)
    assert match, f"no {tag}= in the signature"
    return " ".join(match.group(1).split())


# --------------------------------------------------------------------------- signing


def test_signature_verifies_with_dkimpy_against_the_published_record(keys: dict[str, Path]) -> None:
    settings = _settings(keys["pkcs8"])
    message = _message()
    signed = DkimSigner(settings).sign(message)
    assert signed.startswith(b"DKIM-Signature: ")
    assert signed.endswith(message)
    assert _verify(signed, settings)


def test_signature_covers_every_required_header_relaxed_rsa_sha256(keys: dict[str, Path]) -> None:
    settings = _settings(keys["pkcs8"])
    signed = DkimSigner(settings).sign(_message())
    signed_names = [h.strip().lower() for h in _tag(signed, "h").split(":")]
    for name in SIGNED_HEADERS:
        assert name.lower() in signed_names, name
    assert signed_names.count("list-unsubscribe-post") == 2  # oversigned: cannot be added later
    assert _tag(signed, "c") == "relaxed/relaxed"
    assert _tag(signed, "a") == "rsa-sha256"
    assert _tag(signed, "d") == DOMAIN
    assert _tag(signed, "s") == "news2026"


def test_signed_message_keeps_crlf_and_short_lines(keys: dict[str, Path]) -> None:
    signed = DkimSigner(_settings(keys["pkcs8"])).sign(_message())
    lines = signed.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 998
    header_lines = signed.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in header_lines) <= 78


def test_lf_only_message_stays_lf(keys: dict[str, Path]) -> None:
    settings = _settings(keys["pkcs1"])
    message = _message(linesep="\n")
    signed = DkimSigner(settings).sign(message)
    assert b"\r" not in signed
    assert _verify(signed, settings)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda m: m.replace(b"Subject: Marivel", b"Subject: Mariv3l"), "subject edited"),
        (lambda m: m.replace(b"Today's stories.", b"Today's st0ries."), "body edited"),
        (
            lambda m: b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" + m,
            "second List-Unsubscribe-Post added",
        ),
        (lambda m: b"Subject: Win a prize\r\n" + m, "second Subject added"),
    ],
)
def test_tampering_breaks_the_signature(
    keys: dict[str, Path], change: Callable[[bytes], bytes], why: str
) -> None:
    settings = _settings(keys["pkcs8"])
    message = _message()
    signed = DkimSigner(settings).sign(message)
    signature = signed[: len(signed) - len(message)]
    assert _verify(signature + message, settings)
    assert change(message) != message
    assert not _verify(signature + change(message), settings), why


def test_relaxed_canonicalization_survives_refolding(keys: dict[str, Path]) -> None:
    settings = _settings(keys["pkcs8"])
    signed = DkimSigner(settings).sign(_message())
    refolded = signed.replace(b"Subject: Marivel approves", b"Subject: Marivel\r\n   approves")
    assert refolded != signed
    assert _verify(refolded, settings)


def test_verify_helper_uses_the_keys_own_record(keys: dict[str, Path]) -> None:
    settings = _settings(keys["pkcs8"])
    ok, covered = verify(DkimSigner(settings).sign(_message()), settings)
    assert ok
    assert {h.lower() for h in SIGNED_HEADERS} <= set(covered)
    other = _settings(keys["pkcs1"])
    assert verify(DkimSigner(other).sign(_message()), settings)[0] is False


def test_message_without_from_is_a_clear_error(keys: dict[str, Path]) -> None:
    message = b"Subject: no sender\r\nTo: a@example.org\r\n\r\nbody\r\n"
    with pytest.raises(DeliveryError, match="without a From header"):
        DkimSigner(_settings(keys["pkcs8"])).sign(message)


# --------------------------------------------------------------------------- DNS records


def test_txt_record_matches_the_public_key_openssl_derives(
    keys: dict[str, Path], tmp_path: Path
) -> None:
    settings = _settings(keys["pkcs8"])
    expected_file = tmp_path / "dns.txt"
    dknewkey.ExtractRSADnsPublicKey(str(keys["pkcs8"]), str(expected_file), verbose=False)
    expected_p = re.search(r"p=([A-Za-z0-9+/=]+)", expected_file.read_text()).group(1)  # type: ignore[union-attr]
    lines = dns_records(settings, DOMAIN)
    record = next(r for r in lines if not r.startswith(";"))
    assert record.startswith(f"news2026._domainkey.{DOMAIN} IN TXT ")
    strings = re.findall(r'"([^"]*)"', record)
    assert all(len(s) <= 255 for s in strings)
    assert len(strings) >= 2  # a 2048-bit key does not fit in one string
    value = "".join(strings)
    assert value.startswith("v=DKIM1; k=rsa; p=")
    assert value.split("p=", 1)[1] == expected_p


def test_records_include_spf_and_dmarc_reminders_and_never_the_private_key(
    keys: dict[str, Path],
) -> None:
    settings = _settings(keys["pkcs8"])
    text = "\n".join(dns_records(settings, DOMAIN))
    assert "v=spf1" in text
    assert f"_dmarc.{DOMAIN}" in text
    private_body = "".join(keys["pkcs8"].read_text().splitlines()[1:-1])
    for chunk in (private_body[i : i + 40] for i in range(0, len(private_body) - 40, 40)):
        assert chunk not in text
    assert "PRIVATE" not in text


def test_records_without_dkim_say_how_to_set_it_up() -> None:
    lines = dns_records(None, DOMAIN)
    assert any("DKIM: not configured" in line for line in lines)
    assert all(line.startswith(";") for line in lines)


def test_records_flag_a_domain_that_does_not_align(keys: dict[str, Path]) -> None:
    settings, _ = parse_dkim(
        {"selector": "s1", "domain": "other.example", "key_file": str(keys["pkcs8"])},
        Path("/"),
        environ={},
    )
    assert settings is not None
    assert any("does not align" in line for line in dns_records(settings, DOMAIN))
    subdomain, _ = parse_dkim(
        {"selector": "s1", "domain": f"mail.{DOMAIN}", "key_file": str(keys["pkcs8"])},
        Path("/"),
        environ={},
    )
    assert subdomain is not None
    assert not any("does not align" in line for line in dns_records(subdomain, DOMAIN))


def test_txt_strings_split_at_255() -> None:
    value = "x" * 600
    parts = txt_strings(value)
    assert [len(p) for p in parts] == [255, 255, 90]
    assert "".join(parts) == value


# --------------------------------------------------------------------------- settings


def test_no_table_and_no_environment_means_dkim_off(tmp_path: Path) -> None:
    assert parse_dkim({}, tmp_path, environ={}) == (None, [])


def test_key_file_resolves_against_the_config_folder(keys: dict[str, Path]) -> None:
    settings, problems = parse_dkim(
        {"selector": "news", "key_file": keys["pkcs1"].name},
        keys["pkcs1"].parent,
        environ={},
        default_domain="MeridianPost.Example.",
    )
    assert problems == []
    assert settings is not None
    assert settings.domain == DOMAIN
    assert settings.record_name == f"news._domainkey.{DOMAIN}"
    assert str(keys["pkcs1"]) in settings.key_origin


def test_key_from_the_environment_with_escaped_newlines(
    keys: dict[str, Path], tmp_path: Path
) -> None:
    pem = keys["pkcs8"].read_text()
    for value in (pem, pem.replace("\n", "\\n"), pem.replace("\n", "\r\n")):
        settings, problems = parse_dkim(
            {"selector": "news"}, tmp_path, environ={ENV_DKIM_KEY: value}, default_domain=DOMAIN
        )
        assert problems == []
        assert settings is not None
        assert settings.key_origin == f"${ENV_DKIM_KEY}"
        assert _verify(DkimSigner(settings).sign(_message()), settings)


def test_key_never_appears_in_repr_or_problems(keys: dict[str, Path], tmp_path: Path) -> None:
    pem = keys["pkcs8"].read_text()
    settings = _settings(keys["pkcs8"])
    assert "PRIVATE" not in repr(settings)
    broken = pem.replace(pem.splitlines()[5], "!!!!" + pem.splitlines()[5][4:])
    _, problems = parse_dkim(
        {"selector": "news"}, tmp_path, environ={ENV_DKIM_KEY: broken}, default_domain=DOMAIN
    )
    assert problems
    body_lines = pem.splitlines()[1:-1]
    assert not any(line in p for line in body_lines for p in problems)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("enc", "encrypted"),
        ("pub", "public key"),
        ("small", "512 bits"),
    ],
)
def test_unusable_keys_are_explained(keys: dict[str, Path], key: str, expected: str) -> None:
    settings, problems = parse_dkim(
        {"selector": "news", "key_file": str(keys[key])},
        Path("/"),
        environ={},
        default_domain=DOMAIN,
    )
    assert settings is None
    assert len(problems) == 1
    assert str(keys[key]) in problems[0]
    assert expected in problems[0]


def test_key_file_with_a_certificate_and_comments_first(
    keys: dict[str, Path], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(
        "Bag Attributes\n    friendlyName: dkim\n"
        + keys["pub"].read_text()
        + "\r\n"
        + keys["pkcs1"].read_text().replace("\n", "\r\n")
    )
    settings = _settings(bundle)
    assert settings.private_key.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert _verify(DkimSigner(settings).sign(_message()), settings)


def test_encrypted_traditional_key(keys: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "trad-enc.pem"
    _openssl(
        "rsa",
        "-in",
        str(keys["pkcs1"]),
        "-traditional",
        "-aes128",
        "-passout",
        "pass:x",
        "-out",
        str(path),
    )
    settings, problems = parse_dkim(
        {"selector": "s", "key_file": str(path)}, tmp_path, environ={}, default_domain=DOMAIN
    )
    assert settings is None
    assert "encrypted" in problems[0]


def test_garbage_and_missing_key_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for path, expected in (
        (junk, "not a readable RSA private key"),
        (text, "not a PEM"),
        (tmp_path / "absent.pem", "no such file"),
        (tmp_path, "is a folder"),
    ):
        settings, problems = parse_dkim(
            {"selector": "s", "key_file": str(path)}, tmp_path, environ={}, default_domain=DOMAIN
        )
        assert settings is None
        assert any(expected in p and str(path) in p for p in problems), problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    settings, problems = parse_dkim(
        {"selector": "bad selector!", "domain": "nodots", "key_fil": "x.pem", "private_key": "…"},
        tmp_path,
        environ={},
    )
    assert settings is None
    text = "\n".join(problems)
    assert "dkim.selector" in text
    assert "dkim.domain" in text
    assert "did you mean 'dkim.key_file'" in text
    assert "do not put the key in the file" in text
    assert "no key" in text


def test_file_and_environment_both_set_is_ambiguous(keys: dict[str, Path]) -> None:
    _, problems = parse_dkim(
        {"selector": "s", "key_file": str(keys["pkcs8"])},
        Path("/"),
        environ={ENV_DKIM_KEY: keys["pkcs8"].read_text()},
        default_domain=DOMAIN,
    )
    assert problems == [f"dkim.key_file and {ENV_DKIM_KEY} are both set: keep only one"]


def test_environment_key_without_selector(keys: dict[str, Path], tmp_path: Path) -> None:
    settings, problems = parse_dkim(
        {}, tmp_path, environ={ENV_DKIM_KEY: keys["pkcs8"].read_text()}, default_domain=DOMAIN
    )
    assert settings is None
    assert problems
    assert problems[0].startswith("dkim.selector: required")


def test_signer_refuses_a_bad_key_without_showing_it() -> None:
    settings = DkimSettings(
        selector="s", domain=DOMAIN, private_key=b"secret-not-a-key", key_origin="test key"
    )
    with pytest.raises(DeliveryError) as caught:
        DkimSigner(settings)
    assert "test key" in str(caught.value)
    assert "secret-not-a-key" not in str(caught.value)


def test_public_key_encoding_round_trips(keys: dict[str, Path]) -> None:
    settings = _settings(keys["pkcs1"])
    record = _dns_from_records(settings)
    value = next(iter(record.values())).decode()
    der = base64.b64decode(value.split("p=", 1)[1])
    expected = _openssl("pkey", "-in", str(keys["pkcs1"]), "-pubout", "-outform", "DER")
    assert der == expected
