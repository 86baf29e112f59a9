"""Preflight: every rule on hand-built editions and messages; link checks on a local server."""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from newsletter import placeholders
from newsletter.config.load import load_settings
from newsletter.config.settings import Settings
from newsletter.dkim.settings import DkimSettings, parse_dkim
from newsletter.messages import MessageFactory
from newsletter.models import Digest, Edition
from newsletter.pipeline import BuildOptions, build_edition
from newsletter.preflight.dark import light_blocks
from newsletter.preflight.findings import (
    ERROR,
    WARNING,
    Finding,
    PreflightError,
    raise_for_errors,
)
from newsletter.preflight.links import probe_link, probe_links
from newsletter.preflight.run import preflight
from newsletter.preflight.sample import sample_subscriber
from newsletter.preflight.scan import scan_html
from newsletter.preflight.text import markup_tags, raw_entities

SETTINGS = Settings()
UNSUB = "https://meridianpost.example/unsubscribe?list=daily&t=Zm9vYmFy.c2lnbmF0dXJl"
PREHEADER = "After ten years of studies the council voted to build movable steel gates."
STORY = (
    "After ten years of studies and three public hearings, the council of the coastal city "
    "voted on Wednesday to build movable steel gates across the mouth of its old harbour. "
    "Engineers say the barrier will hold back storm surges of up to three metres."
)
TRENDING = [
    ("Monsoon outlook revised upward as the ocean cools early", "India"),
    ("Port strike ends as dockworkers accept a three-year deal", "United States"),
    ("New rail link puts two hill towns forty minutes apart", "India"),
    ("Solid-state cell keeps most of its capacity after many charges", "Switzerland"),
]
OPINION = [
    ("Walls alone will not keep coastal cities dry", "Anjali Varghese"),
    ("From the night desk: how we check a weather forecast", "Rhea Menon"),
    ("What the port deal means for freight rates", "Priya Castellanos"),
    ("A materials chemist on slow science", "Lukas Brenner"),
]
PRE_STYLE = "display:none;max-height:0;overflow:hidden;mso-hide:all"


@dataclasses.dataclass(frozen=True)
class SettingsWithDkim(Settings):
    """Settings carrying the [dkim] table the way the configuration loader provides it."""

    dkim: DkimSettings | None = None


def good_html(
    *,
    unsub: str = UNSUB,
    extra_body: str = "",
    lang: str = 'lang="en"',
    head_extra: str = "",
    preheader_style: str = PRE_STYLE,
    image: str = '<img src="https://meridianpost.example/img/gates.jpg" '
    'alt="Models of the barrier gates" width="600">',
) -> str:
    """A realistic, clean edition: role tables, alt text, dark mode, absolute links."""
    rows = "".join(
        f'<tr><td style="color:#1f2933;padding:8px 0">{n}. '
        f'<a href="https://meridianpost.example/news/{n}" style="color:#12355b">{title}</a> '
        f'<span style="color:#52606d">{region}</span></td></tr>'
        for n, (title, region) in enumerate(TRENDING, 1)
    )
    opinion = "".join(
        f'<tr><td style="color:#1f2933;padding:8px 0">'
        f'<a href="https://meridianpost.example/opinion/{n}" style="color:#12355b">{title}</a>'
        f'<br><span style="color:#52606d">{author}</span></td></tr>'
        for n, (title, author) in enumerate(OPINION, 1)
    )
    return (
        f'<!DOCTYPE html><html {lang}><head><meta charset="utf-8"><title>The Meridian Post</title>'
        "<style>@media only screen and (max-width:480px){.col{width:100%!important}}"
        "@media (prefers-color-scheme: dark){body,.bg{background:#0d1117!important;"
        f"color:#e6edf3!important}}}}</style>{head_extra}</head>"
        '<body style="margin:0;background:#f3f4f6">'
        f'<div style="{preheader_style}">{PREHEADER}</div>'
        '<table role="presentation" width="100%" class="bg" style="background:#f3f4f6"><tr><td>'
        '<table role="presentation" width="600" class="bg" style="background:#ffffff"><tr>'
        '<td style="color:#1f2933;padding:16px"><p>Hello Ana,</p>'
        f"{image}"
        '<h1><a href="https://meridianpost.example/news/barrier" style="color:#12355b">'
        "Council approves a tidal barrier</a></h1>"
        f"<p>{STORY}</p>"
        '<p style="color:#52606d">Meridian News Desk</p></td></tr>'
        f'<tr><td><h2 style="color:#c8102e">Trending</h2><table role="presentation">{rows}'
        "</table></td></tr>"
        f'<tr><td><h2 style="color:#c8102e">Opinion</h2><table role="presentation">{opinion}'
        "</table></td></tr>"
        '<tr><td style="color:#52606d;font-size:12px">'
        '<a href="https://meridianpost.example/feedback" style="color:#52606d">Feedback</a> · '
        '<a href="mailto:desk@meridianpost.example" style="color:#52606d">Contact</a><br>'
        "The Meridian Post, 21 Lighthouse Road, Kochi 682001, India<br>"
        f'<a href="{unsub.replace("&", "&amp;")}" style="color:#52606d">Unsubscribe</a>'
        f"{extra_body}</td></tr></table></td></tr></table></body></html>"
    )


