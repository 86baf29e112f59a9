"""Subscribing with double opt-in against the real service; its emails go to a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from dkim_verifier import dkimpy_verify, published, write_key
from service_process import KEY, LIST_ID, ROOT, ServiceProcess, path_of, settings_of, write_config
from smtp_server import Faults, SMTPServer

from newsletter.dkim.settings import parse_dkim
from newsletter.state.lists import Member, Suppression
from newsletter.state.openers import open_members, open_suppressions
from newsletter.web.expiring import ConfirmLinks, FormTokens

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CONFIRM_LINK = re.compile(r"https?://\S+/subscribe/confirm\?\S+")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture(scope="module")
def service(smtp: SMTPServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("subscribe")
    with ServiceProcess(write_config(folder, smtp_port=smtp.port)) as running:
        yield running
    log = running.log()
    assert "Traceback" not in log
    for secret in ("token=", "?s=", "&e="):
        assert secret not in log, secret
    assert not re.search(r"[\w.+-]{2,}@example\.org", log)  # masked: "a…@example.org"
    assert "confirmation sent to a…@example.org" in log


def form_token(service: ServiceProcess) -> str:
    page = service.request("GET", "/subscribe")
    assert page.status == 200
    found = re.search(r'name="form_token" value="([^"]+)"', page.body)
    assert found is not None
    return found.group(1)


def subscribe(
    service: ServiceProcess,
    address: str,
    name: str = "",
    *,
    client: str = "198.51.100.1",
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> tuple[int, str]:
    """Send the form as a browser on this site would (or with ``headers`` instead of its own)."""
    fields = {"form_token": form_token(service) if token is None else token}
    fields |= {"email": address, "name": name, "website": "", **extra}
    browser = (
        {"Origin": service.url, "Sec-Fetch-Site": "same-origin"} if headers is None else headers
    )
    reply = service.form("/subscribe", urlencode(fields), {**browser, "X-Forwarded-For": client})
    return reply.status, reply.body


def confirmation(smtp: SMTPServer, address: str) -> EmailMessage:
    smtp.wait_for(lambda: smtp.count_for(address) >= 1, timeout=20)
    data = next(m.data for m in smtp.messages() if address in m.rcpt_tos)
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def confirm_link(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    found = CONFIRM_LINK.search(body.get_content())
    assert found is not None
    return found.group(0)


def member(service: ServiceProcess, address: str) -> Member | None:
    with open_members(settings_of(service.config).paths.state) as members:
        return next((m for m in members.all() if m.email == address), None)


def suppression(service: ServiceProcess, address: str) -> Suppression | None:
    with open_suppressions(settings_of(service.config).paths.state) as store:
        return store.get(address)


def test_the_form_has_a_token_and_a_hidden_honeypot(service: ServiceProcess) -> None:
    page = service.request("GET", "/subscribe")
    assert page.status == 200
    assert page.headers["cache-control"] == "no-store"
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert '<form method="post">' in page.body
    assert 'name="website"' in page.body
    assert 'tabindex="-1"' in page.body


def test_subscribing_sends_a_link_whose_button_adds_the_member(
    service: ServiceProcess, smtp: SMTPServer
) -> None:
    address = "ana.new@example.org"
    status, page = subscribe(service, address, "Ana Silva")
    assert status == 200
    assert "Check your inbox" in page
    message = confirmation(smtp, address)
    assert message["To"] == "Ana Silva <ana.new@example.org>"
    assert message["Subject"] == "Confirm your subscription to Test Daily"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None
    assert "DKIM-Signature" not in message  # no [dkim] in this config
    link = confirm_link(message)
    assert link.startswith("https://news.example/subscribe/confirm?")

    asked = service.request("GET", path_of(link))
    assert asked.status == 200
    assert asked.headers["cache-control"] == "no-store"
    assert asked.body.count("<button") == 1
    assert member(service, address) is None  # a GET (a link scanner) adds nobody

    done = service.request("POST", path_of(link))
    assert done.status == 200
    assert "You are subscribed, Ana Silva" in done.body
    joined = member(service, address)
    assert joined is not None
    assert (joined.name, joined.source) == ("Ana Silva", "web")
    assert service.request("POST", path_of(link)).status == 200  # a second click is harmless


def test_a_known_and_an_unknown_address_get_the_same_page(
    service: ServiceProcess, smtp: SMTPServer
) -> None:
    known, unknown = "known.member@example.org", "never.seen@example.org"
    with open_members(settings_of(service.config).paths.state) as members:
        members.add(known, "Known", "import")
    answers = []
    for address in (known, unknown):
        status, page = subscribe(service, address, client="198.51.100.2")
        answers.append((status, page.replace(address, "ADDRESS")))
    assert answers[0] == answers[1]
    confirmation(smtp, unknown)
    confirmation(smtp, known)  # a member asking again gets a link too: nothing tells them apart


def test_a_complaint_gets_the_same_page_and_no_email(
    service: ServiceProcess, smtp: SMTPServer
) -> None:
    complained, marker = "flagged.us@example.org", "after.flagged@example.org"
    with open_suppressions(settings_of(service.config).paths.state) as store:
        store.add(complained, "complaint", "bounces")
    status, page = subscribe(service, complained, client="198.51.100.3")
    assert status == 200
    assert "Check your inbox" in page
    subscribe(service, marker, client="198.51.100.3")
    confirmation(smtp, marker)  # queued after the complaint's turn: none was queued for it
    assert smtp.count_for(complained) == 0


def test_confirming_lifts_an_unsubscribe_but_not_a_complaint(
    service: ServiceProcess, smtp: SMTPServer
) -> None:
    back, flagged = "came.back@example.org", "flagged.again@example.org"
    with open_suppressions(settings_of(service.config).paths.state) as store:
        store.add(back, "unsubscribe", "one-click")
        store.add(flagged, "complaint", "bounces")
    subscribe(service, back, client="198.51.100.4")
    assert service.request("POST", path_of(confirm_link(confirmation(smtp, back)))).status == 200
    assert suppression(service, back) is None
    assert member(service, back) is not None

    settings = settings_of(service.config)  # a link made before the complaint came
    link = ConfirmLinks(KEY.encode(), LIST_ID, settings.web.confirm_url, 48).link(flagged, "")
    assert service.request("POST", path_of(link)).status == 200
    kept = suppression(service, flagged)
    assert kept is not None
    assert kept.reason == "complaint"


def test_an_expired_or_altered_link_offers_the_form_again(service: ServiceProcess) -> None:
    settings = settings_of(service.config)
    old = ConfirmLinks(KEY.encode(), LIST_ID, settings.web.confirm_url, 48, clock=lambda: 1e9)
    expired = path_of(old.link("late.reader@example.org", ""))
    for method in ("GET", "POST"):
        reply = service.request(method, expired)
        assert reply.status == 410
        assert "This link has expired" in reply.body
        assert 'href="https://news.example/subscribe"' in reply.body
    altered = expired.replace("e=", "e=9")
    reply = service.request("POST", altered)
    assert reply.status == 400
    assert "This link does not work" in reply.body
    assert member(service, "late.reader@example.org") is None


def test_a_post_from_another_site_is_refused(service: ServiceProcess, smtp: SMTPServer) -> None:
    address = "csrf.victim@example.org"
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": service.url},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://www.news.example"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        status, page = subscribe(service, address, client="198.51.100.5", headers=headers)
        assert status == 403
        assert "Not sent from this site" in page
    for token in ("", "123.abc.def", FormTokens(KEY.encode(), LIST_ID, clock=lambda: 1e9).issue()):
        status, page = subscribe(service, address, client="198.51.100.6", token=token)
        assert status == 400
        assert "The form was open too long" in page
        assert f'value="{address}"' in page  # what was typed is kept
    time.sleep(0.5)
    assert smtp.count_for(address) == 0
    # A client that is no browser (it sends neither header) needs only a token of ours.
    assert (
        subscribe(service, "plain.client@example.org", client="198.51.100.9", headers={})[0] == 200
    )


def test_a_filled_honeypot_gets_the_usual_page_and_no_email(
    service: ServiceProcess, smtp: SMTPServer
) -> None:
    bot, marker = "bot.filled@example.org", "after.bot@example.org"
    status, page = subscribe(service, bot, client="198.51.100.7", website="https://spam.example")
    assert status == 200
    assert "Check your inbox" in page
    subscribe(service, marker, client="198.51.100.7")
    confirmation(smtp, marker)
    assert smtp.count_for(bot) == 0


def test_a_bad_address_is_shown_the_form_again(service: ServiceProcess) -> None:
    status, page = subscribe(service, "not an address", client="198.51.100.8")
    assert status == 400
    assert "not an email address we can use" in page
    assert 'name="form_token"' in page


def test_one_client_is_limited_and_others_are_not(service: ServiceProcess) -> None:
    statuses = [
        subscribe(service, f"burst{n}@example.org", client="203.0.113.9")[0] for n in range(7)
    ]
    assert statuses == [200] * 5 + [429] * 2
    reply = service.form("/subscribe", "email=x", {"X-Forwarded-For": "203.0.113.9"})
    assert reply.status == 429
    assert int(reply.headers["retry-after"]) >= 1
    assert "Too many requests" in reply.body
    assert subscribe(service, "other.client@example.org", client="203.0.113.10")[0] == 200


def test_without_smtp_subscribing_is_not_available(tmp_path: Path) -> None:
    with ServiceProcess(write_config(tmp_path)) as running:
        page = running.request("GET", "/subscribe")
        post = running.form("/subscribe", "email=a%40example.org")
    assert page.status == post.status == 503
    assert "Subscribing is not available" in page.body
    assert "no [smtp] host" in running.log()


def test_the_confirmation_is_dkim_signed_when_dkim_is_set(tmp_path: Path) -> None:
    key = write_key(tmp_path / "ed25519.pem", ed25519.Ed25519PrivateKey.generate())
    address = "signed.reader@example.org"
    with SMTPServer() as smtp:
        extra = f'[dkim]\nselector = "test"\nkey_file = "{key}"\n'
        config = write_config(tmp_path / "project", smtp_port=smtp.port, extra=extra)
        with ServiceProcess(config) as running:
            assert subscribe(running, address)[0] == 200
            smtp.wait_for(lambda: smtp.count_for(address) == 1, timeout=20)
        data = smtp.messages()[0].data
    assert data.startswith(b"DKIM-Signature:")
    table = {"selector": "test", "key_file": str(key)}
    dkim_settings, problems = parse_dkim(table, tmp_path, environ={}, default_domain="news.example")
    assert not problems
    assert dkim_settings is not None
    assert dkimpy_verify(data, published(dkim_settings))


def test_a_stop_finishes_the_confirmation_emails_under_way(tmp_path: Path) -> None:
    address = "slow.relay@example.org"
    with SMTPServer(faults=Faults(data_delay=1.5)) as smtp:
        with ServiceProcess(write_config(tmp_path, smtp_port=smtp.port)) as running:
            assert subscribe(running, address)[0] == 200
            running.stop()  # SIGTERM while the relay is still taking the message
            assert running.process is not None
            assert running.process.returncode in (0, -signal.SIGTERM)
        assert smtp.count_for(address) == 1
    assert "confirmation sent to s…@example.org" in running.log()


def test_unusable_smtp_settings_stop_the_service_at_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, smtp_port=2525)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[smtp]\n", '[smtp]\nusername = "news"\n'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "serve", "--config", str(config), "--port", "0"],
        env={**env, "PYTHONPATH": str(ROOT), "NEWSLETTER_SIGNING_KEY": KEY},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "smtp.username is set but NEWSLETTER_SMTP_PASSWORD is empty" in done.stderr
    assert "Traceback" not in done.stderr
