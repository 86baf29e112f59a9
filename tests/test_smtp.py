"""Live delivery against a real aiosmtpd server on 127.0.0.1 that misbehaves on purpose."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smtp_server import Certificate, Faults, SMTPServer, free_port, make_certificate

from newsletter.config.settings import SmtpSettings
from newsletter.delivery.smtp import connection
from newsletter.delivery.smtp.outcome import SendSummary
from newsletter.delivery.smtp.pool import CLAIM_AHEAD, UNRECORDED, send_messages
from newsletter.delivery.smtp.run import REFUSAL_MINIMUM
from newsletter.delivery.smtp.settings import check_smtp_settings
from newsletter.errors import ConfigError
from newsletter.models import OutgoingMessage
from newsletter.redaction import mask_address
from newsletter.state.api import Ledger
from newsletter.state.openers import open_ledger

ROOT = Path(__file__).resolve().parent.parent
SENDER = "bounces@news.example"
USER, PASSWORD = "newsletter", "Tr0ub4dor-&-3-horse"


def message(address: str, n: int = 0, body: bytes = b"") -> OutgoingMessage:
    data = (
        f"From: News <news@news.example>\r\nTo: {address}\r\nSubject: Digest {n}\r\n"
        f"Message-ID: <{n}.digest@news.example>\r\n\r\n"
    ).encode() + (body or f"Hello reader {n}.\r\n".encode())
    return OutgoingMessage(address, f"<{n}.digest@news.example>", data)


def addresses(count: int, prefix: str = "reader") -> list[str]:
    return [f"{prefix}{n}@example.org" for n in range(count)]


def messages(emails: list[str]) -> Iterator[OutgoingMessage]:
    return (message(address, n) for n, address in enumerate(emails))


def plain(server: SMTPServer, **changes: Any) -> SmtpSettings:
    """Settings for a server without TLS (allowed: it is on loopback)."""
    base = SmtpSettings(host=server.host, port=server.port, security="none", pool=2, retries=4)
    return dataclasses.replace(base, **changes)


def send(
    emails: list[str] | Iterator[OutgoingMessage],
    settings: SmtpSettings,
    ledger: Ledger,
    edition: str = "e1",
    **kwargs: Any,
) -> SendSummary:
    items = messages(emails) if isinstance(emails, list) else emails
    kwargs.setdefault("backoff_base", 0.01)
    return send_messages(items, settings, ledger, edition, envelope_from=SENDER, **kwargs)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trusted(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> Certificate:
    """Make the test certificate a trusted root for this test (as a private CA would be)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    return certificate


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path / "state" / "state.sqlite3") as opened:
        yield opened


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[SMTPServer]:
    """The aiosmtpd server; ``indirect`` parametrizing turns PIPELINING off with ``False``."""
    with SMTPServer(pipelining=getattr(request, "param", True)) as running:
        yield running


BOTH_WAYS = pytest.mark.parametrize(
    "server", [True, False], indirect=True, ids=["pipelining", "step-by-step"]
)


# --------------------------------------------------------------------------- settings


def test_no_host_points_to_the_config_and_dry_run() -> None:
    with pytest.raises(ConfigError) as info:
        check_smtp_settings(SmtpSettings())
    assert "smtp.host" in str(info.value)
    assert "--dry-run" in str(info.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.8.9.10", "::1", "[::1]"])
def test_plain_smtp_is_fine_on_loopback(host: str) -> None:
    check_smtp_settings(SmtpSettings(host=host, security="none"))


def test_plain_smtp_to_another_host_needs_allow_insecure() -> None:
    remote = SmtpSettings(host="relay.example.org", security="none", username="u", password="p")
    with pytest.raises(ConfigError, match="allow_insecure") as info:
        check_smtp_settings(remote)
    assert "password" in str(info.value)
    check_smtp_settings(dataclasses.replace(remote, allow_insecure=True))


def test_every_problem_is_reported_at_once() -> None:
    bad = SmtpSettings(
        host="relay.example.org", username="news", pool=0, rate=-1.0, timeout=0.0,
        max_per_connection=0, retries=-1, in_flight="maybe", security="tls",
    )  # fmt: skip
    with pytest.raises(ConfigError) as info:
        check_smtp_settings(bad)
    problems = info.value.problems
    for key in (
        "smtp.pool",
        "smtp.rate",
        "smtp.timeout",
        "smtp.max_per_connection",
        "smtp.retries",
        "smtp.in_flight",
        "smtp.security",
        "NEWSLETTER_SMTP_PASSWORD",
    ):
        assert any(key in p for p in problems), key


@pytest.mark.parametrize("host", ["relay example.org", "user@relay.example.org", "a\r\nb"])
def test_a_host_that_is_not_a_host_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="not a host name"):
        check_smtp_settings(SmtpSettings(host=host))