def good_text(*, unsub: str = UNSUB, extra: str = "") -> str:
    """The plain-text twin of ``good_html``."""
    lines = [
        "Hello Ana,",
        "",
        "COUNCIL APPROVES A TIDAL BARRIER",
        STORY,
        "Meridian News Desk",
        "Read more: https://meridianpost.example/news/barrier",
        "",
        "TRENDING",
    ]
    for n, (title, region) in enumerate(TRENDING, 1):
        lines += [f"{n}. {title} ({region})", f"   https://meridianpost.example/news/{n}"]
    lines += [
        "",
        "Feedback: https://meridianpost.example/feedback",
        "Contact: desk@meridianpost.example",
        "The Meridian Post, 21 Lighthouse Road, Kochi 682001, India",
        f"Unsubscribe: {unsub}",
        extra,
    ]
    return "\n".join(lines) + "\n"


HEADERS = {
    "From": "The Meridian Post <newsletter@meridianpost.example>",
    "To": "Ana Souza <ana@example.org>",
    "Subject": "Council approves a tidal barrier",
    "Date": "Wed, 04 Mar 2026 18:00:00 +0530",
    "Message-ID": "<2026-03-04.4f2a9c@meridianpost.example>",
    "List-Id": "The Meridian Post Daily <daily.meridianpost.example>",
    "List-Unsubscribe": f"<{UNSUB}>, <mailto:unsubscribe@meridianpost.example?subject=x>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def message(
    *,
    html: str | None = None,
    text: str | None = None,
    drop: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
    html_only: bool = False,
) -> bytes:
    """Build a multipart/alternative message with the email package (CRLF, SMTP policy)."""
    msg = EmailMessage(policy=SMTP)
    for name, value in {**HEADERS, **(headers or {})}.items():
        if name not in drop:
            msg[name] = value
    html_part = good_html() if html is None else html
    if html_only:
        msg.set_content(html_part, subtype="html", cte="quoted-printable")
    else:
        msg.set_content(good_text() if text is None else text, cte="quoted-printable")
        msg.add_alternative(html_part, subtype="html", cte="quoted-printable")
    return msg.as_bytes()


def edition(*, preheader: str = PREHEADER, html: str | None = None) -> Edition:
    """An Edition as the renderer would hand it over."""
    return Edition(
        id="2026-03-04-test",
        subject=HEADERS["Subject"],
        preheader=preheader,
        html=good_html() if html is None else html,
        text=good_text(),
        digest=Digest(lead=None),
        created=datetime(2026, 3, 4, 12, 30, tzinfo=UTC),
    )


def codes(findings: list[Finding], level: str | None = None) -> set[str]:
    """The codes of the findings (of one level)."""
    return {f.code for f in findings if level is None or f.level == level}


def check(data: bytes | None = None, *, check_links: bool = False) -> list[Finding]:
    """Preflight a message against the default edition and settings."""
    sample = message() if data is None else data
    return preflight(edition(), sample, SETTINGS, check_links=check_links)


# --------------------------------------------------------------------------- a clean message


