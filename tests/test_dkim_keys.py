"""DKIM keys and ``[dkim] also``: Ed25519, passphrases, sizes, types, every problem at once."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from dkim_verifier import DOMAIN, dkimpy_verify, make_keys, published, settings_for

from newsletter.dkim.records import dns_records
from newsletter.dkim.selfcheck import verify
from newsletter.dkim.settings import DkimSettings, parse_dkim
from newsletter.dkim.signer import DkimSigner

MESSAGE = b"From: news@meridianpost.example\r\nTo: a@example.org\r\nSubject: hi\r\n\r\nHello\r\n"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("keys"))


def _parse(
    table: dict[str, object], root: Path, **environ: str
) -> tuple[DkimSettings | None, list[str]]:
    return parse_dkim(table, root, environ=environ, default_domain=DOMAIN)


def _secret_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines()[1:-1] if len(line) > 20]


# --------------------------------------------------------------------------- key types


def test_ed25519_key_signs_and_publishes_its_raw_public_key(keys: dict[str, Path]) -> None:
    settings = settings_for(keys["ed25519"], selector="ed2026")
    signed = DkimSigner(settings).sign(MESSAGE)
    assert b"a=ed25519-sha256;" in signed
    assert dkimpy_verify(signed, published(settings))
    (line,) = [r for r in dns_records(settings, DOMAIN) if not r.startswith(";")]
    assert line.startswith(f"ed2026._domainkey.{DOMAIN} IN TXT ")
    value = line.split(" IN TXT ", 1)[1].strip('"')
    assert value.startswith("v=DKIM1; k=ed25519; p=")
    spki = subprocess.run(
        ["openssl", "pkey", "-in", str(keys["ed25519"]), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    assert base64.b64decode(value.split("p=", 1)[1]) == spki[-32:]  # RFC 8463: the raw key
    assert any("Ed25519" in r for r in dns_records(settings, DOMAIN))


def test_a_1024_bit_key_works_but_check_says_to_replace_it(keys: dict[str, Path]) -> None:
    settings = settings_for(keys["rsa1024"])
    assert dkimpy_verify(DkimSigner(settings).sign(MESSAGE), published(settings))
    advice = [r for r in dns_records(settings, DOMAIN) if "1024 bits" in r]
    assert advice
    assert "2048" in advice[0]
    assert advice[0].startswith(";")
    assert not any("bits;" in r for r in dns_records(settings_for(keys["rsa"]), DOMAIN))


def test_an_ec_key_is_refused_with_what_to_use(keys: dict[str, Path]) -> None:
    settings, problems = _parse({"selector": "s", "key_file": str(keys["ec"])}, keys["ec"].parent)
    assert settings is None
    assert len(problems) == 1
    assert "EC keys cannot sign DKIM" in problems[0]
    assert "Ed25519" in problems[0]
    assert str(keys["ec"]) in problems[0]


# --------------------------------------------------------------------------- passphrases


@pytest.mark.parametrize("name", ["rsa-enc", "ed25519-enc"])
def test_encrypted_key_with_its_passphrase_in_the_environment(
    keys: dict[str, Path], name: str
) -> None:
    settings, problems = _parse(
        {"selector": "s", "key_file": str(keys[name])},
        keys[name].parent,
        NEWSLETTER_DKIM_PASSPHRASE="pw",
    )
    assert problems == []
    assert settings is not None
    assert b"ENCRYPTED" not in settings.private_key
    assert verify(DkimSigner(settings).sign(MESSAGE), settings)[0]


def test_encrypted_key_without_or_with_a_wrong_passphrase(keys: dict[str, Path]) -> None:
    table = {"selector": "s", "key_file": str(keys["rsa-enc"])}
    _, missing = _parse(table, keys["rsa-enc"].parent)
    assert len(missing) == 1
    assert "encrypted" in missing[0]
    assert "NEWSLETTER_DKIM_PASSPHRASE" in missing[0]
    _, wrong = _parse(table, keys["rsa-enc"].parent, NEWSLETTER_DKIM_PASSPHRASE="not-it-9")
    assert len(wrong) == 1
    assert "does not decrypt" in wrong[0]
    assert "not-it-9" not in wrong[0]


def test_the_second_key_has_its_own_passphrase(keys: dict[str, Path]) -> None:
    table = {
        "selector": "rsa2026",
        "key_file": str(keys["rsa"]),
        "also": [{"selector": "ed2026", "key_file": str(keys["ed25519-enc"])}],
    }
    settings, problems = _parse(table, keys["rsa"].parent, NEWSLETTER_DKIM_PASSPHRASE_2="pw")
    assert problems == []
    assert settings is not None
    _, problems = _parse(table, keys["rsa"].parent, NEWSLETTER_DKIM_PASSPHRASE="pw")
    assert "NEWSLETTER_DKIM_PASSPHRASE_2" in problems[0]
    assert problems[0].startswith(f"dkim.also[0].key_file {keys['ed25519-enc']}")


# --------------------------------------------------------------------------- also


def test_also_adds_a_second_signature_with_its_own_selector(keys: dict[str, Path]) -> None:
    settings = settings_for(keys["rsa"], ("ed2026", keys["ed25519"]))
    assert [k.selector for k in settings.keys] == ["rsa2026", "ed2026"]
    assert settings.also[0].domain == DOMAIN
    assert "PRIVATE" not in repr(settings)
    records = [r for r in dns_records(settings, DOMAIN) if not r.startswith(";")]
    assert [r.split(" ", 1)[0] for r in records] == [
        f"rsa2026._domainkey.{DOMAIN}",
        f"ed2026._domainkey.{DOMAIN}",
    ]
    assert "k=rsa" in records[0]
    assert "k=ed25519" in records[1]
    assert records[1].count('"') == 2  # an Ed25519 record fits in one string


def test_the_second_key_from_the_environment(keys: dict[str, Path], tmp_path: Path) -> None:
    table = {"selector": "rsa2026", "key_file": str(keys["rsa"]), "also": [{"selector": "ed"}]}
    pem = keys["ed25519"].read_text()
    settings, problems = _parse(table, tmp_path, NEWSLETTER_DKIM_KEY_2=pem.replace("\n", "\\n"))
    assert problems == []
    assert settings is not None
    assert settings.also[0].key_origin == "$NEWSLETTER_DKIM_KEY_2"
    assert verify(DkimSigner(settings).sign(MESSAGE), settings)[0]


def test_also_with_a_domain_of_its_own(keys: dict[str, Path]) -> None:
    table = {
        "selector": "rsa2026",
        "key_file": str(keys["rsa"]),
        "also": [
            {"selector": "ed", "domain": "Mail.MeridianPost.Example.", "key_file": "ed25519.pem"}
        ],
    }
    settings, problems = _parse(table, keys["rsa"].parent)
    assert problems == []
    assert settings is not None
    assert settings.also[0].record_name == f"ed._domainkey.mail.{DOMAIN}"
    signed = DkimSigner(settings).sign(MESSAGE)
    assert f"d=mail.{DOMAIN};".encode() in signed
    assert verify(signed, settings)[0]


def test_every_problem_of_also_is_reported_at_once(keys: dict[str, Path], tmp_path: Path) -> None:
    table = {
        "selector": "news",
        "key_file": str(keys["rsa"]),
        "also": [
            {"selector": "news", "key_file": str(keys["ed25519"])},
            {"selector": "ed 2", "keyfile": "x.pem", "private_key": "…"},
            "ed.pem",
        ],
    }
    settings, problems = _parse(table, tmp_path, NEWSLETTER_DKIM_KEY_9=keys["ed25519"].read_text())
    assert settings is None
    text = "\n".join(problems)
    assert "dkim.also[0].selector: 'news' is already dkim.selector;" in text
    assert "dkim.also[1].selector: 'ed 2' is not a DNS label" in text
    assert "did you mean 'dkim.also[1].key_file'?" in text
    assert "dkim.also[1].private_key: do not put the key in the file" in text
    assert "NEWSLETTER_DKIM_KEY_3 to its text" in text
    assert "dkim.also[2]: expected a table, got str" in text
    assert "NEWSLETTER_DKIM_KEY_9 is set but there is no dkim.also[7]" in text
    secret = _secret_lines(keys["ed25519"]) + _secret_lines(keys["rsa"])
    assert not any(line in text for line in secret)


@pytest.mark.parametrize(
    ("also", "expected"),
    [
        ({"selector": "ed"}, "dkim.also: write the extra keys as a list of tables"),
        ("ed.pem", "dkim.also: expected a list of tables"),
    ],
)
def test_also_in_the_wrong_shape(keys: dict[str, Path], also: object, expected: str) -> None:
    settings, problems = _parse(
        {"selector": "s", "key_file": str(keys["rsa"]), "also": also}, keys["rsa"].parent
    )
    assert settings is None
    assert problems[0].startswith(expected)


def test_a_second_key_in_the_environment_without_also(keys: dict[str, Path]) -> None:
    settings, problems = _parse(
        {"selector": "s", "key_file": str(keys["rsa"])},
        keys["rsa"].parent,
        NEWSLETTER_DKIM_KEY_2=keys["ed25519"].read_text(),
    )
    assert settings is None
    assert problems == [
        "NEWSLETTER_DKIM_KEY_2 is set but there is no dkim.also[0] for it; add also = "
        '[{ selector = "ed2026", key_file = "dkim-ed25519.pem" }] to [dkim] (without '
        "key_file) or unset it"
    ]


def test_a_bad_key_in_also_is_named_and_never_shown(keys: dict[str, Path], tmp_path: Path) -> None:
    broken = keys["ed25519"].read_text().replace("-----END", "!!!!\n-----END")
    settings, problems = _parse(
        {"selector": "s", "key_file": str(keys["rsa"]), "also": [{"selector": "t"}]},
        tmp_path,
        NEWSLETTER_DKIM_KEY_2=broken,
    )
    assert settings is None
    assert len(problems) == 1
    assert problems[0].startswith("$NEWSLETTER_DKIM_KEY_2: not a readable")
    assert not any(line in problems[0] for line in _secret_lines(keys["ed25519"]))
