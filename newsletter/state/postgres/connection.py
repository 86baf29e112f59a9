"""Open the PostgreSQL state database: the one place that connects, sets sessions up, migrates.

Every tenant's tables (``history_``, ``archive_``, ``ledger_``, ``schedule_``,
``suppressions``, ``members``, ``bounce_events``, ``send_``) live in the database of
the URL, in the first schema of its ``search_path`` (``public`` unless the URL's
``options`` say otherwise). A connection is in autocommit mode (a tenant opens its own
transactions) with ``synchronous_commit = on`` whatever the server's default, so a
commit is durable when it returns: the ledger's guarantee needs it. A session idle
inside a transaction for ``IDLE_IN_TRANSACTION_S`` is ended by the server, so a sender
that hangs there does not hold its locks for ever. Each session names itself
``newsletter <pid>@<host>``, so a lock's holder and a database administrator can tell
the senders apart.

Every message about the database goes through ``mask_url``: the URL may hold a
password, and a driver's error may quote it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import conninfo_to_dict

from newsletter.config.state import mask_url
from newsletter.errors import NewsletterError, StateError, StateUnavailable
from newsletter.state.postgres.lock import session_name
from newsletter.state.postgres.migrations import migrate

CONNECT_TIMEOUT_S = 10  # unless the URL says otherwise
IDLE_IN_TRANSACTION_S = 30  # a session that sits this long inside a transaction is ended
HINT = (
    "check that the server is running and reachable, and the URL, user and password "
    "([state] url or $NEWSLETTER_STATE_URL, $PGPASSWORD or ~/.pgpass)"
)

Connection = psycopg.Connection[tuple[Any, ...]]


def explain(url: str, text: str) -> str:
    """``text`` about the database at ``url``, starting with the URL; its password masked."""
    return mask_url(url, f"{url}: {text}")


def state_error(url: str, what: str, err: BaseException) -> StateError:
    """Explain a database failure of a state tenant: the URL, what failed, the next step.

    A server that cannot be reached (down, restarting, a lost connection) makes a
    ``StateUnavailable``.
    """
    kind = StateUnavailable if isinstance(err, psycopg.OperationalError) else StateError
    return kind(explain(url, f"{what} the state database ({_reason(err)}); {HINT}"))


def _reason(err: BaseException) -> str:
    return str(err).strip() or type(err).__name__


class Errors(Protocol):
    """How a tenant explains a database failure (the ledger has its own words)."""

    def database(self, url: str, action: str, err: BaseException) -> NewsletterError:
        """PostgreSQL failed to ``connect to`` the database or to ``use`` it."""


class StateErrors:
    """The state database's explanations (``state_error``)."""

    def database(self, url: str, action: str, err: BaseException) -> NewsletterError:
        """PostgreSQL failed to ``connect to`` the database or to ``use`` it."""
        return state_error(url, f"cannot {action}", err)


STATE_ERRORS = StateErrors()


def open_session(url: str, *, errors: Errors = STATE_ERRORS) -> Connection:
    """Connect to the database at ``url`` (autocommit, durable commits), schema untouched."""
    try:
        conn = _connect(url)
    except psycopg.Error as err:
        raise errors.database(url, "connect to", err) from err
    try:
        _set_up(conn)
    except psycopg.Error as err:
        conn.close()
        raise errors.database(url, "use", err) from err
    return conn


def session(url: str) -> Connection:
    """A new session as ``open_session`` opens it; raises ``psycopg.Error`` as it comes."""
    conn = _connect(url)
    try:
        _set_up(conn)
    except psycopg.Error:
        conn.close()
        raise
    return conn


def _connect(url: str) -> Connection:
    timeout = conninfo_to_dict(url).get("connect_timeout", CONNECT_TIMEOUT_S)
    conn: Connection = psycopg.connect(
        url, autocommit=True, application_name=session_name(), connect_timeout=timeout
    )
    return conn


def _set_up(conn: Connection) -> None:
    conn.execute("SET synchronous_commit = on")
    # A sender that hangs inside a transaction (stopped, swapped out) must not hold its
    # row locks for ever: the server ends its session, and the others go on.
    conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_S}s'")


def connect(url: str, *, errors: Errors = STATE_ERRORS) -> Connection:
    """Open the state database at ``url``, migrated to the current schema.

    Failures are explained by ``errors``; a database made by a newer version of
    newsletter is refused with a ``StateError``.
    """
    conn, _ = _open(url, errors)
    return conn


def upgrade(url: str) -> int:
    """Create the tables of the database at ``url`` or migrate them; return the version it had."""
    conn, before = _open(url, STATE_ERRORS)
    conn.close()
    return before


def _open(url: str, errors: Errors) -> tuple[Connection, int]:
    """Open the database as ``connect`` does; also return the schema version it had."""
    conn = open_session(url, errors=errors)
    try:
        before = migrate(conn, mask_url(url))
    except psycopg.Error as err:
        conn.close()
        raise errors.database(url, "use", err) from err
    except BaseException:
        conn.close()
        raise
    return conn, before


@contextmanager
def guard(url: str, what: str) -> Iterator[None]:
    """Turn a database error into a ``StateError`` naming the (masked) URL and a next step."""
    try:
        yield
    except psycopg.Error as err:
        raise state_error(url, what, err) from err
