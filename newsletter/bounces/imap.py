"""The bounce mailbox on an IMAP server: ``imaps://user@host[:port]/FOLDER``.

The password comes from ``NEWSLETTER_IMAP_PASSWORD`` only and is never shown. ``imaps``
is TLS from the first byte with the certificate checked (port 993); plain ``imap`` (143)
is refused unless the host is this machine, as plain SMTP is.

The messages read are those without the ``NewsletterProcessed`` keyword; each one
handled gets it and ``\\Seen`` (a person reading the mailbox still sees it), or is
moved to the ``--move-to`` folder. Messages are fetched with ``BODY.PEEK`` so none is
marked seen before it was handled. A dry run selects the folder read-only.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from newsletter.bounces.mailboxes import Mail
from newsletter.errors import MailboxError, UsageProblem
from newsletter.hosts import is_loopback

ENV_IMAP_PASSWORD = "NEWSLETTER_IMAP_PASSWORD"  # noqa: S105 - a variable name, not a secret
PROCESSED = "NewsletterProcessed"  # the keyword of handled messages
TIMEOUT_S = 30.0
_PORTS = {"imaps": 993, "imap": 143}


@dataclass(frozen=True)
class ImapAddress:
    """Where the mailbox is: ``imaps://user@host:port/FOLDER`` (no password)."""

    secure: bool
    user: str
    host: str
    port: int
    folder: str

    def __str__(self) -> str:
        scheme = "imaps" if self.secure else "imap"
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = self.user.replace("%", "%25").replace("@", "%40")
        return f"{scheme}://{user}@{host}:{self.port}/{self.folder}"


def parse_imap_url(url: str) -> ImapAddress:
    """Read ``--imap URL``; raise ``UsageProblem`` saying how to write it."""
    example = "write it like imaps://bounces%40example.org@mail.example.org/INBOX"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as err:
        raise UsageProblem(f"{url!r} is not an IMAP URL ({err}); {example}", "--imap") from err
    if parts.scheme not in _PORTS or not parts.hostname or not parts.username:
        raise UsageProblem(f"{url!r} is not an IMAP URL; {example}", "--imap")
    if parts.password is not None:
        raise UsageProblem(
            f"the URL holds a password; remove it and set {ENV_IMAP_PASSWORD} instead", "--imap"
        )
    if parts.query or parts.fragment:
        raise UsageProblem(f"{url!r}: an IMAP URL has no ? or # part; {example}", "--imap")
    if parts.scheme == "imap" and not is_loopback(parts.hostname):
        raise UsageProblem(
            f"imap:// would send the password to {parts.hostname} unencrypted; use imaps:// "
            "(plain imap:// is for a server on this machine only)",
            "--imap",
        )
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if not folder.isascii() or any(ch in folder for ch in '\r\n"\\'):
        raise UsageProblem(
            f"folder {folder!r}: use the folder's name as the server lists it (ASCII, "
            "modified UTF-7 for other letters), without quotes or backslashes",
            "--imap",
        )
    return ImapAddress(
        secure=parts.scheme == "imaps",
        user=unquote(parts.username),
        host=parts.hostname,
        port=port or _PORTS[parts.scheme],
        folder=folder,
    )


def _quoted(name: str) -> str:
    return f'"{name}"'


