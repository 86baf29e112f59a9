"""Senders sharing an edition through PostgreSQL: the stored list, claims, leases, hand-overs.

The tenant alone, on the test server (``pg_server``), each test in a schema of its own;
tests/test_shared_send.py runs real senders against it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_server import PostgresServer
from state_backends import schema_for

from newsletter.config.state import PostgresUrl, SqliteFile
from newsletter.errors import StateError
from newsletter.models import Digest, Edition, Subscriber
from newsletter.state import openers
from newsletter.state.sharing import Crew, Outstanding

NOW = datetime(2026, 3, 5, 12, tzinfo=UTC)
EDITION = "2026-03-05-abcdef01"


class Member:
    """A sender's membership whose lease always holds."""

    def __init__(self, worker: int) -> None:
        self.worker = worker

    def hold(self) -> None:
        return None


@pytest.fixture
def place(postgres: PostgresServer, tmp_path: Path) -> PostgresUrl:
    return PostgresUrl(postgres.new_schema(schema_for(tmp_path)))


def query(place: PostgresUrl, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(place.url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def people(count: int) -> list[Subscriber]:
    return [
        Subscriber(email=f"Reader{n}@Example.org", name=f"Reader {n}", fields={"n": str(n)}, line=n)
        for n in range(1, count + 1)
    ]


def shared(place: PostgresUrl, count: int, in_flight: str = "resend") -> Crew:
    """An edition that is sending, with its list of ``count`` stored; its crew, open."""
    with openers.open_editions(place) as archive:
        digest = Digest(lead=None, now=NOW)
        edition = Edition(EDITION, "S", "", "<p>", "text", digest=digest, created=NOW)
        archive.save(edition, {}, NOW)
    with openers.open_ledger(place) as ledger:
        ledger.start(EDITION, "S")
    crew = openers.open_crew(place)
    assert crew.list_size(EDITION) is None
    assert crew.store_list(EDITION, people(count), in_flight) == count
    assert crew.list_size(EDITION) == count
    return crew


def states(place: PostgresUrl) -> dict[str, tuple[str, int | None]]:
    rows = query(place, "SELECT email, state, worker FROM ledger_recipients")
    return {email: (state, worker) for email, state, worker in rows}


def expire(place: PostgresUrl, worker: int) -> None:
    query(
        place,
        "UPDATE send_workers SET lease_until = now() - interval '1 s' WHERE id = %s",
        (worker,),
    )


def test_senders_claim_the_list_in_order_in_batches(place: PostgresUrl) -> None:
    with shared(place, 10) as crew:
        first, second = crew.join(EDITION, 30), crew.join(EDITION, 30)
        assert first != second
        a = crew.claim(EDITION, first, 4, "resend")
        b = crew.claim(EDITION, second, 4, "resend")
        c = crew.claim(EDITION, first, 4, "resend")
        assert [s.line for s in a.subscribers] == [1, 2, 3, 4]
        assert [s.line for s in b.subscribers] == [5, 6, 7, 8]
        assert [s.line for s in c.subscribers] == [9, 10]
        assert a.subscribers[0] == Subscriber(
            email="Reader1@Example.org", name="Reader 1", fields={"n": "1"}, line=1
        )
        assert crew.claim(EDITION, second, 4, "resend").subscribers == ()
        held = states(place)
        assert held["reader1@example.org"] == ("pending", first)
        assert held["reader5@example.org"] == ("pending", second)
        assert crew.outstanding(EDITION, first, "resend") == Outstanding(mine=6, others=4)
    with openers.open_ledger(place) as ledger:
        status = ledger.edition(EDITION)
    assert status is not None
    assert (status.recipients, status.counts["pending"], status.not_attempted) == (10, 10, 0)


def test_recipients_given_back_behind_a_senders_place_are_still_claimed(
    place: PostgresUrl,
) -> None:
    with shared(place, 10) as crew:
        first, second = crew.join(EDITION, 30), crew.join(EDITION, 30)
        assert [s.line for s in crew.claim(EDITION, first, 4, "resend").subscribers] == [1, 2, 3, 4]
        with openers.open_crew(place) as other:  # another process
            assert [s.line for s in other.claim(EDITION, second, 3, "resend").subscribers] == [
                5,
                6,
                7,
            ]
            other.tidy(EDITION, second, "resend")  # gives 5, 6 and 7 back
        taken = crew.claim(EDITION, first, 4, "resend").subscribers
        taken += crew.claim(EDITION, first, 4, "resend").subscribers
        assert sorted(s.line for s in taken) == [5, 6, 7, 8, 9, 10]
        assert crew.claim(EDITION, first, 4, "resend").subscribers == ()


def test_senders_claiming_at_once_never_claim_the_same_recipient(place: PostgresUrl) -> None:
    with shared(place, 200) as crew:
        workers = [crew.join(EDITION, 30) for _ in range(4)]
    claimed: dict[int, list[str]] = {w: [] for w in workers}
    start = threading.Barrier(len(workers))

    def claim(worker: int) -> None:
        with openers.open_crew(place) as mine:
            start.wait()
            while batch := mine.claim(EDITION, worker, 7, "resend").subscribers:
                claimed[worker] += [s.email for s in batch]

    threads = [threading.Thread(target=claim, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everyone = [email for emails in claimed.values() for email in emails]
    assert sorted(everyone) == sorted(s.email for s in people(200))
    assert all(claimed.values())  # nobody waited for the others


def test_suppressed_addresses_are_never_claimed(place: PostgresUrl) -> None:
    with shared(place, 5) as crew:
        with openers.open_suppressions(place) as suppressions:  # during the send
            suppressions.add("reader2@example.org", "unsubscribe", "web")
            suppressions.add("READER4@example.org", "complaint", "bounces")
        worker = crew.join(EDITION, 30)
        claimed = crew.claim(EDITION, worker, 10, "resend")
        assert [s.line for s in claimed.subscribers] == [1, 3, 5]
        assert claimed.suppressed == 2
    with openers.open_ledger(place) as ledger:
        status = ledger.edition(EDITION)
        failures = ledger.failures(EDITION)
    assert failures == [
        ("reader2@example.org", "failed", "suppressed: unsubscribe"),
        ("reader4@example.org", "failed", "suppressed: complaint"),
    ]
    assert status is not None
    assert (status.recipients, status.counts["failed"], status.not_attempted) == (5, 2, 0)


@pytest.mark.parametrize("in_flight", ["resend", "hold"])
def test_a_lost_senders_recipients_go_to_the_others(place: PostgresUrl, in_flight: str) -> None:
    with shared(place, 6, in_flight) as crew:
        lost, alive = crew.join(EDITION, 30), crew.join(EDITION, 30)
        crew.claim(EDITION, lost, 3, in_flight)
        with openers.open_ledger(place, Member(lost)) as ledger:
            ledger.claim(EDITION, "reader1@example.org", "<1>")  # under way at the kill
        expire(place, lost)
        assert crew.outstanding(EDITION, alive, in_flight).mine == (
            6 if in_flight == "resend" else 5
        )
        taken = crew.claim(EDITION, alive, 10, in_flight).subscribers
        lines = [s.line for s in taken]
        assert lines == ([1, 2, 3, 4, 5, 6] if in_flight == "resend" else [2, 3, 4, 5, 6])
        assert not crew.renew(lost, 30, {})  # its lease is gone for good
        shown = {w.id: w for w in crew.workers(EDITION)}
        assert (shown[lost].state, shown[lost].live) == ("lost", False)
        assert shown[lost].lease_left < 0
        assert (shown[alive].live, shown[alive].pending) == (True, len(lines))
        if in_flight == "hold":  # held for a person, still shown as the lost sender's
            assert states(place)["reader1@example.org"] == ("in_flight", lost)
            assert shown[lost].in_flight == 1


def test_a_lost_sender_writes_nothing_over_the_others(place: PostgresUrl) -> None:
    with shared(place, 2) as crew:
        lost, alive = crew.join(EDITION, 30), crew.join(EDITION, 30)
        crew.claim(EDITION, lost, 2, "resend")
        stale = openers.open_ledger(place, Member(lost))
        expire(place, lost)
        crew.claim(EDITION, alive, 2, "resend")
        with openers.open_ledger(place, Member(alive)) as ledger:
            ledger.claim(EDITION, "reader1@example.org", "<1>")
            ledger.finish(EDITION, "reader1@example.org", "sent", "250 ok")
        with stale:  # what the lost sender still had queued lands late: nothing changes
            stale.claim(EDITION, "reader1@example.org", "<1>")
            stale.finish(EDITION, "reader1@example.org", "deferred", "451 later")
            stale.release(EDITION, "reader2@example.org")
    assert states(place) == {
        "reader1@example.org": ("sent", alive),
        "reader2@example.org": ("pending", alive),
    }


def test_deferred_recipients_are_tried_again_by_later_senders_only(place: PostgresUrl) -> None:
    with shared(place, 1) as crew:
        first = crew.join(EDITION, 30)
        crew.claim(EDITION, first, 1, "resend")
        with openers.open_ledger(place, Member(first)) as ledger:
            ledger.claim(EDITION, "reader1@example.org", "<1>")
            ledger.finish(EDITION, "reader1@example.org", "deferred", "451 greylisted")
        assert crew.claim(EDITION, first, 1, "resend").subscribers == ()
        assert crew.outstanding(EDITION, first, "resend") == Outstanding(0, 0)
        later = crew.join(EDITION, 30)
        assert crew.outstanding(EDITION, first, "resend") == Outstanding(0, 1)
        assert [s.line for s in crew.claim(EDITION, later, 1, "resend").subscribers] == [1]


def test_a_sender_gives_back_what_it_holds_and_the_last_finishes_the_edition(
    place: PostgresUrl,
) -> None:
    with shared(place, 3) as crew:
        worker = crew.join(EDITION, 30)
        crew.claim(EDITION, worker, 3, "resend")
        with openers.open_ledger(place, Member(worker)) as ledger:
            ledger.claim(EDITION, "reader1@example.org", "<1>")
            ledger.finish(EDITION, "reader1@example.org", "sent", "250 ok")
            ledger.claim(EDITION, "reader2@example.org", "<2>")
        crew.tidy(EDITION, worker, "resend")  # reader2 was in flight: tried again
        assert states(place)["reader2@example.org"] == ("pending", None)
        crew.leave(worker, "stopped", "resend", {"sent": 1})
        assert crew.workers(EDITION)[0].state == "stopped"
        assert crew.workers(EDITION)[0].sent == 1
        closer = crew.join(EDITION, 30)
        assert crew.outstanding(EDITION, closer, "resend") == Outstanding(2, 0)
        assert [s.line for s in crew.claim(EDITION, closer, 5, "resend").subscribers] == [2, 3]
        with openers.open_ledger(place, Member(closer)) as ledger:
            for n in (2, 3):
                ledger.claim(EDITION, f"reader{n}@example.org", f"<{n}>")
                ledger.finish(EDITION, f"reader{n}@example.org", "sent", "250 ok")
        assert crew.outstanding(EDITION, closer, "resend").nothing
        assert crew.finish(EDITION, NOW)
        assert not crew.finish(EDITION, NOW)  # once
        assert crew.claim(EDITION, closer, 5, "resend").subscribers == ()
    with openers.open_editions(place) as archive:
        stored = archive.get(EDITION)
    assert stored is not None
    assert stored.status == "done"


def test_a_lease_is_renewed_on_the_servers_clock(place: PostgresUrl) -> None:
    with shared(place, 1) as crew:
        worker = crew.join(EDITION, 1)
        time.sleep(0.3)
        assert crew.renew(worker, 60, {"sent": 5, "failed": 1})
        (shown,) = crew.workers(EDITION)
        assert shown.live
        assert shown.lease_left > 50
        assert (shown.sent, shown.failed, shown.deferred) == (5, 1, 0)


def test_a_sqlite_state_has_no_crew(tmp_path: Path) -> None:
    place = SqliteFile(tmp_path / "state.sqlite3")
    with pytest.raises(StateError, match="only through a PostgreSQL state"):
        openers.open_crew(place)
    with pytest.raises(StateError, match="only through a PostgreSQL state"):
        openers.open_ledger(place, Member(1))


def test_a_sender_taken_for_dead_claims_nothing_and_its_last_batch_goes_back(
    place: PostgresUrl,
) -> None:
    with shared(place, 6) as crew:
        late, alive = crew.join(EDITION, 30), crew.join(EDITION, 30)
        crew.claim(EDITION, late, 2, "resend")
        expire(place, late)
        first = crew.claim(EDITION, alive, 2, "resend")  # takes the late sender for dead
        assert [s.line for s in first.subscribers] == [1, 2]
        gone = crew.claim(EDITION, late, 2, "resend")
        assert gone.lost
        assert gone.subscribers == ()
        # A last batch it claimed as it was being taken for dead goes back too.
        query(
            place, "UPDATE ledger_recipients SET worker = %s WHERE email LIKE 'reader6%%'", (late,)
        )
        taken = crew.claim(EDITION, alive, 10, "resend").subscribers
        assert [s.line for s in taken] == [3, 4, 5, 6]


@pytest.mark.parametrize("in_flight", ["resend", "hold"])
def test_an_edition_a_sender_alone_began_is_finished_by_the_crew(
    place: PostgresUrl, in_flight: str
) -> None:
    with openers.open_ledger(place) as alone:  # an earlier release, killed mid-send
        alone.start(EDITION, "S")
        alone.claim(EDITION, "reader1@example.org", "<1>")
        alone.finish(EDITION, "reader1@example.org", "sent", "250 ok")
        alone.claim(EDITION, "reader2@example.org", "<2>")  # in flight at the kill
        alone.claim(EDITION, "reader3@example.org", "<3>")
        alone.finish(EDITION, "reader3@example.org", "deferred", "451 later")
    with shared(place, 5, in_flight) as crew:
        assert states(place)["reader1@example.org"] == ("sent", None)  # kept as it was
        worker = crew.join(EDITION, 30)
        crew.tidy(EDITION, worker, in_flight)  # as every round starts
        lines = [s.line for s in crew.claim(EDITION, worker, 10, in_flight).subscribers]
        assert lines == ([2, 3, 4, 5] if in_flight == "resend" else [3, 4, 5])
