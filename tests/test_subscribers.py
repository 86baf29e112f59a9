"""Tests for reading the subscriber list from careless and hostile CSV files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tracemalloc
import unicodedata
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.errors import NewsletterError, SubscriberError
from newsletter.models import Subscriber
from newsletter.subscribers.addresses import Addresses
from newsletter.subscribers.cells import MAX_NAME
from newsletter.subscribers.reader import (
    MAX_WARNINGS,
    SubscriberScan,
    count_active,
    read_subscribers,
)
from newsletter.subscribers.shard import in_shard, parse_shard

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "subscribers.example.csv"


def write(
    tmp_path: Path, text: str, name: str = "subscribers.csv", encoding: str = "utf-8"
) -> Path:
    """Write ``text`` exactly as given (no newline translation) and return the path."""
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def read_all(path: Path, **options: bool) -> tuple[list[Subscriber], SubscriberScan]:
    """Read every subscriber and return them with the finished scan."""
    scan = SubscriberScan(path)
    subscribers = list(read_subscribers(path, scan=scan, **options))
    return subscribers, scan


def emails(subscribers: list[Subscriber]) -> list[str]:
    """Return the addresses in order."""
    return [s.email for s in subscribers]


def assert_counts_add_up(scan: SubscriberScan) -> None:
    """Every data row is counted exactly once."""
    assert scan.rows == scan.active + scan.skipped_status + scan.duplicates + scan.invalid


# --- the example list -------------------------------------------------------------------


def test_example_file_yields_only_the_active_people() -> None:
    subscribers, scan = read_all(EXAMPLE)
    assert scan.rows == 8
    assert scan.skipped_status == 2
    assert scan.warnings == []
    assert len(subscribers) == scan.active == 6
    for s in subscribers:
        domain = s.email.rpartition("@")[2]
        assert domain in {"example.com", "example.org", "example.net"}
        assert s.status == "active"
        assert set(s.fields) == {"city"}
    names = [s.name for s in subscribers]
    assert "José Núñez" in names
    assert any("," in n for n in names)
    assert "" in names


def test_example_file_has_inactive_people_when_asked() -> None:
    everyone, _scan = read_all(EXAMPLE, include_inactive=True)
    statuses = {s.status for s in everyone}
    assert {"unsubscribed", "bounced", "active"} <= statuses
    assert count_active(EXAMPLE) == sum(1 for s in everyone if s.active)


# --- encodings and line endings --------------------------------------------------------------


def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufeffEmail,Name\r\nana@example.com,Ana Lima\r\njose@example.org,José Núñez\r\n",
    )
    subscribers, scan = read_all(path)
    assert emails(subscribers) == ["ana@example.com", "jose@example.org"]
    assert [s.name for s in subscribers] == ["Ana Lima", "José Núñez"]
    assert [s.line for s in subscribers] == [2, 3]
    assert scan.warnings == []


def test_utf16_excel_unicode_text_export(tmp_path: Path) -> None:
    path = write(tmp_path, "Email\tName\r\nmei@example.com\tMei 陈\r\n", encoding="utf-16")
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    subscribers, _scan = read_all(path)
    assert [(s.email, s.name) for s in subscribers] == [("mei@example.com", "Mei 陈")]


def test_lone_cr_line_endings_count_as_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\rana@example.com,Ana\rbad@\rbo@example.com,Bo\r")
    subscribers, scan = read_all(path)
    assert [(s.email, s.line) for s in subscribers] == [
        ("ana@example.com", 2),
        ("bo@example.com", 4),
    ]
    assert scan.warnings[0].startswith(f"{path}:3: 'bad@'")


def test_windows_1252_file_is_refused_before_anything_is_yielded(tmp_path: Path) -> None:
    text = "email,name\nana@example.com,Ana\nbo@example.com,Bo\njose@example.org,José\n"
    path = write(tmp_path, text, encoding="cp1252")
    with pytest.raises(SubscriberError) as caught:
        read_subscribers(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:4: byte 0xE9")
    assert "UTF-8" in message


def test_nul_bytes_at_the_start_mean_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes("email\nana@example.com\n".encode("utf-16-le"))
    with pytest.raises(SubscriberError, match="NUL bytes"):
        read_subscribers(path)


def test_spreadsheet_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(SubscriberError, match=r"workbook.*CSV UTF-8"):
        read_subscribers(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(SubscriberError, match="no such file") as caught:
        read_subscribers(missing)
    assert str(missing) in str(caught.value)
    with pytest.raises(SubscriberError) as caught:
        read_subscribers(tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert isinstance(caught.value, NewsletterError)


# --- delimiters, quoting, line numbers --------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_is_sniffed_from_the_header(tmp_path: Path, delimiter: str) -> None:
    d = delimiter
    path = write(
        tmp_path,
        f"email{d}name{d}status{d}note\n"
        f"ana@example.com{d}Lima, Ana{d}active{d}a, b, c\n"
        f"bo@example.com{d}Bo{d}unsubscribed{d}\n",
    )
    subscribers, scan = read_all(path)
    assert [(s.email, s.name, dict(s.fields)) for s in subscribers] == [
        ("ana@example.com", "Lima, Ana", {"note": "a, b, c"}),
    ]
    assert scan.skipped_status == 1


def test_excel_sep_line_sets_the_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path, "sep=;\nemail;name,with comma\nana@example.com;Ana\n")
    subscribers, _scan = read_all(path)
    assert [(s.email, s.name, s.line) for s in subscribers] == [("ana@example.com", "", 3)]
    assert dict(subscribers[0].fields) == {"name,with comma": "Ana"}


def test_quoted_newlines_keep_physical_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,name,address\n"
        'ana@example.com,Ana,"1 Main St\nFloor 2\nSpringfield"\n'
        "bad@@example.com,Bad,x\n"
        'bo@example.com,"Bo\r\nBcc: x@evil.example",y\n'
        "cy@example.com,Cy,z\n",
    )
    subscribers, scan = read_all(path)
    assert [(s.email, s.line) for s in subscribers] == [
        ("ana@example.com", 2),
        ("bo@example.com", 6),
        ("cy@example.com", 8),
    ]
    assert subscribers[0].fields["address"] == "1 Main St Floor 2 Springfield"
    assert subscribers[1].name == "Bo Bcc: x@evil.example"
    assert any(w.startswith(f"{path}:5: 'bad@@example.com' is not a valid") for w in scan.warnings)
    assert any(w.startswith(f"{path}:2: the row runs on to line 4") for w in scan.warnings)
    assert any(w.startswith(f"{path}:6: the row runs on to line 7") for w in scan.warnings)


def test_unclosed_quote_is_reported_not_silent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'email,name\nana@example.com,"Ana\nbo@example.com,Bo\ncy@example.com,Cy\n',
    )
    _subscribers, scan = read_all(path)
    assert any(w.startswith(f"{path}:2: the row runs on to line 4") for w in scan.warnings)


def test_unclosed_quote_in_a_big_file_names_the_line(tmp_path: Path) -> None:
    rows = "".join(f"user{i}@example.com,User {i}\n" for i in range(8000))
    path = write(tmp_path, f'email,name\nana@example.com,"Ana\n{rows}')
    with pytest.raises(SubscriberError) as caught:
        read_subscribers(path)
    assert str(caught.value).startswith(f"{path}:2: the CSV cannot be read")
    assert "quote" in str(caught.value)


def test_a_line_of_megabytes_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nana@example.com," + "x" * (1 << 21) + "\n")
    with pytest.raises(SubscriberError, match=":2: the line is longer than"):
        read_subscribers(path)


def test_blank_lines_and_empty_rows_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "\n,,\nemail,name\n\nana@example.com,Ana\n,,\n  \nbo@example.com,Bo\n")
    subscribers, scan = read_all(path)
    assert [(s.email, s.line) for s in subscribers] == [
        ("ana@example.com", 5),
        ("bo@example.com", 8),
    ]
    assert scan.rows == 2


def test_wrong_cell_counts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,name,status\n"
        "ana@example.com,Núñez, José,active\n"
        "bo@example.com\n"
        "cy@example.com,Cy,active,extra\n",
    )
    subscribers, scan = read_all(path)
    assert [(s.email, s.name) for s in subscribers] == [
        ("bo@example.com", ""),
        ("cy@example.com", "Cy"),
    ]
    assert scan.warnings[0].startswith(f"{path}:2: the row has 4 cells but the header has 3")
    assert "double quotes" in scan.warnings[0]
    assert scan.warnings[1].startswith(f"{path}:2: status 'josé' is not a known value")
    assert scan.warnings[2].startswith(f"{path}:4: the row has 4 cells")
    assert scan.skipped_status == 1
    assert_counts_add_up(scan)


# --- headers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["email", "EMAIL", "Email Address", "E-mail", "e_mail", "mail", " Email ", "E-Mail-Adresse"],
)
def test_email_header_spellings(tmp_path: Path, header: str) -> None:
    path = write(tmp_path, f"name,{header},city\nAna,ana@example.com,Porto\n")
    subscribers, _scan = read_all(path)
    assert emails(subscribers) == ["ana@example.com"]
    assert subscribers[0].name == "Ana"
    assert dict(subscribers[0].fields) == {"city": "Porto"}


@pytest.mark.parametrize(
    ("header", "row", "name"),
    [
        ("email,Full Name", "a@example.com,Ana Lima", "Ana Lima"),
        ("email,First Name,Last Name", "a@example.com,Ana,Lima", "Ana Lima"),
        ("email,first_name,last_name", "a@example.com,Ana,", "Ana"),
        ("Email Address,First Name", "a@example.com,Ana", "Ana"),
        ("email,surname,given name", "a@example.com,Lima,Ana", "Ana Lima"),
        ("email,name,first_name", "a@example.com,,Ana", "Ana"),
        ("email,name,first_name", "a@example.com,Ana Lima,Bob", "Ana Lima"),
        ("email,city", "a@example.com,Porto", ""),
    ],
)
def test_name_columns(tmp_path: Path, header: str, row: str, name: str) -> None:
    path = write(tmp_path, f"{header}\n{row}\n")
    subscribers, _scan = read_all(path)
    assert [s.name for s in subscribers] == [name]


def test_first_and_last_name_stay_in_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path, "email,First Name,Last Name,Status,Plan\na@example.com,Ana,Lima,yes,pro\n"
    )
    (subscriber,) = read_subscribers(path)
    assert subscriber.name == "Ana Lima"
    assert dict(subscriber.fields) == {"First Name": "Ana", "Last Name": "Lima", "Plan": "pro"}
    assert subscriber.status == "active"


def test_missing_email_column_lists_the_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "name,phone,city\nAna,555,Porto\n")
    with pytest.raises(SubscriberError) as caught:
        read_subscribers(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:1: no email column")
    for header in ("'name'", "'phone'", "'city'"):
        assert header in message


def test_missing_header_line_is_explained(tmp_path: Path) -> None:
    path = write(tmp_path, "ana@example.com,Ana\nbo@example.com,Bo\n")
    with pytest.raises(SubscriberError, match=r"looks like data.*header line"):
        read_subscribers(path)


def test_a_header_of_very_many_columns_is_handled_quickly(tmp_path: Path) -> None:
    columns = 50_000
    path = write(tmp_path, "email" + ",x" * columns + "\na@example.com,1\n")
    (subscriber,) = read_subscribers(path)
    assert len(subscriber.fields) == columns
    assert subscriber.fields["x"] == "1"
    assert subscriber.fields[f"x (column {columns + 1})"] == ""


def test_duplicate_and_blank_headers_keep_their_values(tmp_path: Path) -> None:
    path = write(tmp_path, "email,tag,,tag\na@example.com,x,y,z\n")
    (subscriber,) = read_subscribers(path)
    assert dict(subscriber.fields) == {"tag": "x", "column 3": "y", "tag (column 4)": "z"}


# --- statuses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("active", "active"),
        ("Subscribed", "active"),
        ("YES", "active"),
        ("confirmed", "active"),
        ("opted_in", "active"),
        ("", "active"),
        ("Unsubscribed", "unsubscribed"),
        ("bounced", "bounced"),
        ("cleaned", "cleaned"),
        (" Complained ", "complained"),
        ("inactive", "inactive"),
        ("No", "no"),
        ("Hard  Bounce", "hard bounce"),
        ("pending", "pending"),
    ],
)
def test_status_values(tmp_path: Path, value: str, status: str) -> None:
    path = write(
        tmp_path, f"email,Subscription Status\na@example.com,{value}\nz@example.com,active\n"
    )
    everyone, scan = read_all(path, include_inactive=True)
    assert everyone[0].status == status
    assert everyone[0].active is (status == "active")
    assert scan.warnings == []
    active = list(read_subscribers(path))
    assert ("a@example.com" in emails(active)) is (status == "active")


def test_state_column_and_missing_status_column(tmp_path: Path) -> None:
    with_state = write(
        tmp_path, "email,state\na@example.com,bounced\nb@example.com,active\n", "a.csv"
    )
    assert emails(list(read_subscribers(with_state))) == ["b@example.com"]
    without = write(tmp_path, "email\na@example.com\nb@example.com\n", "b.csv")
    assert [s.status for s in read_subscribers(without)] == ["active", "active"]


def test_unknown_status_is_not_mailed_and_warned(tmp_path: Path) -> None:
    path = write(tmp_path, "email,status\na@example.com,actve\nb@example.com,active\n")
    subscribers, scan = read_all(path)
    assert emails(subscribers) == ["b@example.com"]
    assert scan.skipped_status == 1
    (warning,) = scan.warnings
    assert warning.startswith(f"{path}:2: status 'actve' is not a known value")


# --- addresses -----------------------------------------------------------------------------


def test_invalid_addresses_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,name\n"
        "x@,X\n"
        "ana@example.com,Ana\n"
        "not an address,N\n"
        ",Nobody\n"
        "Ana Lima <lima@example.com>,Lima\n"
        "a@localhost,Local\n"
        "  bo@example.com\u200b ,Bo\n",
    )
    subscribers, scan = read_all(path)
    assert emails(subscribers) == ["ana@example.com", "bo@example.com"]
    assert scan.invalid == 5
    assert scan.warnings[0].startswith(f"{path}:2: 'x@' is not a valid email address (")
    assert scan.warnings[0].endswith("); fix it or remove the row")
    assert scan.warnings[1].startswith(f"{path}:4: 'not an address' is not a valid")
    assert scan.warnings[2].startswith(f"{path}:5: the row has no email address in column 'email'")
    assert scan.warnings[3].startswith(f"{path}:6: 'Ana Lima <lima@example.com>' is not")
    assert scan.warnings[4].startswith(f"{path}:7: 'a@localhost' is not")
    assert_counts_add_up(scan)


def test_values_in_warnings_cannot_drive_the_terminal(tmp_path: Path) -> None:
    path = write(tmp_path, "email\n\x1b[2J\u202eevil@example.com\nok@example.com\n")
    _subscribers, scan = read_all(path)
    (warning,) = scan.warnings
    assert "\x1b" not in warning
    assert "\u202e" not in warning
    assert "\\x1b[2J" in warning


def test_addresses_are_normalized_but_local_part_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path, "email\nAna.Lima@EXAMPLE.Com\nkai@BÜCHER.example\nPostmaster@Example.org\n"
    )
    assert emails(list(read_subscribers(path))) == [
        "Ana.Lima@example.com",
        "kai@bücher.example",
        "postmaster@example.org",
    ]


def test_duplicates_differing_in_case_are_dropped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,name\nAna@Example.com,Ana\nbo@example.com,Bo\nANA@example.COM,Ana again\n"
        "ana@example.com,Ana thrice\n",
    )
    subscribers, scan = read_all(path)
    assert [(s.email, s.name) for s in subscribers] == [
        ("Ana@example.com", "Ana"),
        ("bo@example.com", "Bo"),
    ]
    assert scan.duplicates == 2
    assert scan.warnings[0].startswith(f"{path}:4: 'ANA@example.com' is a duplicate of line 2")
    assert scan.warnings[1].startswith(f"{path}:5: 'ana@example.com' is a duplicate of line 2")
    assert_counts_add_up(scan)


def test_a_later_unsubscribe_wins_over_an_earlier_active_row(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,status\nana@example.com,active\nbo@example.com,active\nANA@example.com,unsubscribed\n"
        "ana@example.com,active\n",
    )
    subscribers, scan = read_all(path)
    assert emails(subscribers) == ["bo@example.com"]
    assert scan.warnings[0].startswith(
        f"{path}:2: 'ana@example.com' is active here but has status 'unsubscribed' on line 4"
    )
    assert scan.warnings[1].startswith(f"{path}:5: 'ana@example.com' is active here")
    assert (scan.active, scan.skipped_status, scan.duplicates) == (1, 1, 2)
    everyone, _scan = read_all(path, include_inactive=True)
    assert [(s.email, s.status, s.line) for s in everyone] == [
        ("bo@example.com", "active", 3),
        ("ANA@example.com", "unsubscribed", 4),
    ]


LONG_DOMAIN = ".".join(["a" * 60, "b" * 60, "c" * 60, "example"])
DOMAINS = [
    "example.com",
    "EXAMPLE.Com",
    "bücher.example",
    "xn--bcher-kva.example",
    "localhost",
    "a..b.com",
    "ex_ample.com",
    "sub.example.test",
    "-bad.example",
    "example.com.",
    LONG_DOMAIN,
    LONG_DOMAIN[:-4] + "co",
]


@settings(max_examples=400, deadline=None)
@given(
    local=st.one_of(
        st.text(alphabet='abcxyz019._+-ABC!#é"@ ', max_size=80),
        st.sampled_from(["postmaster", "abuse", "Info", "a" * 64, "a" * 66, "a.b", ".a", "a."]),
    ),
    domain=st.sampled_from(DOMAINS),
)
def test_address_check_matches_email_validator_within_rfc_5321(local: str, domain: str) -> None:
    addresses = Addresses()
    addresses.normalize(f"warm.up@{domain}")
    address = f"{local}@{domain}"
    got = addresses.normalize(address)
    try:
        expected: str | EmailNotValidError = validate_email(
            address.strip(), check_deliverability=False
        ).normalized
    except EmailNotValidError as err:
        expected = err
    if isinstance(expected, str) and len(expected.rpartition("@")[0].encode()) > 64:
        assert isinstance(got, EmailNotValidError)
        assert "before the @-sign" in str(got)
        return
    assert type(got) is type(expected)
    assert str(got) == str(expected)


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("a" * 64 + "@example.com", True),
        ("a" * 65 + "@example.com", False),  # RFC 5321: 64 octets before the @-sign
        ("é" * 32 + "@example.com", True),  # 64 octets in UTF-8
        ("é" * 33 + "@example.com", False),  # 33 characters, but 66 octets
        ("ana@" + "a" * 63 + ".example", True),
        ("ana@" + "a" * 64 + ".example", False),  # a label over 63 octets
        ("ana@" + ".".join(["a" * 50] * 5) + ".example", False),  # a domain over 253
        ("a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".example", False),  # over 254 in all
        ("a" * 60 + "@" + ".".join(["b" * 60, "c" * 60]) + ".example", True),
    ],
)
def test_every_rfc_5321_length_limit_is_enforced(address: str, valid: bool, warm: bool) -> None:
    addresses = Addresses()
    if warm:  # the domain is known: the fast path must apply the same limits
        addresses.normalize("warm.up@" + address.rpartition("@")[2])
    result = addresses.normalize(address)
    assert isinstance(result, str) is valid, result


def test_an_overlong_address_is_a_row_warning(tmp_path: Path) -> None:
    long_local = "a" * 65
    path = write(tmp_path, f"email\nana@example.com\n{long_local}@example.com\n")
    subscribers, scan = read_all(path)
    assert emails(subscribers) == ["ana@example.com"]
    assert scan.invalid == 1
    (warning,) = scan.warnings
    assert warning.startswith(f"{path}:3: '{long_local}@example.com' is not a valid email address")
    assert "65 bytes long; RFC 5321 allows 64" in warning


# --- names and fields -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"Ana\r\nBcc: x@evil.example"', "Ana Bcc: x@evil.example"),
        ('"O\'Brien, ""Pat"" <pat>"', 'O\'Brien, "Pat" <pat>'),
        ("Ana\x00Lima", "Ana Lima"),
        ("\tAna\t\tLima\t", "Ana Lima"),
        ("Ana\u202eamiL\u202c", "AnaamiL"),
        ("\u200bAna\u2028Lima\ufeff", "Ana Lima"),
        ("Ana\x85Lima\x1b[31m", "Ana Lima [31m"),
        ("Jose\u0301 Nu\u0301n\u0303ez", "José Núñez"),
        ("علی\u200cرضا", "علی\u200cرضا"),
        ("=cmd|' /C calc'!A0", "=cmd|' /C calc'!A0"),
    ],
)
def test_hostile_names_become_one_safe_line(tmp_path: Path, raw: str, expected: str) -> None:
    path = write(tmp_path, f"email,name\nana@example.com,{raw}\n")
    (subscriber,) = read_subscribers(path)
    assert subscriber.name == expected
    assert "\r" not in subscriber.name
    assert "\n" not in subscriber.name
    assert not any(unicodedata.category(c) == "Cc" for c in subscriber.name)


def test_long_names_are_cut_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, f"email,name\nana@example.com,{'Ana ' * 100}\n")
    subscribers, scan = read_all(path)
    assert len(subscribers[0].name) <= MAX_NAME
    assert subscribers[0].name.startswith("Ana Ana")
    assert scan.warnings[0].startswith(f"{path}:2: the name is longer than {MAX_NAME}")


def test_fields_are_single_lines_and_read_only(tmp_path: Path) -> None:
    path = write(tmp_path, 'email,note\nana@example.com,"a\r\nb\tc"\n')
    (subscriber,) = read_subscribers(path)
    assert subscriber.fields["note"] == "a b c"
    with pytest.raises(TypeError):
        subscriber.fields["note"] = "x"  # type: ignore[index]


# --- empty lists, strict mode, warnings --------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff", ",,,\n"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SubscriberError, match=r"is empty.*header line") as caught:
        read_subscribers(path)
    assert str(path) in str(caught.value)


def test_header_only_file_is_an_error_when_iteration_ends(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name,status\r\n")
    iterator = read_subscribers(path)
    with pytest.raises(
        SubscriberError, match=f"no subscribers in {re.escape(str(path))}: .*no rows"
    ):
        next(iterator)


def test_no_active_subscriber_is_an_error_after_the_last_row(tmp_path: Path) -> None:
    path = write(tmp_path, "email,status\na@example.com,unsubscribed\nb@,active\n")
    scan = SubscriberScan(path)
    with pytest.raises(SubscriberError) as caught:
        list(read_subscribers(path, scan=scan))
    message = str(caught.value)
    assert message.startswith(f"no active subscribers in {path}: 2 rows, 1 not active, 1 invalid")
    assert (scan.rows, scan.skipped_status, scan.invalid) == (2, 1, 1)
    everyone = list(read_subscribers(path, include_inactive=True))
    assert emails(everyone) == ["a@example.com"]


def test_strict_mode_stops_at_the_first_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nana@example.com,Ana\nbad@,Bad\nbo@example.com,Bo\n")
    iterator = read_subscribers(path, strict=True)
    assert next(iterator).email == "ana@example.com"
    with pytest.raises(SubscriberError, match=f"^{re.escape(str(path))}:3: 'bad@' is not a valid"):
        next(iterator)


def test_strict_mode_refuses_duplicates_and_accepts_clean_lists(tmp_path: Path) -> None:
    dup = write(tmp_path, "email\na@example.com\nA@example.com\n", "dup.csv")
    with pytest.raises(SubscriberError, match=r":3: 'A@example\.com' is a duplicate of line 2"):
        list(read_subscribers(dup, strict=True))
    assert len(list(read_subscribers(EXAMPLE, strict=True))) == count_active(EXAMPLE)


def test_warnings_are_capped_with_a_summary(tmp_path: Path) -> None:
    bad = "".join(f"bad{i}@\n" for i in range(MAX_WARNINGS + 20))
    path = write(tmp_path, f"email\nok@example.com\n{bad}")
    subscribers, scan = read_all(path)
    assert emails(subscribers) == ["ok@example.com"]
    assert scan.invalid == MAX_WARNINGS + 20
    assert scan.warnings_omitted == 20
    assert len(scan.warnings) == MAX_WARNINGS + 1
    assert "20 more warnings" in scan.warnings[-1]


def test_counts_add_up_on_a_mixed_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,status\na@example.com,active\nb@example.com,bounced\nA@example.com,yes\n"
        "c@,active\nd@example.com,whatever\ne@example.com,\n",
    )
    subscribers, scan = read_all(path)
    assert emails(subscribers) == ["a@example.com", "e@example.com"]
    assert scan.rows == 6
    assert (scan.active, scan.skipped_status, scan.duplicates, scan.invalid) == (2, 2, 1, 1)
    assert_counts_add_up(scan)


# --- shards --------------------------------------------------------------------------------


def test_shards_partition_the_list_completely_and_disjointly() -> None:
    addresses = [f"user{i}@example{i % 7}.com" for i in range(3000)]
    parts = [[a for a in addresses if in_shard(a, (k, 3))] for k in (1, 2, 3)]
    assert sorted(a for part in parts for a in part) == sorted(addresses)
    for part in parts:
        assert 800 < len(part) < 1200
    assert all(in_shard(a, None) for a in addresses)
    assert all(in_shard(a, (1, 1)) for a in addresses)


def test_shards_ignore_case_and_follow_sha256() -> None:
    for address in ("Ana@Example.com", "josé@example.org", "ZOË@EXAMPLE.NET"):
        digest = hashlib.sha256(address.casefold().encode()).digest()
        k = int.from_bytes(digest, "big") % 5 + 1
        assert in_shard(address, (k, 5))
        assert in_shard(address.upper(), (k, 5))
        assert not in_shard(address, (k % 5 + 1, 5))


def test_shards_are_stable_across_processes() -> None:
    addresses = [f"person{i}@example.org" for i in range(200)]
    here = [next(k for k in (1, 2, 3) if in_shard(a, (k, 3))) for a in addresses]
    code = (
        "import json, sys\n"
        "from newsletter.subscribers.shard import in_shard\n"
        "addresses = json.loads(sys.stdin.read())\n"
        "parts = [next(k for k in (1, 2, 3) if in_shard(a, (k, 3))) for a in addresses]\n"
        "print(json.dumps(parts))\n"
    )
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(addresses),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert json.loads(result.stdout) == here


@pytest.mark.parametrize(("text", "shard"), [("2/4", (2, 4)), (" 1 / 1 ", (1, 1)), ("3/3", (3, 3))])
def test_parse_shard(text: str, shard: tuple[int, int]) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize(
    "text",
    ["", "2", "0/4", "5/4", "2/0", "a/b", "-1/4", "2/4/6", "1.5/4", "١/٢", "1_0/20", "9" * 30],
)
def test_parse_shard_errors(text: str) -> None:
    with pytest.raises(ValueError, match=r"K/N with K between 1 and N") as caught:
        parse_shard(text)
    assert repr(text) in str(caught.value)


def test_in_shard_rejects_a_bad_shard() -> None:
    with pytest.raises(ValueError, match="between 1 and N"):
        in_shard("a@example.com", (4, 3))


# --- scale -----------------------------------------------------------------------------------


def test_a_100k_row_list_streams_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    total = 100_000
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,status,city\r\n")
        for i in range(total):
            status = "unsubscribed" if i % 10 == 0 else "active"
            out.write(f"reader{i}@example{i % 31}.com,Reader Nº {i},{status},City {i % 50}\r\n")
    assert path.stat().st_size > 5_000_000
    scan = SubscriberScan(path)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        count = 0
        last_line = 0
        for subscriber in read_subscribers(path, scan=scan):
            count += 1
            last_line = subscriber.line
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == scan.active == total - total // 10
    assert scan.skipped_status == total // 10
    assert last_line == total + 1
    assert peak - baseline < 30_000_000
