"""Who a send goes to: the list, the subscribers the tool holds, less the suppressed.

Real parts: the bundled sample publication, a real SQLite state folder, a real SMTP
server on 127.0.0.1, and the command line for the summaries. The send already under
way is in test_send_suppressed.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from smtp_server import SMTPServer

from newsletter.audience import Audience, Held, Reach, recipients
from newsletter.cli.main import cli
from newsletter.config.load import load_settings
from newsletter.config.settings import Settings
from newsletter.errors import SubscriberError
from newsletter.pipeline import BuildOptions
from newsletter.sends.edition import send_edition
from newsletter.sends.plan import DryRun, SendHooks, SendPlan
from newsletter.state.lists import Member
from newsletter.state.openers import open_ledger, open_members, open_suppressions

NOW = datetime.fromisoformat("2026-03-04T18:00:00+05:30")
LIST = """email,name,status
ana@example.org,Ana,active
bo@example.org,Bo,active
cy@example.org,Cy,unsubscribed
dee@example.org,Dee,active
"""


@pytest.fixture
def server() -> Iterator[SMTPServer]:
    with SMTPServer() as running:
        yield running


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SMTPServer) -> Settings:
    """The sample publication with a small list and its state in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SIGNING_KEY", "audience-test-signing-key-0123456789")
    base = load_settings(None)
    people = tmp_path / "people.csv"
    people.write_text(LIST, encoding="utf-8")
    paths = dataclasses.replace(base.paths, subscribers=people, state_dir=tmp_path / "state")
    smtp = dataclasses.replace(
        base.smtp, host="127.0.0.1", port=server.port, security="none", pool=1
    )
    return dataclasses.replace(base, paths=paths, smtp=smtp)


def listed(path: Path, held: Held, **options: object) -> tuple[list[str], Reach]:
    audience = Audience(subscribers_path=path, **options)  # type: ignore[arg-type]
    reach = Reach.of(audience)
    return [s.email for s in recipients(audience, reach, held)], reach


def member(email: str, name: str = "") -> Member:
    return Member(email, name, "web", "2026-03-01T00:00:00.000000Z")


# --------------------------------------------------------------------------- the rules


