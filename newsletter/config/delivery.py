"""The ``[sender]``, ``[list]``, ``[smtp]`` and ``[send]`` tables: who mails, to which list,
through what, and how soon again.

The SMTP password is never read from the file: it comes from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping

from newsletter.config.reader import TableReader
from newsletter.config.settings import (
    ENV_SMTP_PASSWORD,
    ListSettings,
    Sender,
    SendRules,
    SmtpSettings,
)


def read_sender(top: TableReader, publication_name: str) -> Sender:
    """Read ``[sender]``; the name defaults to the publication's."""
    s = top.table("sender")
    sender = Sender(
        name=s.text("name", publication_name),
        address=s.address("address", "", required=True),
        reply_to=s.address("reply_to", ""),
    )
    s.finish()
    return sender


def read_list(top: TableReader, publication_name: str) -> ListSettings:
    """Read ``[list]``: the List-Id and the unsubscribe endpoints."""
    li = top.table("list")
    list_settings = ListSettings(
        id=li.text("id", ""),
        name=li.text("name", publication_name),
        unsubscribe_url=li.url("unsubscribe_url", "", required=True),
        unsubscribe_mailto=li.address("unsubscribe_mailto", ""),
    )
    if not list_settings.id or any(ch in list_settings.id for ch in " <>\r\n@"):
        li.problem(
            "id", "required, a dotted name without spaces such as 'daily.example.org' (List-Id)"
        )
    li.finish()
    return list_settings


def read_smtp(top: TableReader, environ: Mapping[str, str]) -> SmtpSettings:
    """Read ``[smtp]``, the password from $NEWSLETTER_SMTP_PASSWORD."""
    m = top.table("smtp")
    smtp = SmtpSettings(
        host=m.text("host", ""),
        port=m.whole("port", 0, 0, 65535),
        security=m.choice("security", "starttls", ("starttls", "ssl", "none")),
        username=m.text("username", ""),
        password=environ.get(ENV_SMTP_PASSWORD, ""),
        verify=m.flag("verify", True),
        allow_insecure=m.flag("allow_insecure", False),
        timeout=m.number("timeout", 30.0, 1, 600),
        pool=m.whole("pool", 4, 1, 64),
        rate=m.number("rate", 0.0, 0, 100000),
        max_per_connection=m.whole("max_per_connection", 1000, 1, 10**7),
        retries=m.whole("retries", 5, 0, 100),
        envelope_from=m.address("envelope_from", ""),
        in_flight=m.choice("in_flight", "resend", ("resend", "hold")),
    )
    if "password" in m.data:
        m.seen.add("password")
        m.problem(
            "password", f"do not put the password in the file; set {ENV_SMTP_PASSWORD} instead"
        )
    m.finish()
    return smtp


def read_send(top: TableReader) -> SendRules:
    """Read ``[send]``: how soon a send by hand may start a new edition after the last."""
    t = top.table("send")
    defaults = SendRules()
    rules = SendRules(
        min_interval_hours=t.number("min_interval_hours", defaults.min_interval_hours, 0, 24 * 365),
    )
    t.finish()
    return rules
