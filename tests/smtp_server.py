"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 with STARTTLS, AUTH and injected faults.

Usage::

    cert = make_certificate(tmp_path)            # self-signed, for localhost and 127.0.0.1
    faults = Faults(disconnect_every=7, reject={"gone@example.org"})
    with SMTPServer(tls=cert, users={"news": "pw"}, faults=faults) as server:
        ...send to server.host:server.port...
        assert server.count_for("a@example.org") == 1

Everything the server saw is kept: ``received`` (accepted messages, with the time they
were accepted), ``rcpt_attempts`` (every RCPT per address), ``connections`` (sessions
opened), ``multi_rcpt`` (transactions with more than one RCPT) and ``auth_attempts``.
``stop``/``start``/``restart`` take the server down and bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate and its key (PEM files)."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """Return a TLS server context that presents this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificate(directory: Path) -> Certificate:
    """Create a self-signed certificate for localhost and 127.0.0.1 in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _certificate_with_cryptography(cert, key)
    except ImportError:
        _certificate_with_openssl(cert, key)
    return Certificate(cert, key)


def _certificate_with_cryptography(cert: Path, key: Path) -> None:
    import datetime as dt
    import ipaddress

    from cryptography import x509  # type: ignore[import-not-found, unused-ignore]
    from cryptography.hazmat.primitives import (  # type: ignore[import-not-found, unused-ignore]
        hashes,
        serialization,
    )
    from cryptography.hazmat.primitives.asymmetric import (  # type: ignore[import-not-found, unused-ignore]
        ec,
    )
    from cryptography.x509.oid import NameOID  # type: ignore[import-not-found, unused-ignore]

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate_with_openssl(cert: Path, key: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("neither the cryptography package nor openssl is available")
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Faults:
    """What the server does wrong. Change fields between runs; the handler reads them live."""

    disconnect_every: int = 0  # every Nth message: 421 and close the connection
    disconnect_at: str = "DATA"  # where that happens: "RCPT" or "DATA" (end of data)
    tempfail: dict[str, int] = field(default_factory=dict)  # address -> 451s before accepting
    reject: set[str] = field(default_factory=set)  # addresses refused with 550 at RCPT
    reject_data: set[str] = field(default_factory=set)  # refused with 554 at end of data
    reject_all: bool = False  # every RCPT refused (a relay that denies relaying)
    rcpt_reply: str = ""  # refuse every RCPT with this reply (e.g. a policy refusal)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> its RCPT refusal
    rcpt_echo_login: bool = False  # a hostile server: RCPT refusals repeat the AUTH PLAIN data
    mail_reply: str = ""  # answer every MAIL with this (e.g. "421 ..." or "550 ...")
    data_delay: float = 0.0  # seconds before answering the end of data
    slow: dict[str, float] = field(default_factory=dict)  # address -> delay, first time only
    hang: set[str] = field(default_factory=set)  # accept, then answer only after release()
    auth_echo: bool = False  # a hostile server: the login failure repeats the password


@dataclass(frozen=True)
class Received:
    """One accepted message as the server saw it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]
    time: float  # time.monotonic() when accepted
    connection: int
    tls: bool
    login: str | None


