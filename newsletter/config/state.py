"""Where the state lives: a SQLite file (the default) or a PostgreSQL database by URL.

``[state] url`` in the config, or ``$NEWSLETTER_STATE_URL``, names a PostgreSQL
database; the environment wins, so one config can serve hosts that reach the database
differently (and a URL with a password can stay out of the file). Without either, the
state is the SQLite file ``<state_dir>/state.sqlite3``.

The password comes from where libpq looks for it: the URL itself, ``$PGPASSWORD`` or
``~/.pgpass``. A URL may carry it, so ``mask_url`` is the one way any message shows a
URL, or text that may quote one.

In PostgreSQL several senders share one edition (``Sharing``: how long a sender's claim
on its recipients lasts without news from it, and how long a sender waits for the
database when it goes away in the middle of a send).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from newsletter.config.reader import TableReader

ENV_STATE_URL = "NEWSLETTER_STATE_URL"
SQLITE_NAME = "state.sqlite3"  # the state file's name in the state folder
SCHEMES = ("postgresql://", "postgres://")
EXAMPLE_URL = "postgresql://newsletter@db.internal/newsletter"
HIDDEN = "***"

_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)([^@/]*)@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)


def mask_url(url: str, text: str | None = None) -> str:
    """Hide ``url``'s password behind ``***`` in ``text`` (by default, in the URL itself).

    The password is the one in the user part (``user:password@``) or a ``password=``
    parameter; in ``text`` it is hidden as written and percent-decoded, wherever it is
    (a driver's error may quote a piece of the URL).
    """
    secrets: list[str] = []
    masked = url
    found = _USERINFO.match(url)
    if found and ":" in found.group(2):
        user, secret = found.group(2).split(":", 1)
        secrets.append(secret)
        masked = f"{found.group(1)}{user}:{HIDDEN}@{url[found.end() :]}"
    secrets += [value for _, value in _QUERY_PASSWORD.findall(url)]
    masked = _QUERY_PASSWORD.sub(lambda m: f"{m.group(1)}{HIDDEN}", masked)
    if text is None:
        return masked
    text = text.replace(url, masked)
    for secret in sorted({s for raw in secrets for s in (raw, unquote(raw)) if s}, key=len)[::-1]:
        text = text.replace(secret, HIDDEN)
    return text


@dataclass(frozen=True)
class SqliteFile:
    """The state in one SQLite file; its folder also holds the locks."""

    path: Path
    shared = False  # one sender at a time (a lock file in its folder)

    @property
    def where(self) -> str:
        """The state as messages name it: its folder, which also holds the lock files."""
        return str(self.path.parent)

    def exists(self) -> bool:
        """Whether anything was ever recorded (the file is there)."""
        return self.path.exists()

    def __str__(self) -> str:
        return str(self.path)


DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_RECONNECT_SECONDS = 120.0


@dataclass(frozen=True)
class Sharing:
    """``[state] lease_seconds`` and ``reconnect_seconds``: senders sharing a database.

    A sender renews its lease on the recipients it claimed every third of
    ``lease_seconds``; a sender not heard of for that long is taken for dead and the
    others take over its recipients. A sender that loses the database waits up to
    ``reconnect_seconds`` for it to come back before it gives up.
    """

    lease_seconds: float = DEFAULT_LEASE_SECONDS
    reconnect_seconds: float = DEFAULT_RECONNECT_SECONDS


@dataclass(frozen=True)
class PostgresUrl:
    """The state in a PostgreSQL database; ``str`` and ``repr`` mask the password.

    Senders that name the same database share its editions (``shared``).
    """

    url: str = field(repr=False)
    sharing: Sharing = field(default_factory=Sharing)
    shared = True  # several senders, on any hosts, may send one edition together

    @property
    def where(self) -> str:
        """The state as messages name it: the URL, its password masked."""
        return mask_url(self.url)

    def exists(self) -> bool:
        """Whether anything may have been recorded: always (ask the database)."""
        return True

    def __str__(self) -> str:
        return mask_url(self.url)

    def __repr__(self) -> str:
        return f"PostgresUrl({mask_url(self.url)!r})"


StateLocation = SqliteFile | PostgresUrl


def read_state(top: TableReader, environ: Mapping[str, str]) -> tuple[str, Sharing]:
    """Read ``[state]``: the URL (``$NEWSLETTER_STATE_URL`` wins; empty: the SQLite file)
    and how senders share a PostgreSQL database."""
    st = top.table("state")
    sharing = Sharing(
        lease_seconds=st.number("lease_seconds", DEFAULT_LEASE_SECONDS, 1.0, 3600.0),
        reconnect_seconds=st.number("reconnect_seconds", DEFAULT_RECONNECT_SECONDS, 0.0, 86400.0),
    )
    return _read_url(st, top, environ), sharing


def _read_url(st: TableReader, top: TableReader, environ: Mapping[str, str]) -> str:
    value = st.raw("url", "")
    if not isinstance(value, str):
        st.problem("url", f"expected a string such as {EXAMPLE_URL!r}")
        value = ""
    url, where = value.strip(), st.key("url")
    if environ.get(ENV_STATE_URL, "").strip():
        url, where = environ[ENV_STATE_URL].strip(), ENV_STATE_URL
    if url and not url.lower().startswith(SCHEMES):
        # Never quote the value: it may hold a password.
        top.problems.append(
            f"{where}: expected a PostgreSQL URL such as {EXAMPLE_URL!r} "
            "(leave it out to keep the state in a SQLite file in output.state_dir)"
        )
        url = ""
    st.finish()
    return url
