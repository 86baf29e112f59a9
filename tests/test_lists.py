"""The lists by hand: ``newsletter suppressions`` and ``newsletter subscribers``.

The functions run on every state backend (the ``state`` fixture); the commands run
through the command line on a starter project with its state in a SQLite file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from state_backends import StateBackend

from newsletter.cli.main import cli
from newsletter.errors import SubscriberError
from newsletter.lists import suppressions as lists
from newsletter.lists.members import export_subscribers, import_subscribers
from newsletter.state.openers import open_members, open_suppressions
from newsletter.subscribers.reader import read_subscribers

NOW = "2026-03-04T18:00:00+05:30"
LIST = """email,name,status
ana@example.org,Ana,active
Bo@Example.org,Bo,unsubscribed
cy@example.org,Cy,hard bounce
dee@example.org,Dee,spam complaint
eve@example.org,Eve,pending
not-an-address,Nobody,active
ana@example.org,Ana twice,active
fay@example.org,Fay,
"""


# --------------------------------------------------------------------------- every backend


def test_an_import_stores_members_and_suppressions_and_round_trips(
    state: StateBackend, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(LIST, encoding="utf-8")
    place = state.place(tmp_path / "state.sqlite3")
    outcome = import_subscribers(place, people)
    assert (outcome.members_added, outcome.suppressed, outcome.skipped) == (2, 3, 1)
    assert outcome.bad_rows == 2  # the bad address, the duplicate
    assert any(w.startswith(f"{people}:7: ") for w in outcome.scan.warnings)
    assert any(w.startswith(f"{people}:8: ") for w in outcome.scan.warnings)
    with open_members(place) as members:
        assert [(m.email, m.name, m.source) for m in members.all()] == [
            ("ana@example.org", "Ana", "import"),
            ("fay@example.org", "Fay", "import"),
        ]
    reasons = {s.email: s.reason for s in lists.listed(place)}
    assert reasons == {
        "Bo@example.org": "unsubscribe",  # the domain as the validator writes it
        "cy@example.org": "bounce",
        "dee@example.org": "complaint",
    }
    again = import_subscribers(place, people)
    assert (again.members_added, again.members_updated, again.already_suppressed) == (0, 2, 3)

    lists.suppress(place, ["fay@example.org"], "manual")
    exported = io.StringIO()
    assert export_subscribers(place, exported) == 2
    rows = list(csv.DictReader(io.StringIO(exported.getvalue())))
    assert [(r["email"], r["status"]) for r in rows] == [
        ("ana@example.org", "active"),
        ("fay@example.org", "suppressed"),
    ]
    copy = tmp_path / "members.csv"
    copy.write_text(exported.getvalue(), encoding="utf-8")
    assert [s.email for s in read_subscribers(copy)] == ["ana@example.org"]  # the list reads it
    fresh = state.place(tmp_path / "other" / "state.sqlite3")
    back = import_subscribers(fresh, copy)
    assert (back.members_added, back.suppressed, back.bad_rows) == (1, 1, 0)
    with open_members(fresh) as members, open_members(place) as before:
        assert [(m.email, m.joined_at) for m in members.all()] == [
            (m.email, m.joined_at) for m in before.all() if m.email == "ana@example.org"
        ]
    assert [(s.email, s.reason) for s in lists.listed(fresh)] == [("fay@example.org", "manual")]


def test_a_strict_import_stores_nothing_from_a_file_with_a_bad_row(
    state: StateBackend, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(LIST, encoding="utf-8")
    place = state.place(tmp_path / "state.sqlite3")
    with pytest.raises(SubscriberError, match=r"people.csv:7: .*strict mode"):
        import_subscribers(place, people, strict=True)
    with open_members(place) as members, open_suppressions(place) as suppressions:
        assert (members.count(), suppressions.count()) == (0, 0)


def test_the_suppression_export_is_read_back_as_it_was(state: StateBackend, tmp_path: Path) -> None:
    place = state.place(tmp_path / "state.sqlite3")
    added = lists.suppress(place, ["ana@example.org", "x@", "Bo@example.org"], "bounce", "5.1.1")
    assert added.added == 2
    (problem,) = added.problems
    assert problem.startswith("'x@' is not a valid email address")
    with open_suppressions(place) as suppressions:
        suppressions.add("cy@example.org", "unsubscribe", "one-click", edition_id="e1")
    out = io.StringIO()
    assert lists.export(place, out) == 3
    text = out.getvalue()
    assert text.splitlines()[0] == "email,reason,source,at,edition,detail"
    file = tmp_path / "suppressions.csv"
    file.write_text(text + "dee@example.org,spam,web,,,\n", encoding="utf-8")
    fresh = state.place(tmp_path / "other" / "state.sqlite3")
    back = lists.suppress_from(fresh, file, "manual")
    assert back.added == 3
    (bad_row,) = back.problems
    assert bad_row.startswith(f"{file}:5: reason 'spam' is not one of")
    assert lists.listed(fresh) == lists.listed(place)
    again = lists.suppress_from(fresh, file, "manual")
    assert (again.added, len(again.already)) == (0, 3)
    removed, missing = lists.lift(fresh, ["ANA@example.org", "zed@example.org"])
    assert [s.email for s in removed] == ["ana@example.org"]
    assert missing == ["zed@example.org"]
    assert [s.reason for s in lists.listed(fresh, "unsubscribe")] == ["unsubscribe"]


# --------------------------------------------------------------------------- the commands


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A starter project; the commands run in its folder."""
    project = tmp_path / "news"
    made = CliRunner().invoke(cli, ["init", str(project), "--now", NOW])
    assert made.exit_code == 0, made.output
    monkeypatch.chdir(project)
    return str(project / "newsletter.toml")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_suppressions_add_list_remove_from_the_command_line(config: str) -> None:
    added = run("suppressions", "add", "ana@example.org", "bo@example.org", "--note", "asked")
    assert added.exit_code == 0, added.output
    assert "2 address(es) added" in added.stdout
    again = run("suppressions", "add", "ANA@example.org", "nonsense", "--reason", "complaint")
    assert again.exit_code == 1
    assert "ana@example.org: already suppressed (manual, since" in again.stdout
    assert "'nonsense' is not a valid email address" in again.stderr
    assert "error: 1 address(es) or row(s) not added" in again.stderr
    shown = run("suppressions", "list")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["EMAIL", "REASON", "SOURCE", "SINCE", "DETAIL"]
    assert lines[1].startswith("ana@example.org  manual")  # the whole address: it is output
    assert lines[1].endswith("asked")
    assert lines[-1] == "2 address(es)"
    assert run("suppressions", "list", "--reason", "bounce").stdout == "None with bounce.\n"
    removed = run("suppressions", "remove", "bo@example.org", "zed@example.org")
    assert removed.exit_code == 0, removed.output
    assert "bo@example.org: removed (was manual" in removed.stdout
    assert "zed@example.org: not on the suppression list" in removed.stdout
    assert run("suppressions", "add").exit_code == 2
    bad_reason = run("suppressions", "add", "x@example.org", "--reason", "spam")
    assert bad_reason.exit_code == 2
    assert "'spam' is not one of" in bad_reason.stderr


