"""Senders sharing an edition through the PostgreSQL state database: lists, leases, claims.

An edition's recipient list is stored once (``send_list``, filled with ``COPY``) with
a ``pending`` ledger row for each recipient, numbered by its place in the list. Every
sender registers in ``send_workers`` and renews its lease there; leases run on the
server's clock, so the hosts' clocks do not matter. A sender claims its next
recipients in list order with ``FOR UPDATE SKIP LOCKED``, so senders never wait for
each other nor claim the same row. It looks past the last place it claimed (an index
range, however much of the list is done), and from the top again when that finds too
few or when recipients were just handed back from a sender gone. A claimed row names
its sender (``worker``) and stays ``pending`` until the sender marks it ``in_flight``
through its ledger, before the message data goes out (``newsletter.state.postgres.ledger``).

A claim also does two checks in the same transaction: senders whose lease ran out are
marked ``lost`` and their rows go back to everyone (those in flight only under the
``resend`` policy: under ``hold`` they stay in flight for a person), and suppressed
addresses among the rows picked are not claimed but recorded ``failed`` with the reply
``suppressed: <reason>`` (``state.watch``), as a send alone records them.

Every method runs on a ``Resilient`` session: when the server goes away it runs
again on a new one. Each is safe to run twice, or leaves what ``tidy`` gives back.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import psycopg

from newsletter.clock import now_utc
from newsletter.models import Subscriber
from newsletter.state.api import normalize_email
from newsletter.state.postgres.connection import connect, state_error
from newsletter.state.postgres.resilient import Connection, Resilient
from newsletter.state.rows import finished_stamp
from newsletter.state.sharing import Claimed, Outstanding, Worker
from newsletter.state.timestamps import to_stamp
from newsletter.state.watch import SUPPRESSED

T = TypeVar("T")

_LIVE = "w.state = 'sending' AND w.lease_until >= now()"

_PICK = """
    WITH picked AS (
        SELECT ctid, email FROM ledger_recipients
        WHERE edition_id = %(e)s AND position IS NOT NULL AND {which}
        ORDER BY position LIMIT %(n)s
        FOR UPDATE SKIP LOCKED
    ), barred AS (
        UPDATE ledger_recipients AS r
        SET state = 'failed', reply = %(why)s || s.reason, updated = %(t)s
        FROM picked AS p JOIN suppressions AS s ON s.email_key = p.email
        WHERE r.ctid = p.ctid
        RETURNING r.email
    ), taken AS (
        UPDATE ledger_recipients AS r SET worker = %(w)s, updated = %(t)s
        FROM picked AS p
        WHERE r.ctid = p.ctid
          AND NOT EXISTS (SELECT 1 FROM suppressions AS s WHERE s.email_key = p.email)
        RETURNING r.position
    )
    SELECT t.position, l.email, l.name, l.fields, l.line
    FROM taken AS t JOIN send_list AS l ON l.edition_id = %(e)s AND l.position = t.position
    UNION ALL SELECT NULL, NULL, NULL, NULL, NULL FROM barred
"""
# A pending ledger row for each new recipient of a stored list; the others keep theirs.
_LIST_ROWS = """
    INSERT INTO ledger_recipients
        (edition_id, email, message_id, state, attempts, reply, updated, position)
    SELECT DISTINCT ON (l.email_key)
        l.edition_id, l.email_key, '', 'pending', 0, '', %(t)s, l.position
    FROM send_list AS l WHERE l.edition_id = %(e)s
    ORDER BY l.email_key, l.position
    ON CONFLICT (edition_id, email) DO UPDATE SET position = excluded.position
"""
_NEVER_TRIED = "state = 'pending' AND worker IS NULL AND position > %(after)s"
_DEFERRED_BEFORE = "state = 'deferred' AND COALESCE(worker, 0) < %(w)s"

_OUTSTANDING = f"""
    SELECT
        COUNT(*) FILTER (WHERE
            (r.worker = %(w)s AND (r.state = 'pending' OR r.state = 'in_flight' AND %(resend)s))
            OR (r.state = 'pending' AND NOT COALESCE(w.live, FALSE))
            OR (r.state = 'in_flight' AND %(resend)s AND NOT COALESCE(w.live, FALSE))
            OR (r.state = 'deferred' AND COALESCE(r.worker, 0) < %(w)s)),
        COUNT(*) FILTER (WHERE
            (r.state IN ('pending', 'in_flight') AND r.worker <> %(w)s
             AND COALESCE(w.live, FALSE))
            OR (r.state = 'deferred' AND COALESCE(r.worker, 0) >= %(w)s AND EXISTS (
                SELECT 1 FROM send_workers AS w WHERE w.edition_id = r.edition_id
                AND w.id > COALESCE(r.worker, 0) AND w.id <> %(w)s AND {_LIVE})))
    FROM ledger_recipients AS r
    LEFT JOIN (SELECT w.id, {_LIVE} AS live FROM send_workers AS w
               WHERE w.edition_id = %(e)s) AS w ON w.id = r.worker
    WHERE r.edition_id = %(e)s AND r.position IS NOT NULL
      AND r.state IN ('pending', 'in_flight', 'deferred')
