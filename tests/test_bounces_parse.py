"""Reading reports: DSNs of several mail servers, complaints, unsubscribe mails, garbage."""

from __future__ import annotations

import pytest
from bounce_mail import EDITION, SAMPLES, dsn, sample, unsubscribe_mail
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.bounces.parse import UNREADABLE, read_report
from newsletter.bounces.report import DSN, FEEDBACK, MAILTO, OTHER, TEXT_BOUNCE
from newsletter.bounces.severity import find_status, severity
from newsletter.messages import message_id_digest, message_id_left


@pytest.mark.parametrize("name", list(SAMPLES))
def test_each_sample_names_its_reader_kind_and_status(name: str) -> None:
    email, kind, status = SAMPLES[name]
    report = read_report(sample(name))
    assert report.form != UNREADABLE, report.note
    assert [(f.kind, f.status) for f in report.failures] == [(kind, status)]
    assert report.failures[0].email in ("", email)  # a complaint may withhold it
    # The original is found, with the Message-ID our factory gave that reader.
    digest = message_id_digest(EDITION, email)
    assert (
        report.original.message_id == f"<{message_id_left(EDITION)}.{digest}@meridianpost.example>"
    )
    assert report.original.list_id == "daily.meridianpost.example"


def test_the_forms_are_told_apart() -> None:
    forms = {
        name: read_report(sample(name)).form
        for name in ("postfix-5.1.1.eml", "exim-classic.eml", "arf-yahoo.eml")
    }
    assert forms == {
        "postfix-5.1.1.eml": DSN,
        "exim-classic.eml": TEXT_BOUNCE,
        "arf-yahoo.eml": FEEDBACK,
    }


def test_a_redacted_complaint_withholds_the_address_but_keeps_the_original() -> None:
    report = read_report(sample("arf-yahoo.eml"))
    assert report.failures[0].email == ""
    assert "s=a2FpLmx1bmRAZXhhbXBsZS5jb20" in report.original.list_unsubscribe


def test_diagnostics_are_one_readable_line() -> None:
    gmail = read_report(sample("gmail-5.1.1.eml")).failures[0].diagnostic
    assert gmail.startswith("550-5.1.1 The email account that you tried to reach does not exist")
    assert "550-5.1.1 double" not in gmail  # the codes of continued lines are dropped
    exim = read_report(sample("exim-classic.eml")).failures[0].diagnostic
    assert "User unknown" in exim
    assert "This is a copy" not in exim


def test_reports_that_ask_nothing_say_why() -> None:
    dmarc = read_report(sample("arf-auth-failure.eml"))
    assert (dmarc.form, dmarc.failures) == (FEEDBACK, ())
    assert "auth-failure" in dmarc.note
    away = read_report(sample("out-of-office.eml"))
    assert (away.form, away.note) == (OTHER, "an automatic reply")


def test_garbage_is_unreadable_and_named_by_a_hash() -> None:
    report = read_report(sample("garbage.bin"))
    assert report.form == UNREADABLE
    assert report.key.startswith("sha256:")
    assert report.label.startswith("message sha256:")
    assert "no header lines" in report.note


def test_a_parser_that_trips_makes_the_report_unreadable_not_the_run() -> None:
    # Headers but no From: one of flufl.bounce's detectors raises on it.
    report = read_report(b"Subject: Returned mail\nMessage-ID: <odd@x>\n\nsee below\n")
    assert report.form == UNREADABLE
    assert report.label == "<odd@x>"
    assert "bounce parser" in report.note


@settings(max_examples=200)
@given(raw=st.binary(max_size=400))
def test_any_bytes_give_a_report(raw: bytes) -> None:
    report = read_report(raw)
    assert report.key
    assert report.label.isprintable()


def test_an_unsubscribe_mail_carries_its_sender_and_token() -> None:
    report = read_report(unsubscribe_mail("ana@example.org", "A" * 32))
    assert (report.form, report.sender, report.token) == (MAILTO, "ana@example.org", "A" * 32)
    other = read_report(unsubscribe_mail("ana@example.org", "short"))
    assert other.form == OTHER


def test_a_dsn_without_a_failure_asks_nothing() -> None:
    delivered = read_report(dsn("ana@example.org", status="2.0.0", action="delivered"))
    assert (delivered.form, delivered.failures) == (DSN, ())
    assert "without a failed" in delivered.note


@pytest.mark.parametrize(
    ("status", "words", "kind"),
    [
        ("5.1.1", "User unknown", "hard"),
        ("5.1.10", "RecipientNotFound", "hard"),
        ("5.2.1", "mailbox disabled", "hard"),
        ("5.2.2", "Mailbox full", "soft"),
        ("5.2.3", "message too big", "soft"),
        ("5.4.4", "no MX", "hard"),
        ("5.4.7", "expired", "soft"),
        ("5.7.1", "blocked: on our block list", "soft"),
        ("5.7.26", "DMARC failure", "soft"),
        ("5.7.1", "Recipient address rejected: user unknown", "hard"),
        ("5.0.0", "no such user here", "hard"),
        ("5.0.0", "over quota", "soft"),
        ("5.0.0", "", "hard"),
        ("4.2.2", "Mailbox full", "soft"),
        ("4.7.1", "Greylisted", "soft"),
    ],
)
def test_hard_or_soft(status: str, words: str, kind: str) -> None:
    assert severity(status, words) == kind


def test_statuses_are_found_and_ip_addresses_are_not_taken_for_them() -> None:
    assert find_status("host [198.51.100.7] said: 550 5.1.1 <a@b>") == "5.1.1"
    assert find_status("from 192.0.2.25 (4.96)") == ""
    assert find_status("550 5.1.10 RESOLVER") == "5.1.10"
