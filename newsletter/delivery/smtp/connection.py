"""One worker's SMTP connection: open it (TLS, EHLO, STARTTLS, AUTH), reuse it, renew it.

Setup problems are sorted into ``ConnectFailed`` (worth another try later) and
``Fatal`` (no retry will fix them: the run pauses). Before any connection of the run
has worked, a refused connection or a host name that does not exist is ``Fatal``: it
means nothing listens there, and trying again only delays the one message that says
so. A refused login is tried once per run (see ``LoginGate``).
"""

from __future__ import annotations

import errno
import logging
import select
import smtplib
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from newsletter.config.settings import ENV_SMTP_PASSWORD, SmtpSettings
from newsletter.delivery.smtp.replies import Scrubber, error_text

log = logging.getLogger(__name__)

IDLE_CHECK = 5.0  # a pooled connection idle this long is checked with NOOP before use
HANG_UP_CHECK = 0.05  # one idle this long is checked for a server that closed it


class ConnectFailed(Exception):
    """A connection could not be made now; it may work later."""


class Fatal(Exception):
    """A problem no retry will fix: the run pauses with this reason."""


AUTH_MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")  # the ones smtplib speaks, best first
# Replies that refuse a mechanism rather than the credentials: the next one may be tried.
_MECHANISM_REFUSED = (504, 534)
_NO_SUCH_HOST = {
    getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)
}