def test_clean_message_has_only_the_dkim_reminder() -> None:
    findings = check()
    assert codes(findings) == {"dkim-missing"}
    assert all(f.level == WARNING for f in findings)


def test_every_finding_names_a_fix_and_errors_come_first() -> None:
    findings = check(
        message(
            html=good_html(unsub="https://x.example/u"),
            drop=("Date",),
            headers={"Subject": "x" * 90},
        )
    )
    levels = [f.level for f in findings]
    assert levels == sorted(levels, key=lambda level: level != ERROR)
    assert {"unsubscribe-not-in-html", "date-missing", "subject-long"} <= codes(findings)
    assert all(len(f.message) > 30 for f in findings)


# --------------------------------------------------------------------------- size


def test_too_large_edition_is_an_error() -> None:
    padding = "<p>" + "Padding story text. " * 5200 + "</p>"
    html = good_html(extra_body=padding)
    assert len(html.encode()) > 102_000
    findings = check(message(html=html))
    assert "html-too-large" in codes(findings, ERROR)
    message_text = next(f.message for f in findings if f.code == "html-too-large")
    assert "Gmail" in message_text
    assert "[selection]" in message_text


def test_large_edition_is_a_warning() -> None:
    html = good_html(extra_body="<p>" + "Padding story text. " * 4100 + "</p>")
    assert 80_000 < len(html.encode()) < 102_000
    findings = check(message(html=html))
    assert "html-large" in codes(findings, WARNING)
    assert "html-too-large" not in codes(findings)


# --------------------------------------------------------------------------- images and links


def test_missing_alt_is_an_error_and_empty_alt_a_warning() -> None:
    missing = check(message(html=good_html(image='<img src="https://meridianpost.example/a.jpg">')))
    assert "image-alt-missing" in codes(missing, ERROR)
    assert "a.jpg" in next(f.message for f in missing if f.code == "image-alt-missing")
    empty = check(
        message(html=good_html(image='<img src="https://meridianpost.example/a.jpg" alt="">'))
    )
    assert "image-alt-empty" in codes(empty, WARNING)
    assert "image-alt-missing" not in codes(empty)


@pytest.mark.parametrize(
    "fragment",
    [
        '<a href="/news/relative">story</a>',
        '<a href="news/relative.html">story</a>',
        '<img src="//cdn.example/x.png" alt="x">',
        '<img src="images/x.png" alt="x">',
        '<td background="bg.png">x</td>',
        "<div style=\"background-image:url('/bg.png')\">x</div>",
        '<a href="">empty</a>',
        '<a href="ftp://files.example/x">ftp</a>',
    ],
)
def test_relative_or_non_http_urls_are_errors(fragment: str) -> None:
    findings = check(message(html=good_html(extra_body=fragment)))
    assert "url-not-absolute" in codes(findings, ERROR)


def test_plain_http_is_a_warning_and_mailto_is_fine() -> None:
    findings = check(message(html=good_html(extra_body='<a href="http://old.example/">old</a>')))
    assert "insecure-url" in codes(findings, WARNING)
    assert "url-not-absolute" not in codes(findings)


# --------------------------------------------------------------------------- unsubscribe


def test_no_unsubscribe_link_in_the_body() -> None:
    other = "https://meridianpost.example/unsubscribe?t=someone-else"
    findings = check(message(html=good_html(unsub=other), text=good_text(unsub=other)))
    assert {"unsubscribe-not-in-html", "unsubscribe-not-in-text"} <= codes(findings, ERROR)


def test_no_list_unsubscribe_header() -> None:
    findings = check(message(drop=("List-Unsubscribe",)))
    assert "list-unsubscribe-missing" in codes(findings, ERROR)


def test_list_unsubscribe_without_https() -> None:
    findings = check(message(headers={"List-Unsubscribe": "<mailto:u@meridianpost.example>"}))
    assert "list-unsubscribe-https" in codes(findings, ERROR)


def test_no_list_unsubscribe_post() -> None:
    findings = check(message(drop=("List-Unsubscribe-Post",)))
    assert "list-unsubscribe-post-missing" in codes(findings, ERROR)
    wrong = check(message(headers={"List-Unsubscribe-Post": "List-Unsubscribe=Yes"}))
    assert "list-unsubscribe-post-value" in codes(wrong, ERROR)