def test_a_bad_envelope_sender_is_refused_before_connecting(
    server: SMTPServer, ledger: Ledger
) -> None:
    with pytest.raises(ConfigError, match="envelope_from"):
        send_messages(messages(addresses(2)), plain(server), ledger, "e1", envelope_from="x\r\n")
    assert server.connections == 0


# --------------------------------------------------------------------------- the happy path


def test_each_message_once_over_few_reused_tls_connections(
    trusted: Certificate, ledger: Ledger
) -> None:
    emails = addresses(120)
    with SMTPServer(tls=trusted, users={USER: PASSWORD}) as server:
        settings = SmtpSettings(
            host="127.0.0.1", port=server.port, username=USER, password=PASSWORD, pool=4
        )
        summary = send(emails, settings, ledger)
    assert summary.sent == 120
    assert not summary.paused
    assert (summary.failed, summary.deferred, summary.skipped, summary.held) == (0, 0, 0, 0)
    assert server.per_recipient() == Counter(emails)
    received = server.messages()
    assert all(len(m.rcpt_tos) == 1 and m.mail_from == SENDER for m in received)
    assert server.multi_rcpt == 0
    assert all(m.tls and m.login == USER for m in received)
    assert 1 <= server.connections <= 4
    assert ledger.summary("e1")["sent"] == 120
    # Each message carries its own bytes to its own recipient.
    for m in received:
        assert f"To: {m.rcpt_tos[0]}".encode() in m.data


def test_connections_are_renewed_after_max_per_connection(
    server: SMTPServer, ledger: Ledger
) -> None:
    summary = send(addresses(40), plain(server, pool=1, max_per_connection=5), ledger)
    assert summary.sent == 40
    assert server.connections == 8


@pytest.mark.parametrize("idle_check", [0.1, 3600.0])
def test_a_connection_the_server_closed_while_idle_is_replaced(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, idle_check: float
) -> None:
    monkeypatch.setattr(connection, "IDLE_CHECK", idle_check)
    emails = addresses(4)
    with SMTPServer(idle_timeout=0.2) as server:
        summary = send(emails, plain(server, pool=1, rate=3.0), ledger)
    assert summary.sent == 4
    assert server.per_recipient() == Counter(emails)
    assert server.connections == 4  # the server hung up between any two messages
    # Each dead connection was noticed before the message was claimed: no retries.
    assert ledger_attempts(ledger) == dict.fromkeys(emails, 1)


def ledger_attempts(ledger: Ledger) -> dict[str, int]:
    conn = sqlite3.connect(ledger.path)
    try:
        return dict(conn.execute("SELECT email, attempts FROM ledger_recipients"))
    finally:
        conn.close()


def test_implicit_tls(trusted: Certificate, ledger: Ledger) -> None:
    with SMTPServer(tls=trusted, implicit_tls=True, users={USER: PASSWORD}) as server:
        settings = SmtpSettings(
            host="localhost", port=server.port, security="ssl", username=USER, password=PASSWORD
        )
        summary = send(addresses(5), settings, ledger)
    assert summary.sent == 5
    assert all(m.tls for m in server.messages())


# --------------------------------------------------------------------------- faults