class _Handler:
    """The aiosmtpd handler: records everything, misbehaves as ``faults`` says."""

    def __init__(self, owner: SMTPServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.owner.pipelining:  # aiosmtpd reads pipelined commands; it just does not say so
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        faults = self.owner.faults
        if faults.mail_reply:
            if faults.mail_reply.startswith("421"):
                _close_soon(server)
            return faults.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        owner, faults = self.owner, self.owner.faults
        with owner.lock:
            owner.rcpt_attempts[address] += 1
            if envelope.rcpt_tos:
                owner.multi_rcpt += 1
            tries = owner.rcpt_attempts[address]
        if faults.disconnect_at == "RCPT" and self._disconnect_due():
            _close_soon(server)
            return "421 4.3.2 Service shutting down, try again later"
        if faults.reject_all:
            return f"554 5.7.1 <{address}>: Relay access denied"
        if faults.rcpt_echo_login and session.auth_data is not None:
            login, password = session.auth_data.login, session.auth_data.password
            plain = base64.b64encode(b"\0" + login + b"\0" + password).decode().rstrip("=")
            return f"550 5.7.1 <{address}>: not for {login.decode()} (you sent {plain})"
        if faults.rcpt_reply:
            return faults.rcpt_reply
        if address in faults.refuse:
            return faults.refuse[address]
        if address in faults.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if tries <= faults.tempfail.get(address, 0):
            return f"451 4.7.1 <{address}>: Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _disconnect_due(self) -> bool:
        owner, every = self.owner, self.owner.faults.disconnect_every
        if not every:
            return False
        with owner.lock:
            owner.fault_counter += 1
            return owner.fault_counter % every == 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        owner, faults = self.owner, self.owner.faults
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        if faults.disconnect_at == "DATA" and self._disconnect_due():
            _close_soon(server)
            return "421 4.3.2 Service shutting down, try again later"
        if rcpt in faults.reject_data:
            return "554 5.6.0 Message content rejected"
        if faults.data_delay:
            await asyncio.sleep(faults.data_delay)
        received = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=_as_bytes(envelope.content),
            mail_options=tuple(envelope.mail_options),
            time=time.monotonic(),
            connection=getattr(server, "connection_number", 0),
            tls=_is_tls(server),
            login=_login(session),
        )
        with owner.lock:
            owner.received.append(received)
            delay = faults.slow.pop(rcpt, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if rcpt in faults.hang:
            while not owner.released.is_set():
                await asyncio.sleep(0.01)
        return f"250 2.0.0 Ok: queued as {len(owner.received)}"


def _as_bytes(content: bytes | str | None) -> bytes:
    if isinstance(content, str):
        return content.encode("utf-8", "surrogateescape")
    return content or b""


def _login(session: Session) -> str | None:
    data = session.auth_data
    return data.login.decode() if session.authenticated and data is not None else None


def _is_tls(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


def _close_soon(server: SMTP) -> None:
    """Close the connection right after the reply being returned is written."""
    transport = server.transport
    if transport is not None:
        server.loop.call_soon(transport.close)


class _Authenticator:
    def __init__(self, owner: SMTPServer) -> None:
        self.owner = owner

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        owner = self.owner
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        with owner.lock:
            owner.auth_attempts.append((mechanism, login))
        if owner.users.get(login) == password:
            return AuthResult(success=True, auth_data=data)
        message = "535 5.7.8 Error: authentication failed"
        if owner.faults.auth_echo:  # the password, and what AUTH PLAIN and LOGIN sent for it
            plain = base64.b64encode(b"\0" + data.login + b"\0" + data.password).decode()
            alone = base64.b64encode(data.password).decode().rstrip("=")
            message += f" for {login} with password {password} ({plain}, {alone})"
        return AuthResult(success=False, handled=False, message=message)


class _Controller(Controller):
    def __init__(self, owner: SMTPServer, **kwargs: Any) -> None:
        super().__init__(_Handler(owner), **kwargs)
        self.owner = owner

    def factory(self) -> SMTP:
        server = SMTP(self.handler, **self.SMTP_kwargs)
        server.connection_number = self.owner.connection_opened()  # type: ignore[attr-defined]
        return server


class SMTPServer:
    """A threaded aiosmtpd server on 127.0.0.1 with optional TLS, AUTH and faults."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        tls: Certificate | None = None,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
        smtputf8: bool = True,
        pipelining: bool = True,
        faults: Faults | None = None,
        port: int | None = None,
        idle_timeout: float = 300.0,
    ) -> None:
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.users = dict(users or {})
        self.smtputf8 = smtputf8
        self.pipelining = pipelining
        self.faults = faults or Faults()
        self.port = port or free_port()
        self.idle_timeout = idle_timeout
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.rcpt_attempts: Counter[str] = Counter()
        self.auth_attempts: list[tuple[str, str]] = []
        self.multi_rcpt = 0
        self.fault_counter = 0
        self.connections = 0
        self.released = threading.Event()
        self._counting = False
        self._controller: _Controller | None = None

    # ------------------------------------------------------------------ lifecycle

    def _make_controller(self) -> _Controller:
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "enable_SMTPUTF8": self.smtputf8,
            "server_hostname": "mx.test",
            "ready_timeout": 10.0,
            "timeout": self.idle_timeout,
        }
        if self.tls is not None and self.implicit_tls:
            kwargs["ssl_context"] = self.tls.server_context()
        elif self.tls is not None:
            kwargs["tls_context"] = self.tls.server_context()
            kwargs["require_starttls"] = True
        if self.users:
            kwargs["authenticator"] = _Authenticator(self)
            if self.implicit_tls:  # the whole session is TLS, which aiosmtpd cannot tell
                kwargs["auth_require_tls"] = False
            else:
                kwargs["auth_required"] = True
        return _Controller(self, **kwargs)

    def connection_opened(self) -> int:
        with self.lock:
            if self._counting:
                self.connections += 1
            return self.connections

    def start(self) -> None:
        """Listen (again) on ``self.port``."""
        self._counting = False
        self._controller = self._make_controller()
        self._controller.start()
        self._counting = True

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        if self._controller is not None:
            self.released.set()
            self._controller.stop()
            self._controller = None
            self.released.clear()

    def restart(self, downtime: float) -> None:
        """Go away for ``downtime`` seconds, then come back on the same port."""
        self.stop()
        time.sleep(downtime)
        self.start()

    def release(self) -> None:
        """Let messages held by ``Faults.hang`` be answered."""
        self.released.set()

    def __enter__(self) -> SMTPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ what it saw

    def messages(self) -> list[Received]:
        """Return a snapshot of the accepted messages."""
        with self.lock:
            return list(self.received)

    def per_recipient(self) -> Counter[str]:
        """Count accepted messages per recipient address."""
        with self.lock:
            return Counter(rcpt for message in self.received for rcpt in message.rcpt_tos)

    def count_for(self, address: str) -> int:
        """How many messages ``address`` received."""
        return self.per_recipient()[address]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``condition`` until true; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            time.sleep(0.005)