class ImapMailbox:
    """The folder of an IMAP mailbox: its messages not handled before."""

    def __init__(
        self,
        address: ImapAddress,
        environ: Mapping[str, str],
        *,
        move_to: str = "",
        read_only: bool = False,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.address = address
        self.where = str(address)
        self.warnings: list[str] = []
        self._password = environ.get(ENV_IMAP_PASSWORD, "")
        self._move_to = move_to
        self._read_only = read_only
        if not self._password:
            raise MailboxError(
                f"{ENV_IMAP_PASSWORD} is not set; export the password of {address.user} "
                f"at {address.host}"
            )
        self._expunge = False  # messages were copied away and flagged deleted (no MOVE)
        self._client = self._connect(timeout)
        try:
            self._login()
            self._capabilities = self._ask_capabilities()
            self._select()
        except OSError as err:
            self.close()
            raise self._lost(err) from err
        except BaseException:
            self.close()
            raise

    def _connect(self, timeout: float) -> imaplib.IMAP4:
        address = self.address
        try:
            if address.secure:
                context = ssl.create_default_context()
                return imaplib.IMAP4_SSL(
                    address.host, address.port, ssl_context=context, timeout=timeout
                )
            return imaplib.IMAP4(address.host, address.port, timeout=timeout)
        except ssl.SSLCertVerificationError as err:
            raise MailboxError(
                f"{self.where}: the server's certificate is not valid ({err.verify_message}); "
                "check the host name, or the server's certificate"
            ) from err
        except (OSError, imaplib.IMAP4.error) as err:
            raise MailboxError(
                f"cannot reach {self.where} ({self._reason(err)}); check the host and port, "
                "and that the server is up"
            ) from err

    def _login(self) -> None:
        try:
            self._client.login(self.address.user, self._password)
        except imaplib.IMAP4.error as err:
            raise MailboxError(
                f"{self.where}: the server refused the login of {self.address.user} "
                f"({self._reason(err)}); check the user name and {ENV_IMAP_PASSWORD}"
            ) from err
        except OSError as err:
            raise self._lost(err) from err

    def _select(self) -> None:
        folder = self.address.folder
        kind, data = self._client.select(_quoted(folder), readonly=self._read_only)
        if kind != "OK":
            raise MailboxError(f"{self.where}: cannot open the folder {folder!r} ({_text(data)})")
        if self._move_to:
            kind, data = self._client.status(_quoted(self._move_to), "(MESSAGES)")
            if kind != "OK":
                raise MailboxError(
                    f"--move-to: {self.address.host} has no folder {self._move_to!r} "
                    f"({_text(data)}); create it, or leave --move-to out"
                )

    def _ask_capabilities(self) -> set[str]:
        """What the server offers once logged in (MOVE, UIDPLUS …)."""
        kind, data = self._client.capability()
        return {word.upper() for word in _text(data).split()} if kind == "OK" else set()

    def _reason(self, err: BaseException) -> str:
        text = str(err) or type(err).__name__
        if text.startswith(("b'", 'b"')):
            text = text[2:-1]
        return text.replace(self._password, "***") if self._password else text

    def _lost(self, err: BaseException) -> MailboxError:
        return MailboxError(
            f"lost the connection to {self.where} ({self._reason(err)}); run the command "
            "again: what was read is recorded"
        )

    def _odd(self, err: BaseException) -> MailboxError:
        return MailboxError(
            f"{self.where}: the server answered what IMAP does not allow here "
            f"({self._reason(err)}); run the command again: what was read is recorded"
        )

    def messages(self) -> Iterator[Mail]:
        """Every message of the folder without the ``NewsletterProcessed`` keyword."""
        try:
            kind, data = self._client.uid("SEARCH", "UNKEYWORD", PROCESSED, "NOT", "DELETED")
            if kind != "OK":
                raise MailboxError(f"{self.where}: the server refused to search ({_text(data)})")
            uids = _text(data).split()
            for uid in uids:
                yield self._fetch(uid)
        except (OSError, imaplib.IMAP4.abort) as err:
            raise self._lost(err) from err
        except imaplib.IMAP4.error as err:
            raise self._odd(err) from err

    def _fetch(self, uid: str) -> Mail:
        ref = f"UID {uid}"
        kind, data = self._client.uid("FETCH", uid, "(BODY.PEEK[])")
        if kind != "OK":
            return Mail(ref, problem=f"the server would not give it ({_text(data)})")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return Mail(ref, item[1])
        return Mail(ref, problem="the server sent no message body")

    def done(self, mail: Mail) -> None:
        """Flag the message ``\\Seen`` and ``NewsletterProcessed``; move it with ``--move-to``."""
        if self._read_only:
            return
        uid = mail.ref.removeprefix("UID ")
        try:
            kind, _ = self._client.uid("STORE", uid, "+FLAGS", f"(\\Seen {PROCESSED})")
            if kind != "OK":
                self._client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
                self._warn(
                    f"{self.where}: the server does not keep the {PROCESSED} keyword; handled "
                    "messages are read again next time (which changes nothing), or use --move-to"
                )
            if self._move_to:
                self._move(uid)
        except (OSError, imaplib.IMAP4.abort) as err:
            raise self._lost(err) from err
        except imaplib.IMAP4.error as err:
            raise self._odd(err) from err

    def _move(self, uid: str) -> None:
        target = _quoted(self._move_to)
        if "MOVE" in self._capabilities:
            kind, data = self._client.uid("MOVE", uid, target)
        else:
            kind, data = self._client.uid("COPY", uid, target)
            if kind == "OK":
                self._client.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
                self._expunge = True
        if kind != "OK":
            self._warn(
                f"{self.where}: could not move messages to {self._move_to!r} ({_text(data)})"
            )

    def _warn(self, note: str) -> None:
        if note not in self.warnings:
            self.warnings.append(note)

    def close(self) -> None:
        """Expunge what was copied away (servers without MOVE), then log out."""
        client = getattr(self, "_client", None)
        if client is None:
            return
        try:
            if self._expunge:
                client.expunge()
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            with contextlib.suppress(OSError):
                client.shutdown()


def _text(data: object) -> str:
    """An IMAP reply's data as text (the first item)."""
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, tuple):
        data = data[0]
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return "" if data is None else str(data)