@BOTH_WAYS
def test_mixed_faults_deliver_each_deliverable_message_exactly_once(
    server: SMTPServer, ledger: Ledger
) -> None:
    emails = addresses(90)
    unknown = {emails[3], emails[40], emails[77]}
    spam = {emails[12]}
    greylisted = {emails[5], emails[6], emails[50]}
    server.faults = Faults(
        disconnect_every=9,
        reject=unknown,
        reject_data=spam,
        tempfail=dict.fromkeys(greylisted, 2),
        data_delay=0.002,
    )
    outcomes: list[tuple[str, str]] = []
    summary = send(
        emails,
        plain(server, pool=3, retries=6),
        ledger,
        progress=lambda e, s: outcomes.append((e, s)),
    )

    deliverable = set(emails) - unknown - spam
    assert server.per_recipient() == Counter(deliverable)
    assert server.multi_rcpt == 0
    for address in greylisted:
        assert server.rcpt_attempts[address] >= 3
    failures = {email: (state, reply) for email, state, reply in ledger.failures("e1")}
    assert set(failures) == unknown | spam
    assert all(
        state == "failed" and reply.startswith("550 5.1.1")
        for state, reply in (failures[a] for a in unknown)
    )
    assert failures[emails[12]][1].startswith("554 5.6.0")
    assert summary.sent == len(deliverable)
    assert summary.failed == 4
    assert not summary.paused
    assert ledger.summary("e1")["sent"] == len(deliverable)
    # Connections were dropped by the server every 9 messages, and reused in between.
    assert 5 <= server.connections <= 30
    assert Counter(state for _, state in outcomes) == {"sent": len(deliverable), "failed": 4}
    assert len(outcomes) == len(emails)


@BOTH_WAYS
def test_421_at_rcpt_reconnects_and_delivers(server: SMTPServer, ledger: Ledger) -> None:
    server.faults = Faults(disconnect_every=4, disconnect_at="RCPT")
    emails = addresses(30)
    summary = send(emails, plain(server, pool=2, retries=6), ledger)
    assert summary.sent == 30
    assert server.per_recipient() == Counter(emails)


def test_a_4xx_beyond_the_retries_is_deferred_and_sent_on_resume(
    server: SMTPServer, ledger: Ledger
) -> None:
    emails = addresses(6)
    stuck = emails[2]
    server.faults = Faults(tempfail={stuck: 1000})
    summary = send(emails, plain(server, retries=2), ledger)
    assert summary.sent == 5
    assert summary.deferred == 1
    assert not summary.paused
    assert server.rcpt_attempts[stuck] == 3
    assert ledger.states("e1")[stuck] == "deferred"
    assert ledger.failures("e1") == [
        (stuck, "deferred", f"451 4.7.1 <{stuck}>: Greylisted, try again later")
    ]

    server.faults = Faults()
    again = send(emails, plain(server, retries=2), ledger)
    assert (again.sent, again.skipped, again.deferred) == (1, 5, 0)
    assert server.per_recipient() == Counter(emails)


def test_the_server_going_away_and_coming_back(server: SMTPServer, ledger: Ledger) -> None:
    emails = addresses(80)
    server.faults = Faults(data_delay=0.004)

    def bounce() -> None:
        server.wait_for(lambda: len(server.messages()) >= 25)
        server.restart(downtime=0.6)

    restarter = threading.Thread(target=bounce)
    restarter.start()
    settings = plain(server, pool=2, retries=10)
    summary = send(emails, settings, ledger, backoff_base=0.05, breaker=100)
    restarter.join()
    assert summary.sent == 80, summary
    assert not summary.paused
    counts = server.per_recipient()
    assert set(counts) == set(emails)
    # Only a message whose answer was lost with the connection may arrive twice.
    assert sum(counts.values()) - len(emails) <= 2, counts.most_common(3)
    assert server.connections >= 3


def test_slow_replies_do_not_break_anything(server: SMTPServer, ledger: Ledger) -> None:
    server.faults = Faults(data_delay=0.05)
    emails = addresses(12)
    summary = send(emails, plain(server, pool=4, timeout=5.0), ledger)
    assert summary.sent == 12
    assert server.per_recipient() == Counter(emails)


