"""A throwaway IMAP server for the tests: Debian's Dovecot, its own config, a free loopback port.

``ImapServer.start()`` writes a config into a new temporary folder (one user whose
password is in a file there, mail in ``Maildir`` under the folder) and runs ``dovecot
-F`` listening on 127.0.0.1 only: plain IMAP, and IMAP over TLS with ``tls`` (a
certificate of ``smtp_server.make_certificate``). As root (CI) Dovecot runs as
``nobody``, owner of the folder, as the PostgreSQL of ``pg_server`` does; otherwise as
the user running the tests. Nothing outside the folder is touched.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from smtp_server import Certificate, free_port

USER = "bounces@meridianpost.example"
PASSWORD = "imap pass-word 7"
CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
disable_plaintext_auth = no
auth_mechanisms = plain login
{ssl}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
"""
TLS = """
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
"""


class ServerUnavailable(Exception):
    """Dovecot cannot be started here (not installed, or it failed to start)."""


def find_dovecot() -> str:
    """Where the ``dovecot`` program is (Debian's ``dovecot-core``, from ``dovecot-imapd``)."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")
    if not found:
        raise ServerUnavailable("dovecot not found; install Debian's dovecot-imapd package")
    return found


class ImapServer:
    """Dovecot in a temporary folder, serving one user's mailbox on 127.0.0.1."""

    def __init__(self, root: Path, port: int, tls_port: int) -> None:
        self.root = root
        self.port = port
        self.tls_port = tls_port
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, tls: Certificate | None = None) -> ImapServer:
        """Write the config and start Dovecot; ``ServerUnavailable`` if it cannot run."""
        program = find_dovecot()
        root = Path(tempfile.mkdtemp(prefix="newsletter-imap-", dir="/tmp"))
        server = cls(root, free_port(), free_port() if tls else 0)
        try:
            server._write(tls)
            server._run(program)
        except BaseException:
            server.stop()
            raise
        return server

    def _account(self) -> tuple[int, int, str, str]:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
        else:
            uid, gid = os.getuid(), os.getgid()
        return uid, gid, pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name

    def _write(self, tls: Certificate | None) -> None:
        uid, gid, user, group = self._account()
        if tls is not None:
            shutil.copy(tls.cert, self.root / "cert.pem")
            shutil.copy(tls.key, self.root / "key.pem")
        ssl = TLS.format(root=self.root) if tls else "ssl = no"
        (self.root / "dovecot.conf").write_text(
            CONFIG.format(
                root=self.root,
                user=user,
                group=group,
                uid=uid,
                gid=gid,
                ssl=ssl,
                port=self.port,
                tls_port=self.tls_port,
            ),
            encoding="utf-8",
        )
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n", encoding="utf-8")
        for path in [self.root, *self.root.iterdir()]:
            os.chown(path, uid, gid)

    def _run(self, program: str) -> None:
        command = [program, "-F", "-c", str(self.root / "dovecot.conf")]
        if os.geteuid() == 0:  # run as the owner of the folder, never as root
            uid, gid, _, _ = self._account()
            command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
                return
            time.sleep(0.05)
        output = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
        log = self.root / "dovecot.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        raise ServerUnavailable(f"dovecot did not start: {output.strip()}\n{text[-2000:]}")

    def url(self, folder: str = "INBOX", *, tls: bool = False) -> str:
        """The ``--imap`` URL of a folder of the test user."""
        user = USER.replace("@", "%40")
        if tls:
            return f"imaps://{user}@localhost:{self.tls_port}/{folder}"
        return f"imap://{user}@{self.host}:{self.port}/{folder}"

    def client(self) -> imaplib.IMAP4:
        """A logged-in IMAP session, for a test to fill the mailbox or look at it."""
        session = imaplib.IMAP4(self.host, self.port, timeout=10)
        session.login(USER, PASSWORD)
        return session

    def append(self, messages: list[bytes], folder: str = "INBOX") -> None:
        """Put ``messages`` into ``folder`` (IMAP APPEND), creating the folder if needed."""
        with contextlib.closing(_Session(self.client())) as session:
            session.imap.create(f'"{folder}"')
            for raw in messages:
                kind, data = session.imap.append(f'"{folder}"', None, None, raw)
                assert kind == "OK", data

    def flags(self, folder: str = "INBOX") -> list[set[str]]:
        """The flags of every message in ``folder``, in order."""
        with contextlib.closing(_Session(self.client())) as session:
            kind, data = session.imap.select(f'"{folder}"', readonly=True)
            assert kind == "OK", data
            if int(data[0] or 0) == 0:
                return []
            kind, fetched = session.imap.fetch("1:*", "(FLAGS)")
            found: list[set[str]] = []
            for item in fetched:
                text = item.decode() if isinstance(item, bytes) else str(item)
                inner = text[text.index("FLAGS (") + 7 :]
                found.append(set(inner[: inner.index(")")].split()))
            return found

    def stop(self) -> None:
        """Stop Dovecot (the process this object started) and delete its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)


class _Session:
    """A logged-in session that logs out when closed."""

    def __init__(self, imap: imaplib.IMAP4) -> None:
        self.imap = imap

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self.imap.logout()
