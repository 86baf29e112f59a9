"""``newsletter bounces`` from the command line; the VERP round trip through a real SMTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bounce_mail import KEY as SAMPLES_KEY
from bounce_mail import dsn, every_sample, write_mbox
from click.testing import CliRunner, Result
from smtp_server import SMTPServer

from newsletter.cli.main import cli
from newsletter.config.load import load_settings
from newsletter.state.openers import open_ledger, open_suppressions

NOW = "2026-03-04T18:00:00+05:30"
KEY = "test-signing-key-0123456789"
FIXTURE_KEY = SAMPLES_KEY.decode()  # the samples' unsubscribe links are signed with it


def make_project(tmp_path: Path, port: int = 25, people: int = 4, extra: str = "") -> Path:
    runner = CliRunner()
    project = tmp_path / "news"
    assert runner.invoke(cli, ["init", str(project), "--now", NOW]).exit_code == 0
    rows = [
        "email,name,status",
        *(f"reader{i}@example.org,Reader {i},active" for i in range(people)),
    ]
    (project / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = project / "newsletter.toml"
    text = config.read_text(encoding="utf-8").replace(
        '[smtp]\n# host = "smtp.example.org"',
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        '# host = "smtp.example.org"',
    )
    config.write_text(text + extra, encoding="utf-8")
    return config


def bounces(config: Path, *args: str, key: str = KEY) -> Result:
    env = {"NEWSLETTER_SIGNING_KEY": key} if key else {}
    return CliRunner().invoke(cli, ["bounces", "--config", str(config), *args], env=env)


def test_the_command_reads_an_mbox_then_finds_nothing_new(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    mbox = write_mbox(tmp_path / "bounces.mbox", every_sample())
    first = bounces(config, "--mbox", str(mbox), key=FIXTURE_KEY)
    assert first.exit_code == 0, first.output
    assert "bounces.mbox: 13 reports read" in first.stdout
    assert "  hard bounces                 5" in first.stdout
    assert "unreadable: message sha256:" in first.stdout
    second = bounces(config, "--mbox", str(mbox), key=FIXTURE_KEY)
    assert second.exit_code == 3, second.output
    assert "  already processed            9" in second.stdout
    assert "nothing new to act on in" in second.stderr
    with open_suppressions(load_settings(config, environ={}).paths.state) as suppressions:
        assert suppressions.count() == 7


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "give one mailbox"),
        (["--mbox", "a", "--maildir", "b"], "give one mailbox"),
        (["--mbox", "a", "--move-to", "Done"], "--move-to is for an IMAP mailbox"),
        (["--imap", "imap://u@mail.example.org/INBOX"], "unencrypted; use imaps://"),
        (["--imap", "imaps://u:pw@mail.example.org/INBOX"], "NEWSLETTER_IMAP_PASSWORD"),
        (["--imap", "https://mail.example.org/"], "is not an IMAP URL"),
    ],
)
def test_usage_mistakes_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    result = bounces(make_project(tmp_path), *args)
    assert result.exit_code == 2, result.output
    assert words in result.stderr
    assert "pw" not in result.stderr.replace("pw@", "")


def test_a_mailbox_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    result = bounces(config, "--maildir", str(tmp_path / "Maildir"))
    assert result.exit_code == 1
    assert "Maildir: does not exist" in result.stderr
    result = bounces(config, "--imap", "imaps://bounces@127.0.0.1:1/INBOX")
    assert result.exit_code == 1
    assert "NEWSLETTER_IMAP_PASSWORD is not set" in result.stderr


def test_the_help_describes_every_option() -> None:
    result = CliRunner().invoke(cli, ["bounces", "--help"])
    assert result.exit_code == 0
    for option in ("--imap URL", "--maildir DIR", "--mbox FILE", "--move-to FOLDER", "--dry-run"):
        assert option in result.output
    assert "Exit code 3" in result.output


def send(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["send", "--config", str(config), "--now", NOW, "--yes", "--json", *args],
        env={"NEWSLETTER_SIGNING_KEY": KEY},
    )


def test_verp_ties_a_bounce_to_its_reader_and_edition(tmp_path: Path) -> None:
    """A real send with VERP; a DSN naming only a forwarding address still finds the reader."""
    with SMTPServer() as server:
        config = make_project(
            tmp_path,
            server.port,
            extra='\n[bounces]\nverp = true\nreturn_path = "bounces@meridianpost.example"\n',
        )
        sent = send(config)
        assert sent.exit_code == 0, sent.output
    edition = json.loads(sent.stdout[sent.stdout.index("{") :])["edition_id"]
    envelope = {m.rcpt_tos[0]: m.mail_from for m in server.received}
    assert len(set(envelope.values())) == 4
    assert all(a.startswith("bounces+") for a in envelope.values())
    assert all(a.endswith("@meridianpost.example") for a in envelope.values())

    # The bounce reaches the return path of reader2's message; it names the address the
    # mail was forwarded to, and carries nothing of the original message.
    report = dsn("reader2.old@forward.example", to=envelope["reader2@example.org"])
    mbox = write_mbox(tmp_path / "in.mbox", [report])
    result = bounces(config, "--mbox", str(mbox))
    assert result.exit_code == 0, result.output
    state = load_settings(config, environ={}).paths.state
    with open_suppressions(state) as suppressions:
        found = suppressions.all()
    assert [(s.email, s.reason, s.edition_id, s.detail) for s in found] == [
        ("reader2@example.org", "bounce", edition, "5.1.1")
    ]
    with open_ledger(state) as ledger:
        assert ledger.failures(edition)[0][:2] == ("reader2@example.org", "failed")
    status = CliRunner().invoke(cli, ["status", "--config", str(config), edition])
    assert "bounced (hard): 5.1.1" in status.output

    # Without the signing key the token cannot be checked: only the report's address counts.
    other = dsn(
        "reader3.old@forward.example", to=envelope["reader3@example.org"], report_id="<2@x>"
    )
    result = bounces(config, "--mbox", str(write_mbox(tmp_path / "k.mbox", [other])), key="")
    assert "NEWSLETTER_SIGNING_KEY is not set" in result.stderr
    with open_suppressions(state) as suppressions:
        assert suppressions.get("reader3@example.org") is None
        assert suppressions.get("reader3.old@forward.example") is not None


def test_a_later_send_leaves_hard_bounced_readers_out(tmp_path: Path) -> None:
    with SMTPServer() as server:
        config = make_project(tmp_path, server.port, people=5)
        assert send(config).exit_code == 0
        assert len(server.received) == 5
        reports = [
            dsn("reader1@example.org", report_id="<b1@x>"),
            dsn("reader3@example.org", status="4.2.2", report_id="<b3@x>"),  # soft: kept
        ]
        assert (
            bounces(config, "--mbox", str(write_mbox(tmp_path / "b.mbox", reports))).exit_code == 0
        )
        server.received.clear()
        next_day = "2026-03-05T18:00:00+05:30"  # a new edition, of the same stories
        again = send(config, "--now", next_day, "--allow-early", "--allow-repeats")
        assert again.exit_code == 0, again.output
    assert json.loads(again.stdout[again.stdout.index("{") :])["suppressed"] == 1
    assert sorted(m.rcpt_tos[0] for m in server.received) == [
        "reader0@example.org",
        "reader2@example.org",
        "reader3@example.org",
        "reader4@example.org",
    ]
