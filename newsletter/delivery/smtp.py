"""Live delivery: a pool of reused SMTP connections, one shared rate limit, retries, a ledger.

``send_messages`` hands finished messages to a relay. How each reply is treated:

- 2xx after the data: ``sent`` (the reply is stored).
- 5xx to RCPT or DATA: ``failed`` for that recipient, with the reply; final, never retried.
- 4xx to RCPT or DATA: retried later with exponential backoff and jitter, up to
  ``smtp.retries`` times, then ``deferred`` (tried again by the next run).
- 421, timeouts, dropped connections, 4xx to MAIL: the connection is dropped, the
  worker backs off and reconnects, the message is retried like a 4xx.
- A run-level problem pauses the run instead of failing anyone: the server refuses the
  sender (5xx to MAIL: no recipient is at fault), authentication or the TLS certificate
  fails, STARTTLS is not offered, the server cannot be reached after ``smtp.retries``
  tries, ``BREAKER_THRESHOLD`` connection-level failures happen in a row, or
  ``REFUSAL_THRESHOLD`` recipients in a row are refused (a relay that denies relaying
  refuses everyone). Nothing left is marked failed; running the send again resumes.

One message per transaction (exactly one RCPT). SMTPUTF8 is asked for when an address
is not ASCII (if the server does not offer it, that recipient fails with a clear reply)
and BODY=8BITMIME when the data is not 7-bit and the server offers it. The password is
never logged and is scrubbed from every reply, reason and error this module produces.

With PIPELINING on offer, MAIL, RCPT and DATA go out in one write (RFC 2920), so a
message costs two round trips; otherwise each command waits for its reply.

The ledger is written around every transaction (see ``newsletter.delivery.ledger`` for
the crash guarantee and the ``smtp.in_flight`` policy): each recipient is claimed before
the message data goes out. Under ``resend`` each connection claims the next
``CLAIM_AHEAD`` messages ahead, so their claims are on disk by the time they are sent
(at a crash they are simply sent on the next run; at a stop they are handed back);
under ``hold`` each is claimed just before its transaction. When the connection drops
after the whole message was sent but before the server's answer, the outcome is unknown:
under ``resend`` the message is retried, under ``hold`` it stays ``in_flight`` (held).

``progress(email, state)`` is called once per recipient with ``sent``, ``failed``,
``deferred``, ``skipped`` or ``held``. It runs on the worker threads, one call at a time
(calls are serialized by a lock), so it needs no locking of its own; it must return
quickly and must not call back into this module. An exception it raises stops the run
and is re-raised by ``send_messages``.
"""

from __future__ import annotations

import base64
import collections
import enum
import heapq
import itertools
import logging
import math
import random
import re
import select
import smtplib
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from newsletter.config import ENV_SMTP_PASSWORD, SmtpSettings
from newsletter.errors import ConfigError
from newsletter.hosts import is_loopback
from newsletter.messages import dot_stuff
from newsletter.models import OutgoingMessage
from newsletter.state.api import Ledger, normalize_email

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0  # seconds before the first retry; doubled each time, with jitter
BACKOFF_CAP = 60.0  # no wait between retries is longer than this
BREAKER_THRESHOLD = 20  # connection-level failures in a row that pause the run
REFUSAL_THRESHOLD = 50  # permanent refusals in a row that pause the run
IDLE_CHECK = 5.0  # a pooled connection idle this long is checked with NOOP before use
HANG_UP_CHECK = 0.05  # one idle this long is checked for a server that closed it
SLEEP_SLICE = 0.1  # waits are cut into slices this long to notice a stop quickly
MAX_REPLY = 500
CLAIM_AHEAD = 4  # under in_flight = "resend", messages each connection claims ahead
UNRECORDED = 3  # accepted messages per connection that may lack their "sent" record

SECURITY_MODES = ("starttls", "ssl", "none")
IN_FLIGHT_POLICIES = ("resend", "hold")

Progress = Callable[[str, str], None]

