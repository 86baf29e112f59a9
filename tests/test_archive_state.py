"""Which stored editions went out, as the state tells the archive: on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from state_backends import StateBackend

from newsletter.models import Digest, Edition

NOW = datetime(2026, 3, 5, 12, 0, 30, tzinfo=UTC)


def _edition(edition_id: str, created: datetime) -> Edition:
    return Edition(
        id=edition_id,
        subject=f"Subject of {edition_id}",
        preheader=f"Preheader of {edition_id}",
        html="<p>hello</p>",
        text="hello",
        digest=Digest(lead=None, now=created),
        created=created,
    )


def test_only_editions_that_reached_someone_went_out(state: StateBackend, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    day = timedelta(days=1)
    with state.open_editions(db) as editions, state.open_ledger(db) as ledger:
        assert editions.went_out() == []
        for number, (edition_id, outcome) in enumerate(
            [
                ("sent", "sent"),  # delivered
                ("maybe", "in_flight"),  # the server may have taken it before a crash
                ("refused", "failed"),  # every message refused: it reached nobody
                ("untried", "pending"),  # stored, then stopped before the first message
                ("abandoned", "sent"),  # given up after it reached someone
            ]
        ):
            editions.save(_edition(edition_id, NOW + number * day), {}, NOW + number * day)
            ledger.start(edition_id, edition_id, 1)
            ledger.claim(edition_id, "reader@example.org", "<1@x>")
            if outcome == "pending":
                ledger.release(edition_id, "reader@example.org")
            elif outcome != "in_flight":
                ledger.finish(edition_id, "reader@example.org", outcome, "250 ok")
        ledger.flush()
        editions.set_status("abandoned", "abandoned", NOW + 5 * day)
        editions.set_status("sent", "done", NOW + day)
        # A test copy's ledger entry has an id of its own; its edition is never stored.
        ledger.start("sent+test-1", "copy", 1)
        ledger.claim("sent+test-1", "me@example.org", "<2@x>")
        ledger.finish("sent+test-1", "me@example.org", "sent", "250 ok")
        ledger.flush()
        found = editions.went_out()
    assert [e.id for e in found] == ["abandoned", "maybe", "sent"]  # newest first
    first = found[-1]
    assert (first.subject, first.preheader, first.status) == (
        "Subject of sent",
        "Preheader of sent",
        "done",
    )
    assert first.created == NOW
    assert first.started == NOW
