"""The safety stops of a live send: a dead or hostile relay pauses it, bad addresses do not."""

from __future__ import annotations

import base64
import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smtp_server import Certificate, Faults, SMTPServer, free_port, make_certificate

from newsletter.config.settings import SmtpSettings
from newsletter.delivery.smtp.blame import Blame, blame
from newsletter.delivery.smtp.outcome import SendSummary
from newsletter.delivery.smtp.pool import send_messages
from newsletter.delivery.smtp.replies import MAX_REPLY, Scrubber, reply_text
from newsletter.delivery.smtp.run import (
    REFUSAL_MINIMUM,
    REFUSAL_WINDOW,
    Outcome,
    RefusalWindow,
)
from newsletter.models import OutgoingMessage
from newsletter.state.api import Ledger
from newsletter.state.openers import open_ledger

SENDER = "bounces@news.example"
USER, PASSWORD = "newsletter", "Tr0ub4dor-&-3-horse"
DOMAINS = ("example.org", "example.net", "example.com", "mail.example", "post.example")


def message(address: str, n: int) -> OutgoingMessage:
    data = (
        f"From: News <news@news.example>\r\nTo: {address}\r\nSubject: Digest {n}\r\n"
        f"Message-ID: <{n}.digest@news.example>\r\n\r\nHello reader {n}.\r\n"
    ).encode()
    return OutgoingMessage(address, f"<{n}.digest@news.example>", data)


def mixed(count: int, prefix: str = "reader") -> list[str]:
    """Addresses spread over several domains, as a real list's are."""
    return [f"{prefix}{n}@{DOMAINS[n % len(DOMAINS)]}" for n in range(count)]


def send(emails: list[str], settings: SmtpSettings, ledger: Ledger, **kwargs: Any) -> SendSummary:
    kwargs.setdefault("backoff_base", 0.01)
    items = (message(address, n) for n, address in enumerate(emails))
    return send_messages(items, settings, ledger, "e1", envelope_from=SENDER, **kwargs)


def plain(server: SMTPServer, **changes: Any) -> SmtpSettings:
    base = SmtpSettings(host=server.host, port=server.port, security="none", pool=2, retries=4)
    return dataclasses.replace(base, **changes)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path / "state.sqlite3") as opened:
        yield opened


@pytest.fixture
def server() -> Iterator[SMTPServer]:
    with SMTPServer() as running:
        yield running


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


# --------------------------------------------------------------------------- whose fault


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("550 5.1.1 <a@example.org>: Recipient address rejected: User unknown", Blame.ADDRESS),
        ("550 5.1.1 <a@x>: User unknown in relay recipient table", Blame.ADDRESS),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", Blame.ADDRESS),
        ("552 5.2.2 Mailbox full", Blame.ADDRESS),
        ("550 5.1.0 <me@news.example>: Sender address rejected: User unknown", Blame.RELAY),
        ("553 5.1.8 <me@news.example>: Sender address rejected: Domain not found", Blame.RELAY),
        ("554 5.7.1 <a@example.org>: Relay access denied", Blame.RELAY),
        ("530 5.7.0 Authentication required", Blame.RELAY),
        ("554 5.7.1 <a@example.org>: Recipient address rejected: Access denied", Blame.POLICY),
        ("550 5.4.1 Recipient address rejected: Access denied", Blame.POLICY),
        ("554 5.6.0 Message content rejected", Blame.RELAY),
        ("552 5.3.4 Message size exceeds fixed limit", Blame.RELAY),
        ("550 5.5.0 Requested action not taken: mailbox unavailable", Blame.ADDRESS),
        # No enhanced code: the words decide, then the code.
        ("550 No such user here", Blame.ADDRESS),
        ("550 Requested action not taken: mailbox unavailable", Blame.ADDRESS),
        ("554 Relaying denied", Blame.RELAY),
        ("551 User not local; please try <forward@example.org>", Blame.ADDRESS),
        ("550 Access denied", Blame.POLICY),
        ("554 Transaction failed", Blame.POLICY),
    ],
)
def test_a_refusal_is_blamed_on_the_address_or_the_relay(reply: str, expected: Blame) -> None:
    assert blame(reply) is expected


def outcomes(window: RefusalWindow, reply: str, emails: list[str]) -> None:
    for email in emails:
        window.add(Outcome(email, reply, blame(reply)))


