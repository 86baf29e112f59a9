"""Acting on reports against a real state (SQLite and PostgreSQL), read from mbox and maildir."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bounce_mail import (
    EDITION,
    KEY,
    LIST_ID,
    SAMPLES,
    dsn,
    every_sample,
    sample,
    unsubscribe_mail,
    write_maildir,
    write_mbox,
)
from pg_server import PostgresServer
from state_backends import BACKENDS, schema_for

from newsletter.bounces.mailboxes import Maildir, Mbox
from newsletter.bounces.process import BounceSummary, process_mailbox
from newsletter.config.settings import Paths, Settings
from newsletter.errors import MailboxError
from newsletter.messages import message_id_digest, message_id_left
from newsletter.models import Digest, Edition
from newsletter.state.lists import Suppression
from newsletter.state.openers import (
    open_bounce_log,
    open_editions,
    open_ledger,
    open_suppressions,
)
from newsletter.tokens import Signer

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
SENT = [email for email, _, _ in SAMPLES.values()]


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings of The Meridian Post (the samples' list) with a state on each backend."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        paths = Paths(state_dir=tmp_path, state_url=server.new_schema(schema_for(tmp_path)))
    else:
        paths = Paths(state_dir=tmp_path / "state")
    return Settings(paths=paths, signing_key=KEY)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(paths=Paths(state_dir=tmp_path / "state"), signing_key=KEY)


def record_sent(settings: Settings, emails: list[str], edition: str = EDITION) -> None:
    """The stored edition and the ledger of a send that reached ``emails``."""
    stored = Edition(edition, "City approves", "", "<p>x</p>", "x", Digest(lead=None), NOW)
    with open_editions(settings.paths.state) as editions:
        editions.save(stored, {}, NOW)
    with open_ledger(settings.paths.state) as ledger:
        ledger.start(edition, "City approves new transit plan", len(emails))
        for email in emails:
            digest = message_id_digest(edition, email)
            ledger.claim(edition, email, f"<{message_id_left(edition)}.{digest}@x>")
            ledger.finish(edition, email, "sent", "250 2.0.0 Ok: queued")


def run_mbox(settings: Settings, path: Path, **kwargs: object) -> BounceSummary:
    return process_mailbox(settings, Mbox(path), now=NOW, **kwargs)  # type: ignore[arg-type]


def suppressed(settings: Settings) -> dict[str, Suppression]:
    with open_suppressions(settings.paths.state) as suppressions:
        return {s.email.casefold(): s for s in suppressions.all()}


def states(settings: Settings) -> dict[str, tuple[str, str]]:
    with open_ledger(settings.paths.state) as ledger:
        return {email: (state, reply) for email, state, reply in ledger.failures(EDITION)}


def counts(summary: BounceSummary) -> dict[str, int]:
    fields = dataclasses.asdict(summary)
    return {k: v for k, v in fields.items() if isinstance(v, int) and not isinstance(v, bool)}


def test_every_sample_is_acted_on_once(settings: Settings, tmp_path: Path) -> None:
    record_sent(settings, SENT)
    mbox = write_mbox(tmp_path / "bounces.mbox", every_sample())
    first = run_mbox(settings, mbox)
    assert counts(first) == {
        "read": 13,
        "hard": 5,
        "soft": 2,
        "complaints": 2,
        "unsubscribes": 0,
        "suppressed": 7,
        "failed": 7,
        "delays": 1,
        "unmatched": 2,
        "already": 0,
        "unreadable": 1,
    }
    assert any(n.startswith("unreadable: message sha256:") for n in first.notes)
    assert any("auth-failure" in n for n in first.notes)
    found = suppressed(settings)
    hard = {e for e, kind, _ in SAMPLES.values() if kind == "hard"}
    complaints = {e for e, kind, _ in SAMPLES.values() if kind == "complaint"}
    assert set(found) == hard | complaints
    lena = found["lena.novak@example.com"]
    assert (lena.reason, lena.source, lena.edition_id, lena.detail) == (
        "bounce",
        "bounces",
        EDITION,
        "5.1.1",
    )
    kai = found["kai.lund@example.com"]  # the redacted complaint, tied by its Message-ID
    assert (kai.reason, kai.source, kai.edition_id, kai.detail) == (
        "complaint",
        "bounces",
        EDITION,
        "abuse",
    )
    ledger = states(settings)
    assert ledger["lena.novak@example.com"][0] == "failed"
    assert ledger["lena.novak@example.com"][1].startswith("bounced (hard): 5.1.1 550 5.1.1")
    assert ledger["joy.mensah@example.net"][1].startswith("bounced (soft): 4.2.2")
    assert "kai.lund@example.com" not in ledger  # a complaint was delivered: still sent
    assert "ivo.petrov@example.org" not in ledger  # a delay is nothing yet

    second = run_mbox(settings, mbox)
    assert second.acted == 0
    assert (second.already, second.suppressed, second.failed) == (9, 0, 0)
    assert suppressed(settings) == found
    assert states(settings) == ledger
    with open_bounce_log(settings.paths.state) as log:
        assert len(log.history("lena.novak@example.com")) == 1


def test_soft_bounces_suppress_when_they_repeat_in_the_window(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    settings = sqlite_settings
    dates = ["Mon, 02 Feb 2026 07:00:00 +0000", "Sun, 01 Mar 2026 07:00:00 +0000"]
    dates += ["Mon, 09 Mar 2026 07:00:00 +0000", "Tue, 10 Mar 2026 07:00:00 +0000"]
    reports = [
        dsn("joy@example.net", status="4.2.2", report_id=f"<soft-{n}@mx>", date=date)
        for n, date in enumerate(dates)
    ]
    summary = run_mbox(settings, write_mbox(tmp_path / "a.mbox", reports[:3]))
    assert (summary.soft, summary.suppressed) == (3, 0)  # the first is outside the 30 days
    summary = run_mbox(settings, write_mbox(tmp_path / "b.mbox", reports[3:]))
    assert (summary.soft, summary.suppressed) == (1, 1)
    joy = suppressed(settings)["joy@example.net"]
    assert (joy.reason, joy.detail) == ("bounce", "4.2.2: 3 soft bounces in 30 days")


def test_an_unsubscribe_mail_counts_only_with_its_senders_token(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    settings = sqlite_settings
    signer = Signer(KEY, LIST_ID)
    mails = [
        unsubscribe_mail("ana@example.org", signer.token("ana@example.org")),
        # Bob's token sent from Cy's address, and a token made up: neither is acted on.
        unsubscribe_mail("cy@example.org", signer.token("bob@example.org"), message_id="<u2@x>"),
        unsubscribe_mail("dee@example.org", "A" * 32, message_id="<u3@x>"),
    ]
    summary = run_mbox(settings, write_mbox(tmp_path / "u.mbox", mails))
    assert (summary.unsubscribes, summary.suppressed, summary.unmatched) == (1, 1, 2)
    ana = suppressed(settings)["ana@example.org"]
    assert (ana.reason, ana.source) == ("unsubscribe", "mailto")
    assert set(suppressed(settings)) == {"ana@example.org"}
    assert sum("token is not its sender's" in note for note in summary.notes) == 2


def test_without_the_signing_key_no_token_is_trusted(tmp_path: Path) -> None:
    settings = Settings(paths=Paths(state_dir=tmp_path / "state"))
    mails = [
        unsubscribe_mail("ana@example.org", Signer(KEY, LIST_ID).token("ana@example.org")),
        sample("postfix-5.1.1.eml"),
    ]
    summary = run_mbox(settings, write_mbox(tmp_path / "u.mbox", mails))
    assert (summary.unsubscribes, summary.hard, summary.unmatched) == (0, 1, 1)
    assert "NEWSLETTER_SIGNING_KEY" in summary.notes[0]


def test_a_report_about_another_list_is_left_alone(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    other = dsn("ana@example.org", original="List-Id: <weekly.elsewhere.example>\n")
    summary = run_mbox(sqlite_settings, write_mbox(tmp_path / "o.mbox", [other]))
    assert (summary.hard, summary.unmatched) == (0, 1)
    assert "another list (weekly.elsewhere.example)" in summary.notes[0]


def test_a_maildir_is_read_and_handled_mail_moves_to_cur_seen(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    folder = write_maildir(tmp_path / "Maildir", every_sample())
    summary = process_mailbox(sqlite_settings, Maildir(folder), now=NOW)
    assert (summary.read, summary.hard, summary.unreadable) == (13, 5, 1)
    assert list((folder / "new").iterdir()) == []
    names = sorted(p.name for p in (folder / "cur").iterdir())
    assert len(names) == 13
    assert all(name.endswith(":2,S") for name in names)
    again = process_mailbox(sqlite_settings, Maildir(folder), now=NOW)
    assert (again.read, again.already, again.acted) == (13, 9, 0)
    assert sorted(p.name for p in (folder / "cur").iterdir()) == names


def test_a_dry_run_decides_the_same_and_changes_nothing(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    record_sent(sqlite_settings, SENT)
    folder = write_maildir(tmp_path / "Maildir", every_sample())
    dry = process_mailbox(sqlite_settings, Maildir(folder), dry_run=True, now=NOW)
    assert (dry.hard, dry.complaints, dry.suppressed, dry.failed) == (5, 2, 7, 7)
    assert dry.lines()[0].endswith("13 reports read (dry run: nothing was changed)")
    assert suppressed(sqlite_settings) == {}
    assert states(sqlite_settings) == {}
    assert len(list((folder / "new").iterdir())) == 13
    real = process_mailbox(sqlite_settings, Maildir(folder), now=NOW)
    assert counts(real) == counts(dry)


def test_a_maildir_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match="is not a maildir"):
        Maildir(tmp_path)
    with pytest.raises(MailboxError, match="does not exist"):
        Maildir(tmp_path / "nowhere")
    text = tmp_path / "notes.txt"
    text.write_text("Dear diary\n", encoding="utf-8")
    with pytest.raises(MailboxError, match="not an mbox file"):
        Mbox(text)


def test_a_withheld_address_is_found_by_the_signed_unsubscribe_link(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """Nothing in the ledger: the original's List-Unsubscribe token names the reader."""
    yahoo = sample("arf-yahoo.eml")
    forged = yahoo.replace(b"<8f3a1c2e", b"<forged").replace(b"token=XUq4", b"token=XUq5")
    summary = run_mbox(sqlite_settings, write_mbox(tmp_path / "c.mbox", [yahoo, forged]))
    assert (summary.complaints, summary.unmatched) == (1, 1)
    assert set(suppressed(sqlite_settings)) == {"kai.lund@example.com"}
    assert "naming no recipient we can tell" in summary.notes[0]
