"""SMTP settings for a live send: every reason they cannot send, and their TLS context."""

from __future__ import annotations

import logging
import math
import re
import ssl

from newsletter.config.settings import ENV_SMTP_PASSWORD, SmtpSettings
from newsletter.errors import ConfigError
from newsletter.hosts import is_loopback

log = logging.getLogger(__name__)

SECURITY_MODES = ("starttls", "ssl", "none")
IN_FLIGHT_POLICIES = ("resend", "hold")

_UNUSABLE = re.compile(r"[\s<>\x00-\x1f\x7f]")


def usable_address(address: str) -> bool:
    """Tell whether an address can go into MAIL FROM / RCPT TO as is."""
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and not _UNUSABLE.search(address)


def check_smtp_settings(smtp: SmtpSettings) -> None:
    """Raise ``ConfigError`` listing every reason these settings cannot send."""
    host = smtp.host.strip()
    if not host:
        raise ConfigError(
            'smtp.host: not set, so there is no server to send through; add host = "smtp.'
            'example.org" under [smtp] in newsletter.toml (or pass --smtp-host), or use '
            "--dry-run to write the messages to files instead"
        )
    problems: list[str] = []
    if _UNUSABLE.search(host) or any(c in host for c in "/@,;"):
        problems.append(f"smtp.host: {host!r} is not a host name or IP address")
    if smtp.security not in SECURITY_MODES:
        problems.append(
            f"smtp.security: {smtp.security!r} is not one of {', '.join(SECURITY_MODES)}"
        )
    if not 0 <= smtp.port <= 65535:
        problems.append(f"smtp.port: {smtp.port} is not a port number (1 to 65535)")
    if smtp.security == "none" and not is_loopback(host) and not smtp.allow_insecure:
        what = "messages and the password" if smtp.username else "messages"
        problems.append(
            f'smtp.security = "none" would send {what} to {host} unencrypted; use starttls '
            "(port 587) or ssl (port 465), or set smtp.allow_insecure = true if the network "
            "to the relay is trusted"
        )
    if smtp.username and not smtp.password:
        problems.append(
            f"smtp.username is set but {ENV_SMTP_PASSWORD} is empty; export the password "
            "in that environment variable"
        )
    problems.extend(_limit_problems(smtp))
    if problems:
        raise ConfigError(problems)


def _limit_problems(smtp: SmtpSettings) -> list[str]:
    problems = []
    if smtp.pool < 1:
        problems.append(f"smtp.pool: {smtp.pool} connections; use at least 1")
    if not (math.isfinite(smtp.rate) and smtp.rate >= 0):
        problems.append(f"smtp.rate: {smtp.rate}; use messages per second, 0 = no limit")
    if not (math.isfinite(smtp.timeout) and smtp.timeout > 0):
        problems.append(f"smtp.timeout: {smtp.timeout} must be a positive number of seconds")
    if smtp.max_per_connection < 1:
        problems.append(f"smtp.max_per_connection: {smtp.max_per_connection}; use at least 1")
    if smtp.retries < 0:
        problems.append(f"smtp.retries: {smtp.retries}; use 0 or more")
    if smtp.in_flight not in IN_FLIGHT_POLICIES:
        problems.append(
            f"smtp.in_flight: {smtp.in_flight!r} is not one of {', '.join(IN_FLIGHT_POLICIES)}"
        )
    return problems


def check_envelope_from(address: str) -> None:
    """Raise ``ConfigError`` if ``address`` cannot be the envelope sender."""
    if not usable_address(address):
        raise ConfigError(
            f"envelope sender {address!r} is not a usable address; set smtp.envelope_from "
            "(or sender.address) to a plain address like bounces@example.org"
        )


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext | None:
    """Return the TLS context these settings ask for, or ``None`` when they ask for none."""
    if smtp.security == "none":
        return None
    context = ssl.create_default_context()
    if not smtp.verify:
        log.warning(
            "smtp.verify = false: the certificate of %s is not checked, so anyone on the "
            "path can read the mail and the password; use this only for testing",
            smtp.host,
        )
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