def test_address_refusals_never_trip_the_window() -> None:
    window = RefusalWindow()
    outcomes(window, "550 5.1.1 <x>: User unknown", mixed(500))
    assert not window.refusing_everyone()
    assert window.relay_refusals() == []


def test_relay_refusals_trip_the_window_at_the_minimum_in_one_domain() -> None:
    window = RefusalWindow()
    relay = "554 5.7.1 <x>: Relay access denied"
    outcomes(window, relay, [f"r{n}@example.org" for n in range(REFUSAL_MINIMUM - 1)])
    assert not window.refusing_everyone()
    outcomes(window, relay, ["last@example.org"])
    assert window.refusing_everyone()


def test_policy_refusals_count_only_across_domains() -> None:
    policy = "554 5.7.1 <x>: Recipient address rejected: Access denied"
    one_domain = RefusalWindow()
    outcomes(one_domain, policy, [f"r{n}@bigcorp.example" for n in range(REFUSAL_WINDOW)])
    assert not one_domain.refusing_everyone()  # one domain's policy is that domain's business
    across = RefusalWindow()
    outcomes(across, policy, mixed(REFUSAL_MINIMUM))
    assert across.refusing_everyone()


def test_the_share_of_the_window_decides_not_a_streak() -> None:
    window = RefusalWindow()
    for n in range(REFUSAL_WINDOW):
        window.add(Outcome(f"ok{n}@example.org", "", None))
    relay = "554 5.7.1 <x>: Relay access denied"
    outcomes(window, relay, mixed(REFUSAL_MINIMUM * 2))
    assert not window.refusing_everyone()  # 20 of the last 50: most are still accepted
    outcomes(window, relay, mixed(REFUSAL_WINDOW))
    assert window.refusing_everyone()


# --------------------------------------------------------------------------- the scrubber


def test_the_scrubber_removes_every_form_of_the_password() -> None:
    scrub = Scrubber(USER, PASSWORD)
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    with_authzid = base64.b64encode(f"{USER}\0{USER}\0{PASSWORD}".encode()).decode()
    login = base64.b64encode(PASSWORD.encode()).decode()
    forms = [PASSWORD, plain, plain.rstrip("="), with_authzid, login, login.rstrip("=")]
    forms += ["Tr0ub4dor-%26-3-horse"]
    for form in forms:
        assert scrub(f"535 you sent {form} here") == "535 you sent *** here", form
    escaped = Scrubber(USER, "pa ss\\wörd")
    assert escaped("x pa ss\\\\w\\xc3\\xb6rd y") == "x *** y"  # as repr() of bytes shows it


def test_a_secret_at_the_cut_is_scrubbed_before_the_cut() -> None:
    scrub = Scrubber(USER, PASSWORD)
    text = "x" * (MAX_REPLY - 12) + PASSWORD + " and more"
    reply = reply_text(535, text, scrub)
    assert PASSWORD[:8] not in reply
    assert len(reply) <= MAX_REPLY


# --------------------------------------------------------------------------- against a server


def test_unknown_users_at_the_top_do_not_stop_the_send(server: SMTPServer, ledger: Ledger) -> None:
    emails = mixed(100)
    unknown = set(emails[:60])
    server.faults = Faults(reject=unknown)
    summary = send(emails, plain(server, pool=3), ledger)
    assert not summary.paused, summary.pause_reason
    assert (summary.sent, summary.failed) == (40, 60)
    assert set(server.per_recipient()) == set(emails) - unknown


def test_unknown_users_without_enhanced_codes_do_not_stop_the_send(
    server: SMTPServer, ledger: Ledger
) -> None:
    emails = mixed(80)
    server.faults = Faults(refuse=dict.fromkeys(emails[:70], "550 No such user here"))
    summary = send(emails, plain(server, pool=2), ledger)
    assert not summary.paused, summary.pause_reason
    assert (summary.sent, summary.failed) == (10, 70)


def test_a_policy_refusing_everyone_across_domains_pauses_early(
    server: SMTPServer, ledger: Ledger
) -> None:
    server.faults = Faults(rcpt_reply="550 5.7.1 Access denied")
    summary = send(mixed(200), plain(server, pool=2), ledger)
    assert summary.paused
    assert "seems to refuse everyone" in summary.pause_reason
    assert summary.failed == 0
    assert sum(server.rcpt_attempts.values()) <= REFUSAL_MINIMUM + 2
    assert ledger.summary("e1")["deferred"] == summary.deferred > 0


