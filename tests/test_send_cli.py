"""Live sending through the command line, against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from smtp_server import Faults, SMTPServer, free_port, make_certificate

from newsletter.cli.main import cli
from newsletter.delivery.smtp.pool import UNRECORDED
from newsletter.delivery.smtp.run import REFUSAL_MINIMUM

NOW = "2026-03-04T18:00:00+05:30"
PASSWORD = "s3cret-pass-word"


def make_project(tmp_path: Path, port: int, people: int, extra_smtp: str = "") -> Path:
    runner = CliRunner()
    project = tmp_path / "news"
    assert runner.invoke(cli, ["init", str(project), "--now", NOW]).exit_code == 0
    rows = ["email,name,status"]
    rows += [f"reader{i:04d}@example.org,Reader {i},active" for i in range(people)]
    rows += ["gone@example.org,Gone,unsubscribed"]
    (project / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = (project / "newsletter.toml").read_text(encoding="utf-8")
    config = config.replace(
        '[smtp]\n# host = "smtp.example.org"',
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\n{extra_smtp}\n# host = "smtp.example.org"',
    )
    (project / "newsletter.toml").write_text(config, encoding="utf-8")
    return project


def env(**extra: str) -> dict[str, str]:
    return {"NEWSLETTER_SIGNING_KEY": "test-signing-key-0123456789", **extra}


def test_live_send_over_starttls_with_auth_then_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = make_certificate(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))
    with SMTPServer(tls=cert, users={"news": PASSWORD}) as server:
        project = make_project(
            tmp_path, server.port, 25, 'security = "starttls"\nusername = "news"\npool = 2'
        )
        runner = CliRunner()
        config = str(project / "newsletter.toml")
        assert runner.invoke(cli, ["build", "--config", config, "--now", NOW]).exit_code == 0
        first = selected_ids(project / "out" / "edition.json")
        result = runner.invoke(
            cli,
            ["send", "--config", config, "--now", NOW, "--yes", "--json"],
            env=env(NEWSLETTER_SMTP_PASSWORD=PASSWORD),
        )
        assert result.exit_code == 0, result.output
        assert PASSWORD not in result.output
        summary = json.loads(result.stdout[result.stdout.index("{") :])
        assert summary["sent"] == 25
        counts = server.per_recipient()
        assert len(counts) == 25
        assert set(counts.values()) == {1}
        assert "gone@example.org" not in counts
        assert server.multi_rcpt == 0
        assert all(m.tls and m.login == "news" for m in server.messages())
        assert server.connections <= 4  # connections are reused

        status = runner.invoke(cli, ["status", "--config", config, summary["edition_id"]])
        assert status.exit_code == 0, status.output
        assert "sent 25" in status.output
        table = runner.invoke(cli, ["status", "--config", config]).output.splitlines()
        assert table[0].split()[2:8] == ["SENT", "FAILED", "DEFERRED", "IN", "FLIGHT", "PENDING"]
        row = next(line for line in table if line.startswith(summary["edition_id"]))
        assert row.split()[3:8] == ["25", "0", "0", "0", "0"]

        # The next edition leaves out every story that already went out.
        again = runner.invoke(cli, ["build", "--config", config, "--now", NOW, "--force"])
        assert again.exit_code == 0, again.output
        assert not first & selected_ids(project / "out" / "edition.json")


def selected_ids(edition_json: Path) -> set[str]:
    selection = json.loads(edition_json.read_text(encoding="utf-8"))["selection"]
    items = [selection["lead"], *selection["trending"], *selection["opinion"]]
    return {item["id"] for item in items}


def test_nothing_new_once_everything_went_out(tmp_path: Path) -> None:
    with SMTPServer() as server:
        project = make_project(tmp_path, server.port, 2, 'security = "none"')
        args = ["send", "--config", str(project / "newsletter.toml"), "--now", NOW, "--yes"]
        args.append("--allow-early")  # editions back to back, on purpose
        codes = [CliRunner().invoke(cli, args, env=env()).exit_code for _ in range(6)]
        assert codes[0] == 0
        assert codes[-1] == 3  # skip, not failure
        last = CliRunner().invoke(cli, args, env=env())
        assert "nothing new to send since" in last.output
        sent_editions = codes.index(3)
        assert len(server.messages()) == 2 * sent_editions


def test_live_send_without_signing_key_is_refused(tmp_path: Path) -> None:
    with SMTPServer() as server:
        project = make_project(tmp_path, server.port, 3, 'security = "none"')
        result = CliRunner().invoke(
            cli,
            ["send", "--config", str(project / "newsletter.toml"), "--now", NOW, "--yes"],
            env={"NEWSLETTER_SIGNING_KEY": ""},
        )
        assert result.exit_code == 1
        assert "NEWSLETTER_SIGNING_KEY" in result.output
        assert server.messages() == []


def test_test_send_goes_to_one_address_every_time(tmp_path: Path) -> None:
    with SMTPServer() as server:
        project = make_project(tmp_path, server.port, 5, 'security = "none"')
        args = [
            "send",
            "--config",
            str(project / "newsletter.toml"),
            "--now",
            NOW,
            "--yes",
            "--to",
            "editor@example.com",
        ]
        for _ in range(2):
            result = CliRunner().invoke(cli, args, env=env())
            assert result.exit_code == 0, result.output
        assert server.per_recipient() == {"editor@example.com": 2}


def test_failures_are_listed_by_status(tmp_path: Path) -> None:
    faults = Faults(reject={"reader0001@example.org"})
    with SMTPServer(faults=faults) as server:
        project = make_project(tmp_path, server.port, 4, 'security = "none"')
        config = str(project / "newsletter.toml")
        result = CliRunner().invoke(
            cli, ["send", "--config", config, "--now", NOW, "--yes"], env=env()
        )
        assert result.exit_code == 1
        assert "1 recipient(s) not delivered" in result.output
        edition = json.loads(
            CliRunner().invoke(cli, ["status", "--config", config, "--json"]).stdout
        )[0]["id"]
        status = CliRunner().invoke(cli, ["status", "--config", config, edition])
        assert "failed" in status.output
        assert "reader0001@example.org" in status.output
        assert "550" in status.output


def run_until_killed(
    project: Path, server: SMTPServer, after: int, sig: signal.Signals = signal.SIGKILL
) -> None:
    """Start a real send as a subprocess and SIGKILL it (or ``sig``) once ``after`` arrived."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "newsletter",
            "send",
            "--config",
            str(project / "newsletter.toml"),
            "--now",
            NOW,
            "--yes",
        ],
        env={**os.environ, **env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server.wait_for(lambda: len(server.messages()) >= after, timeout=60)
    finally:
        process.send_signal(sig)
        process.wait(timeout=30)
    time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["resend", "hold"])