def test_the_same_unsubscribe_url_for_everyone_is_flagged() -> None:
    base = SETTINGS.list.unsubscribe_url
    findings = check(
        message(
            html=good_html(unsub=base),
            text=good_text(unsub=base),
            headers={"List-Unsubscribe": f"<{base}>"},
        )
    )
    assert "unsubscribe-not-personal" in codes(findings, WARNING)
    assert "unsubscribe-not-in-html" not in codes(findings)


def test_unfilled_slot_is_an_error() -> None:
    findings = check(message(text=good_text(extra=f"Hello {placeholders.GREETING}")))
    assert "slot-unfilled" in codes(findings, ERROR)
    assert placeholders.GREETING in next(f.message for f in findings if f.code == "slot-unfilled")


# --------------------------------------------------------------------------- active content


@pytest.mark.parametrize(
    ("fragment", "code"),
    [
        ("<script>alert(1)</script>", "active-content"),
        ('<iframe src="https://evil.example/"></iframe>', "active-content"),
        ('<object data="https://x.example/a.swf"></object>', "active-content"),
        ('<embed src="https://x.example/a.swf">', "active-content"),
        ('<form action="https://x.example/"><input name="q"></form>', "active-content"),
        ('<meta http-equiv="refresh" content="0;url=https://x.example/">', "active-content"),
        ('<a href="https://x.example/" onclick="steal()">x</a>', "event-handler"),
        ('<img src="https://x.example/a.png" alt="a" onerror="steal()">', "event-handler"),
        ('<a href="javascript:alert(1)">x</a>', "active-url"),
        ('<a href=" JavaScript:alert(1)">x</a>', "active-url"),
        ('<img src="data:image/png;base64,AAAA" alt="x">', "active-url"),
        ("<mj-colum><mj-text>typo</mj-text></mj-colum>", "mjml-leftover"),
    ],
)
def test_active_content_is_an_error(fragment: str, code: str) -> None:
    findings = check(message(html=good_html(extra_body=fragment)))
    assert code in codes(findings, ERROR)


def test_script_text_does_not_count_as_visible_text() -> None:
    facts = scan_html(
        "<html><body><script>var a = '<p>hidden</p>';</script><p>seen</p></body></html>"
    )
    assert "".join(facts.visible_text) == "seen"
    assert facts.active == ["<script>"]


# --------------------------------------------------------------------------- subject and preheader


def test_overlong_subject() -> None:
    long = check(message(headers={"Subject": "A headline that goes on " * 4}))
    assert "subject-long" in codes(long, WARNING)
    absurd = check(message(headers={"Subject": "word " * 60}))
    assert "subject-too-long" in codes(absurd, ERROR)
    assert "subject-missing" in codes(check(message(drop=("Subject",))), ERROR)


def test_all_caps_subject() -> None:
    findings = check(message(headers={"Subject": "COUNCIL APPROVES TIDAL BARRIER"}))
    assert "subject-all-caps" in codes(findings, WARNING)


def test_short_or_missing_preheader() -> None:
    short = preflight(edition(preheader="Gates approved."), message(), SETTINGS)
    assert "preheader-length" in codes(short, WARNING)
    assert "preheader-not-in-html" in codes(short, WARNING)
    missing = preflight(edition(preheader=""), message(), SETTINGS)
    assert "preheader-missing" in codes(missing, WARNING)
    long = preflight(edition(preheader="word " * 40), message(), SETTINGS)
    assert "preheader-length" in codes(long, WARNING)


# --------------------------------------------------------------------------- the text part


def test_markup_in_text_part() -> None:
    findings = check(
        message(text=good_text(extra="<p>Read <a href='https://x.example/'>more</a></p>"))
    )
    assert "text-markup" in codes(findings, WARNING)
    assert "<a>" in next(f.message for f in findings if f.code == "text-markup")


def test_raw_entities_in_text_part() -> None:
    findings = check(message(text=good_text(extra="Tom &amp; Jerry&#8217;s &nbsp; day")))
    assert "text-entities" in codes(findings, WARNING)


