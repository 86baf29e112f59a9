"""The ``scale`` stage: senders sharing an edition through a durable PostgreSQL server.

It starts a PostgreSQL server of its own in a temporary folder, as the tests do
(``tests/pg_server.py``), but durable as in production: ``fsync``,
``synchronous_commit`` and ``full_page_writes`` on. Then, each run in a fresh schema:

- the ledger alone: a list of ``ledger_count`` recipients is stored (``COPY``), then
  1 or 2 sender processes, with 8 or 32 threads each (``LEDGER_RUNS``), claim it in
  batches through the crew, mark each recipient ``in_flight``, settle and record
  ``sent``, as shared senders do, with no SMTP;
- full sends of one list of ``send_count`` to one SMTP sink: 1 sender on SQLite, then
  1, 2 and 4 ``newsletter send`` processes sharing the edition on PostgreSQL.

Each row notes the CPU seconds of the senders, of the sink and of the PostgreSQL server
(all its processes) over the run: what limits a configuration is whichever is nearest
to the cores it has.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import workload
from harness import HERE, NOW, Child, Row, Sink, finish_stage, load, median_row, remove, settle
from harness import start_stage as start

sys.path.insert(0, str(HERE.parent / "tests"))
from pg_server import PostgresServer

LEDGER_TARGET = 20_000  # recipient state changes per second on PostgreSQL (issue 15)
SEND_POOL = 4  # SMTP connections of each sender
# The ledger runs: (senders, threads each). A sender's threads stand for its SMTP
# connections, each with a message or two in progress: together they set how many
# recipients a group commit can carry. 8 is the default [smtp] pool; 32 is a pool for
# the goal's pace: at 10,000 messages/s a connection to a relay carries a few hundred
# a second, so two senders need dozens of connections between them. The goal is
# judged on the last run, whose senders are sized for it.
LEDGER_RUNS = ((1, 8), (2, 8), (1, 32), (2, 32))
SEND_SENDERS = (1, 2, 4)
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, *, reaped: bool = False) -> float:
    """CPU seconds of process ``pid`` (with ``reaped``: and of its children that ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # ended meanwhile
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICK


def server_cpu(server: PostgresServer) -> float:
    """CPU seconds of the whole server so far: the postmaster, its processes, those ended."""
    try:
        main = int((server.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return 0.0
    return process_cpu(main, reaped=True) + sum(process_cpu(int(pid)) for pid in children)


class Meter:
    """CPU seconds used by the sink and the server from now on."""

    def __init__(self, server: PostgresServer, sink: Sink | None = None) -> None:
        self.server, self.sink = server, sink
        self.load = load()
        self.began = (server_cpu(server), sink.cpu() if sink else 0.0)

    def used(self) -> dict[str, float]:
        """The CPU seconds of the server and the sink since the meter started."""
        server = server_cpu(self.server) - self.began[0]
        sink = (self.sink.cpu() if self.sink else 0.0) - self.began[1]
        return {"postgres_cpu_seconds": round(server, 2), "sink_cpu_seconds": round(sink, 2)}


def _together(
    stage: str, params: list[dict[str, Any]], folders: list[Path]
) -> tuple[list[Child], float]:
    """Run a stage in several processes at once; their results and the span they sent in."""
    started = [start(stage, p, cwd) for p, cwd in zip(params, folders, strict=True)]
    children = [finish_stage(p, out, f"stage {stage} (shared)") for p, out in started]
    span = max(c.result["ended_at"] for c in children) - min(c.result["began_at"] for c in children)
    return children, span


def _shared_row(
    stage: str, variant: str, size: int, children: list[Child], span: float, meter: Meter
) -> Row:
    senders = sum(c.cpu_seconds for c in children)
    used = meter.used()
    return Row(
        stage,
        variant,
        size,
        messages=sum(c.result["messages"] for c in children),
        seconds=span,
        process_seconds=max(c.wall for c in children),
        peak_rss_mb=max(c.peak_rss_mb for c in children),
        cpu_seconds=senders,
        load_before=meter.load,
        extra={
            "processes": len(children),
            "senders_cpu_seconds": round(senders, 2),
            **used,
            "busiest": limit(span, senders, used),
            "per_process_messages": [c.result["messages"] for c in children],
        },
    )


def limit(span: float, senders: float, used: dict[str, float]) -> str:
    """Cores each part kept busy over the run, busiest first (2 cores on the bench machine)."""
    parts = {
        "senders": senders,
        "postgres": used["postgres_cpu_seconds"],
        "sink": used["sink_cpu_seconds"],
    }
    cores = sorted(((v / span if span else 0.0), k) for k, v in parts.items())
    return ", ".join(f"{k} {c:.2f} cores" for c, k in reversed(cores))


class Scale:
    """Run the scale measurements with one durable PostgreSQL server; rows go to ``add``."""

    def __init__(self, work: Path, add: Callable[[Row], None], say: Callable[[str], None]) -> None:
        self.work, self.add, self.say = work / "scale", add, say
        self.runs = 0

    def _schema(self, server: PostgresServer) -> str:
        self.runs += 1
        return server.new_schema(f"run{self.runs}")

    def run(self, ledger_count: int, send_count: int, repeat: int, sink: str) -> None:
        """The ledger runs, then the full sends; each measured ``repeat`` times, interleaved."""
        listed = workload.write_subscribers(self.work / "list.csv", send_count)
        server = PostgresServer.start(durable=True)
        try:
            self.say(f"  PostgreSQL (fsync on) in {server.root}")
            self.ledger(server, ledger_count, repeat)
            self.sends(server, send_count, listed, repeat, sink)
        finally:
            server.remove()

    def ledger(self, server: PostgresServer, count: int, repeat: int) -> None:
        """Store the list, then claim and record every recipient, as each of ``LEDGER_RUNS``."""
        runs: dict[tuple[int, int], list[Row]] = {}
        stored: list[Row] = []
        for _ in range(repeat):
            for senders, pool in LEDGER_RUNS:
                url = self._schema(server)
                folder = self.work / f"ledger-{senders}-{pool}"
                process, out = start("share_setup", {"url": url, "count": count}, folder)
                setup = finish_stage(process, out, "stage share_setup")
                stored.append(_stored_row(setup, count))
                settle()
                meter = Meter(server)
                params = [{"url": url, "pool": pool}] * senders
                folders = [folder / f"sender-{n}" for n in range(senders)]
                children, span = _together("share_ledger", params, folders)
                variant = f"PostgreSQL, crew batches, {senders} sender(s) x {pool} threads"
                row = _shared_row("ledger", variant, count, children, span, meter)
                row.extra["batches"] = sum(c.result["batches"] for c in children)
                row.extra["judged"] = (senders, pool) == LEDGER_RUNS[-1]
                if row.messages != 2 * count:
                    raise SystemExit(f"the senders recorded {row.messages // 2} of {count}")
                runs.setdefault((senders, pool), []).append(row)
                remove(folder)
        self.add(median_row(stored))
        for measured in runs.values():
            self.add(median_row(measured))

    def sends(self, server: PostgresServer, count: int, csv: Path, repeat: int, kind: str) -> None:
        """Send the list to one sink: 1 sender on SQLite, 1, 2 and 4 sharing PostgreSQL."""
        sink = Sink.start(kind, self.work / "sink")
        runs: dict[str, list[Row]] = {}
        try:
            for _ in range(repeat):
                for senders in (0, *SEND_SENDERS):  # 0: one sender with its SQLite state
                    settle()
                    url = self._schema(server) if senders else ""
                    meter = Meter(server, sink)
                    base = {"csv": str(csv), "port": sink.port, "pool": SEND_POOL, "now": NOW}
                    params = [base | ({"state_url": url} if url else {})] * max(senders, 1)
                    folders = [self.work / f"send-{senders}-{n}" for n in range(len(params))]
                    children, span = _together("smtp", params, folders)
                    where = "PostgreSQL" if senders else "SQLite"
                    variant = f"live send, {where}, {max(senders, 1)} sender(s) x pool {SEND_POOL}"
                    row = _shared_row("shared", variant, count, children, span, meter)
                    if row.messages != count:
                        raise SystemExit(f"the senders sent {row.messages} of {count}")
                    runs.setdefault(variant, []).append(row)
                    for folder in folders:
                        remove(folder)
        finally:
            sink.stop()
        for measured in runs.values():
            self.add(median_row(measured))


def _stored_row(child: Child, count: int) -> Row:
    return Row(
        "ledger",
        "PostgreSQL, store the list (COPY) and its ledger rows",
        count,
        messages=child.result["messages"],
        seconds=child.result["seconds"],
        process_seconds=child.wall,
        peak_rss_mb=child.peak_rss_mb,
        cpu_seconds=child.cpu_seconds,
        load_before=load(),
        extra={"unit": "recipients/s"},
    )


def verdicts(rows: list[Row]) -> list[dict[str, Any]]:
    """The PostgreSQL ledger against its target, with senders sized for it (``LEDGER_RUNS``)."""
    return [
        {
            "what": f"ledger on durable PostgreSQL: {r.variant}, {r.size:,} recipients",
            "measured": f"{r.rate:,.0f} changes/s",
            "target": f">= {LEDGER_TARGET:,} changes/s",
            "passed": r.rate >= LEDGER_TARGET,
        }
        for r in rows
        if r.stage == "ledger" and r.extra.get("judged")
    ]