@pytest.mark.parametrize("policy", ["resend", "hold"])
def test_a_lost_answer_follows_the_in_flight_policy(
    server: SMTPServer, ledger: Ledger, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    emails = addresses(5)
    slow = emails[1]
    server.faults = Faults(slow={slow: 2.5})
    with caplog.at_level(logging.DEBUG, logger="newsletter.delivery.smtp"):
        summary = send(emails, plain(server, pool=1, timeout=1.0, in_flight=policy), ledger)
    assert f"{mask_address(slow)}: no answer during reply within 1 s (smtp.timeout)" in caplog.text
    assert slow not in caplog.text  # logs name a domain, never a whole address
    counts = server.per_recipient()
    if policy == "resend":
        assert counts[slow] == 2  # accepted, answer lost, sent again: at-least-once
        assert summary.sent == 5
        assert summary.held == 0
        assert ledger.states("e1")[slow] == "sent"
    else:
        assert counts[slow] == 1  # accepted, answer lost, not sent again: at-most-once
        assert summary.sent == 4
        assert summary.held == 1
        assert ledger.states("e1")[slow] == "in_flight"
        assert (slow, "in_flight", "") in ledger.failures("e1")
    assert all(counts[e] == 1 for e in emails if e != slow)


# --------------------------------------------------------------------------- pausing


def test_an_untrusted_certificate_pauses_without_failing_anyone(
    certificate: Certificate, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with SMTPServer(tls=certificate) as server:
        summary = send(addresses(5), SmtpSettings(host="127.0.0.1", port=server.port), ledger)
    assert summary.paused
    assert "certificate" in summary.pause_reason
    assert "smtp.verify" in summary.pause_reason
    assert summary.sent == summary.failed == 0
    assert server.messages() == []
    assert ledger.summary("e1")["failed"] == 0


def test_verify_false_sends_and_warns(
    certificate: Certificate,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with SMTPServer(tls=certificate) as server:
        settings = SmtpSettings(host="127.0.0.1", port=server.port, verify=False)
        with caplog.at_level(logging.WARNING, logger="newsletter"):
            summary = send(addresses(3), settings, ledger)
    assert summary.sent == 3
    assert "smtp.verify = false" in caplog.text


def test_no_starttls_on_offer_pauses(server: SMTPServer, ledger: Ledger) -> None:
    summary = send(addresses(3), SmtpSettings(host="127.0.0.1", port=server.port), ledger)
    assert summary.paused
    assert "STARTTLS" in summary.pause_reason
    assert server.messages() == []


@BOTH_WAYS
def test_a_refused_sender_pauses_instead_of_failing_everyone(
    server: SMTPServer, ledger: Ledger
) -> None:
    server.faults = Faults(mail_reply="550 5.7.1 Sender address rejected: not owned by user")
    summary = send(addresses(50), plain(server), ledger)
    assert summary.paused
    assert "refused the sender" in summary.pause_reason
    assert "550 5.7.1" in summary.pause_reason
    assert summary.failed == 0
    assert ledger.summary("e1")["failed"] == 0
    assert ledger.summary("e1")["deferred"] <= 2  # at most one try per connection


@BOTH_WAYS
def test_connection_failures_in_a_row_trip_the_breaker(server: SMTPServer, ledger: Ledger) -> None:
    server.faults = Faults(mail_reply="421 4.7.0 Too busy, try later")
    summary = send(addresses(50), plain(server, retries=10), ledger, backoff_base=0.001, breaker=6)
    assert summary.paused
    assert "6 times in a row" in summary.pause_reason
    assert f"127.0.0.1:{server.port}" in summary.pause_reason
    assert "run send again" in summary.pause_reason
    assert summary.failed == 0
    assert ledger.summary("e1")["failed"] == 0
    assert summary.sent == 0


def test_an_unreachable_server_pauses(ledger: Ledger) -> None:
    port = free_port()
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none", retries=2, pool=2)
    summary = send(addresses(10), settings, ledger)
    assert summary.paused
    assert "cannot reach" in summary.pause_reason
    assert f"127.0.0.1:{port}" in summary.pause_reason
    assert summary.sent == summary.failed == 0
    assert ledger.summary("e1")["failed"] == 0


@BOTH_WAYS
def test_a_relay_refusing_everyone_pauses(server: SMTPServer, ledger: Ledger) -> None:
    server.faults = Faults(reject_all=True)
    summary = send(addresses(80), plain(server, pool=1), ledger)
    assert summary.paused
    assert "seems to refuse everyone" in summary.pause_reason
    assert "554 5.7.1" in summary.pause_reason
    # Nobody is failed for the relay's refusal: they are tried again by the next run.
    assert (summary.failed, summary.deferred) == (0, REFUSAL_MINIMUM)
    assert sum(server.rcpt_attempts.values()) == REFUSAL_MINIMUM
    assert ledger.summary("e1")["deferred"] == REFUSAL_MINIMUM
    assert ledger.summary("e1")["failed"] == 0


def test_the_password_never_leaks(
    trusted: Certificate, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode(),
    ]
    seen: list[str] = []
    with SMTPServer(tls=trusted, users={USER: PASSWORD}, faults=Faults(auth_echo=True)) as server:
        good = SmtpSettings(host="127.0.0.1", port=server.port, username=USER, password=PASSWORD)
        bad = dataclasses.replace(good, username="intruder")
        with caplog.at_level(logging.DEBUG), open_ledger(tmp_path / "s.sqlite3") as ledger:
            ok = send(addresses(3), good, ledger, "e1")
            refused = send(addresses(3), bad, ledger, "e2")
            seen += [repr(ok), repr(refused), str(ok.as_dict()), str(refused.as_dict())]
            seen += [str(ledger.failures(e)) for e in ("e1", "e2")]
    seen += [r.getMessage() for r in caplog.records if r.name.startswith("newsletter")]
    seen += [repr(good), repr(bad)]
    assert ok.sent == 3
    assert refused.paused
    assert "refused the login" in refused.pause_reason
    assert "***" in refused.pause_reason  # the hostile server echoed it; it was scrubbed
    assert refused.sent == refused.failed == 0
    for text in seen:
        for secret in secrets:
            assert secret not in text


# --------------------------------------------------------------------------- envelope


def test_smtputf8_is_used_for_a_non_ascii_address(server: SMTPServer, ledger: Ledger) -> None:
    emails = ["jörg@exämple.org", "plain@example.org"]
    summary = send(emails, plain(server), ledger)
    assert summary.sent == 2
    options = {m.rcpt_tos[0]: m.mail_options for m in server.messages()}
    assert "SMTPUTF8" in options["jörg@exämple.org"]
    assert "SMTPUTF8" not in options["plain@example.org"]


def test_without_smtputf8_only_that_recipient_fails(ledger: Ledger) -> None:
    with SMTPServer(smtputf8=False) as server:
        summary = send(["jörg@exämple.org", "plain@example.org"], plain(server), ledger)
    assert (summary.sent, summary.failed) == (1, 1)
    ((email, state, reply),) = ledger.failures("e1")
    # The ledger keys an address with its domain in ASCII, as the wire names it.
    assert (email, state) == ("jörg@xn--exmple-cua.org", "failed")
    assert "SMTPUTF8" in reply
    assert "jörg@exämple.org" not in server.rcpt_attempts


def test_unusable_addresses_fail_locally(server: SMTPServer, ledger: Ledger) -> None:
    emails = [
        "two words@example.org",
        "x@example.org>\r\nRCPT TO:<evil@example.org",
        "ok@example.org",
    ]
    summary = send(emails, plain(server), ledger)
    assert (summary.sent, summary.failed) == (1, 2)
    assert server.per_recipient() == Counter(["ok@example.org"])
    assert all(reply.startswith("local:") for _, _, reply in ledger.failures("e1"))


@BOTH_WAYS
def test_dots_line_ends_and_8bit_data(server: SMTPServer, ledger: Ledger) -> None:
    body = ".starts with a dot\r\n..two dots\nbare LF\r\ncafé\r\n.\r\nend"
    item = message("reader@example.org", 1, body.encode())
    bare = OutgoingMessage("bare@example.org", "<b@x>", b".\r\n.\rSubject: odd\n\n.body.")
    summary = send(iter([item, bare]), plain(server), ledger)
    assert summary.sent == 2
    got = {m.rcpt_tos[0]: m for m in server.messages()}
    assert "BODY=8BITMIME" in got["reader@example.org"].mail_options
    assert "BODY=8BITMIME" not in got["bare@example.org"].mail_options
    text = got["reader@example.org"].data.decode()
    assert text.endswith(".starts with a dot\r\n..two dots\r\nbare LF\r\ncafé\r\n.\r\nend\r\n")
    assert "\n" not in text.replace("\r\n", "")
    assert got["bare@example.org"].data == b".\r\n.\r\nSubject: odd\r\n\r\n.body.\r\n"


class ScriptedServer:
    """A raw SMTP server on 127.0.0.1 (one session) that answers transactions as scripted.

    It answers nothing in a transaction until MAIL, RCPT and DATA have all arrived, so a
    client that waits for each reply before sending the next command stalls (and the
    server records that). Each script entry is the replies to MAIL, RCPT, DATA and, when
    DATA got 354, the end of data.
    """

    def __init__(self, script: list[tuple[str, str, str, str]]) -> None:
        self.script = script
        self.groups: list[list[bytes]] = []
        self.bodies: list[bytes] = []
        self.stalled = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        conn.settimeout(5)
        reader = conn.makefile("rb")
        try:
            conn.sendall(b"220 scripted ESMTP\r\n")
            reader.readline()
            conn.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            for replies in self.script:
                self._transaction(conn, reader, replies)
            for line in reader:
                conn.sendall(b"221 bye\r\n" if line.upper().startswith(b"QUIT") else b"250 OK\r\n")
        except TimeoutError:
            self.stalled = True
        finally:
            reader.close()
            conn.close()
            self._listener.close()

    def _transaction(self, conn: socket.socket, reader: Any, replies: tuple[str, ...]) -> None:
        group: list[bytes] = []
        while len(group) < 3:
            line = reader.readline()
            if line.upper().startswith((b"RSET", b"NOOP")):
                conn.sendall(b"250 OK\r\n")
            else:
                group.append(line)
        self.groups.append(group)
        mail, rcpt, data, end = replies
        conn.sendall(f"{mail}\r\n{rcpt}\r\n{data}\r\n".encode())
        if data.startswith("354"):
            body = b""
            while (line := reader.readline()) != b".\r\n":
                body += line
            self.bodies.append(body)
            conn.sendall(f"{end}\r\n".encode())

    def join(self) -> None:
        self._thread.join(timeout=10)


def test_pipelining_sends_the_envelope_in_one_go_and_keeps_in_step(ledger: Ledger) -> None:
    gone = "550 5.1.1 <gone@example.org>: no such user"
    scripted = ScriptedServer(
        [
            # A server that refuses the recipient yet says "go ahead" to DATA.
            ("250 2.1.0 Ok", gone, "354 go ahead", "554 5.5.1 no valid recipients"),
            ("250 2.1.0 Ok", "250 2.1.5 Ok", "354 go ahead", "250 2.0.0 queued"),
        ]
    )
    settings = SmtpSettings(
        host="127.0.0.1", port=scripted.port, security="none", pool=1, retries=0, timeout=3
    )
    summary = send(["gone@example.org", "ana@example.org"], settings, ledger)
    scripted.join()
    assert not scripted.stalled
    assert [[line.split(b":")[0] for line in group] for group in scripted.groups] == [
        [b"MAIL FROM", b"RCPT TO", b"DATA\r\n"]
    ] * 2
    assert (summary.sent, summary.failed) == (1, 1)
    assert ledger.failures("e1") == [("gone@example.org", "failed", gone)]
    assert ledger.states("e1")["ana@example.org"] == "sent"
    assert scripted.bodies[0] == b""  # the refused one got an empty message end
    assert b"Hello reader 1." in scripted.bodies[1]


# --------------------------------------------------------------------------- rate, stop, resume


def test_the_rate_limit_is_accurate(server: SMTPServer, ledger: Ledger) -> None:
    summary = send(addresses(30), plain(server, pool=4, rate=20.0), ledger)
    assert summary.sent == 30
    times = sorted(m.time for m in server.messages())
    span = times[-1] - times[0]
    assert 1.45 * 0.8 <= span <= 1.45 * 1.2
    # No bursts: a quarter second never holds much more than its share (5) of messages.
    assert max(sum(t <= u < t + 0.25 for u in times) for t in times) <= 7


def test_stop_finishes_what_is_under_way_and_resume_completes(
    server: SMTPServer, ledger: Ledger
) -> None:
    emails = addresses(60)
    server.faults = Faults(data_delay=0.01)
    stop = threading.Event()
    done: list[str] = []

    def progress(email: str, state: str) -> None:
        done.append(email)
        if len(done) == 15:
            stop.set()

    first = send(emails, plain(server, pool=3), ledger, progress=progress, stop=stop)
    assert first.paused
    assert "stopped" in first.pause_reason
    assert 15 <= first.sent < 60
    states = ledger.states("e1")
    assert "in_flight" not in states.values()
    assert {e for e, s in states.items() if s == "sent"} == set(server.per_recipient())

    second = send(emails, plain(server, pool=3), ledger)
    assert second.skipped == first.sent
    assert second.sent == 60 - first.sent
    assert server.per_recipient() == Counter(emails)


@pytest.mark.parametrize("policy", ["resend", "hold"])
def test_claims_made_ahead_are_handed_back_at_a_stop(
    server: SMTPServer, ledger: Ledger, policy: str
) -> None:
    emails = addresses(40)
    server.faults = Faults(data_delay=0.005)
    stop = threading.Event()

    def progress(email: str, state: str) -> None:
        if state == "sent":
            stop.set()

    send(emails, plain(server, pool=2, in_flight=policy), ledger, progress=progress, stop=stop)
    states = ledger.states("e1")
    pending = {e for e, s in states.items() if s == "pending"}
    assert "in_flight" not in states.values()
    assert not pending & set(server.per_recipient())
    if policy == "resend":  # each connection had claimed the next few
        assert 1 <= len(pending) <= 2 * CLAIM_AHEAD
    else:  # claimed only just before the data: nothing to hand back
        assert pending == set()
    with sqlite3.connect(ledger.path) as conn:
        attempts = dict(conn.execute("SELECT email, attempts FROM ledger_recipients"))
    assert all(attempts[e] == 0 for e in pending)

    first = len(server.messages())
    again = send(emails, plain(server, pool=2, in_flight=policy), ledger)
    assert again.sent == 40 - first
    assert server.per_recipient() == Counter(emails)


def test_resume_skips_sent_and_failed_and_repeats(server: SMTPServer, ledger: Ledger) -> None:
    emails = addresses(10)
    server.faults = Faults(reject={emails[4]})
    first = send([*emails, emails[0].upper()], plain(server), ledger)
    assert (first.sent, first.failed, first.skipped) == (9, 1, 1)
    second = send(emails, plain(server), ledger)
    assert (second.sent, second.failed, second.skipped) == (0, 0, 10)
    assert server.connections <= 2  # only the first run connected
    assert server.rcpt_attempts[emails[4]] == 1


@pytest.mark.parametrize(("policy", "sent", "held"), [("resend", 1, 0), ("hold", 0, 1)])
def test_in_flight_at_resume_follows_the_policy(
    server: SMTPServer, ledger: Ledger, policy: str, sent: int, held: int
) -> None:
    ledger.claim("e1", "reader0@example.org", "<0.digest@news.example>")
    summary = send(addresses(1), plain(server, in_flight=policy), ledger)
    assert (summary.sent, summary.held) == (sent, held)
    assert server.count_for("reader0@example.org") == sent


def test_messages_are_consumed_lazily(server: SMTPServer, ledger: Ledger) -> None:
    taken = itertools.count()
    stop = threading.Event()

    def endless() -> Iterator[OutgoingMessage]:
        for n in taken:
            yield message(f"reader{n}@example.org", n)

    def progress(email: str, state: str) -> None:
        if state == "sent" and len(server.messages()) >= 20:
            stop.set()

    summary = send(endless(), plain(server, pool=2), ledger, progress=progress, stop=stop)
    assert summary.paused
    assert summary.sent >= 20
    # Besides those sent, each connection holds one under way and a few claimed ahead.
    assert next(taken) <= summary.sent + 2 * (2 + CLAIM_AHEAD)


def test_a_failing_progress_callback_stops_the_run(server: SMTPServer, ledger: Ledger) -> None:
    def progress(email: str, state: str) -> None:
        raise RuntimeError("progress display broke")

    with pytest.raises(RuntimeError, match="progress display broke"):
        send(addresses(20), plain(server), ledger, progress=progress)
    assert ledger.summary("e1")["sent"] <= 2


# --------------------------------------------------------------------------- kill -9 and resume

CHILD = r"""
import sys
from pathlib import Path
from newsletter.config.settings import SmtpSettings
from newsletter.delivery.smtp.pool import send_messages
from newsletter.state.openers import open_ledger
from newsletter.models import OutgoingMessage

port, db, count, policy, pool = sys.argv[1:]
settings = SmtpSettings(
    host="127.0.0.1", port=int(port), security="none", pool=int(pool), in_flight=policy
)

def messages():
    for n in range(int(count)):
        data = f"Subject: n{n}\r\nMessage-ID: <{n}@news.example>\r\n\r\nhello {n}\r\n".encode()
        yield OutgoingMessage(f"reader{n}@example.org", f"<{n}@news.example>", data)

with open_ledger(Path(db)) as ledger:
    ledger.start("e1", "Digest")
    summary = send_messages(messages(), settings, ledger, "e1",
                            envelope_from="bounces@news.example", backoff_base=0.01)
print(summary.as_dict(), flush=True)
"""


def run_child(
    server: SMTPServer, db: Path, count: int, policy: str, pool: int
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [str(server.port), str(db), str(count), policy, str(pool)]
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.communicate()


def finish(child: subprocess.Popen[str]) -> str:
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    return out


def ledger_states(db: Path) -> dict[str, str]:
    with open_ledger(db) as opened:
        return opened.states("e1")


def assert_guarantee(states: dict[str, str], server: SMTPServer) -> None:
    """Nobody recorded sent was not accepted; every accepted one is sent or in flight."""
    received = set(server.per_recipient())
    sent = {e for e, s in states.items() if s == "sent"}
    in_flight = {e for e, s in states.items() if s == "in_flight"}
    assert sent <= received
    assert received <= sent | in_flight


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["resend", "hold"])
def test_killed_in_the_instant_after_acceptance(
    server: SMTPServer, tmp_path: Path, policy: str
) -> None:
    """The server has taken message 7 but its answer never reaches the killed sender."""
    db, doubt = tmp_path / "state.sqlite3", "reader7@example.org"
    server.faults = Faults(hang={doubt})
    child = run_child(server, db, 40, policy, pool=1)
    server.wait_for(lambda: server.count_for(doubt) == 1, timeout=30)
    kill(child)
    server.release()
    server.faults = Faults()

    states = ledger_states(db)
    assert states[doubt] == "in_flight"
    assert_guarantee(states, server)
    in_flight = {e for e, s in states.items() if s == "in_flight"}
    received = set(server.per_recipient())
    # Under "resend" the next few are claimed ahead (none reached the server), and the
    # last few accepted may lack their record; under "hold" only the one under way.
    ahead = CLAIM_AHEAD if policy == "resend" else 0
    unrecorded = UNRECORDED if policy == "resend" else 1
    assert len(in_flight - received) <= ahead
    assert len(in_flight & received) <= unrecorded

    finish(run_child(server, db, 40, policy, pool=1))
    counts = server.per_recipient()
    expected = 2 if policy == "resend" else 1
    assert counts[doubt] == expected
    twice = {e for e, c in counts.items() if c == 2}
    assert twice == (in_flight & received if policy == "resend" else set())
    assert set(counts.values()) <= {1, 2}
    assert set(counts) == {f"reader{n}@example.org" for n in range(40)}
    after = ledger_states(db)
    assert after[doubt] == ("sent" if policy == "resend" else "in_flight")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("policy", "pool"), [("resend", 1), ("hold", 1), ("resend", 4), ("hold", 4)]
)
def test_kill_at_a_random_moment_then_resume(
    server: SMTPServer, tmp_path: Path, policy: str, pool: int
) -> None:
    db, count = tmp_path / "state.sqlite3", 300
    server.faults = Faults(data_delay=0.002)
    child = run_child(server, db, count, policy, pool)
    target = int.from_bytes(os.urandom(1), "big") % 150 + 30
    server.wait_for(lambda: len(server.messages()) >= target, timeout=60)
    kill(child)
    time.sleep(0.1)  # let the server finish what it was reading

    states = ledger_states(db)
    assert_guarantee(states, server)
    in_flight = {e for e, s in states.items() if s == "in_flight"}
    ahead = CLAIM_AHEAD if policy == "resend" else 0
    assert len(in_flight) <= pool * (1 + ahead)
    # Per connection: the one under way and (under "resend") a few before it.
    doubt = UNRECORDED if policy == "resend" else 1
    assert len(in_flight & set(server.per_recipient())) <= pool * doubt

    finish(run_child(server, db, count, policy, pool))
    counts = server.per_recipient()
    twice = {e for e, c in counts.items() if c > 1}
    assert max(counts.values()) <= 2
    assert twice <= in_flight
    everyone = {f"reader{n}@example.org" for n in range(count)}
    if policy == "resend":
        assert set(counts) == everyone
        assert len(twice) <= UNRECORDED * pool
    else:
        assert twice == set()
        assert everyone - set(counts) <= in_flight
