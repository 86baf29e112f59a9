"""One message through an open SMTP session: MAIL, one RCPT and DATA, and what the replies mean.

One message per transaction (exactly one RCPT). SMTPUTF8 is asked for when an address
is not ASCII (if the server does not offer it, that recipient fails with a clear reply)
and BODY=8BITMIME when the data is not 7-bit and the server offers it. The envelope
sender is the message's own when it has one (a VERP return path), else the run's.

With PIPELINING on offer, MAIL, RCPT and DATA go out in one write (RFC 2920), so a
message costs two round trips; otherwise each command waits for its reply.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable

from newsletter.delivery.smtp.connection import Relay
from newsletter.delivery.smtp.outcome import Kind, Result
from newsletter.delivery.smtp.replies import error_text, reply_text
from newsletter.models import OutgoingMessage
from newsletter.wire import END_OF_DATA, data_payload


def transact(
    client: smtplib.SMTP,
    message: OutgoingMessage,
    ticket: int,
    relay: Relay,
    settle: Callable[[int], None],
) -> Result:
    """Run MAIL, one RCPT and DATA for one message; classify the outcome.

    ``settle(ticket)`` returns once the last ledger write that must be durable before the
    message data goes out (the recipient's claim, and earlier outcomes) is; ``Ledger.settle``
    for a send. With PIPELINING the three commands go in one write.
    """
    payload = message.payload if message.payload is not None else data_payload(message.data)
    sender = message.envelope_from or relay.envelope_from
    needs_utf8 = not (sender.isascii() and message.recipient.isascii())
    options = []
    if client.has_extn("size"):
        options.append(f"SIZE={len(payload)}")
    if not payload.isascii() and client.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if needs_utf8:
        options.append("SMTPUTF8")
    client.command_encoding = "utf-8" if needs_utf8 else "ascii"
    tail = "".join(f" {option}" for option in options)
    commands = (
        ("MAIL", f"MAIL FROM:<{sender}>{tail}\r\n", (250,)),
        ("RCPT", f"RCPT TO:<{message.recipient}>\r\n", (250, 251)),
        ("DATA", "DATA\r\n", (354,)),
    )
    stage = "MAIL"
    began = relay.clock()
    try:
        if client.has_extn("pipelining"):
            client.send("".join(command for _, command, _ in commands))
            refusal = _pipelined_replies(client, commands, relay)
        else:
            refusal = _step_by_step(client, commands, relay)
        if refusal is not None:
            return refusal
        stage = "message"
        settle(ticket)
        began = relay.clock()
        client.send(payload)
        stage = "reply"
        code, text = client.getreply()
    except _Lost as lost:
        reply = _lost_reply(lost.stage, lost.__cause__ or lost, relay.clock() - began, relay)
        return Result(Kind.RECONNECT, reply)
    except (smtplib.SMTPServerDisconnected, OSError) as err:
        kind = Kind.UNKNOWN if stage == "reply" else Kind.RECONNECT
        return Result(kind, _lost_reply(stage, err, relay.clock() - began, relay))
    if 200 <= code < 300:
        return Result(Kind.SENT, reply_text(code, text, relay.scrub))
    return _refused(client, "end of data", code, text, relay)


def _lost_reply(stage: str, err: BaseException, waited: float, relay: Relay) -> str:
    """Describe a dropped connection; one silent for the whole timeout is said to be so."""
    if waited >= relay.smtp.timeout:
        return f"no answer during {stage} within {relay.smtp.timeout:g} s (smtp.timeout)"
    return f"connection lost during {stage} ({error_text(err, relay.scrub)})"


_Commands = tuple[tuple[str, str, tuple[int, ...]], ...]


class _Lost(Exception):
    """The connection dropped while reading the reply to ``stage``."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


def _step_by_step(client: smtplib.SMTP, commands: _Commands, relay: Relay) -> Result | None:
    """Send each command and wait for its reply; return the first refusal, if any."""
    for stage, command, wanted in commands:
        try:
            client.send(command)
            code, text = client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as err:
            raise _Lost(stage) from err
        if code not in wanted:
            return _refused(client, stage, code, text, relay)
    return None


def _pipelined_replies(client: smtplib.SMTP, commands: _Commands, relay: Relay) -> Result | None:
    """Read the replies to commands sent in one write; return the first refusal, if any.

    A 421 ends the reading (the server is closing). A server that answers DATA with 354
    after refusing MAIL or RCPT gets an empty message end, so the session stays in step.
    """
    refusal: tuple[str, int, bytes] | None = None
    for stage, _, wanted in commands:
        try:
            code, text = client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as err:
            raise _Lost(stage) from err
        if code == 421:
            return _refused(client, stage, code, text, relay)
        if code not in wanted and refusal is None:
            refusal = (stage, code, text)
        if stage == "DATA" and code == 354 and refusal is not None:
            try:
                client.send(END_OF_DATA)
                client.getreply()
            except (smtplib.SMTPServerDisconnected, OSError) as err:
                raise _Lost(stage) from err
    if refusal is None:
        return None
    return _refused(client, *refusal, relay)


def _refused(client: smtplib.SMTP, stage: str, code: int, text: bytes, relay: Relay) -> Result:
    reply = reply_text(code, text, relay.scrub)
    if code == 421 or not 400 <= code < 600:
        return Result(Kind.RECONNECT, f"{reply} (to {stage})")
    if stage != "end of data":
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            return Result(Kind.RECONNECT, f"{reply} (to {stage}; reset failed)")
    if stage == "MAIL":
        if code >= 500:
            return Result(
                Kind.FATAL,
                f"{relay.where} refused the sender <{relay.envelope_from}> ({reply}); no recipient "
                "is at fault: check smtp.envelope_from, smtp.username and the relay's "
                "settings, then run send again to resume",
            )
        return Result(Kind.RECONNECT, f"{reply} (to MAIL)")
    return Result(Kind.FAILED if code >= 500 else Kind.RETRY, reply)


UNUSABLE_ADDRESS = Result(
    Kind.FAILED,
    "local: not an address that can be sent to (it contains spaces, control characters or "
    "angle brackets, or has no @); fix it in the subscriber list",
)


def utf8_problem(client: smtplib.SMTP, message: OutgoingMessage, relay: Relay) -> Result | None:
    """Catch a non-ASCII address the server could not take (no SMTPUTF8) before sending."""
    if client.has_extn("smtputf8"):
        return None
    if not relay.envelope_from.isascii():
        return Result(
            Kind.FATAL,
            f"{relay.where} does not offer SMTPUTF8, which the non-ASCII envelope sender "
            f"<{relay.envelope_from}> needs; use an ASCII smtp.envelope_from",
        )
    if not message.recipient.isascii():
        return Result(
            Kind.FAILED,
            f"local: {relay.where} does not offer SMTPUTF8, which this non-ASCII address needs; "
            "a relay that supports SMTPUTF8 can deliver it",
        )
    return None
