"""The benchmark runs end to end in its quick mode, prints its table and writes its JSON.

Nothing here is timed: the figures depend on the machine. What is checked is that every
stage ran in its own process, measured something, and that the verdicts follow the targets.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def load_bench() -> ModuleType:
    """Import bench/run.py as a module (bench/ is a folder of scripts, not a package)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


run = load_bench()


def row(stage: str, variant: str, size: int, messages: int, seconds: float, **kw: Any) -> Any:
    values = {
        "process_seconds": seconds,
        "peak_rss_mb": 50.0,
        "cpu_seconds": seconds,
        "load_before": 0.0,
    } | kw
    return run.Row(stage, variant, size, messages, seconds, **values)


@pytest.mark.slow
def test_quick_bench_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--quick",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stdout = done.stdout
    assert "| stage | variant | N | messages | time s | msgs/s | process s | peak RSS MB" in stdout
    assert "cores" in stdout
    assert "Python 3." in stdout
    assert "SMTP sink: " in stdout
    assert "Targets:" in stdout

    files = list(out.glob("*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text(encoding="utf-8"))
    assert data["machine"]["cores"] >= 1
    assert data["machine"]["cpu"]
    assert data["options"]["sizes"] == [200]
    assert data["message_bytes"] > 1000
    rows = data["rows"]
    stages = {(r["stage"], r["variant"]) for r in rows}
    for expected in [
        ("build", "cold (first render in a process)"),
        ("generate", "MessageFactory.build"),
        ("read", "read_subscribers (CSV, 2 passes)"),
        ("dry run", "eml"),
        ("dry run", "mbox"),
        ("dry run", "eml, sample of 100 + manifest"),
        ("smtp", "newsletter live send, pool 1"),
        ("smtp", "newsletter live send, pool 4"),
        ("smtp", "send_messages only, pool 4"),
        ("smtp", "newsletter live send, DKIM rsa-sha256 (RSA-2048), pool 4"),
        ("smtp", "newsletter live send, DKIM ed25519-sha256, pool 4"),
        ("dkim", "sign rsa-sha256 (RSA-2048), one thread"),
        ("dkim", "sign ed25519-sha256, one thread"),
        ("parallel", "dry run eml, 2 processes (--shard 1/2, 2/2)"),
        ("parallel", "smtp live send, 2 processes x pool 2"),
        ("ledger", "claim ahead, settle, finish; 1 thread(s)"),
        ("ledger", "claim ahead, settle, finish; 4 thread(s)"),
        ("service", "one-click POST, 16 keep-alive connections"),
    ]:
        assert expected in stages, expected
    for entry in rows:
        assert entry["peak_rss_mb"] > 1, entry
        assert entry["seconds"] > 0, entry
        if entry["stage"] in ("generate", "read", "dry run", "parallel", "dkim"):
            assert entry["messages"] == 200, entry
        if entry["stage"] == "smtp":
            assert entry["messages"] == 200, entry
            assert f"| {entry['variant']} |" in stdout
        if entry["stage"] == "ledger":
            assert entry["messages"] == 2 * 1000, entry  # claimed, then sent
        if entry["stage"] == "service":
            assert entry["messages"] == 1000, entry
            assert 0 < entry["extra"]["p50_ms"] <= entry["extra"]["p99_ms"], entry
    assert "changes/s" in done.stderr
    assert "req/s" in done.stderr
    assert "latency p50" in done.stderr
    sample = next(r for r in rows if r["variant"].startswith("eml, sample"))
    assert sample["extra"]["files"] == 100 + 3  # the sample, edition.html/.txt, manifest
    eml = next(r for r in rows if r["stage"] == "dry run" and r["variant"] == "eml")
    assert eml["extra"]["files"] == 200 + 3
    assert data["verdicts"]


def test_verdicts_follow_the_targets() -> None:
    rows = [
        row("generate", "MessageFactory.build", 1000, 1000, 0.05),  # 20,000/s
        row("dry run", "eml", 100_000, 100_000, 50.0, process_seconds=70.0),
        row("dry run", "mbox", 100_000, 100_000, 30.0, process_seconds=31.0),
        row("dry run", "eml, sample of 100 + manifest", 100_000, 100_000, 9.0, peak_rss_mb=250),
        row("smtp", "Postfix smtp-source, 4 session(s)", 10, 10_000, 4.0, extra={"connections": 4}),
        row("smtp", "newsletter live send, pool 4", 10, 10_000, 10.0),
        row("smtp", "send_messages only, pool 4", 10, 10_000, 7.0),
    ]
    found = {v["what"]: v for v in run.verdicts(rows)}
    assert found["message generation, 1,000 messages, one process"]["passed"] is True
    assert found["dry run eml, 100,000 subscribers (whole process)"]["passed"] is False
    assert found["dry run mbox, 100,000 subscribers (whole process)"]["passed"] is True
    sample = found["dry run eml, sample of 100 + manifest, 100,000 subscribers (whole process)"]
    assert sample["passed"] is False  # over 200 MB
    live = found["SMTP newsletter live send, pool 4 vs smtp-source 4 session(s)"]
    assert live["passed"] is False  # 1,000/s against 2,500/s is 0.40
    assert "0.40" in live["measured"]
    alone = found["SMTP send_messages only, pool 4 vs smtp-source 4 session(s)"]
    assert alone["passed"] is None


def test_dkim_verdicts_compare_signed_with_unsigned_sends() -> None:
    rows = [
        row("smtp", "newsletter live send, pool 4", 10, 10_000, 5.0),  # 2,000/s
        row("smtp", "newsletter live send, DKIM rsa-sha256 (RSA-2048), pool 4", 10, 10_000, 8.0),
        row("smtp", "newsletter live send, DKIM ed25519-sha256, pool 4", 10, 10_000, 6.0),
        row(
            "dkim",
            "sign ed25519-sha256, one thread",
            2000,
            2000,
            0.2,
            extra={"signatures_per_core_second": 9000},
        ),
    ]
    unjudged = {v["what"]: v for v in run.verdicts(rows)}  # no Postfix sink: for reference
    assert (
        unjudged["SMTP live send signed with ed25519-sha256 vs unsigned, pool 4"]["passed"] is None
    )
    rows.append(
        row("smtp", "Postfix smtp-source, 4 session(s)", 10, 10_000, 4.0, extra={"connections": 4})
    )
    found = {v["what"]: v for v in run.verdicts(rows)}
    rsa = found["SMTP live send signed with rsa-sha256 (RSA-2048) vs unsigned, pool 4"]
    assert rsa["passed"] is False  # 1,250 / 2,000 = 0.62
    assert "0.62" in rsa["measured"]
    ed = found["SMTP live send signed with ed25519-sha256 vs unsigned, pool 4"]
    assert ed["passed"] is True  # 1,667 / 2,000 = 0.83
    per_core = found["DKIM ed25519-sha256: signatures per second per core (one thread)"]
    assert per_core["measured"] == "9,000"
    assert per_core["passed"] is None


def test_the_service_verdict_needs_the_rate_and_the_p99() -> None:
    def service(seconds: float, p99: float) -> Any:
        extra = {"p50_ms": 5.0, "p99_ms": p99}
        return row(
            "service",
            "one-click POST, 16 keep-alive connections",
            20_000,
            20_000,
            seconds,
            extra=extra,
        )

    what = "service: one-click POST, 16 keep-alive connections (one process, SQLite)"
    assert {v["what"]: v for v in run.verdicts([service(10.0, 20.0)])}[what]["passed"] is True
    assert {v["what"]: v for v in run.verdicts([service(25.0, 20.0)])}[what]["passed"] is False
    slow = {v["what"]: v for v in run.verdicts([service(10.0, 60.0)])}[what]
    assert slow["passed"] is False
    assert "2,000 req/s" in slow["measured"]
    assert "p99 60.0 ms" in slow["measured"]


def test_median_row_keeps_the_middle_run_and_the_spread() -> None:
    runs = [row("smtp", "x", 10, 1000, seconds) for seconds in (2.0, 1.0, 4.0)]
    chosen = run.median_row(runs)
    assert chosen.seconds == 2.0
    assert chosen.extra["msgs_per_s_all_runs"] == [500, 1000, 250]


def test_options_reject_bad_sizes_and_stages(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--sizes", "10,x"], ["--sizes", "0"], ["--stages", "generate,warp"]):
        with pytest.raises(SystemExit):
            run.parse_options(argv)
    assert "warp" in capsys.readouterr().err


def test_generated_lists_are_deterministic_and_count_active_rows(tmp_path: Path) -> None:
    workload = sys.modules["workload"]
    first = workload.write_subscribers(tmp_path / "a.csv", 500)
    second = workload.write_subscribers(tmp_path / "b.csv", 500)
    assert first.read_bytes() == second.read_bytes()
    with first.open(encoding="utf-8", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert sum(1 for r in table if r["status"] == "active") == 500
    assert len(table) > 500  # a few unsubscribed and bounced rows are mixed in
    assert len({r["email"].casefold() for r in table}) == len(table)
    assert any(not r["name"].isascii() for r in table)
    assert any("," in r["name"] for r in table)


def test_without_smtp_source_the_smtp_target_is_reported_unmeasured() -> None:
    rows = [row("smtp", "newsletter live send, pool 4", 10, 10_000, 10.0)]
    (found,) = run.verdicts(rows)
    assert found["passed"] is None
    assert "not measured" in found["measured"]
