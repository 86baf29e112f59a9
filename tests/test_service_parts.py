"""The service's parts alone: sealed tokens, expiring links, rate limits, notices, one send."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from smtp_server import Faults, SMTPServer, free_port

from newsletter.config.settings import ListSettings, Sender, Settings, SmtpSettings
from newsletter.delivery.smtp.single import relay_for, send_single
from newsletter.errors import DeliveryError
from newsletter.models import OutgoingMessage
from newsletter.notices import notice
from newsletter.tokens import CONFIRM_SUBSCRIPTION, SUBSCRIBE_FORM, UNSUBSCRIBE, Signer
from newsletter.web.expiring import ConfirmLinks, Expired, FormTokens, Subscription
from newsletter.web.ratelimit import SlidingLimit

KEY = b"k" * 32
LIST = "daily.example"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- tokens


def test_a_seal_covers_every_field_and_keeps_case() -> None:
    signer = Signer(KEY, LIST, CONFIRM_SUBSCRIPTION)
    token = signer.seal("1800000000", "QW5h", "")
    assert signer.opens(token, "1800000000", "QW5h", "")
    assert not signer.opens(token, "1800000001", "QW5h", "")
    assert not signer.opens(token, "1800000000", "qw5h", "")
    assert not signer.opens(token, "1800000000", "QW5h")
    assert not signer.opens(token, "1800000000\nQW5h", "")


def test_purposes_never_cross() -> None:
    fields = ("1800000000", "bm9uY2U")
    form = Signer(KEY, LIST, SUBSCRIBE_FORM).seal(*fields)
    assert not Signer(KEY, LIST, CONFIRM_SUBSCRIPTION).opens(form, *fields)
    assert not Signer(KEY, LIST, UNSUBSCRIBE).opens(form, *fields)
    assert not Signer(KEY, "other.example", SUBSCRIBE_FORM).opens(form, *fields)


def test_a_line_break_cannot_be_sealed() -> None:
    with pytest.raises(ValueError, match="line break"):
        Signer(KEY, LIST).seal("a\nb")


# --------------------------------------------------------------------------- expiring


def test_a_form_token_works_until_it_expires() -> None:
    clock = Clock()
    forms = FormTokens(KEY, LIST, clock=clock)
    token = forms.issue()
    assert forms.valid(token)
    assert forms.issue() != token  # each form its own
    clock.now += 2 * 3600 + 1
    assert not forms.valid(token)


@pytest.mark.parametrize("bad", ["", "x", "1.2", "abc.def.ghi", "9999999999..seal"])
def test_a_malformed_form_token_is_not_valid(bad: str) -> None:
    assert not FormTokens(KEY, LIST, clock=Clock()).valid(bad)


def test_a_form_token_of_another_key_is_not_valid() -> None:
    token = FormTokens(b"other", LIST, clock=Clock()).issue()
    assert not FormTokens(KEY, LIST, clock=Clock()).valid(token)


def _query(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query, keep_blank_values=True).items()}


def test_a_confirmation_link_reads_back_until_it_expires() -> None:
    clock = Clock()
    links = ConfirmLinks(KEY, LIST, "https://news.example/subscribe/confirm", 48, clock=clock)
    link = links.link("Zoë@Example.org", "Zoë Ørsted")
    assert link.startswith("https://news.example/subscribe/confirm?s=")
    assert "Zo" not in link  # neither address nor name in plain text
    assert links.read(_query(link)) == Subscription("Zoë@Example.org", "Zoë Ørsted")
    clock.now += 48 * 3600 + 1
    assert links.read(_query(link)) == Expired()


@pytest.mark.parametrize("field", ["s", "n", "e", "token"])
def test_a_changed_confirmation_link_is_not_ours(field: str) -> None:
    links = ConfirmLinks(KEY, LIST, "https://x.example/c", 48, clock=Clock())
    query = _query(links.link("ana@example.org", "Ana"))
    query[field] = "9" + query[field]
    assert links.read(query) is None


def test_an_expired_link_with_a_forged_seal_is_not_called_expired() -> None:
    links = ConfirmLinks(KEY, LIST, "https://x.example/c", 48, clock=Clock())
    query = _query(links.link("ana@example.org", ""))
    query["e"] = "1"  # long past, but the seal no longer fits
    assert links.read(query) is None


# --------------------------------------------------------------------------- rate limits


def test_a_sliding_limit_counts_per_key_and_forgets_with_time() -> None:
    clock = Clock()
    limit = SlidingLimit(3, 60.0, clock=clock)
    assert [limit.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limit.allow("b")
    assert limit.retry_after("a") == 61
    clock.now += 30
    assert not limit.allow("a")  # a refused request does not count, nor does it reset
    clock.now += 31  # all three are a minute old now
    assert [limit.allow("a") for _ in range(4)] == [True, True, True, False]


def test_a_burst_across_a_minute_boundary_is_not_doubled() -> None:
    clock = Clock(NOW + 59)
    limit = SlidingLimit(5, 60.0, clock=clock)
    assert all(limit.allow("a") for _ in range(5))
    clock.now += 2  # the next minute by the clock, not 60 s after the burst
    assert not limit.allow("a")


def test_a_sliding_limit_keeps_bounded_memory() -> None:
    limit = SlidingLimit(1, 60.0, clock=Clock(), max_keys=100)
    for n in range(1000):
        assert limit.allow(f"client-{n}")
    assert len(limit._seen) == 100
    assert limit.allow("client-0")  # forgotten: the least recently seen go first


# --------------------------------------------------------------------------- notices


def _settings(smtp: SmtpSettings | None = None) -> Settings:
    return Settings(
        sender=Sender(
            name="The Test Post", address="news@news.example", reply_to="desk@news.example"
        ),
        list=ListSettings(id=LIST, name="Test Daily"),
        smtp=smtp or SmtpSettings(),
    )


def test_a_notice_is_plain_text_with_encoded_headers() -> None:
    text = "Hello Zoë,\n.a line that starts with a dot\n" + "x" * 120 + "\n"
    built = notice(
        _settings(), "zoe@example.org", "Zoë\r\nBcc: x@evil.example", "Confirm — Test Daily",
        text, at=datetime(2026, 3, 4, tzinfo=UTC),
    )  # fmt: skip
    assert all(len(line) <= 78 for line in built.data.split(b"\r\n"))
    assert b"\n" not in built.data.replace(b"\r\n", b"")
    message = email.message_from_bytes(built.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Confirm — Test Daily"
    assert message["To"].addresses[0].addr_spec == "zoe@example.org"
    assert message["Bcc"] is None
    assert message["Reply-To"] == "desk@news.example"
    assert message["Message-ID"].endswith("@news.example>")
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == text
    assert built.recipient == "zoe@example.org"


def test_a_notice_to_an_unusable_address_is_a_delivery_error() -> None:
    with pytest.raises(DeliveryError, match="not a usable email address"):
        notice(_settings(), "no at sign", "", "s", "t", at=datetime.now(UTC))


# --------------------------------------------------------------------------- one send


def _message(to: str) -> OutgoingMessage:
    return notice(_settings(), to, "", "Subject", "Body\n", at=datetime.now(UTC))


def test_one_message_is_sent_and_a_greylisting_is_waited_out() -> None:
    waits: list[float] = []
    with SMTPServer(faults=Faults(tempfail={"grey@example.org": 1})) as server:
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, security="none")
        relay = relay_for(smtp, "news@news.example", "test.local")
        reply = send_single(relay, _message("grey@example.org"), sleep=waits.append)
        assert reply.startswith("250")
        assert server.count_for("grey@example.org") == 1
        assert server.rcpt_attempts["grey@example.org"] == 2
    assert waits == [2.0]


def test_a_refused_recipient_is_an_error_at_once() -> None:
    with SMTPServer(faults=Faults(reject={"gone@example.org"})) as server:
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, security="none")
        relay = relay_for(smtp, "news@news.example", "test.local")
        with pytest.raises(DeliveryError, match="550"):
            send_single(relay, _message("gone@example.org"), sleep=lambda _s: None)
        assert server.rcpt_attempts["gone@example.org"] == 1


def test_nobody_listening_is_an_error_naming_the_server(tmp_path: Path) -> None:
    port = free_port()
    smtp = SmtpSettings(host="127.0.0.1", port=port, security="none")
    relay = relay_for(smtp, "news@news.example", "test.local")
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{port}"):
        send_single(relay, _message("a@example.org"), sleep=lambda _s: None)