"""  # noqa: S608 - fixed text

_WORKERS = f"""
    SELECT w.id, w.edition_id, w.host, w.pid, w.started, w.state, {_LIVE},
           EXTRACT(EPOCH FROM w.lease_until - now()), w.sent, w.failed, w.deferred,
           (SELECT COUNT(*) FROM ledger_recipients AS r WHERE r.edition_id = w.edition_id
            AND r.worker = w.id AND r.state = 'pending'),
           (SELECT COUNT(*) FROM ledger_recipients AS r WHERE r.edition_id = w.edition_id
            AND r.worker = w.id AND r.state = 'in_flight')
    FROM send_workers AS w WHERE w.edition_id = %s ORDER BY w.id
"""  # noqa: S608 - fixed text


def _given_back(in_flight: str) -> list[str]:
    """The states of a row that go back to everyone when its sender lets go of it."""
    return ["pending", "in_flight"] if in_flight == "resend" else ["pending"]


def _stamp() -> str:
    return to_stamp(now_utc())


class PostgresCrew:
    """The ``send_list`` and ``send_workers`` tables, and who holds which ledger row."""

    def __init__(self, url: str, patience: float = 0.0) -> None:
        self._url = url
        self._db = Resilient(url, connect(url), patience)
        self._after: dict[str, int] = {}  # per edition: the last place this crew claimed

    def _run(self, what: str, work: Callable[[Connection], T], *, again: bool = True) -> T:
        try:
            return self._db.run(work, again=again)
        except psycopg.Error as err:
            raise state_error(self._url, what, err) from err

    # ------------------------------------------------------------------ the list

    def list_size(self, edition_id: str) -> int | None:
        """How many recipients the edition's stored list has (``None``: not stored yet)."""

        def count(conn: Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM send_list WHERE edition_id = %s", (edition_id,)
            ).fetchone()
            return int(row[0]) if row else 0

        found = self._run("cannot read", count)
        return found or None

    def store_list(self, edition_id: str, subscribers: Iterable[Subscriber], in_flight: str) -> int:
        """Store the edition's list and its ledger rows (``pending``); return the count.

        The edition's ledger must be started (the caller leaves the suppressed out of
        ``subscribers``; those suppressed later are caught by ``claim``). Recipients the
        ledger already has (an edition begun by an earlier release) keep their state.
        """

        def store(conn: Connection) -> int:
            with conn.cursor() as cursor:
                columns = "edition_id, position, email_key, email, name, fields, line"
                with cursor.copy(f"COPY send_list ({columns}) FROM STDIN") as copy:
                    for position, s in enumerate(subscribers, 1):
                        fields = json.dumps(dict(s.fields), ensure_ascii=False)
                        key = normalize_email(s.email)
                        copy.write_row((edition_id, position, key, s.email, s.name, fields, s.line))
                cursor.execute(_LIST_ROWS, {"e": edition_id, "t": _stamp()})
                # Fresh statistics, so that claims walk the list's index in order rather
                # than sort what the planner would take for a handful of rows.
                cursor.execute("ANALYZE ledger_recipients, send_list")
                row = cursor.execute(
                    "UPDATE ledger_editions SET recipients ="
                    " (SELECT COUNT(*) FROM ledger_recipients WHERE edition_id = %s)"
                    " WHERE edition_id = %s RETURNING recipients",
                    (edition_id, edition_id),
                ).fetchone()
            return int(row[0]) if row else 0

        return self._run("cannot write to", store, again=False)

    # ------------------------------------------------------------------ senders

    def join(self, edition_id: str, lease_seconds: float) -> int:
        """Register this process as a sender of the edition; return its number."""

        def register(conn: Connection) -> int:
            row = conn.execute(
                "INSERT INTO send_workers (edition_id, host, pid, lease_until)"
                " VALUES (%s, %s, %s, now() + make_interval(secs => %s)) RETURNING id",
                (edition_id, socket.gethostname(), os.getpid(), lease_seconds),
            ).fetchone()
            assert row is not None  # RETURNING gives the row
            return int(row[0])

        return self._run("cannot write to", register)

    def renew(self, worker: int, lease_seconds: float, counts: Mapping[str, int]) -> bool:
        """Extend the sender's lease and record its counts; False if it was lost."""

        def extend(conn: Connection) -> bool:
            row = conn.execute(
                "UPDATE send_workers SET lease_until = now() + make_interval(secs => %s),"
                " renewed = now(), sent = %s, failed = %s, deferred = %s"
                " WHERE id = %s AND state = 'sending' RETURNING id",
                (lease_seconds, *_counts(counts), worker),
            ).fetchone()
            return row is not None

        return self._run("cannot write to", extend)

    def leave(self, worker: int, state: str, in_flight: str, counts: Mapping[str, int]) -> None:
        """End the sender's part (``state`` one of ``SENDER_STATES``), giving back what it holds."""

        def end(conn: Connection) -> None:
            row = conn.execute(
                "UPDATE send_workers SET state = %s, lease_until = now(), sent = %s,"
                " failed = %s, deferred = %s WHERE id = %s AND state = 'sending'"
                " RETURNING edition_id",
                (state, *_counts(counts), worker),
            ).fetchone()
            if row is not None:
                self._after.pop(str(row[0]), None)
                _give_back(conn, str(row[0]), worker, in_flight)

        self._run("cannot write to", end)

    # ------------------------------------------------------------------ claims

    def claim(self, edition_id: str, worker: int, limit: int, in_flight: str) -> Claimed:
        """Claim up to ``limit`` recipients, in list order, for the sender.

        First hands the recipients of senders whose lease ran out back to everyone;
        suppressed recipients are recorded ``failed`` instead of claimed. A sender taken
        for dead claims nothing (``Claimed.lost``).
        """

        def take(conn: Connection) -> Claimed:
            sending, given_back, live = _look(conn, edition_id, worker, in_flight)
            if not sending:
                return Claimed(())
            if not live:
                return Claimed((), lost=True)
            after = 0 if given_back else self._after.get(edition_id, 0)
            params = {"e": edition_id, "w": worker, "t": _stamp(), "n": limit, "why": SUPPRESSED}
            pick = _PICK.format(which=_NEVER_TRIED)
            rows = conn.execute(pick, params | {"after": after}).fetchall()
            if len(rows) < limit and after:  # what was given back before the last place
                params["n"] = limit - len(rows)
                rows += conn.execute(pick, params | {"after": 0}).fetchall()
            taken = [row for row in rows if row[0] is not None]
            self._after[edition_id] = max((row[0] for row in taken), default=0)
            if len(rows) < limit:
                params["n"] = limit - len(rows)
                rows += conn.execute(_PICK.format(which=_DEFERRED_BEFORE), params).fetchall()
                taken = [row for row in rows if row[0] is not None]
            taken.sort(key=lambda row: int(row[0]))
            return Claimed(tuple(_subscriber(row) for row in taken), len(rows) - len(taken))

        return self._run("cannot write to", take)

    def tidy(self, edition_id: str, worker: int, in_flight: str) -> None:
        """Give back what the sender holds and is not working on (between its rounds).

        Under ``resend`` this also gives back what was in flight without a sender (an
        edition that a sender alone, of an earlier release, left behind).
        """

        def tidy(conn: Connection) -> None:
            self._after.pop(edition_id, None)
            _give_back(conn, edition_id, worker, in_flight)
            if in_flight == "resend":
                conn.execute(
                    "UPDATE ledger_recipients SET state = 'pending', updated = %s"
                    " WHERE edition_id = %s AND state = 'in_flight' AND worker IS NULL"
                    " AND position IS NOT NULL",
                    (_stamp(), edition_id),
                )

        self._run("cannot write to", tidy)

    def outstanding(self, edition_id: str, worker: int, in_flight: str) -> Outstanding:
        """What is left of the edition for this sender and for the others."""

        def count(conn: Connection) -> Outstanding:
            if not _sending(conn, edition_id):
                return Outstanding(0, 0)
            params = {"e": edition_id, "w": worker, "resend": in_flight == "resend"}
            row = conn.execute(_OUTSTANDING, params).fetchone()
            return Outstanding(int(row[0]), int(row[1])) if row else Outstanding(0, 0)

        return self._run("cannot read", count)

    def finish(self, edition_id: str, at: datetime) -> bool:
        """Mark the edition ``done`` if it is still sending; True if this call did it."""

        def done(conn: Connection) -> bool:
            row = conn.execute(
                "UPDATE archive_editions SET status = 'done', finished_at = %s"
                " WHERE id = %s AND status = 'sending' RETURNING id",
                (finished_stamp("done", at), edition_id),
            ).fetchone()
            return row is not None

        return self._run("cannot write to", done)

    def workers(self, edition_id: str) -> list[Worker]:
        """Every sender that joined the edition, in the order they joined."""

        def read(conn: Connection) -> list[Worker]:
            rows = conn.execute(_WORKERS, (edition_id,)).fetchall()
            return [_worker(row) for row in rows]

        return self._run("cannot read", read)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the database session."""
        self._db.close()

    def __enter__(self) -> PostgresCrew:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _counts(counts: Mapping[str, int]) -> tuple[int, int, int]:
    return counts.get("sent", 0), counts.get("failed", 0), counts.get("deferred", 0)


def _live(conn: Connection, worker: int) -> bool:
    """Whether the sender is still sending (not taken for dead, not ended)."""
    row = conn.execute(
        "SELECT 1 FROM send_workers WHERE id = %s AND state = 'sending'", (worker,)
    ).fetchone()
    return row is not None


def _sending(conn: Connection, edition_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM archive_editions WHERE id = %s AND status = 'sending'", (edition_id,)
    ).fetchone()
    return row is not None


_LOOK = """
    WITH sending AS (
        SELECT 1 FROM archive_editions WHERE id = %(e)s AND status = 'sending'
    ), lapsed AS (
        UPDATE send_workers SET state = 'lost'
        WHERE edition_id = %(e)s AND state = 'sending' AND lease_until < now()
          AND EXISTS (SELECT 1 FROM sending)
        RETURNING id
    ), gone AS (
        SELECT id FROM send_workers WHERE edition_id = %(e)s AND state <> 'sending'
        UNION SELECT id FROM lapsed
    ), given AS (
        UPDATE ledger_recipients AS r SET worker = NULL, state = 'pending', updated = %(t)s
        FROM gone WHERE r.edition_id = %(e)s AND r.worker = gone.id
          AND r.state IN ('pending', 'in_flight') AND r.state = ANY(%(states)s)
          AND EXISTS (SELECT 1 FROM sending)
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM sending),
           EXISTS (SELECT 1 FROM given),
           EXISTS (SELECT 1 FROM send_workers WHERE id = %(w)s AND state = 'sending')
           AND NOT EXISTS (SELECT 1 FROM lapsed WHERE id = %(w)s)