def test_plain_text_that_only_looks_like_markup_is_fine() -> None:
    text = "Rates fell (a < b and c > d). See <https://meridianpost.example/x>. AT&T &c; R&D; 5 &lt"
    assert markup_tags(text) == []
    assert raw_entities(text) == []
    assert raw_entities("&amp; &#39; &#x27; &hellip;") == ["&#39;", "&#x27;", "&amp;", "&hellip;"]


def test_html_only_message_is_an_error() -> None:
    findings = check(message(html_only=True))
    assert "text-missing" in codes(findings, ERROR)


def test_text_part_that_differs_from_the_html() -> None:
    findings = check(message(text=f"View this email in your browser.\nUnsubscribe: {UNSUB}\n"))
    assert "text-differs" in codes(findings, WARNING)


# --------------------------------------------------------------------------- headers


def test_from_and_message_id_domains_must_match() -> None:
    findings = check(message(headers={"Message-ID": "<abc.123@mailer.other.example>"}))
    mismatch = next(f for f in findings if f.code == "message-id-domain")
    assert mismatch.level == WARNING
    assert "mailer.other.example" in mismatch.message
    assert "meridianpost.example" in mismatch.message


@pytest.mark.parametrize("header", ["Date", "Message-ID", "From", "To"])
def test_missing_required_headers(header: str) -> None:
    findings = check(message(drop=(header,)))
    assert f"{header.lower()}-missing" in codes(findings, ERROR)


def test_raw_line_problems() -> None:
    data = message()
    head, body = data.split(b"\r\n\r\n", 1)
    long_line = head + b"\r\nX-Long: " + b"a" * 1000 + b"\r\n\r\n" + body
    assert "line-too-long" in codes(check(long_line), ERROR)
    bare = head + b"\r\nX-Bare: one\ntwo\r\n\r\n" + body
    assert "bare-line-ending" in codes(check(bare), ERROR)
    eight_bit = head + "\r\nX-Name: Zoë".encode() + b"\r\n\r\n" + body
    assert "header-8bit" in codes(check(eight_bit), ERROR)


def test_recipient_address_in_urls() -> None:
    leaky = "https://meridianpost.example/unsubscribe?email=ana%40example.org&t=abc"
    findings = check(
        message(
            html=good_html(unsub=leaky),
            text=good_text(unsub=leaky),
            headers={"List-Unsubscribe": f"<{leaky}>"},
        )
    )
    assert "address-in-url" in codes(findings, WARNING)


# --------------------------------------------------------------------------- theme regressions


def test_theme_regressions_are_warnings() -> None:
    html = (
        good_html(lang="").replace('role="presentation"', "").replace("prefers-color-scheme", "x")
    )
    findings = check(message(html=html))
    assert {"html-lang", "table-role", "dark-mode-missing"} <= codes(findings, WARNING)
    assert "html-lang" in codes(check(message(html=good_html(lang='lang="und"'))), WARNING)


def test_a_block_the_dark_rules_miss_is_named_with_a_fix() -> None:
    html = good_html().replace('width="600" class="bg"', 'width="600" class="card"')
    findings = check(message(html=html))
    light = [f for f in findings if f.code == "dark-mode-light-block"]
    assert len(light) == 1
    assert light[0].level == WARNING
    assert '<table class="card"> #ffffff' in light[0].message
    assert 'css-class="bg card"' in light[0].message
    assert ".card, .card > table { background: #161b22 !important; }" in light[0].message


def test_dark_rules_darken_by_class_tag_and_combinator() -> None:
    def left(dark_css: str, body: str) -> list[str]:
        html = f"<html><head><style>@media (prefers-color-scheme: dark){{{dark_css}}}</style>"
        facts = scan_html(f"{html}</head><body>{body}</body></html>")
        return [box.path[-1][0] for box in light_blocks(facts)[0]]

    section = '<div class="s x" style="background:#fff"><table style="background:#fff">'
    section += "<tr><td><p>text</p></td></tr></table></div>"
    assert left(".s, .s > table { background: #111 !important; }", section) == []
    assert left(".s, .s table { background-color: #111 !important; }", section) == []
    assert left("div.s.x, u + .s > table { background: #111 !important; }", section) == []
    assert left(".s:hover, [data-x] .s > table { background: #111 !important; }", section) == []
    assert left(".s { background: #111 !important; }", section) == ["table"]
    assert left(".s > tr, .s { background: #111 !important; }", section) == ["table"]
    assert left(".s, .s > table { background: #eeeeee !important; }", section) == ["div", "table"]
    assert left(".s, .s > table { color: #fff !important; }", section) == ["div", "table"]
    # A chip (a button's cell, a link) is not a block; neither is a hidden element.
    chip = '<table><tr><td style="background:#fff"><a style="background:#fff">Go</a></td></tr>'
    hidden = '<div style="display:none;background:#fff"><p>preheader</p></div>'
    assert left("", chip + "</table>" + hidden) == []


