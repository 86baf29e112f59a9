"""One message through the relay outside a send: its own connection, no ledger.

For a message the service sends at a reader's request (a subscription confirmation).
The connection is opened with the same TLS, login and checks as a send's
(``connection.Connection``) and the message goes through the same transaction
(``transaction.transact``). A temporary failure (a 4xx, a dropped connection, a server
that cannot be reached now) is tried again a few times after a short wait; a refusal or
a setup problem no retry fixes raises ``DeliveryError`` at once. A message whose answer
was lost is sent again: a second copy of a single notice does no harm.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from newsletter.config.settings import SmtpSettings
from newsletter.delivery.smtp.connection import ConnectFailed, Connection, Fatal, Relay
from newsletter.delivery.smtp.outcome import Kind
from newsletter.delivery.smtp.replies import Scrubber
from newsletter.delivery.smtp.settings import check_envelope_from, check_smtp_settings, tls_context
from newsletter.delivery.smtp.transaction import transact, utf8_problem
from newsletter.errors import DeliveryError
from newsletter.models import OutgoingMessage

TRIES = 3
WAIT = 2.0  # seconds before the second try; doubled before the third


def _nothing_to_settle(_ticket: int) -> None:
    """No ledger: nothing must be durable before the data goes out."""


def relay_for(smtp: SmtpSettings, envelope_from: str, local_hostname: str = "") -> Relay:
    """Check the settings and describe the relay (``ConfigError`` for unusable settings)."""
    check_smtp_settings(smtp)
    check_envelope_from(envelope_from)
    return Relay(
        smtp=smtp,
        envelope_from=envelope_from,
        scrub=Scrubber(smtp.username, smtp.password),
        clock=time.monotonic,
        context=tls_context(smtp),
        local_hostname=local_hostname or socket.getfqdn(),
    )


def send_single(
    relay: Relay,
    message: OutgoingMessage,
    *,
    tries: int = TRIES,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Hand ``message`` to the relay; return its reply, or raise ``DeliveryError`` saying why."""
    connection = Connection(relay, threading.Event())
    last = ""
    try:
        for attempt in range(max(1, tries)):
            if attempt:
                sleep(WAIT * 2 ** (attempt - 1))
            try:
                client = connection.client()
            except Fatal as err:
                raise DeliveryError(str(err)) from None
            except ConnectFailed as err:
                last = str(err)
                continue
            problem = utf8_problem(client, message, relay)
            if problem is not None:
                raise DeliveryError(problem.reply)
            result = transact(client, message, 0, relay, _nothing_to_settle)
            if result.kind is Kind.SENT:
                return result.reply
            if result.kind in (Kind.FAILED, Kind.FATAL):
                raise DeliveryError(result.reply)
            last = result.reply
            connection.discard()
    finally:
        connection.close()
    raise DeliveryError(f"{relay.where} did not take the message after {tries} tries ({last})")
