"""Unsubscribe tokens: links already sent keep verifying, and purposes never cross."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter import placeholders
from newsletter.config.settings import Settings
from newsletter.messages import MessageFactory
from newsletter.models import Digest, Edition, Subscriber
from newsletter.tokens import (
    DEVELOPMENT_KEY,
    TOKEN_LENGTH,
    UNSUBSCRIBE,
    Purpose,
    Signer,
    read_subscriber_ref,
    subscriber_ref,
    unsubscribe_token,
    verify_token,
)

KEY = b"k" * 32
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)

# Tokens written by the code that sent the first editions; readers' inboxes hold them.
SENT = [
    (KEY, "daily.example", "Ana@Example.COM", "VeDSgy4l0JYGp-w6ZYr4b3gQ-nZrrRkz"),
    (DEVELOPMENT_KEY, "meridian.example", "zoë@bücher.example", "_QG2HUdD-US9IDnplhqk1b8iB5p6I-cq"),
]


def old_token(key: bytes, list_id: str, email: str) -> str:
    """Compute an unsubscribe token the way every sent edition did, independently of the code."""
    mac = hmac.new(key, f"{list_id}\n{email.casefold()}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac)[:32].decode("ascii")


@pytest.mark.parametrize(("key", "list_id", "email", "token"), SENT)
def test_tokens_already_sent_still_verify(key: bytes, list_id: str, email: str, token: str) -> None:
    assert old_token(key, list_id, email) == token
    assert verify_token(key, list_id, email, token)
    assert verify_token(key, list_id, email.upper(), token)
    assert Signer(key, list_id).verify(email, token)
    assert Signer(key, list_id, UNSUBSCRIBE).verify(email, token)
    assert unsubscribe_token(key, list_id, email) == token


@given(key=st.binary(max_size=64), list_id=TEXT, email=TEXT)
def test_any_token_computed_the_old_way_verifies(key: bytes, list_id: str, email: str) -> None:
    token = old_token(key, list_id, email)
    assert verify_token(key, list_id, email, token)
    assert Signer(key, list_id).token(email) == token
    assert len(token) == TOKEN_LENGTH


def test_the_link_in_a_built_message_carries_the_old_token() -> None:
    edition = Edition(
        id="2026-03-04-daily",
        subject="Tides",
        preheader="",
        html=f'<p>{placeholders.GREETING}</p><a href="{placeholders.UNSUBSCRIBE_URL}">x</a>',
        text=f"{placeholders.GREETING}\n{placeholders.UNSUBSCRIBE_URL}\n",
        digest=Digest(lead=None),
        created=datetime(2026, 3, 4, 6, 0, tzinfo=UTC),
    )
    settings = Settings()
    email = "Ana.Silva@Example.com"
    data = MessageFactory(edition, settings, signing_key=KEY).build(Subscriber(email=email)).data
    header = next(line for line in data.split(b"\r\n") if line.startswith(b"List-Unsubscribe:"))
    url = header.decode("ascii").split("<", 1)[1].split(">", 1)[0]
    query = parse_qs(urlsplit(url).query)
    assert query["token"] == [old_token(KEY, settings.list.id, email)]
    assert read_subscriber_ref(query["s"][0]) == email


def test_a_labelled_purpose_has_tokens_of_its_own() -> None:
    confirm = Purpose(b"confirm-subscription")
    unsubscribe = Signer(KEY, "daily.example")
    other = Signer(KEY, "daily.example", confirm)
    token = other.token("ana@example.com")
    assert len(token) == TOKEN_LENGTH
    assert token != unsubscribe.token("ana@example.com")
    assert other.verify("ana@example.com", token)
    assert not unsubscribe.verify("ana@example.com", token)
    assert not verify_token(KEY, "daily.example", "ana@example.com", token)
    assert not other.verify("ana@example.com", unsubscribe.token("ana@example.com"))
    assert token != Signer(KEY, "daily.example", Purpose(b"verp")).token("ana@example.com")


def test_a_purpose_label_may_not_hold_a_line_break() -> None:
    with pytest.raises(ValueError, match="line break"):
        Purpose(b"daily.example\nana@example.com")


@given(email=TEXT)
def test_subscriber_ref_round_trips_without_padding(email: str) -> None:
    ref = subscriber_ref(email)
    assert "=" not in ref
    assert read_subscriber_ref(ref) == email
