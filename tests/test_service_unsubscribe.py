"""One-click unsubscribe (RFC 8058) against the real service in a subprocess, on each state backend.

Every request here goes over a socket to ``newsletter serve``; what it did is read from
the state as a send would read it (``newsletter.state.openers``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from pg_server import PostgresServer
from service_process import (
    KEY,
    LIST_ID,
    ServiceProcess,
    one_click_path,
    settings_of,
    write_config,
)

from newsletter.state.lists import Suppression
from newsletter.state.openers import open_suppressions
from newsletter.tokens import Signer, subscriber_ref

ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One service per backend for this module; each test uses addresses of its own."""
    folder = tmp_path_factory.mktemp(f"unsub-{request.param}")
    state_url = ""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        state_url = server.new_schema(f"unsub_{folder.name.replace('-', '_')}")
    with ServiceProcess(write_config(folder, state_url=state_url)) as running:
        yield running
    log = running.log()
    assert "Traceback" not in log
    assert "@example.org" not in log  # no address, masked or not, in the access log
    assert "token=" not in log
    assert "?list=" not in log


def suppression(service: ServiceProcess, email: str) -> Suppression | None:
    with open_suppressions(settings_of(service.config).paths.state) as store:
        return store.get(email)


def link(service: ServiceProcess, email: str) -> str:
    return one_click_path(service.config, email)


def test_a_one_click_post_as_gmail_sends_it_unsubscribes_at_once(service: ServiceProcess) -> None:
    email = "ana.gmail@example.org"
    reply = service.request("POST", link(service, email), ONE_CLICK.encode(), FORM)
    assert reply.status == 200
    assert "set-cookie" not in reply.headers
    assert "location" not in reply.headers
    assert reply.headers["cache-control"] == "no-store"
    assert "You are unsubscribed" in reply.body
    found = suppression(service, email)
    assert found is not None
    assert (found.reason, found.source) == ("unsubscribe", "one-click")


def test_a_repeated_one_click_post_is_answered_the_same(service: ServiceProcess) -> None:
    email = "ben.repeat@example.org"
    first = service.request("POST", link(service, email), ONE_CLICK.encode(), FORM)
    again = service.request("POST", link(service, email), ONE_CLICK.encode(), FORM)
    assert first.status == again.status == 200
    assert first.body == again.body
    with open_suppressions(settings_of(service.config).paths.state) as store:
        assert [s.email for s in store.all()].count(email) == 1


def test_a_multipart_one_click_post_unsubscribes(service: ServiceProcess) -> None:
    email = "cleo.multipart@example.org"
    boundary = "----newsletterTestBoundary7MA4YWxk"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        "One-Click\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    reply = service.request("POST", link(service, email), body, headers)
    assert reply.status == 200
    found = suppression(service, email)
    assert found is not None
    assert found.source == "one-click"


def test_a_get_only_asks_and_changes_nothing(service: ServiceProcess) -> None:
    email = "dan.scanner@example.org"
    for method in ("GET", "HEAD", "GET"):
        reply = service.request(method, link(service, email))
        assert reply.status == 200
    page = service.request("GET", link(service, email))
    assert re.search(r'<form method="post">', page.body)
    assert page.body.count("<button") == 1
    assert email in page.body
    assert page.headers["cache-control"] == "no-store"
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert suppression(service, email) is None


def test_the_page_button_unsubscribes_and_then_offers_to_subscribe_again(
    service: ServiceProcess,
) -> None:
    email = "eve.button@example.org"
    done = service.request("POST", link(service, email), b"action=unsubscribe", FORM)
    assert done.status == 200
    assert "Subscribe again" in done.body
    found = suppression(service, email)
    assert found is not None
    assert (found.reason, found.source) == ("unsubscribe", "web")

    again = service.request("POST", link(service, email), b"action=resubscribe", FORM)
    assert again.status == 200
    assert "You are subscribed again" in again.body
    assert suppression(service, email) is None


def test_subscribing_again_lifts_only_an_unsubscribe(service: ServiceProcess) -> None:
    email = "finn.bounced@example.org"
    with open_suppressions(settings_of(service.config).paths.state) as store:
        store.add(email, "bounce", "bounces", detail="5.1.1")
    reply = service.request("POST", link(service, email), b"action=resubscribe", FORM)
    assert reply.status == 200
    assert "cannot be subscribed again here" in reply.body
    found = suppression(service, email)
    assert found is not None
    assert found.reason == "bounce"