"""


def _look(conn: Connection, edition_id: str, worker: int, in_flight: str) -> tuple[bool, ...]:
    """Before a claim: is the edition sending; was a recipient given back; is the sender live.

    Senders whose lease ran out are marked ``lost``, and what senders gone hold goes
    back to everyone. Gone: lost now or before, or ended (a sender that ended gave its
    rows back, but one taken for dead may have claimed a last batch as it was marked).
    A statement's parts see the tables as they were before it: the sender itself may be
    among those it marks lost.
    """
    params = {"e": edition_id, "w": worker, "t": _stamp(), "states": _given_back(in_flight)}
    row = conn.execute(_LOOK, params).fetchone()
    assert row is not None  # a SELECT without FROM gives one row
    return tuple(bool(value) for value in row)


def _give_back(conn: Connection, edition_id: str, worker: int, in_flight: str) -> None:
    """Give back the sender's rows not tried yet (and under ``resend`` those in flight)."""
    conn.execute(
        "UPDATE ledger_recipients SET worker = NULL, state = 'pending', updated = %s"
        " WHERE edition_id = %s AND worker = %s AND state IN ('pending', 'in_flight')"
        " AND state = ANY(%s)",  # the first test is the index's (``ledger_recipients_held``)
        (_stamp(), edition_id, worker, _given_back(in_flight)),
    )


def _subscriber(row: tuple[Any, ...]) -> Subscriber:
    """A recipient claimed: its ``send_list`` row (position, email, name, fields, line)."""
    _, email, name, fields, line = row
    return Subscriber(email=email, name=name, fields=json.loads(fields), line=line)


def _worker(row: tuple[Any, ...]) -> Worker:
    (number, edition, host, pid, started, state, live, left, sent, failed, deferred) = row[:11]
    return Worker(
        id=int(number),
        edition_id=str(edition),
        host=str(host),
        pid=int(pid),
        started=to_stamp(started),
        state=str(state),
        live=bool(live),
        lease_left=float(left),
        sent=int(sent),
        failed=int(failed),
        deferred=int(deferred),
        pending=int(row[11]),
        in_flight=int(row[12]),
    )
