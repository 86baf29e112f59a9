"""Addresses in logs: the domain stays, the person does not."""

from __future__ import annotations

import pytest

from newsletter.redaction import mask_address


@pytest.mark.parametrize(
    ("email", "shown"),
    [
        ("jane.doe@example.org", "j…@example.org"),
        ("  J@Example.org ", "J…@Example.org"),
        ('"odd@local"@example.net', '"…@example.net'),
        ("no-at-sign", "…"),
        ("@example.org", "…"),
        ("", "…"),
    ],
)
def test_an_address_keeps_only_its_first_character_and_domain(email: str, shown: str) -> None:
    assert mask_address(email) == shown
