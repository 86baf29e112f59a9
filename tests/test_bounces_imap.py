"""``newsletter bounces --imap`` against a real Dovecot on 127.0.0.1, filled by IMAP APPEND."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from bounce_mail import KEY, every_sample
from click.testing import CliRunner, Result
from imap_server import PASSWORD, ImapServer, ServerUnavailable
from smtp_server import Certificate, free_port, make_certificate

from newsletter.bounces.imap import PROCESSED
from newsletter.cli.main import cli
from newsletter.config.load import load_settings
from newsletter.state.openers import open_suppressions


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def dovecot(certificate: Certificate) -> Iterator[ImapServer]:
    """One Dovecot for the module; missing, it fails the tests in CI, else skips them."""
    try:
        server = ImapServer.start(tls=certificate)
    except ServerUnavailable as err:
        if os.environ.get("CI"):
            pytest.fail(f"Dovecot is needed in CI: {err}")
        pytest.skip(f"Dovecot is not available: {err}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def folder(dovecot: ImapServer, request: pytest.FixtureRequest) -> str:
    """A folder of its own for the test, holding every sample report."""
    name = "T" + str(abs(hash(request.node.name)))
    dovecot.append(every_sample(), name)
    return name


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The samples' publication and list, its state in the test's folder."""
    path = tmp_path / "newsletter.toml"
    path.write_text(
        f"""
[publication]
name = "The Meridian Post"
site_url = "https://meridianpost.example"
postal_address = "1 Lighthouse Road"

[sender]
address = "newsletter@meridianpost.example"

[list]
id = "daily.meridianpost.example"
unsubscribe_url = "https://meridianpost.example/unsubscribe"

[output]
state_dir = "{tmp_path / "state"}"
""",
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str, password: str = PASSWORD) -> Result:
    env = {"NEWSLETTER_SIGNING_KEY": KEY.decode(), "NEWSLETTER_IMAP_PASSWORD": password}
    return CliRunner().invoke(cli, ["bounces", "--config", str(config), *args], env=env)


def suppressed(config: Path) -> int:
    with open_suppressions(load_settings(config, environ={}).paths.state) as suppressions:
        return suppressions.count()


def test_handled_mail_is_flagged_and_not_read_again(
    dovecot: ImapServer, folder: str, config: Path
) -> None:
    first = run(config, "--imap", dovecot.url(folder))
    assert first.exit_code == 0, first.output
    assert f"/{folder}: 13 reports read" in first.stdout
    assert "  hard bounces                 5" in first.stdout
    assert "  complaints                   2" in first.stdout
    assert "unreadable: message sha256:" in first.stdout
    assert PASSWORD not in first.output
    flags = dovecot.flags(folder)
    assert len(flags) == 13
    assert all({"\\Seen", PROCESSED} <= f for f in flags)
    assert suppressed(config) == 7
    second = run(config, "--imap", dovecot.url(folder))
    assert second.exit_code == 3, second.output
    assert f"/{folder}: 0 reports read" in second.stdout


def test_move_to_takes_handled_mail_out_of_the_folder(
    dovecot: ImapServer, folder: str, config: Path
) -> None:
    done = folder + "-done"
    dovecot.append([], done)
    result = run(config, "--imap", dovecot.url(folder), "--move-to", done)
    assert result.exit_code == 0, result.output
    assert dovecot.flags(folder) == []
    moved = dovecot.flags(done)
    assert len(moved) == 13
    assert all(PROCESSED in f for f in moved)
    missing = run(config, "--imap", dovecot.url(done), "--move-to", "Nowhere")
    assert missing.exit_code == 1
    assert "has no folder 'Nowhere'" in missing.stderr


def test_a_dry_run_leaves_the_mailbox_and_the_state_alone(
    dovecot: ImapServer, folder: str, config: Path
) -> None:
    result = run(config, "--imap", dovecot.url(folder), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "13 reports read (dry run: nothing was changed)" in result.stdout
    assert all("\\Seen" not in f and PROCESSED not in f for f in dovecot.flags(folder))
    assert suppressed(config) == 0


def test_imaps_checks_the_certificate(
    dovecot: ImapServer,
    folder: str,
    config: Path,
    certificate: Certificate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))  # trusted, as a private CA
    trusted = run(config, "--imap", dovecot.url(folder, tls=True), "--dry-run")
    assert trusted.exit_code == 0, trusted.output
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", str(Path(certificate.cert).parent / "none"))
    untrusted = run(config, "--imap", dovecot.url(folder, tls=True))
    assert untrusted.exit_code == 1
    assert "certificate is not valid" in untrusted.stderr


def test_a_refused_login_or_a_dead_port_is_a_clear_error(
    dovecot: ImapServer, folder: str, config: Path
) -> None:
    wrong = run(config, "--imap", dovecot.url(folder), password="not-the-password-123")
    assert wrong.exit_code == 1
    assert "refused the login of bounces@meridianpost.example" in wrong.stderr
    assert "NEWSLETTER_IMAP_PASSWORD" in wrong.stderr
    assert "not-the-password-123" not in wrong.output
    dead = run(config, "--imap", f"imap://u@127.0.0.1:{free_port()}/INBOX")
    assert dead.exit_code == 1
    assert "cannot reach imap://u@127.0.0.1:" in dead.stderr
    assert "Traceback" not in dead.output
    assert all(PROCESSED not in f for f in dovecot.flags(folder))