class LoginGate:
    """Let one connection of a run log in at a time until a login worked; after a refusal, none.

    A refused login is tried once per run, not once per connection: relays lock an
    account out after a few failures. Once a login worked, connections log in freely.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._worked = False
        self._refused = ""

    def log_in(self, attempt: Callable[[], None]) -> None:
        """Run ``attempt`` (which raises ``Fatal`` for a refusal) unless a login was refused."""
        with self._lock:
            if not self._worked:
                self._try(attempt)
                return
        self._try(attempt)

    def _try(self, attempt: Callable[[], None]) -> None:
        if self._refused:
            raise Fatal(self._refused)
        try:
            attempt()
        except Fatal as err:
            self._refused = str(err)
            raise
        self._worked = True


@dataclass(frozen=True)
class Relay:
    """The server a run sends through, and what each connection to it needs to know."""

    smtp: SmtpSettings
    envelope_from: str
    scrub: Scrubber
    clock: Callable[[], float]
    context: ssl.SSLContext | None
    local_hostname: str
    login: LoginGate = field(default_factory=LoginGate)

    @property
    def where(self) -> str:
        """Name the server as host:port, as every message about it does."""
        return f"{self.smtp.host}:{self.smtp.effective_port}"


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
    that times out then reads as a closed connection (see ``_lost_reply`` in
    ``transaction``).
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


class Connection:
    """One worker's SMTP session: opened lazily, reused, renewed when used up or broken.

    ``reached`` is set once any connection of the run has been opened.
    """

    def __init__(self, relay: Relay, reached: threading.Event) -> None:
        self._relay = relay
        self._reached = reached
        self._client: smtplib.SMTP | None = None
        self._used = 0
        self._last = 0.0

    def client(self) -> smtplib.SMTP:
        """Return a working session; raise ``ConnectFailed`` or ``Fatal``."""
        if self._client is not None and self._used >= self._relay.smtp.max_per_connection:
            self.close()
        idle = self._relay.clock() - self._last
        if self._client is not None and idle >= HANG_UP_CHECK and _hung_up(self._client):
            log.debug("%s closed a pooled connection; opening another", self._relay.where)
            self.discard()
        if self._client is not None and idle > IDLE_CHECK:
            self._check_alive()
        if self._client is None:
            self._client = self._open()
            self._used = 0
            self._reached.set()
        self._last = self._relay.clock()
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
        """Count a transaction on this connection (it is renewed after max_per_connection)."""
        self._used += 1
        self._last = self._relay.clock()

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
            log.debug("QUIT to %s failed; closing anyway", self._relay.where)
        finally:
            self._client.close()
            self._client = None

    def _open(self) -> smtplib.SMTP:
        relay, smtp = self._relay, self._relay.smtp
        try:
            if smtp.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    smtp.host,
                    smtp.effective_port,
                    local_hostname=relay.local_hostname,
                    timeout=smtp.timeout,
                    context=relay.context,
                )
            else:
                client = smtplib.SMTP(
                    smtp.host,
                    smtp.effective_port,
                    local_hostname=relay.local_hostname,
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
        except (Fatal, ConnectFailed):
            client.close()
            raise
        _kernel_timeouts(client, smtp.timeout)
        log.debug("connected to %s", relay.where)
        return client

    def _greet(self, client: smtplib.SMTP) -> None:
        smtp = self._relay.smtp
        client.ehlo_or_helo_if_needed()
        if smtp.security == "starttls":
            if not client.has_extn("starttls"):
                raise Fatal(
                    f"{self._relay.where} does not offer STARTTLS, and sending in the clear was "
                    'not allowed; set smtp.security = "ssl" if this port speaks TLS from the '
                    'start (usually 465), or "none" only for a relay on this machine'
                )
            client.starttls(context=self._relay.context)
            client.ehlo()
        if smtp.username:
            if not client.has_extn("auth"):
                raise Fatal(
                    f"{self._relay.where} does not offer AUTH, but smtp.username is set; "
                    "check smtp.security and smtp.port, or remove smtp.username"
                )
            self._relay.login.log_in(lambda: self._log_in(client))

    def _log_in(self, client: smtplib.SMTP) -> None:
        """Authenticate once: the next mechanism is tried only when one is refused as such."""
        smtp = self._relay.smtp
        offered = client.esmtp_features.get("auth", "").upper().split()
        mechanisms = [m for m in AUTH_MECHANISMS if m in offered]
        if not mechanisms:
            raise Fatal(
                f"{self._relay.where} offers no AUTH mechanism this program speaks "
                f"({', '.join(AUTH_MECHANISMS)}); it offers: {' '.join(offered)[:100] or 'none'}"
            )
        client.user, client.password = smtp.username, smtp.password
        for mechanism in mechanisms:
            answer = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
            try:
                client.auth(mechanism, answer)
                return
            except smtplib.SMTPAuthenticationError as err:
                if err.smtp_code not in _MECHANISM_REFUSED or mechanism == mechanisms[-1]:
                    raise self._classify(err, "log in to") from err
            except UnicodeEncodeError:
                raise Fatal(
                    f"the smtp.username or {ENV_SMTP_PASSWORD} holds characters outside ASCII, "
                    "which SMTP AUTH here cannot send; use an ASCII password"
                ) from None
            except ValueError:  # a challenge that is not base64
                raise Fatal(
                    f"{self._relay.where} answered AUTH {mechanism} with a challenge that "
                    "cannot be read; check smtp.host and smtp.port"
                ) from None
            except (OSError, smtplib.SMTPException) as err:
                raise self._classify(err, "log in to") from err

    def _classify(self, err: BaseException, doing: str) -> Exception:
        """Turn a setup error into ``ConnectFailed`` (worth retrying) or ``Fatal``."""
        where = self._relay.where
        text = error_text(err, self._relay.scrub)
        if isinstance(err, ssl.SSLCertVerificationError):
            return Fatal(
                f"the TLS certificate of {where} is not trusted ({err.verify_message}); "
                "fix the server's certificate or the host name, or set smtp.verify = false "
                "only for testing"
            )
        if isinstance(err, ssl.SSLError):
            return Fatal(
                f"the TLS handshake with {where} failed ({text}); check smtp.security and "
                'smtp.port ("ssl" is usually port 465, "starttls" 587)'
            )
        if isinstance(err, smtplib.SMTPAuthenticationError) and err.smtp_code >= 500:
            return Fatal(
                f"{where} refused the login of {self._relay.smtp.username!r} ({text}); check "
                f"smtp.username and {ENV_SMTP_PASSWORD}"
            )
        if isinstance(err, smtplib.SMTPResponseException) and err.smtp_code >= 500:
            return Fatal(f"{where} refused the session ({text}); check smtp.host and smtp.port")
        if isinstance(err, smtplib.SMTPNotSupportedError) or (type(err) is smtplib.SMTPException):
            return Fatal(f"could not {doing} {where}: {text}")
        if not self._reached.is_set():
            nobody = self._nobody_there(err)
            if nobody:
                return Fatal(
                    f"cannot reach {where}: {nobody}; check smtp.host and smtp.port (587 for "
                    "starttls, 465 for ssl) and that the relay is running; nothing was sent; "
                    "run send again to resume"
                )
        return ConnectFailed(f"could not {doing} {where}: {text}")

    def _nobody_there(self, err: BaseException) -> str:
        """Say why nothing can answer at host:port (refused, no such host), or ''."""
        if isinstance(err, ConnectionRefusedError) or (
            isinstance(err, OSError) and err.errno == errno.ECONNREFUSED
        ):
            return "nothing is listening there (connection refused)"
        if isinstance(err, socket.gaierror) and err.errno in _NO_SUCH_HOST:
            return f"the host name {self._relay.smtp.host!r} is not known (DNS)"
        return ""