def test_killed_send_resumes_and_nobody_is_lost_or_doubled(tmp_path: Path, policy: str) -> None:
    people, pool = 120, 2
    faults = Faults(data_delay=0.02)
    with SMTPServer(faults=faults) as server:
        project = make_project(
            tmp_path,
            server.port,
            people,
            f'security = "none"\npool = {pool}\nin_flight = "{policy}"',
        )
        run_until_killed(project, server, after=30)
        first = len(server.messages())
        assert first < people, "the send finished before it could be killed"

        resumed = CliRunner().invoke(
            cli, ["send", "--config", str(project / "newsletter.toml"), "--yes"], env=env()
        )
        assert "Resuming edition" in resumed.output
        counts = server.per_recipient()
        doubled = {a for a, n in counts.items() if n > 1}
        assert all(n <= 2 for n in counts.values())
        if policy == "resend":
            # Everyone is delivered; only the last few accepted before the kill (their
            # outcomes not yet on disk) may come twice.
            assert resumed.exit_code == 0, resumed.output
            assert len(counts) == people
            assert len(doubled) <= UNRECORDED * pool
        else:
            # Nobody twice; messages in flight at the kill are held for a person to decide.
            assert doubled == set()
            match = re.search(r"held (\d+)", resumed.output)
            assert match, resumed.output
            held = int(match.group(1))
            # Held = in flight at the kill; the server may have taken some of them.
            assert people - len(counts) <= held <= pool


