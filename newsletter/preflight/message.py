"""Checks of the sample message as mail: its raw form, headers, subject, preheader and signature.

Also one-click unsubscribe, the personal slots, and the recipient's address in URLs.
"""

from __future__ import annotations

import re
from email.utils import getaddresses
from urllib.parse import quote

from newsletter import placeholders
from newsletter.config.settings import Settings
from newsletter.dkim.records import aligned
from newsletter.dkim.selfcheck import verify
from newsletter.dkim.settings import DkimSettings
from newsletter.dkim.signer import SIGNED_HEADERS, DkimSigner
from newsletter.errors import DeliveryError
from newsletter.limits import MAX_LINE_OCTETS
from newsletter.models import Edition
from newsletter.preflight.findings import Report, normal, show
from newsletter.preflight.sample import Sample, domain_of
from newsletter.preflight.scan import HtmlFacts

SUBJECT_WARN_CHARS = 78
SUBJECT_MAX_CHARS = 200
PREHEADER_MIN_CHARS = 40
PREHEADER_MAX_CHARS = 140
ONE_CLICK = "List-Unsubscribe=One-Click"
HEADER_SPAM_NOTES = {
    "Date": " (SpamAssassin MISSING_DATE, 2.7 points)",
    "Message-ID": " (SpamAssassin MISSING_MID)",
}

_TEXT_URL = re.compile(r"https?://[^\s<>\"]+")


def check_raw(data: bytes, out: Report) -> None:
    """Check the raw bytes: line lengths, line endings, 8-bit headers."""
    lines = data.split(b"\r\n")
    long_lines = [n for n, line in enumerate(lines, 1) if len(line) > MAX_LINE_OCTETS]
    if long_lines:
        out.error(
            "line-too-long",
            f"message line {long_lines[0]} is longer than {MAX_LINE_OCTETS} octets "
            f"({len(long_lines)} such line(s)); servers break or reject it: encode the parts "
            "as quoted-printable or base64",
        )
    if any(b"\n" in line or b"\r" in line for line in lines):
        out.error("bare-line-ending", "the message has a bare LF or CR; SMTP needs CRLF")
    if any(byte > 127 for byte in data.split(b"\r\n\r\n", 1)[0]):
        out.error("header-8bit", "a header has raw non-ASCII bytes; use RFC 2047 encoded words")


def check_headers(sample: Sample, out: Report) -> None:
    """Check the headers every message needs, and their domains."""
    for name in ("From", "To", "Date", "Message-ID"):
        if not sample.header(name):
            out.error(
                f"{name.lower()}-missing",
                f"the message has no {name} header{HEADER_SPAM_NOTES.get(name, '')}; "
                "the message builder must set it",
            )
        elif sample.count(name) > 1:
            out.error(f"{name.lower()}-repeated", f"the {name} header appears more than once")
    from_domain = domain_of(sample.header("From"))
    message_id = sample.header("Message-ID")
    id_domain = message_id.rpartition("@")[2].strip("<> ").lower()
    if from_domain and message_id and id_domain != from_domain:
        out.warning(
            "message-id-domain",
            f"the Message-ID domain {id_domain!r} differs from the From domain "
            f"{from_domain!r}; make Message-IDs on the sender's domain ([sender] address)",
        )
    if not sample.header("List-Id"):
        out.warning("list-id-missing", "no List-Id header; set [list] id")


def check_subject(sample: Sample, out: Report) -> None:
    """Check the subject's presence, length and capitals."""
    subject = sample.header("Subject")
    if not subject:
        out.error(
            "subject-missing",
            "the message has no subject; set [email] subject or give the lead a headline",
        )
        return
    if len(subject) > SUBJECT_MAX_CHARS:
        out.error(
            "subject-too-long",
            f"the subject has {len(subject)} characters (limit {SUBJECT_MAX_CHARS}); "
            "set a short [email] subject",
        )
    elif len(subject) > SUBJECT_WARN_CHARS:
        out.warning(
            "subject-long",
            f"the subject has {len(subject)} characters; inboxes cut it after about "
            f"{SUBJECT_WARN_CHARS}: {show(subject)}; set a shorter [email] subject",
        )
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 10 and all(c.isupper() for c in letters):
        out.warning(
            "subject-all-caps",
            "the subject is all capitals (SpamAssassin SUBJ_ALL_CAPS); use sentence case",
        )


def check_preheader(edition: Edition, facts: HtmlFacts | None, out: Report) -> None:
    """Check the preheader's length and that the HTML shows it."""
    preheader = normal(edition.preheader)
    if not preheader:
        out.warning(
            "preheader-missing",
            "the edition has no preheader (the inbox preview line); set [email] preheader "
            "or give the lead story a summary",
        )
        return
    if not PREHEADER_MIN_CHARS <= len(preheader) <= PREHEADER_MAX_CHARS:
        out.warning(
            "preheader-length",
            f"the preheader has {len(preheader)} characters; aim for "
            f"{PREHEADER_MIN_CHARS}–{PREHEADER_MAX_CHARS} so the preview line is filled "
            f"but not cut ([email] preheader): {show(preheader)}",
        )
    if facts is not None and preheader not in normal(" ".join(facts.all_text)):
        out.warning(
            "preheader-not-in-html",
            "the preheader text is not in the HTML; the template must put it first in <body>",
        )