def test_exports_go_to_stdout_or_a_new_file(config: str, tmp_path: Path) -> None:
    assert run("suppressions", "add", "ana@example.org").exit_code == 0
    shown = run("suppressions", "export")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("email,reason,source,at,edition,detail\nana@example.org,manual")
    target = tmp_path / "out.csv"
    written = run("suppressions", "export", str(target))
    assert written.stdout == f"1 suppression(s) written to {target}\n"
    refused = run("suppressions", "export", str(target))
    assert refused.exit_code == 1
    assert "exists; choose another file or add --force" in refused.stderr
    assert run("suppressions", "export", str(target), "--force").exit_code == 0
    assert run("suppressions", "remove", "ana@example.org").exit_code == 0
    back = run("suppressions", "add", "--from", str(target))
    assert back.exit_code == 0, back.output
    assert "1 address(es) added" in back.stdout


def test_subscribers_import_and_export_from_the_command_line(config: str, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(LIST, encoding="utf-8")
    imported = run("subscribers", "import", str(people))
    assert imported.exit_code == 0, imported.output
    assert imported.stdout == (
        f"{people}: 2 subscriber(s) added, 0 already held; 3 suppressed (0 already); "
        "1 not active, left out; 2 bad row(s) skipped\n"
    )
    assert f"{people}:7: " in imported.stderr
    strict = run("subscribers", "import", str(people), "--strict")
    assert strict.exit_code == 1
    assert "strict mode stops at the first problem" in strict.stderr
    exported = run("subscribers", "export")
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.splitlines()[0] == "email,name,status,source,joined_at"
    assert len(exported.stdout.splitlines()) == 3
    missing = run("subscribers", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1
    assert "nope.csv: no such file" in missing.stderr