def test_live_send_signs_with_dkim_when_a_key_is_configured(tmp_path: Path) -> None:
    import shutil

    from newsletter.config.load import load_settings
    from newsletter.dkim.selfcheck import verify

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to generate a test key")
    with SMTPServer() as server:
        project = make_project(tmp_path, server.port, 2, 'security = "none"')
        key = project / "dkim.pem"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        config = project / "newsletter.toml"
        config.write_text(
            config.read_text(encoding="utf-8")
            + '\n[dkim]\nselector = "news2026"\nkey_file = "dkim.pem"\n',
            encoding="utf-8",
        )
        result = CliRunner().invoke(
            cli, ["send", "--config", str(config), "--now", NOW, "--yes"], env=env()
        )
        assert result.exit_code == 0, result.output
        settings = load_settings(config, environ=env())
        assert settings.dkim is not None
        for message in server.messages():
            ok, signed = verify(message.data, settings.dkim)
            assert ok
            assert {"from", "to", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= set(
                signed
            )


# --------------------------------------------------------------------------- safety stops


DOMAINS = ("example.org", "example.net", "example.com", "mail.example", "post.example")


def mixed_list(project: Path, people: int) -> list[str]:
    """Replace the subscriber list with ``people`` addresses over several domains."""
    emails = [f"reader{n:04d}@{DOMAINS[n % len(DOMAINS)]}" for n in range(people)]
    rows = ["email,name,status", *(f"{e},Reader {n},active" for n, e in enumerate(emails))]
    (project / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return emails


def send_live(project: Path, **extra_env: str) -> Result:
    args = ["send", "--config", str(project / "newsletter.toml"), "--now", NOW, "--yes"]
    return CliRunner().invoke(cli, args, env=env(**extra_env))


def test_unknown_users_at_the_top_of_the_list_do_not_stop_the_send(tmp_path: Path) -> None:
    with SMTPServer() as server:
        project = make_project(tmp_path, server.port, 0, 'security = "none"')
        emails = mixed_list(project, 100)
        server.faults = Faults(reject=set(emails[:60]))
        result = send_live(project)
        assert result.exit_code == 1, result.output
        assert "sent 40, failed 60" in result.output
        assert "60 recipient(s) not delivered" in result.output
        assert "refuse everyone" not in result.output
        assert set(server.per_recipient()) == set(emails[60:])


def test_a_relay_refusing_everyone_pauses_early_and_loses_nobody(tmp_path: Path) -> None:
    with SMTPServer(faults=Faults(reject_all=True)) as server:
        project = make_project(tmp_path, server.port, 0, 'security = "none"\npool = 2')
        emails = mixed_list(project, 200)
        result = send_live(project)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        reason = f"the server at 127.0.0.1:{server.port} refused"
        assert result.output.count(reason) == 1, result.output  # one message, not two
        assert "554 5.7.1" in result.output
        assert "failed 0" in result.output
        assert sum(server.rcpt_attempts.values()) <= REFUSAL_MINIMUM + 2  # early
        assert server.messages() == []

        # The relay is fixed: the next run sends to everyone, those refused included.
        server.faults = Faults()
        again = send_live(project)
        assert again.exit_code == 0, again.output
        assert "Resuming edition" in again.output
        assert server.per_recipient() == Counter(emails)


def test_a_dead_port_pauses_at_once_with_one_message(tmp_path: Path) -> None:
    port = free_port()
    project = make_project(tmp_path, port, 0, 'security = "none"')
    mixed_list(project, 50)
    began = time.monotonic()
    result = send_live(project)
    assert time.monotonic() - began < 5, "no retries with backoff"
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    reason = f"cannot reach 127.0.0.1:{port}: nothing is listening there (connection refused)"
    assert result.output.count(reason) == 1, result.output
    assert "smtp.port" in result.output
    assert "sent 0, failed 0, deferred 0" in result.output


def test_a_wrong_password_is_tried_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = make_certificate(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))
    with SMTPServer(tls=cert, users={"news": PASSWORD}) as server:
        project = make_project(
            tmp_path, server.port, 0, 'security = "starttls"\nusername = "news"\npool = 4'
        )
        mixed_list(project, 40)
        for run in (1, 2):
            result = send_live(project, NEWSLETTER_SMTP_PASSWORD="not-the-password")
            assert result.exit_code == 1, result.output
            assert result.output.count("refused the login of 'news'") == 1, result.output
            assert "not-the-password" not in result.output
            assert len(server.auth_attempts) == run  # one AUTH per run, whatever the pool
        assert server.messages() == []
        fixed = send_live(project, NEWSLETTER_SMTP_PASSWORD=PASSWORD)
        assert fixed.exit_code == 0, fixed.output
        assert len(server.messages()) == 40


def test_a_hostile_relay_never_gets_the_password_into_output_or_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = make_certificate(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))
    forms = [
        form
        for password in (PASSWORD, PASSWORD + "-old")
        for form in (
            password,
            base64.b64encode(password.encode()).decode().rstrip("="),
            base64.b64encode(f"\0news\0{password}".encode()).decode().rstrip("="),
        )
    ]
    faults = Faults(rcpt_echo_login=True, auth_echo=True)
    with SMTPServer(tls=cert, users={"news": PASSWORD}, faults=faults) as server:
        project = make_project(
            tmp_path, server.port, 0, 'security = "starttls"\nusername = "news"\npool = 2'
        )
        mixed_list(project, 30)
        config = str(project / "newsletter.toml")
        sent = send_live(project, NEWSLETTER_SMTP_PASSWORD=PASSWORD)
        assert sent.exit_code == 1
        assert "you sent ***" in sent.output  # the relay's echo, in the pause reason
        status = CliRunner().invoke(cli, ["status", "--config", config])
        edition = status.output.splitlines()[1].split()[0]
        detail = CliRunner().invoke(cli, ["status", "--config", config, edition])
        assert "you sent ***" in detail.output
        # A wrong password the relay repeats back, with what AUTH sent for it.
        wrong = send_live(project, NEWSLETTER_SMTP_PASSWORD=PASSWORD + "-old")
        assert "refused the login" in wrong.output
        assert "***" in wrong.output
    for text in (sent.output, status.output, detail.output, wrong.output):
        for form in forms:
            assert form not in text