def test_one_domain_refusing_by_policy_fails_only_that_domain(
    server: SMTPServer, ledger: Ledger
) -> None:
    blocked = [f"staff{n}@bigcorp.example" for n in range(60)]
    emails = blocked + mixed(20)
    policy = "554 5.7.1 Recipient address rejected: Access denied"
    server.faults = Faults(refuse=dict.fromkeys(blocked, policy))
    summary = send(emails, plain(server, pool=2), ledger)
    assert not summary.paused, summary.pause_reason
    assert (summary.sent, summary.failed) == (20, 60)


def test_a_relay_that_starts_refusing_midway_defers_the_refused(
    server: SMTPServer, ledger: Ledger
) -> None:
    emails = mixed(300)
    denied = "554 5.7.1 Relay access denied"
    server.faults = Faults(refuse=dict.fromkeys(emails[100:], denied))
    summary = send(emails, plain(server, pool=1), ledger)
    assert summary.paused
    assert summary.sent == 100
    assert summary.failed == 0
    assert summary.deferred == ledger.summary("e1")["deferred"] < REFUSAL_WINDOW
    resumed = ledger.states("e1")
    assert all(resumed[e] == "deferred" for e in emails[100 : 100 + summary.deferred])


@pytest.mark.parametrize("pool", [1, 4])
def test_a_dead_port_pauses_at_once_naming_host_and_port(
    ledger: Ledger, pool: int, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none", pool=pool, retries=5)
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="newsletter"):
        summary = send(mixed(40), settings, ledger, backoff_base=1.0)
    assert time.monotonic() - began < 1.0, "no retries, no backoff"
    assert summary.paused
    assert f"cannot reach 127.0.0.1:{port}: nothing is listening there" in summary.pause_reason
    assert (summary.sent, summary.failed, summary.deferred) == (0, 0, 0)
    assert ledger.summary("e1")["deferred"] == 0
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_server_that_goes_away_after_connecting_is_retried(
    server: SMTPServer, ledger: Ledger
) -> None:
    """Once the run has reached the server, a refused connection is a restart, not a typo."""
    server.faults = Faults(data_delay=0.01)
    emails = mixed(30, "later")

    def bounce(email: str, state: str) -> None:
        if email == emails[5]:
            server.restart(downtime=0.3)

    summary = send(emails, plain(server, retries=10), ledger, progress=bounce, breaker=100)
    assert not summary.paused, summary.pause_reason
    assert summary.sent == 30


@pytest.mark.parametrize("pool", [1, 4])
def test_a_refused_login_is_tried_once_per_run(
    certificate: Certificate, ledger: Ledger, monkeypatch: pytest.MonkeyPatch, pool: int
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    with SMTPServer(tls=certificate, users={USER: PASSWORD}) as server:
        wrong = SmtpSettings(
            host="127.0.0.1", port=server.port, username=USER, password="wrong", pool=pool
        )
        for run in (1, 2):
            summary = send(mixed(20), wrong, ledger)
            assert summary.paused
            assert "refused the login" in summary.pause_reason
            assert len(server.auth_attempts) == run  # one per run: no account lock-out
        right = dataclasses.replace(wrong, password=PASSWORD)
        assert send(mixed(20), right, ledger).sent == 20


def test_a_reply_that_repeats_the_login_is_scrubbed_everywhere(
    certificate: Certificate,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    faults = Faults(rcpt_echo_login=True)
    with SMTPServer(tls=certificate, users={USER: PASSWORD}, faults=faults) as server:
        settings = SmtpSettings(
            host="127.0.0.1", port=server.port, username=USER, password=PASSWORD
        )
        with caplog.at_level(logging.DEBUG):
            summary = send(mixed(30), settings, ledger)
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("newsletter")]
    seen = [repr(summary), str(ledger.failures("e1")), *ours]
    assert "you sent ***" in seen[1]
    for text in seen:
        assert PASSWORD not in text
        assert plain.rstrip("=") not in text
    assert ledger.failures("e1")
