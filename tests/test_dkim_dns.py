"""What DNS publishes for each DKIM key, through a fake resolver (no DNS traffic)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from dkim_verifier import DOMAIN, make_keys, published, settings_for

from newsletter.cli.main import cli
from newsletter.dkim import records
from newsletter.dkim.records import Published, txt_value
from newsletter.dkim.settings import DkimSettings

NOW = "2026-03-04T18:00:00+05:30"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def dual(keys: dict[str, Path]) -> DkimSettings:
    return settings_for(keys["rsa"], ("ed2026", keys["ed25519"]))


class FakeDns:
    """Answers TXT questions from a dict and remembers what was asked."""

    def __init__(self, answers: dict[str, str | None] | None = None, down: bool = False) -> None:
        self.answers = answers or {}
        self.down = down
        self.asked: list[str] = []

    def __call__(self, name: str) -> str | None:
        self.asked.append(name)
        if self.down:
            raise OSError("DNS lookup failed: no nameserver answered")
        return self.answers.get(name)


def _zone(settings: DkimSettings) -> dict[str, str | None]:
    return {name.decode(): value.decode() for name, value in published(settings).items()}


def test_published_keys_that_match(dual: DkimSettings) -> None:
    dns = FakeDns(_zone(dual))
    found = records.published(dual, dns)
    assert [f.level for f in found] == ["ok", "ok"]
    assert dns.asked == [f"rsa2026._domainkey.{DOMAIN}.", f"ed2026._domainkey.{DOMAIN}."]


def test_a_record_not_published_yet_is_a_warning(dual: DkimSettings) -> None:
    zone = _zone(dual)
    zone[f"ed2026._domainkey.{DOMAIN}."] = None
    found = records.published(dual, FakeDns(zone))
    assert found[0].level == "ok"
    assert found[1] == Published(
        "warning",
        f"ed2026._domainkey.{DOMAIN} has no TXT record yet: publish the record printed above",
    )


def test_another_key_at_the_selector_is_an_error(dual: DkimSettings, keys: dict[str, Path]) -> None:
    other = settings_for(keys["rsa1024"])
    zone = _zone(dual)
    zone[f"rsa2026._domainkey.{DOMAIN}."] = txt_value(other)
    (first, _) = records.published(dual, FakeDns(zone))
    assert first.level == "error"
    assert "publishes another key than dkim.key_file" in first.message
    assert str(keys["rsa"]) in first.message


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=DKIM1; k=rsa; p=", "revoked"),
        ("v=DKIM1; p=MCowBQYDK2VwAyEA", "publishes a k=rsa key, but"),
        ("v=spf1 -all", "not a DKIM key"),
        ("v=DKIM1; k=ed25519; h=sha1; p=abc", "allows only h=sha1"),
    ],
)
def test_records_that_cannot_verify_our_signatures(
    dual: DkimSettings, record: str, expected: str
) -> None:
    zone = _zone(dual)
    zone[f"ed2026._domainkey.{DOMAIN}."] = record
    found = records.published(dual, FakeDns(zone))[1]
    assert found.level == "error"
    assert expected in found.message


def test_split_strings_and_spaces_in_the_record_are_one_value(dual: DkimSettings) -> None:
    value = txt_value(dual)
    spaced = value.replace("; ", " ;  ").replace("p=", "p= ", 1)
    spaced = spaced[:80] + " " + spaced[80:]
    found = records.published(dual, FakeDns({f"rsa2026._domainkey.{DOMAIN}.": spaced}))
    assert found[0].level == "ok"


def test_no_dns_is_a_warning_that_says_why(dual: DkimSettings) -> None:
    found = records.published(dual, FakeDns(down=True))
    assert [f.level for f in found] == ["warning", "warning"]
    assert "could not look up rsa2026._domainkey" in found[0].message
    assert "no nameserver answered" in found[0].message


def test_the_result_never_shows_the_private_key(dual: DkimSettings, keys: dict[str, Path]) -> None:
    zone = _zone(dual)
    zone[f"rsa2026._domainkey.{DOMAIN}."] = "v=DKIM1; k=rsa; p=AAAA"
    text = " ".join(f.message for f in records.published(dual, FakeDns(zone)))
    assert "PRIVATE" not in text
    body = "".join(keys["rsa"].read_text().splitlines()[1:-1])
    assert not any(body[i : i + 24] in text for i in range(0, len(body) - 24, 24))


# --------------------------------------------------------------------------- the command


def _project(tmp_path: Path, keys: dict[str, Path]) -> Path:
    project = tmp_path / "news"
    assert CliRunner().invoke(cli, ["init", str(project), "--now", NOW]).exit_code == 0
    config = project / "newsletter.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[dkim]\nselector = "rsa2026"\nkey_file = "{keys["rsa"]}"\n'
        f'also = [{{ selector = "ed2026", key_file = "{keys["ed25519"]}" }}]\n',
        encoding="utf-8",
    )
    return config


def _check(config: Path, *flags: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["check", "--config", str(config), "--now", NOW, *flags],
        env={"NEWSLETTER_SIGNING_KEY": "test-signing-key-0123456789"},
    )
    return result.exit_code, result.output


def test_check_prints_both_records_and_asks_dns_only_when_told(
    tmp_path: Path, keys: dict[str, Path], dual: DkimSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _project(tmp_path, keys)
    dns = FakeDns(_zone(dual))
    monkeypatch.setattr(records, "lookup_txt", dns)
    code, output = _check(config)
    assert code == 0, output
    assert f"rsa2026._domainkey.{DOMAIN} IN TXT" in output
    assert f'ed2026._domainkey.{DOMAIN} IN TXT "v=DKIM1; k=ed25519; p=' in output
    assert dns.asked == []
    code, output = _check(config, "--check-dns")
    assert code == 0, output
    assert f"rsa2026._domainkey.{DOMAIN} publishes this key" in output
    assert len(dns.asked) == 2


def test_check_fails_when_dns_publishes_another_key(
    tmp_path: Path, keys: dict[str, Path], dual: DkimSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _project(tmp_path, keys)
    zone = _zone(dual)
    zone[f"ed2026._domainkey.{DOMAIN}."] = "v=DKIM1; k=ed25519; p=ALKAbx259Qz75RbYeSRUk5jzRCNfw="
    monkeypatch.setattr(records, "lookup_txt", FakeDns(zone))
    code, output = _check(config, "--check-dns")
    assert code == 1
    assert "error: [dkim-dns] ed2026._domainkey" in output
    assert "1 error(s)" in output