def test_hidden_preheader_tricks_are_flagged() -> None:
    white = good_html(preheader_style="display:none;color:#ffffff;font-size:1px")
    findings = check(message(html=white))
    assert {"low-contrast", "invisible-text"} <= codes(findings, WARNING)
    transparent = good_html(preheader_style="color:transparent")
    assert "low-contrast" in codes(check(message(html=transparent)), WARNING)
    near = good_html(preheader_style="color:#f0f1f3")
    assert "low-contrast" in codes(check(message(html=near)), WARNING)


def test_readable_grey_text_is_not_low_contrast() -> None:
    facts = scan_html(
        '<body bgcolor="#ffffff"><font color="#52606d">readable</font>'
        '<div style="background:#12355b;color:#ffffff">white on navy</div></body>'
    )
    assert facts.low_contrast == []
    facts = scan_html(
        '<table bgcolor="white"><tr><td><font color="#fefefe">hidden</font></td></tr></table>'
    )
    assert [text for text, _fg, _bg in facts.low_contrast] == ["hidden"]


def test_short_html_with_images_is_flagged() -> None:
    html = (
        '<html lang="en"><body><a href="https://x.example/"><img src="https://x.example/a.png" '
        f'alt="Sale"></a><a href="{UNSUB}">Unsubscribe</a></body></html>'
    )
    findings = check(message(html=html, text=f"Sale https://x.example/\nUnsubscribe {UNSUB}\n"))
    assert "image-only" in codes(findings, WARNING)


def test_external_stylesheet_is_a_warning() -> None:
    html = good_html(head_extra='<link rel="stylesheet" href="https://fonts.example/css">')
    assert "external-stylesheet" in codes(check(message(html=html)), WARNING)


# --------------------------------------------------------------------------- errors stop a send


def test_raise_for_errors_lists_every_error() -> None:
    findings = check(message(drop=("List-Unsubscribe-Post", "Date")))
    with pytest.raises(PreflightError) as caught:
        raise_for_errors(findings)
    text = str(caught.value)
    assert "list-unsubscribe-post-missing" in text
    assert "date-missing" in text
    assert "nothing was sent" in text
    raise_for_errors([f for f in findings if f.level == WARNING])


def test_sample_subscriber_is_on_the_sender_domain() -> None:
    assert sample_subscriber(SETTINGS).email.endswith("@meridianpost.example")


# --------------------------------------------------------------------------- DKIM


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RSA key made for this module."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to generate a test key")
    path = tmp_path_factory.mktemp("dkim") / "key.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True
    )
    return path


def _with_dkim(key_file: Path, domain: str) -> Settings:
    dkim_settings, problems = parse_dkim(
        {"selector": "s1", "domain": domain, "key_file": str(key_file)}, key_file.parent, environ={}
    )
    assert problems == []
    return SettingsWithDkim(dkim=dkim_settings)


def test_configured_dkim_signs_and_verifies_the_sample(key_file: Path) -> None:
    findings = preflight(edition(), message(), _with_dkim(key_file, "meridianpost.example"))
    assert codes(findings) == set()


def test_dkim_domain_that_does_not_align_is_an_error(key_file: Path) -> None:
    findings = preflight(edition(), message(), _with_dkim(key_file, "bulkmailer.example"))
    assert "dkim-alignment" in codes(findings, ERROR)