def test_members_are_mailed_after_the_list_and_an_address_on_both_once(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(LIST, encoding="utf-8")
    held = Held(members=[member("Bo@Example.org", "Bob"), member("eve@example.org", "Eve")])
    emails, reach = listed(people, held)
    assert emails == ["ana@example.org", "bo@example.org", "dee@example.org", "eve@example.org"]
    assert (reach.members, reach.suppressed, reach.scan.active) == (1, 0, 3)


def test_the_lists_status_wins_over_a_member(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(LIST + "bo@example.org,Bo,bounced\n", encoding="utf-8")
    held = Held(members=[member("cy@example.org"), member("BO@example.org")])
    emails, reach = listed(people, held)
    assert emails == ["ana@example.org", "dee@example.org"]  # bounced further down wins too
    assert reach.members == 0


def test_the_suppression_list_wins_over_both(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(LIST, encoding="utf-8")
    held = Held(
        members=[member("eve@example.org"), member("fay@example.org")],
        suppressed=frozenset({"ana@example.org", "fay@example.org", "nobody@example.org"}),
    )
    emails, reach = listed(people, held)
    assert emails == ["bo@example.org", "dee@example.org", "eve@example.org"]
    assert (reach.members, reach.suppressed) == (1, 2)


def test_a_shard_and_a_limit_apply_to_the_whole(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(LIST, encoding="utf-8")
    held = Held(members=[member(f"m{n}@example.org") for n in range(20)])
    parts = [listed(people, held, shard=(k, 3))[0] for k in (1, 2, 3)]
    everyone = listed(people, held)[0]
    assert sorted(e for part in parts for e in part) == sorted(everyone)
    assert len(everyone) == 23
    assert listed(people, held, limit=5)[0] == everyone[:5]


def test_a_test_copy_to_a_suppressed_address_is_left_out_with_a_warning(
    tmp_path: Path,
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(LIST, encoding="utf-8")
    held = Held(suppressed=frozenset({"me@example.org"}))
    emails, reach = listed(people, held, to="Me@example.org")
    assert emails == []
    assert reach.suppressed == 1
    (warning,) = reach.scan.warnings
    assert "M…@example.org" in warning
    assert "Me@example.org" not in warning
    assert "suppression list" in warning
    assert listed(people, held, to="you@example.org")[0] == ["you@example.org"]


def test_nobody_left_to_mail_is_an_error_that_says_why(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("email,status\nana@example.org,active\ncy@example.org,unsubscribed\n")
    held = Held(
        members=[member("eve@example.org")], suppressed={"ana@example.org", "eve@example.org"}
    )
    with pytest.raises(SubscriberError, match=r"all 2 active subscriber.*suppression list"):
        listed(people, held)
    gone = tmp_path / "gone.csv"
    gone.write_text("email,status\ncy@example.org,unsubscribed\n", encoding="utf-8")
    with pytest.raises(SubscriberError, match=r"no active subscribers in .*gone.csv: 1 rows"):
        listed(gone, Held())  # as before the tool held anyone
    header_only = tmp_path / "empty.csv"
    header_only.write_text("email,name\n", encoding="utf-8")
    assert listed(header_only, Held(members=[member("eve@example.org")]))[0] == ["eve@example.org"]


# --------------------------------------------------------------------------- every send


def send_plan(settings: Settings, **changes: object) -> SendPlan:
    audience = Audience(subscribers_path=settings.paths.subscribers)
    return dataclasses.replace(SendPlan(audience, BuildOptions(now=NOW)), **changes)  # type: ignore[arg-type]


def test_a_live_send_mails_members_and_leaves_the_suppressed_out(
    settings: Settings, server: SMTPServer
) -> None:
    with open_members(settings.paths.state) as members:
        members.add("eve@example.org", "Eve")
        members.add("ana@example.org", "Ana again")
    with open_suppressions(settings.paths.state) as suppressions:
        suppressions.add("DEE@example.org", "unsubscribe", "one-click")
    report = send_edition(settings, send_plan(settings))
    assert report.summary is not None
    assert report.summary.sent == 3
    assert server.per_recipient() == {
        "ana@example.org": 1,
        "bo@example.org": 1,
        "eve@example.org": 1,
    }
    assert (report.suppressed, report.reach.members) == (1, 1)
    with open_ledger(settings.paths.state) as ledger:
        assert "dee@example.org" not in ledger.states(report.prepared.edition.id)


def test_a_dry_run_leaves_the_suppressed_out(settings: Settings, tmp_path: Path) -> None:
    with open_suppressions(settings.paths.state) as suppressions:
        suppressions.add("bo@example.org", "complaint", "bounces")
    dry = DryRun(outbox=tmp_path / "outbox")
    report = send_edition(settings, send_plan(settings, dry_run=dry, resume=None))
    assert report.written is not None
    manifest = json.loads(report.written.manifest.read_text(encoding="utf-8"))
    assert "bo@example.org" not in json.dumps(manifest)
    assert report.written.written == 2
    assert report.suppressed == 1


def test_a_resumed_send_finishes_those_suppressed_since_as_suppressed(
    settings: Settings, server: SMTPServer
) -> None:
    stop = threading.Event()
    hooks = SendHooks(progress=lambda *_: stop.set(), stop=stop)  # after the first one
    first = send_edition(settings, send_plan(settings), hooks)
    assert first.stopped
    edition = first.prepared.edition.id
    with open_ledger(settings.paths.state) as ledger:  # claimed ahead, handed back
        assert ledger.states(edition)["bo@example.org"] == "pending"
    with open_suppressions(settings.paths.state) as suppressions:
        suppressions.add("bo@example.org", "bounce", "bounces", detail="5.1.1")
    second = send_edition(settings, send_plan(settings))
    assert second.prepared.resumed
    assert second.complete
    assert "bo@example.org" not in server.per_recipient()
    with open_ledger(settings.paths.state) as ledger:
        assert ("bo@example.org", "failed", "suppressed: bounce") in ledger.failures(edition)


# --------------------------------------------------------------------------- the reports


def project(tmp_path: Path, port: int) -> Path:
    runner = CliRunner()
    folder = tmp_path / "news"
    assert runner.invoke(cli, ["init", str(folder), "--now", NOW.isoformat()]).exit_code == 0
    (folder / "subscribers.csv").write_text(LIST, encoding="utf-8")
    config = folder / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace(
        '[smtp]\n# host = "smtp.example.org"',
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        '# host = "smtp.example.org"',
    )
    config.write_text(text, encoding="utf-8")
    return config


def test_the_summaries_and_check_count_the_suppressed(tmp_path: Path, server: SMTPServer) -> None:
    config = str(project(tmp_path, server.port))
    runner = CliRunner()
    environ = {"NEWSLETTER_SIGNING_KEY": "audience-test-signing-key-0123456789"}
    with open_suppressions(tmp_path / "news" / ".newsletter" / "state.sqlite3") as suppressions:
        suppressions.add("ana@example.org", "manual", "cli")
    now = ["--now", NOW.isoformat()]
    checked = runner.invoke(cli, ["check", "--config", config, *now])
    assert "1 suppressed" in checked.output
    dry = runner.invoke(cli, ["send", "--config", config, "--dry-run", *now], env=environ)
    assert dry.exit_code == 0, dry.output
    assert "suppressed: 1 address(es) left out" in dry.output
    dry_json = runner.invoke(
        cli, ["send", "--config", config, "--dry-run", "--force", "--json", *now], env=environ
    )
    assert json.loads(dry_json.stdout)["suppressed"] == 1
    live = runner.invoke(cli, ["send", "--config", config, "--yes", *now], env=environ)
    assert live.exit_code == 0, live.output
    assert "sent 2," in live.output
    assert "suppressed: 1 address(es) left out" in live.output
    copy = runner.invoke(
        cli, ["send", "--config", config, "--yes", "--to", "ana@example.org", *now], env=environ
    )
    assert copy.exit_code == 0, copy.output
    assert "the test copy to a…@example.org is not sent" in copy.output
    assert "ana@example.org" not in copy.output
    assert server.count_for("ana@example.org") == 0