_ANY_EOL = re.compile(rb"\r\n|\r|\n")
_UNUSABLE = re.compile(r"[\s<>\x00-\x1f\x7f]")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SendSummary:
    """What one run of ``send_messages`` did."""

    edition_id: str
    sent: int
    failed: int
    deferred: int
    skipped: int
    held: int
    seconds: float
    paused: bool
    pause_reason: str

    @property
    def rate(self) -> float:
        """Messages accepted per second over the run."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON-ready values, the rate included."""
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["rate"] = round(self.rate, 2)
        return data


class _Kind(enum.Enum):
    SENT = "sent"
    FAILED = "failed"  # permanent, for this recipient
    RETRY = "retry"  # temporary, for this recipient
    RECONNECT = "reconnect"  # temporary, for the connection or the server
    UNKNOWN = "unknown"  # the data went out, the answer was lost
    FATAL = "fatal"  # a run-level problem: pause


@dataclass(frozen=True)
class _Result:
    kind: _Kind
    reply: str


class _ConnectFailed(Exception):
    """A connection could not be made now; it may work later."""


class _Fatal(Exception):
    """A problem no retry will fix: the run pauses with this reason."""


# --------------------------------------------------------------------------- settings


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


def _check_envelope_from(address: str) -> None:
    if not usable_address(address):
        raise ConfigError(
            f"envelope sender {address!r} is not a usable address; set smtp.envelope_from "
            "(or sender.address) to a plain address like bounces@example.org"
        )


def _tls_context(smtp: SmtpSettings) -> ssl.SSLContext | None:
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


# --------------------------------------------------------------------------- small parts