# --------------------------------------------------------------------------- link checking


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: list[tuple[str, str]]

    def _answer(self, method: str) -> None:
        self.hits.append((method, self.path))
        path = self.path.partition("?")[0]
        if path == "/slow":
            time.sleep(2)
        if path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/ok")
        elif path == "/tofile":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
        elif path == "/nohead" and method == "HEAD":
            self.send_response(405)
        elif path in ("/ok", "/nohead", "/img.png"):
            self.send_response(200)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A real HTTP server on a free loopback port, recording every request."""
    hits: list[tuple[str, str]] = []
    handler = type("Handler", (_Handler,), {"hits": hits})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def _linked(base: str) -> Callable[[bool], list[Finding]]:
    """A message whose every http(s) URL points at the local server."""
    unsub = f"{base}/unsubscribe?t=opaque"
    links = "".join(
        f'<a href="{base}{p}">{p}</a> ' for p in ("/ok", "/missing", "/nohead", "/moved")
    )
    image = f'<img src="{base}/img.png" alt="chart">'
    html = good_html(unsub=unsub, extra_body=links, image=image)
    html = html.replace("https://meridianpost.example/", f"{base}/ok?")
    text = good_text(unsub=unsub).replace("https://meridianpost.example/", f"{base}/ok?")
    assert "meridianpost.example/" not in html
    data = message(html=html, text=text, headers={"List-Unsubscribe": f"<{unsub}>"})

    def run(check_links: bool) -> list[Finding]:
        return preflight(edition(), data, SETTINGS, check_links=check_links)

    return run


def test_links_are_not_checked_by_default(server: tuple[str, list[tuple[str, str]]]) -> None:
    base, hits = server
    findings = _linked(base)(False)
    assert hits == []
    assert "link-broken" not in codes(findings)


def test_link_check_reports_broken_links_only(server: tuple[str, list[tuple[str, str]]]) -> None:
    base, hits = server
    findings = _linked(base)(True)
    broken = [f for f in findings if f.code == "link-broken"]
    assert all(f.level == WARNING for f in broken)
    assert len(broken) == 1
    assert "/missing" in broken[0].message
    assert "404" in broken[0].message
    paths = {path.partition("?")[0] for _method, path in hits}
    assert {"/ok", "/missing", "/nohead", "/moved", "/img.png"} <= paths
    assert ("GET", "/nohead") in hits
    assert not any(path.startswith("/unsubscribe") for path in paths)
    assert all(method in ("HEAD", "GET") for method, _path in hits)


def test_unreachable_and_slow_links(server: tuple[str, list[tuple[str, str]]]) -> None:
    base, _hits = server
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    problem = probe_link(f"http://127.0.0.1:{closed_port}/x", timeout=2)
    assert problem is not None
    assert problem.startswith("unreachable")
    started = time.monotonic()
    slow = probe_link(f"{base}/slow", timeout=0.5)
    assert slow is not None
    assert slow.startswith("unreachable")
    assert time.monotonic() - started < 1.8
    assert probe_link("file:///etc/passwd") == "not an http(s) URL"
    redirect = probe_link(f"{base}/tofile", timeout=2)
    assert redirect is not None
    assert "redirect" in redirect


def test_link_check_stops_at_its_time_budget(server: tuple[str, list[tuple[str, str]]]) -> None:
    base, hits = server
    urls = [f"{base}/slow?{n}" for n in range(6)]
    started = time.monotonic()
    findings = probe_links(urls, timeout=5, workers=2, budget=0.5)
    assert time.monotonic() - started < 5
    assert len(hits) == 2
    truncated = [f for f in findings if f.code == "links-truncated"]
    assert len(truncated) == 1
    assert "4 link(s)" in truncated[0].message


# --------------------------------------------------------------------------- the real pipeline


def test_real_sample_edition_passes_preflight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None)
    now = datetime.fromisoformat("2026-03-04T18:00:00+05:30")
    result = build_edition(settings, BuildOptions(now=now))
    sample = MessageFactory(result.edition, settings).build(sample_subscriber(settings))
    findings = preflight(result.edition, sample.data, settings)
    for finding in findings:
        print(finding)
    assert [f for f in findings if f.level == ERROR] == []
    assert not {"html-lang", "table-role", "dark-mode-missing", "image-alt-missing"} & codes(
        findings
    )