def check_unsubscribe(
    sample: Sample, facts: HtmlFacts | None, settings: Settings, out: Report
) -> None:
    """Check one-click unsubscribe (RFC 8058) and the personal URL in both parts."""
    post = sample.header("List-Unsubscribe-Post")
    if not post:
        out.error(
            "list-unsubscribe-post-missing",
            f"no List-Unsubscribe-Post header; Gmail and Yahoo require '{ONE_CLICK}' "
            "(RFC 8058) on bulk mail",
        )
    elif post != ONE_CLICK:
        out.error(
            "list-unsubscribe-post-value",
            f"List-Unsubscribe-Post is {show(post)}; it must be exactly '{ONE_CLICK}'",
        )
    if not sample.header("List-Unsubscribe"):
        out.error(
            "list-unsubscribe-missing",
            "no List-Unsubscribe header; set [list] unsubscribe_url (an https:// URL)",
        )
        return
    https = [u for u in sample.unsubscribe_urls() if u.lower().startswith("https://")]
    if not https:
        out.error(
            "list-unsubscribe-https",
            "List-Unsubscribe has no https:// URL; one-click unsubscribe (RFC 8058) needs one",
        )
        return
    url = https[0]
    if url.rstrip("/") == settings.list.unsubscribe_url.rstrip("/"):
        out.warning(
            "unsubscribe-not-personal",
            "the List-Unsubscribe URL is the same for everyone; one-click needs a personal URL",
        )
    if facts is not None and url not in facts.links:
        out.error(
            "unsubscribe-not-in-html",
            f"the HTML part has no link to the personal unsubscribe URL {show(url)} that "
            "List-Unsubscribe carries; the footer template must link placeholders.UNSUBSCRIBE_URL",
        )
    if sample.text is not None and url not in sample.text:
        out.error(
            "unsubscribe-not-in-text",
            f"the text part lacks the personal unsubscribe URL {show(url)}; "
            "the text template must print placeholders.UNSUBSCRIBE_URL",
        )


def check_slots(sample: Sample, data: bytes, out: Report) -> None:
    """Check that every personal slot was filled."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    bodies = (sample.html or "", sample.text or "", head)
    left = sorted({token for token in placeholders.ALL for body in bodies if token in body})
    if left:
        out.error(
            "slot-unfilled",
            f"personal slot(s) {', '.join(left)} are not filled in the sample message; "
            "the message builder must replace every slot",
        )


def check_address_in_urls(sample: Sample, facts: HtmlFacts | None, out: Report) -> None:
    """Warn about URLs that carry the recipient's address."""
    recipients = getaddresses([sample.header("To")])
    address = recipients[0][1].lower() if recipients else ""
    if "@" not in address:
        return
    forms = {address, quote(address, safe="").lower(), quote(address, safe="@").lower()}
    urls = [*(facts.links if facts else []), *sample.unsubscribe_urls()]
    urls += _TEXT_URL.findall(sample.text or "")
    leaking = sorted(
        {u for u in urls if u.lower().startswith("http") and any(f in u.lower() for f in forms)}
    )
    if leaking:
        out.warning(
            "address-in-url",
            f"{len(leaking)} URL(s) carry the recipient's address (first: "
            f"{show(leaking[0])}); filters score it (SpamAssassin GB_CUSTOM_HTM_URI, "
            "1 point) and it leaks into web logs: identify subscribers by an opaque token",
        )


def check_dkim(data: bytes, settings: Settings, from_domain: str, out: Report) -> None:
    """Check that the configured key signs the sample, aligned and verifiable."""
    dkim_settings: DkimSettings | None = settings.dkim
    if dkim_settings is None:
        out.warning(
            "dkim-missing",
            "messages are not DKIM-signed; Gmail and Yahoo require DKIM on bulk mail: add a "
            "[dkim] table (selector, key_file) unless your relay signs for you",
        )
        return
    if from_domain and not aligned(dkim_settings.domain, from_domain):
        out.error(
            "dkim-alignment",
            f"dkim.domain {dkim_settings.domain!r} does not align with the From domain "
            f"{from_domain!r}, so DMARC fails: sign with the From domain",
        )
    try:
        signed = DkimSigner(dkim_settings).sign(data)
    except DeliveryError as err:
        out.error("dkim-sign", f"signing the sample message failed: {err}")
        return
    ok, covered = verify(signed, dkim_settings)
    missing = [h for h in SIGNED_HEADERS if h.lower() not in covered]
    if not ok:
        out.error(
            "dkim-verify",
            "the sample's DKIM signature does not verify against the key's own public key; "
            f"check {dkim_settings.key_origin}",
        )
    elif missing:
        out.error("dkim-headers", f"the DKIM signature does not cover {', '.join(missing)}")