class _Scrubber:
    """Remove the password (and its base64 forms as sent by AUTH) from any text."""

    def __init__(self, username: str, password: str) -> None:
        secrets: set[str] = set()
        if len(password) >= 3:
            secrets.add(password)
            plain = f"\0{username}\0{password}"
            for raw in (password, plain, username + plain):
                secrets.add(base64.b64encode(raw.encode("utf-8")).decode("ascii"))
        self._secrets = sorted(secrets, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _payload(data: bytes) -> bytes:
    """Return the DATA bytes: CRLF line ends only, leading dots doubled, the final dot."""
    if not data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r"):
        data = _ANY_EOL.sub(b"\r\n", data)
    data = dot_stuff(data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    text = " ".join(text.split())
    return f"{code} {text}".strip()[:MAX_REPLY]


def _error_text(err: BaseException) -> str:
    if isinstance(err, smtplib.SMTPResponseException):
        return _reply(err.smtp_code, err.smtp_error)
    text = str(err) or type(err).__name__
    return " ".join(text.split())[:MAX_REPLY]


class _RateLimiter:
    """Hand out send times spaced 1/rate apart, shared by every connection of a run."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._next: float | None = None

    def reserve(self) -> float:
        """Return the time at which the caller may start its next transaction."""
        with self._lock:
            now = self._clock()
            if not self._interval:
                return now
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + self._interval
            return slot


# --------------------------------------------------------------------------- run state


@dataclass
class _Item:
    message: OutgoingMessage
    key: str
    failures: int = 0  # failed tries in this run
    reply: str = ""  # the last failure
    recorded: bool = True  # whether the ledger already has the last failure
    ticket: int = 0  # the ledger ticket of a claim made ahead of the attempt, if any


@dataclass
class _Run:
    """State shared by the workers of one run: counts, the breaker, the pause."""

    edition_id: str
    smtp: SmtpSettings
    ledger: Ledger
    envelope_from: str
    stop: threading.Event
    progress: Progress | None
    scrub: _Scrubber
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    backoff_base: float
    backoff_cap: float
    breaker: int
    context: ssl.SSLContext | None
    local_hostname: str
    counts: dict[str, int] = field(default_factory=dict)
    pause_reason: str = ""
    error: BaseException | None = None
    connected: bool = False
    _conn_failures: int = 0
    _refusals: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _progress_lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=random.Random)

    @property
    def where(self) -> str:
        return f"{self.smtp.host}:{self.smtp.effective_port}"

    def halted(self) -> bool:
        return self.stop.is_set() or bool(self.pause_reason) or self.error is not None

    def pause(self, reason: str) -> None:
        with self._lock:
            if not self.pause_reason:
                self.pause_reason = self.scrub(reason)
                log.warning("sending paused: %s", self.pause_reason)

    def fail(self, err: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = err

    def outcome(self, email: str, state: str) -> None:
        with self._lock:
            self.counts[state] = self.counts.get(state, 0) + 1
        if self.progress is not None:
            with self._progress_lock:
                self.progress(email, state)

    def backoff(self, failures: int) -> float:
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, failures - 1))
        return delay * (0.5 + self._rng.random() / 2)

    def went_well(self) -> None:
        with self._lock:
            self._conn_failures = 0
            self._refusals = 0

    def connection_failed(self, reply: str) -> None:
        with self._lock:
            self._conn_failures += 1
            count = self._conn_failures
        if count >= self.breaker:
            self.pause(
                f"the server at {self.where} failed {count} times in a row (last: {reply}); "
                "nothing more was sent; run send again to resume"
            )

    def refused(self, reply: str) -> None:
        with self._lock:
            self._refusals += 1
            count = self._refusals
        if count >= REFUSAL_THRESHOLD:
            self.pause(
                f"the server at {self.where} refused {count} recipients in a row (last: "
                f"{reply}); this looks like a relay or policy problem rather than bad "
                "addresses: check the relay's settings (relaying, authentication, sender "
                "domain); the refused ones are recorded failed; run send again to resume"
            )


class _Work:
    """The messages still to try: due retries first, then the next fresh message."""

    def __init__(
        self, messages: Iterable[OutgoingMessage], known: dict[str, str], run: _Run
    ) -> None:
        self._fresh: Iterator[OutgoingMessage] | None = iter(messages)
        self._known = known
        self._run = run
        self._seen: set[str] = set()
        self._retries: list[tuple[float, int, _Item]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()

    def take(self) -> tuple[_Item | None, float]:
        """Return a message to try, or ``(None, wait)``: retry in ``wait`` s, or 0 when done."""
        with self._lock:
            now = self._run.clock()
            if self._retries and self._retries[0][0] <= now:
                return heapq.heappop(self._retries)[2], 0.0
            item = self._next_fresh()
            if item is not None:
                return item, 0.0
            if self._retries:
                return None, max(self._retries[0][0] - now, 1e-3)
            return None, 0.0

    def _next_fresh(self) -> _Item | None:
        while self._fresh is not None:
            message = next(self._fresh, None)
            if message is None:
                self._fresh = None
                break
            key = normalize_email(message.recipient)
            verdict = self._verdict(key)
            if verdict is None:
                self._seen.add(key)
                return _Item(message, key)
            log.debug("%s: %s", message.recipient, verdict)
            self._run.outcome(message.recipient, verdict)
        return None

    def take_fresh(self, limit: int) -> list[_Item]:
        """Return up to ``limit`` messages not tried yet in this run (no retries)."""
        items: list[_Item] = []
        with self._lock:
            while len(items) < limit:
                item = self._next_fresh()
                if item is None:
                    break
                items.append(item)
        return items

    def _verdict(self, key: str) -> str | None:
        if key in self._seen:
            return "skipped"
        state = self._known.get(key)
        if state in ("sent", "failed"):
            return "skipped"
        if state == "in_flight" and self._run.smtp.in_flight == "hold":
            return "held"
        return None

    def retry(self, item: _Item, due: float) -> None:
        with self._lock:
            heapq.heappush(self._retries, (due, next(self._order), item))

    def drain(self) -> list[_Item]:
        with self._lock:
            items = [entry[2] for entry in self._retries]
            self._retries.clear()
            return items


# --------------------------------------------------------------------------- connections


def _hung_up(client: smtplib.SMTP) -> bool:
    """Tell whether the server closed the session or sent something unasked (a 421)."""
    sock = client.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _kernel_timeouts(client: smtplib.SMTP, seconds: float) -> None:
    """Have the kernel time out sends and receives (Linux), not Python.

    A Python socket timeout costs a poll() before every send and receive, each a
    round through the interpreter lock, which several sending threads feel. A receive
    that times out then reads as a closed connection (see ``_lost_reply``).
    """
    sock = client.sock
    if sock is None or not sys.platform.startswith("linux"):
        return
    whole = int(seconds)
    timeval = struct.pack("@ll", whole, int((seconds - whole) * 1_000_000))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    except OSError:
        return
    sock.settimeout(None)


class _Connection:
    """One worker's SMTP session: opened lazily, reused, renewed when used up or broken."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._client: smtplib.SMTP | None = None
        self._used = 0
        self._last = 0.0

    def client(self) -> smtplib.SMTP:
        """Return a working session; raise ``_ConnectFailed`` or ``_Fatal``."""
        if self._client is not None and self._used >= self._run.smtp.max_per_connection:
            self.close()
        idle = self._run.clock() - self._last
        if self._client is not None and idle >= HANG_UP_CHECK and _hung_up(self._client):
            log.debug("%s closed a pooled connection; opening another", self._run.where)
            self.discard()
        if self._client is not None and idle > IDLE_CHECK:
            self._check_alive()
        if self._client is None:
            self._client = self._open()
            self._used = 0
            self._run.connected = True
        self._last = self._run.clock()
        return self._client

    def _check_alive(self) -> None:
        assert self._client is not None
        try:
            code, _ = self._client.noop()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self.discard()

    def used_once(self) -> None:
        self._used += 1
        self._last = self._run.clock()

    def discard(self) -> None:
        """Drop the connection without a goodbye (it is broken or in an unknown state)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        """Say goodbye (QUIT) and close."""
        if self._client is None:
            return
        try:
            self._client.quit()
        except (smtplib.SMTPException, OSError):
            log.debug("QUIT to %s failed; closing anyway", self._run.where)
        finally:
            self._client.close()
            self._client = None

    def _open(self) -> smtplib.SMTP:
        run, smtp = self._run, self._run.smtp
        try:
            if smtp.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    smtp.host,
                    smtp.effective_port,
                    local_hostname=run.local_hostname,
                    timeout=smtp.timeout,
                    context=run.context,
                )
            else:
                client = smtplib.SMTP(
                    smtp.host,
                    smtp.effective_port,
                    local_hostname=run.local_hostname,
                    timeout=smtp.timeout,
                )
        except (OSError, smtplib.SMTPException) as err:
            raise self._classify(err, "connect to") from err
        try:
            # Whole commands and messages go out in single writes: Nagle only adds delay.
            if client.sock is not None:
                client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._greet(client)
        except (OSError, smtplib.SMTPException) as err:
            client.close()
            raise self._classify(err, "set up a session with") from err
        except _Fatal:
            client.close()
            raise
        _kernel_timeouts(client, smtp.timeout)
        log.debug("connected to %s", run.where)
        return client

    def _greet(self, client: smtplib.SMTP) -> None:
        smtp = self._run.smtp
        client.ehlo_or_helo_if_needed()
        if smtp.security == "starttls":
            if not client.has_extn("starttls"):
                raise _Fatal(
                    f"{self._run.where} does not offer STARTTLS, and sending in the clear was "
                    'not allowed; set smtp.security = "ssl" if this port speaks TLS from the '
                    'start (usually 465), or "none" only for a relay on this machine'
                )
            client.starttls(context=self._run.context)
            client.ehlo()
        if smtp.username:
            if not client.has_extn("auth"):
                raise _Fatal(
                    f"{self._run.where} does not offer AUTH, but smtp.username is set; "
                    "check smtp.security and smtp.port, or remove smtp.username"
                )
            client.login(smtp.username, smtp.password)

    def _classify(self, err: BaseException, doing: str) -> Exception:
        """Turn a setup error into ``_ConnectFailed`` (worth retrying) or ``_Fatal``."""
        where, scrub = self._run.where, self._run.scrub
        text = scrub(_error_text(err))
        if isinstance(err, ssl.SSLCertVerificationError):
            return _Fatal(
                f"the TLS certificate of {where} is not trusted ({err.verify_message}); "
                "fix the server's certificate or the host name, or set smtp.verify = false "
                "only for testing"
            )
        if isinstance(err, ssl.SSLError):
            return _Fatal(
                f"the TLS handshake with {where} failed ({text}); check smtp.security and "
                'smtp.port ("ssl" is usually port 465, "starttls" 587)'
            )
        if isinstance(err, smtplib.SMTPAuthenticationError) and err.smtp_code >= 500:
            return _Fatal(
                f"{where} refused the login of {self._run.smtp.username!r} ({text}); check "
                f"smtp.username and {ENV_SMTP_PASSWORD}"
            )
        if isinstance(err, smtplib.SMTPResponseException) and err.smtp_code >= 500:
            return _Fatal(f"{where} refused the session ({text}); check smtp.host and smtp.port")
        if isinstance(err, smtplib.SMTPNotSupportedError) or (type(err) is smtplib.SMTPException):
            return _Fatal(f"could not {doing} {where}: {text}")
        return _ConnectFailed(f"could not {doing} {where}: {text}")


# --------------------------------------------------------------------------- one transaction


def _transact(client: smtplib.SMTP, message: OutgoingMessage, ticket: int, run: _Run) -> _Result:
    """Run MAIL, one RCPT and DATA for one message; classify the outcome.

    ``ticket`` is the last ledger write that must be durable before the message data goes
    out (the recipient's claim, and earlier outcomes). With PIPELINING the three commands
    go in one write.
    """
    payload = message.payload if message.payload is not None else _payload(message.data)
    needs_utf8 = not (run.envelope_from.isascii() and message.recipient.isascii())
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
        ("MAIL", f"MAIL FROM:<{run.envelope_from}>{tail}\r\n", (250,)),
        ("RCPT", f"RCPT TO:<{message.recipient}>\r\n", (250, 251)),
        ("DATA", "DATA\r\n", (354,)),
    )
    stage = "MAIL"
    began = run.clock()
    try:
        if client.has_extn("pipelining"):
            client.send("".join(command for _, command, _ in commands))
            refusal = _pipelined_replies(client, commands, run)
        else:
            refusal = _step_by_step(client, commands, run)
        if refusal is not None:
            return refusal
        stage = "message"
        run.ledger.settle(ticket)
        began = run.clock()
        client.send(payload)
        stage = "reply"
        code, text = client.getreply()
    except _Lost as lost:
        reply = _lost_reply(lost.stage, lost.__cause__ or lost, run.clock() - began, run)
        return _Result(_Kind.RECONNECT, reply)
    except (smtplib.SMTPServerDisconnected, OSError) as err:
        kind = _Kind.UNKNOWN if stage == "reply" else _Kind.RECONNECT
        return _Result(kind, _lost_reply(stage, err, run.clock() - began, run))
    if 200 <= code < 300:
        return _Result(_Kind.SENT, run.scrub(_reply(code, text)))
    return _refused(client, "end of data", code, text, run)


def _lost_reply(stage: str, err: BaseException, waited: float, run: _Run) -> str:
    """Describe a dropped connection; one silent for the whole timeout is said to be so."""
    if waited >= run.smtp.timeout:
        return f"no answer during {stage} within {run.smtp.timeout:g} s (smtp.timeout)"
    return f"connection lost during {stage} ({run.scrub(_error_text(err))})"


_Commands = tuple[tuple[str, str, tuple[int, ...]], ...]


class _Lost(Exception):
    """The connection dropped while reading the reply to ``stage``."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


def _step_by_step(client: smtplib.SMTP, commands: _Commands, run: _Run) -> _Result | None:
    """Send each command and wait for its reply; return the first refusal, if any."""
    for stage, command, wanted in commands:
        try:
            client.send(command)
            code, text = client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as err:
            raise _Lost(stage) from err
        if code not in wanted:
            return _refused(client, stage, code, text, run)
    return None


def _pipelined_replies(client: smtplib.SMTP, commands: _Commands, run: _Run) -> _Result | None:
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
            return _refused(client, stage, code, text, run)
        if code not in wanted and refusal is None:
            refusal = (stage, code, text)
        if stage == "DATA" and code == 354 and refusal is not None:
            try:
                client.send(b".\r\n")
                client.getreply()
            except (smtplib.SMTPServerDisconnected, OSError) as err:
                raise _Lost(stage) from err
    if refusal is None:
        return None
    return _refused(client, *refusal, run)


def _refused(client: smtplib.SMTP, stage: str, code: int, text: bytes, run: _Run) -> _Result:
    reply = run.scrub(_reply(code, text))
    if code == 421 or not 400 <= code < 600:
        return _Result(_Kind.RECONNECT, f"{reply} (to {stage})")
    if stage != "end of data":
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            return _Result(_Kind.RECONNECT, f"{reply} (to {stage}; reset failed)")
    if stage == "MAIL":
        if code >= 500:
            return _Result(
                _Kind.FATAL,
                f"{run.where} refused the sender <{run.envelope_from}> ({reply}); no recipient "
                "is at fault: check smtp.envelope_from, smtp.username and the relay's "
                "settings, then run send again to resume",
            )
        return _Result(_Kind.RECONNECT, f"{reply} (to MAIL)")
    return _Result(_Kind.FAILED if code >= 500 else _Kind.RETRY, reply)


_UNUSABLE_ADDRESS = _Result(
    _Kind.FAILED,
    "local: not an address that can be sent to (it contains spaces, control characters or "
    "angle brackets, or has no @); fix it in the subscriber list",
)


def _utf8_problem(client: smtplib.SMTP, message: OutgoingMessage, run: _Run) -> _Result | None:
    """Catch a non-ASCII address the server could not take (no SMTPUTF8) before sending."""
    if client.has_extn("smtputf8"):
        return None
    if not run.envelope_from.isascii():
        return _Result(
            _Kind.FATAL,
            f"{run.where} does not offer SMTPUTF8, which the non-ASCII envelope sender "
            f"<{run.envelope_from}> needs; use an ASCII smtp.envelope_from",
        )
    if not message.recipient.isascii():
        return _Result(
            _Kind.FAILED,
            f"local: {run.where} does not offer SMTPUTF8, which this non-ASCII address needs; "
            "a relay that supports SMTPUTF8 can deliver it",
        )
    return None


# --------------------------------------------------------------------------- workers


class _Worker:
    """One thread: one connection, taking messages until none are left or the run halts."""

    def __init__(self, run: _Run, work: _Work, limiter: _RateLimiter) -> None:
        self._run = run
        self._work = work
        self._limiter = limiter
        self._conn = _Connection(run)
        self._trouble = 0  # this worker's connection-level failures in a row
        self._ahead: collections.deque[_Item] = collections.deque()  # claimed, not tried
        self._lookahead = CLAIM_AHEAD if run.smtp.in_flight == "resend" else 0
        # The ledger tickets of this connection's last "sent" records: the oldest is durable
        # before the next message data goes out, so at most UNRECORDED accepted messages
        # per connection lack their record at any instant.
        self._sent: collections.deque[int] = collections.deque(maxlen=UNRECORDED)

    def __call__(self) -> None:
        try:
            while not self._run.halted():
                item = self._next()
                if item is None:
                    break
                self._attempt(item)
            self._release_ahead()
        except Exception as err:  # re-raised by send_messages in the calling thread
            self._run.fail(err)
        finally:
            self._conn.close()

    def _release_ahead(self) -> None:
        """Hand back the claims made ahead for messages this run will not try (it halted)."""
        while self._ahead:
            self._leave(self._ahead.popleft())

    def _claim_ahead(self) -> None:
        """Claim the next few fresh messages now, so their claims are durable when due."""
        run = self._run
        want = self._lookahead - len(self._ahead)
        if want <= 0:
            return
        for item in self._work.take_fresh(want):
            if usable_address(item.message.recipient):
                message = item.message
                item.ticket = run.ledger.claim(
                    run.edition_id, message.recipient, message.message_id, wait=False
                )
            self._ahead.append(item)

    def _next(self) -> _Item | None:
        if self._ahead:
            return self._ahead.popleft()
        while not self._run.halted():
            item, wait = self._work.take()
            if item is not None:
                return item
            if not wait or not self._wait_until(self._run.clock() + wait):
                return None
        return None

    def _wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` in short slices; ``False`` if the run halted meanwhile."""
        run = self._run
        while not run.halted():
            left = deadline - run.clock()
            if left <= 0:
                return True
            run.sleep(min(left, SLEEP_SLICE))
        return False

    def _attempt(self, item: _Item) -> None:
        run, message = self._run, item.message
        if not usable_address(message.recipient):
            self._record(item, _UNUSABLE_ADDRESS, claimed=False)
            return
        if not self._wait_until(self._limiter.reserve()):
            self._leave(item)
            return
        try:
            client = self._conn.client()
        except _Fatal as err:
            run.pause(str(err))
            self._leave(item)
            return
        except _ConnectFailed as err:
            self._transient(item, str(err), connection=True, recorded=False)
            return
        problem = _utf8_problem(client, message, run)
        if problem is not None:
            self._record(item, problem, claimed=False)
            return
        ticket = item.ticket or run.ledger.claim(
            run.edition_id, message.recipient, message.message_id, wait=False
        )
        item.ticket = 0  # a retry claims again
        self._claim_ahead()
        self._conn.used_once()
        if len(self._sent) == UNRECORDED:
            ticket = max(ticket, self._sent[0])
        self._record(item, _transact(client, message, ticket, run), claimed=True)

    def _record(self, item: _Item, result: _Result, *, claimed: bool) -> None:
        run, email = self._run, item.message.recipient
        kind, reply = result.kind, result.reply
        if kind is _Kind.SENT:
            self._sent.append(run.ledger.finish(run.edition_id, email, "sent", reply))
            self._trouble = 0
            run.went_well()
            run.outcome(email, "sent")
        elif kind is _Kind.FAILED:
            run.ledger.finish(run.edition_id, email, "failed", reply)
            run.outcome(email, "failed")
            if claimed:
                run.refused(reply)
        elif kind is _Kind.FATAL:
            run.pause(reply)
            if claimed:
                run.ledger.finish(run.edition_id, email, "deferred", reply)
                run.outcome(email, "deferred")
            else:
                self._leave(item)
        elif kind is _Kind.UNKNOWN and run.smtp.in_flight == "hold":
            self._conn.discard()
            log.warning("%s: %s; held as in flight", email, reply)
            run.outcome(email, "held")
            run.connection_failed(reply)
        else:
            run.ledger.finish(run.edition_id, email, "deferred", reply)
            connection = kind is not _Kind.RETRY
            if connection:
                self._conn.discard()
            self._transient(item, reply, connection=connection, recorded=True)

    def _transient(self, item: _Item, reply: str, *, connection: bool, recorded: bool) -> None:
        """Schedule another try after a backoff, or give up on it for this run."""
        run = self._run
        item.failures += 1
        item.reply, item.recorded, item.ticket = reply, recorded, 0
        if connection:
            self._trouble += 1
            run.connection_failed(reply)
        if item.failures > run.smtp.retries:
            _give_up(run, item)
            if connection and not run.connected:
                run.pause(
                    f"cannot reach {run.where} after {item.failures} tries ({reply}); check "
                    "smtp.host, smtp.port and smtp.security, and that the server is up; run "
                    "send again to resume"
                )
            return
        log.debug("%s: %s; retry %d", item.message.recipient, reply, item.failures)
        self._work.retry(item, run.clock() + run.backoff(item.failures))
        if connection:
            self._wait_until(run.clock() + run.backoff(self._trouble))

    def _leave(self, item: _Item) -> None:
        """Let go of an untried message at a halt; one that failed before is deferred."""
        run = self._run
        if item.failures:
            _give_up(run, item)
        elif item.ticket:
            run.ledger.release(run.edition_id, item.message.recipient)
            item.ticket = 0


def _give_up(run: _Run, item: _Item) -> None:
    """Record a message as deferred for this run (it is tried again by the next one)."""
    if not item.recorded:
        run.ledger.finish(run.edition_id, item.message.recipient, "deferred", item.reply)
        item.recorded = True
    run.outcome(item.message.recipient, "deferred")


# --------------------------------------------------------------------------- entry point


def send_messages(
    messages: Iterable[OutgoingMessage],
    smtp: SmtpSettings,
    ledger: Ledger,
    edition_id: str,
    *,
    envelope_from: str,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    backoff_base: float = BACKOFF_BASE,
    backoff_cap: float = BACKOFF_CAP,
    breaker: int = BREAKER_THRESHOLD,
) -> SendSummary:
    """Send every message not yet done for this edition through ``smtp`` and record each outcome.

    ``messages`` is consumed lazily, once. Recipients the ledger has as ``sent`` or
    ``failed``, and repeats of an address, are skipped; ``in_flight`` ones follow
    ``smtp.in_flight``. Setting ``stop`` lets the transactions under way finish, records
    them and returns a paused summary. Raises ``ConfigError`` for unusable settings.
    """
    check_smtp_settings(smtp)
    _check_envelope_from(envelope_from)
    began = clock()
    run = _Run(
        edition_id=edition_id,
        smtp=smtp,
        ledger=ledger,
        envelope_from=envelope_from,
        stop=stop if stop is not None else threading.Event(),
        progress=progress,
        scrub=_Scrubber(smtp.username, smtp.password),
        sleep=sleep,
        clock=clock,
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        breaker=max(1, breaker),
        context=_tls_context(smtp),
        local_hostname=socket.getfqdn(),
    )
    ledger.start(edition_id, "")
    work = _Work(messages, ledger.states(edition_id), run)
    limiter = _RateLimiter(smtp.rate, clock)
    threads = [
        threading.Thread(target=_Worker(run, work, limiter), name=f"smtp-{n}", daemon=True)
        for n in range(smtp.pool)
    ]
    for thread in threads:
        thread.start()
    _join(threads, run)
    for item in work.drain():
        _give_up(run, item)
    ledger.flush()
    if run.error is not None:
        raise run.error
    if run.stop.is_set() and not run.pause_reason:
        run.pause_reason = "stopped before the end; run send again to resume"
    return SendSummary(
        edition_id=edition_id,
        sent=run.counts.get("sent", 0),
        failed=run.counts.get("failed", 0),
        deferred=run.counts.get("deferred", 0),
        skipped=run.counts.get("skipped", 0),
        held=run.counts.get("held", 0),
        seconds=clock() - began,
        paused=bool(run.pause_reason),
        pause_reason=run.pause_reason,
    )


def _join(threads: list[threading.Thread], run: _Run) -> None:
    """Wait for the workers; a first Ctrl-C lets the transactions under way finish."""
    interrupted = False
    for thread in threads:
        while thread.is_alive():
            try:
                thread.join(timeout=0.5)
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                run.pause(
                    "interrupted; the transactions under way were finished and recorded; "
                    "run send again to resume"
                )
