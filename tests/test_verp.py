"""VERP return paths: short signed tokens per edition and recipient, in config and on the wire."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smtp_server import SMTPServer

from newsletter.config.load import load_settings
from newsletter.config.settings import BounceSettings, Sender, Settings, SmtpSettings
from newsletter.delivery.smtp.pool import send_messages
from newsletter.errors import ConfigError
from newsletter.messages import MessageFactory
from newsletter.models import Digest, Edition, Subscriber
from newsletter.state.openers import open_ledger
from newsletter.tokens import (
    MAX_LOCAL_PART,
    VERP_TOKEN_LENGTH,
    ReturnPath,
    Signer,
    verp_edition_tag,
)

KEY = b"verp test key"
LIST = "daily.harbor.example"
EDITION = "2026-03-04-f11f46ef"
CONFIG = """
[publication]
name = "Harbor Ledger"
site_url = "https://harbor.example"
postal_address = "1 Quay Street"

[sender]
address = "news@harbor.example"

[list]
id = "daily.harbor.example"
unsubscribe_url = "https://harbor.example/unsubscribe"
"""


def edition(edition_id: str = EDITION) -> Edition:
    return Edition(
        id=edition_id,
        subject="Harbor news",
        preheader="",
        html="<p>Hello</p>",
        text="Hello\n",
        digest=Digest(lead=None),
        created=datetime(2026, 3, 4, 7, tzinfo=UTC),
    )


def test_a_return_path_names_edition_and_recipient_in_a_short_token() -> None:
    paths = ReturnPath(KEY, LIST, "bounces@harbor.example").edition(EDITION)
    address = paths.address("Ana@Example.com")
    local, _, domain = address.partition("@")
    assert domain == "harbor.example"
    assert re.fullmatch(rf"bounces\+[0-9a-f]{{{VERP_TOKEN_LENGTH}}}", local)
    assert local.startswith("bounces+" + verp_edition_tag(EDITION))
    assert len(local) <= MAX_LOCAL_PART
    assert address == paths.address("ana@example.com")  # casefolded, as the ledger keys it
    assert address != paths.address("bob@example.com")
    assert address != ReturnPath(KEY, LIST, "bounces@harbor.example").edition("other").address(
        "ana@example.com"
    )
    assert address != ReturnPath(b"another key", LIST, "bounces@harbor.example").edition(
        EDITION
    ).address("ana@example.com")


def test_verp_tags_never_equal_unsubscribe_tokens() -> None:
    """A purpose of its own: a VERP tag is no prefix of any unsubscribe token."""
    tag = ReturnPath(KEY, LIST, "b@harbor.example").edition(EDITION).tag("ana@example.com")
    assert tag not in Signer(KEY, LIST).token("ana@example.com").lower()


@given(email=st.emails())
def test_the_token_is_found_again_in_any_case(email: str) -> None:
    finder = ReturnPath(KEY, LIST, "bounces@harbor.example")
    paths = finder.edition(EDITION)
    address = paths.address(email)
    text = f"To: <{address.upper()}>\nX-Original-To: {address}\n"
    assert finder.tokens_in(text) == [(paths.edition_tag, paths.tag(email))]


def test_other_addresses_are_not_taken_for_return_paths() -> None:
    finder = ReturnPath(KEY, LIST, "bounces@harbor.example")
    token = "a" * VERP_TOKEN_LENGTH
    assert finder.tokens_in(f"xbounces+{token}@harbor.example") == []
    assert finder.tokens_in(f"bounces+{token}@harbor.example.org") == []
    assert finder.tokens_in(f"bounces+{token[:-1]}@harbor.example") == []
    assert finder.tokens_in(f"<bounces+{token}@harbor.example>") == [(token[:6], token[6:])]


def test_bounces_settings_default_and_read(tmp_path: Path) -> None:
    config = tmp_path / "newsletter.toml"
    config.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.bounces == BounceSettings()
    assert settings.return_path == "news@harbor.example"
    config.write_text(
        CONFIG + '[smtp]\nenvelope_from = "bounce@harbor.example"\n', encoding="utf-8"
    )
    assert load_settings(config, environ={}).return_path == "bounce@harbor.example"
    config.write_text(
        CONFIG
        + '[smtp]\nenvelope_from = "bounce@harbor.example"\n'
        + '[bounces]\nverp = true\nreturn_path = "rp@harbor.example"\n'
        + "soft_limit = 2\nsoft_window_days = 7\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    assert settings.bounces == BounceSettings(True, "rp@harbor.example", 2, 7)
    assert settings.return_path == "rp@harbor.example"


def test_verp_refuses_a_local_part_with_no_room_for_the_token(tmp_path: Path) -> None:
    config = tmp_path / "newsletter.toml"
    long_local = "b" * 42
    config.write_text(
        CONFIG + f'[bounces]\nverp = true\nreturn_path = "{long_local}@harbor.example"\n'
        "soft_limt = 3\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    message = str(info.value)
    assert "bounces.return_path:" in message
    assert "at most 41 characters" in message
    assert "bounces.soft_limt: unknown key; did you mean 'bounces.soft_limit'?" in message


def verp_settings() -> Settings:
    bounces = BounceSettings(verp=True, return_path="bounces@harbor.example")
    return dataclasses.replace(
        Settings(), sender=Sender(address="news@harbor.example"), bounces=bounces
    )


def test_the_factory_gives_each_message_its_return_path() -> None:
    settings = verp_settings()
    factory = MessageFactory(edition(), settings, signing_key=KEY)
    message = factory.build(Subscriber(email="ana@example.com"), payload=True)
    expected = ReturnPath(KEY, settings.list.id, "bounces@harbor.example").edition(EDITION)
    assert message.envelope_from == expected.address("ana@example.com")
    plain = MessageFactory(edition(), Settings(), signing_key=KEY)
    assert plain.build(Subscriber(email="ana@example.com")).envelope_from == ""


def test_each_message_goes_out_with_its_own_mail_from(tmp_path: Path) -> None:
    factory = MessageFactory(edition(), verp_settings(), signing_key=KEY)
    people = [f"reader{n}@example.org" for n in range(6)]
    built = [factory.build(Subscriber(email=who), payload=True) for who in people]
    with SMTPServer() as server, open_ledger(tmp_path / "state.sqlite3") as ledger:
        smtp = SmtpSettings(host=server.host, port=server.port, security="none", pool=2)
        summary = send_messages(iter(built), smtp, ledger, EDITION, envelope_from="run@x.example")
    assert summary.sent == 6
    seen = {m.rcpt_tos[0]: m.mail_from for m in server.received}
    assert seen == {m.recipient: m.envelope_from for m in built}
    assert len(set(seen.values())) == 6