def _forgeries(service: ServiceProcess) -> list[str]:
    """Links that are not ours, each a different way."""
    good = link(service, "gus.target@example.org")
    parts = urlsplit(good)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    other = Signer(KEY.encode(), LIST_ID).token("someone.else@example.org")
    wrong_key = Signer(b"another key", LIST_ID).token("gus.target@example.org")

    def variant(**changes: str | None) -> str:
        fields = {k: v for k, v in {**query, **changes}.items() if v is not None}
        return f"{parts.path}?{urlencode(fields)}"

    return [
        variant(token=other),
        variant(token=wrong_key),
        variant(token=query["token"][:-1]),
        variant(token=None),
        variant(token=""),
        variant(list="weekly.news.example"),
        variant(list=None),
        variant(s=subscriber_ref("someone.else@example.org")),
        variant(s="%%%not-base64"),
        variant(s="_w"),  # decodes to a byte that is no UTF-8
        variant(s=None),
        parts.path,
    ]


def test_a_forged_or_broken_link_gets_one_page_and_changes_nothing(
    service: ServiceProcess,
) -> None:
    answers = set()
    for path in _forgeries(service):
        for method, body in (("GET", b""), ("POST", ONE_CLICK.encode())):
            reply = service.request(method, path, body, FORM if body else {})
            assert reply.status == 400, (method, path)
            answers.add(reply.body)
    assert len(answers) == 1
    assert "gus.target" not in answers.pop()
    assert suppression(service, "gus.target@example.org") is None
    assert suppression(service, "someone.else@example.org") is None


def test_concurrent_one_click_posts_are_all_recorded(service: ServiceProcess) -> None:
    emails = [f"crowd{n:03d}@example.org" for n in range(60)]
    statuses: list[int] = []
    lock = threading.Lock()

    def post(email: str) -> None:
        reply = service.request("POST", link(service, email), ONE_CLICK.encode(), FORM)
        with lock:
            statuses.append(reply.status)

    threads = [threading.Thread(target=post, args=(email,)) for email in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(emails)
    with open_suppressions(settings_of(service.config).paths.state) as store:
        assert store.among(emails) == set(emails)


def test_a_body_over_the_limit_is_refused(service: ServiceProcess) -> None:
    email = "hal.big@example.org"
    body = b"List-Unsubscribe=One-Click&pad=" + b"x" * 70_000
    reply = service.request("POST", link(service, email), body, FORM)
    assert reply.status == 413
    assert suppression(service, email) is None


def test_an_unknown_path_is_a_plain_404_page(service: ServiceProcess) -> None:
    reply = service.request("GET", "/wp-login.php?next=https://evil.example/")
    assert reply.status == 404
    assert "location" not in reply.headers
    assert "evil.example" not in reply.body


def test_a_broken_state_is_a_500_page_without_details(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "state").write_text("not a folder", encoding="utf-8")  # the state cannot open
    email = "ivy.broken@example.org"
    with ServiceProcess(config) as running:
        reply = running.request("POST", one_click_path(config, email), ONE_CLICK.encode(), FORM)
    assert reply.status == 500
    assert "Something went wrong" in reply.body
    for detail in ("Traceback", "sqlite", "StateError", str(tmp_path), "ivy.broken"):
        assert detail not in reply.body
    log = running.log()
    assert "POST /unsubscribe failed: StateError" in log
    assert "ivy.broken" not in log
    assert "Traceback" not in log


def test_a_form_with_a_file_or_too_many_fields_is_refused(service: ServiceProcess) -> None:
    email = "jo.upload@example.org"
    boundary = "----newsletterTestBoundaryFile"
    upload = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"; filename="x.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
        "One-Click\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    assert service.request("POST", link(service, email), upload, headers).status == 400
    many = "&".join(f"f{n}=x" for n in range(30)) + "&" + ONE_CLICK
    assert service.request("POST", link(service, email), many.encode(), FORM).status == 400
    assert suppression(service, email) is None
