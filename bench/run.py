"""Benchmark the newsletter tool: build, message generation, dry run, DKIM, SMTP and ledger.

    .venv/bin/python bench/run.py                       # 1k, 10k and 100k subscribers
    .venv/bin/python bench/run.py --sizes 1000,10000    # fewer sizes
    .venv/bin/python bench/run.py --quick               # 200 subscribers, 200 SMTP messages
    .venv/bin/python bench/run.py --stages smtp --repeat 1
    .venv/bin/python bench/run.py --stages ledger       # the delivery ledger alone
    .venv/bin/python bench/run.py --stages service      # one-click POSTs to the service
    .venv/bin/python bench/run.py --stages ledger,scale --ledger-count 1000000 --repeat 1
                                                        # make bench-scale

The default run takes about 7 minutes on 2 cores and writes about 9 GB (deleted as it
goes); each SMTP figure is the median of 3 runs.

Every stage runs in a fresh process (``bench/stages.py``), so its peak memory is its
own; the peak resident set size comes from the kernel (``wait4``). Subscriber lists
are generated (``bench/workload.py``). SMTP goes to a sink on 127.0.0.1 only: Postfix's
``smtp-sink`` when installed (with Postfix's ``smtp-source`` as the baseline on the
same sink and message), else an aiosmtpd sink. The live send with 4 connections is
also run DKIM-signed (RSA-2048 and Ed25519) on the same sink, and compared with the
unsigned one (the signed rows' CPU time includes the signing workers'); the ``dkim``
stage measures signatures per second per core, and the private-key operation alone.
The ``service`` stage starts ``newsletter serve`` (state in SQLite) and POSTs one-click
unsubscribes to it from another process over keep-alive connections, each for an address
of its own: requests per second and the p50/p99 latency.
The ``scale`` stage (not run by default) starts a durable PostgreSQL server and
measures senders sharing an edition through it (``bench/scale.py``).
Results are printed and written as JSON to ``bench/results/<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import scale
import workload
from harness import (
    HERE,
    NOW,
    SMTP_SINK,
    STAGE_TIMEOUT,
    Child,
    Process,
    Row,
    Sink,
    StageFailed,
    finish_stage,
    load,
    median_row,
    remove,
    run_stage,
    serving_port,
    settle,
    start_stage,
)

RESULTS = HERE / "results"
SMTP_SOURCE = Path("/usr/sbin/smtp-source")
ENVELOPE_FROM = "newsletter@meridianpost.example"
INSTALL_HINT = (
    "Postfix's smtp-sink and smtp-source are not installed; for the Postfix baseline run "
    "'sudo apt-get install postfix' (Debian/Ubuntu; choose 'No configuration': only the two "
    "test programs in /usr/sbin are used, the mail daemon need not run)"
)
AIOSMTPD_NOTE = (
    "aiosmtpd sink: a Python sink tops out near 500 msgs/s, so it shows the sink's limit, "
    "not the sender's"
)
MB = 1024 * 1024

# Targets from the spec (issue 8).
GENERATION_TARGET = 10_000  # messages per second, one process
DRY_RUN_SECONDS = 60.0  # 100,000 subscribers
DRY_RUN_MEMORY_MB = 200.0
DRY_RUN_TARGET_SIZE = 100_000
SMTP_RATIO = 0.5  # of smtp-source with the same number of connections
DKIM_RATIO = 0.8  # a signed live send against the unsigned one, same sink, same run (issue 16)
DKIM_ALGORITHMS = {"rsa": "rsa-sha256 (RSA-2048)", "ed25519": "ed25519-sha256"}
SIGN_COUNT = 2000  # messages signed by the signing stage (fewer with a smaller --smtp-count)
LEDGER_COUNT = 100_000  # recipients claimed and recorded by the ledger stage
SCALE_COUNT = 1_000_000  # recipients of the PostgreSQL ledger runs (scale)
SCALE_SEND_COUNT = 20_000  # messages of each full send of the scale stage
SUPPRESSED_COUNT = 10_000  # addresses on the suppression list of one live send
SERVICE_COUNT = 20_000  # one-click POSTs of the service stage (after SERVICE_WARMUP)
SERVICE_WARMUP = 500
SERVICE_CONNECTIONS = 16  # keep-alive connections the POSTs are spread over
SERVICE_RATE = 1000.0  # one-click POSTs per second, one service process (issue 14)
SERVICE_P99_MS = 50.0
SERVICE_CONFIG = """
[publication]
name = "The Bench Post"
site_url = "https://bench.example"
postal_address = "1 Bench Street, Bench Town"

[sender]
address = "newsletter@bench.example"

[list]
id = "daily.bench.example"
name = "Bench Daily"
unsubscribe_url = "https://bench.example/unsubscribe"

[output]
state_dir = "state"
"""

# --------------------------------------------------------------------------- the bench


@dataclass
class Options:
    """What to run."""

    sizes: list[int]
    smtp_count: int
    ledger_count: int
    service_count: int
    scale_count: int
    scale_send_count: int
    sample: int
    warm_runs: int
    repeat: int
    stages: set[str]
    sink: str
    workdir: Path
    out_dir: Path
    keep: bool


class Bench:
    """Run the stages in order, collecting rows."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.work = options.workdir
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.lists: dict[int, Path] = {}
        self.message_bytes = 0
        self.sample_message: Path | None = None
        self.sink_label = ""

    def say(self, text: str) -> None:
        """Report progress on stderr."""
        print(text, file=sys.stderr, flush=True)

    def add(self, row: Row) -> None:
        """Keep a row and show it at once."""
        self.rows.append(row)
        unit = row.extra.get("unit") or {"ledger": "changes/s", "service": "req/s"}.get(
            row.stage, "msgs/s"
        )
        rate = f"{row.rate:,.0f} {unit}" if row.messages > 1 else ""
        self.say(
            f"  {row.stage:<9} {row.variant:<34} n={row.size:<7} {row.seconds:8.2f} s "
            f"{rate:>16}  peak {row.peak_rss_mb:6.1f} MB"
        )
        if "busiest" in row.extra:
            self.say(f"            busy: {row.extra['busiest']}")

    def subscribers(self, size: int) -> Path:
        """Return the generated list with ``size`` active subscribers (made once)."""
        if size not in self.lists:
            self.lists[size] = workload.write_subscribers(
                self.work / "lists" / f"subscribers-{size}.csv", size
            )
        return self.lists[size]

    # ------------------------------------------------------------------ stages

    def build(self) -> None:
        """Render the edition cold (fresh process) and warm (same process, median)."""
        before = load()
        cwd = self.work / "build"
        params = {"now": NOW, "repeat": self.options.warm_runs, "sample_dir": str(cwd)}
        child = run_stage("build", params, cwd)
        result = child.result
        self.message_bytes = result["message_bytes"]
        self.sample_message = Path(result["sample_message"])
        extra = {
            "import_seconds": round(result["import_seconds"], 3),
            "html_bytes": result["html_bytes"],
            "message_bytes": result["message_bytes"],
        }
        common: dict[str, Any] = {"size": 0, "messages": 1, "load_before": before, "extra": extra}
        self.add(
            Row(
                "build",
                "cold (first render in a process)",
                seconds=result["cold_seconds"],
                process_seconds=child.wall,
                peak_rss_mb=child.peak_rss_mb,
                cpu_seconds=child.cpu_seconds,
                **common,
            )
        )
        if result["warm_seconds"] is not None:
            self.add(
                Row(
                    "build",
                    f"warm (median of {result['warm_runs']})",
                    seconds=result["warm_seconds"],
                    process_seconds=child.wall,
                    peak_rss_mb=child.peak_rss_mb,
                    cpu_seconds=child.cpu_seconds,
                    **common,
                )
            )

    def generate(self, size: int) -> None:
        """Build every message in memory, bytes discarded."""
        before = load()
        child = run_stage("generate", {"count": size, "now": NOW}, self.work / f"gen-{size}")
        self.add(self._row("generate", "MessageFactory.build", size, child, before))

    def read(self, size: int) -> None:
        """Read and validate the CSV list."""
        before = load()
        csv_path = self.subscribers(size)
        child = run_stage("read", {"csv": str(csv_path)}, self.work / f"read-{size}")
        self.add(self._row("read", "read_subscribers (CSV, 2 passes)", size, child, before))

    def dry_run(self, size: int, mode: str, sample: int | None = None) -> None:
        """Build the edition and write the dry run to disk, in one process."""
        if not self._room_for(size if sample is None else min(size, sample)):
            return
        settle()
        before = load()
        cwd = self.work / f"dry-{mode}-{sample}-{size}"
        params: dict[str, Any] = {
            "csv": str(self.subscribers(size)),
            "mode": mode,
            "outbox": str(cwd / "outbox"),
            "now": NOW,
            "sample": sample,
        }
        child = run_stage("dryrun", params, cwd)
        variant = f"{mode}, sample of {sample} + manifest" if sample is not None else mode
        row = self._row("dry run", variant, size, child, before)
        row.extra.update(
            build_seconds=round(child.result["build_seconds"], 3),
            files=child.result["files"],
            output_mb=round(child.result["bytes"] / MB, 1),
        )
        self.add(row)
        remove(cwd)

    def _room_for(self, messages: int) -> bool:
        need = messages * max(self.message_bytes, 40_000) * 1.2
        free = shutil.disk_usage(self.work).free
        if free > need + 2e9:
            return True
        self.notes.append(
            f"skipped a dry run of {messages} messages: {free / 1e9:.1f} GB free in "
            f"{self.work}, about {need / 1e9:.1f} GB needed"
        )
        return False

    def _row(self, stage: str, variant: str, size: int, child: Child, before: float) -> Row:
        result = child.result
        extra = {k: round(v, 3) for k, v in result.items() if k == "loop_seconds"}
        return Row(
            stage,
            variant,
            size,
            messages=result["messages"],
            seconds=result["seconds"],
            process_seconds=child.wall,
            peak_rss_mb=child.peak_rss_mb,
            cpu_seconds=child.cpu_seconds,
            load_before=before,
            extra=extra,
        )

    # ------------------------------------------------------------------ smtp

    def smtp(self) -> None:
        """Send to a local sink: Postfix's smtp-source, our sender alone, our live send.

        With 4 connections the live send is also run DKIM-signed (RSA-2048, Ed25519), and
        with ``SUPPRESSED_COUNT`` addresses on the suppression list (read before the send,
        watched while it goes).

        Each is run ``repeat`` times, interleaved, and the median run is kept: other work
        on a small machine moves single runs a lot.
        """
        count = self.options.smtp_count
        csv_path = self.subscribers(count)
        sink = Sink.start(self.options.sink, self.work / "sink")
        self.sink_label = sink.label
        self.say(f"SMTP sink: {sink.label}")
        if sink.kind == "aiosmtpd":
            self.notes.append(AIOSMTPD_NOTE)
        baseline = sink.kind == "smtp-sink" and SMTP_SOURCE.exists()
        try:
            for connections in (1, 4):
                runs: dict[str, list[Row]] = {}
                for _ in range(self.options.repeat):
                    if baseline:
                        runs.setdefault("source", []).append(
                            self._smtp_source(sink, count, connections)
                        )
                    runs.setdefault("send", []).append(
                        self._our_sender(sink, "send", {"count": count}, count, connections)
                    )
                    runs.setdefault("live", []).append(
                        self._our_sender(sink, "smtp", {"csv": str(csv_path)}, count, connections)
                    )
                    if connections == 4:
                        params = {"csv": str(csv_path), "suppressed": SUPPRESSED_COUNT}
                        runs.setdefault("live-suppressed", []).append(
                            self._our_sender(sink, "smtp", params, count, connections)
                        )
                    for algorithm in DKIM_ALGORITHMS if connections == 4 else ():
                        params = {"csv": str(csv_path), "dkim": algorithm}
                        runs.setdefault(f"live-{algorithm}", []).append(
                            self._our_sender(sink, "smtp", params, count, connections)
                        )
                for rows in runs.values():
                    self.add(median_row(rows))
        finally:
            sink.stop()

    def _smtp_source(self, sink: Sink, count: int, sessions: int) -> Row:
        assert self.sample_message is not None
        message = self.work / "smtp-source-message.txt"
        # smtp-source ends every line with CRLF itself; the wire size equals ours.
        message.write_bytes(self.sample_message.read_bytes().replace(b"\r\n", b"\n"))
        command = [
            str(SMTP_SOURCE), "-d", "-s", str(sessions), "-m", str(count),
            "-F", str(message), "-f", ENVELOPE_FROM, "-t", "reader@example.com",
            "-M", "bench.localhost", f"127.0.0.1:{sink.port}",
        ]  # fmt: skip
        before, sink_cpu = load(), sink.cpu()
        cwd = self.work / f"smtp-source-{sessions}"
        process = Process(command, cwd, cwd / "smtp-source.log", STAGE_TIMEOUT)
        code, wall, rss, cpu = process.wait()
        if code != 0:
            raise process.failure("smtp-source", code)
        return Row(
            "smtp",
            f"Postfix smtp-source, {sessions} session(s)",
            count,
            messages=count,
            seconds=wall,
            process_seconds=wall,
            peak_rss_mb=rss,
            cpu_seconds=cpu,
            load_before=before,
            extra={"connections": sessions, "sink_cpu_seconds": round(sink.cpu() - sink_cpu, 2)},
        )

    def _our_sender(
        self, sink: Sink, stage: str, params: dict[str, Any], count: int, pool: int
    ) -> Row:
        before, sink_cpu = load(), sink.cpu()
        signing = params.get("dkim")
        cwd = self.work / f"smtp-{stage}-{pool}{f'-{signing}' if signing else ''}"
        child = run_stage(stage, {**params, "port": sink.port, "pool": pool, "now": NOW}, cwd)
        if signing:
            variant = f"newsletter live send, DKIM {DKIM_ALGORITHMS[signing]}, pool {pool}"
        elif params.get("suppressed"):
            variant = f"newsletter live send, {params['suppressed']:,} suppressed, pool {pool}"
        elif stage == "smtp":
            variant = f"newsletter live send, pool {pool}"
        else:
            variant = f"send_messages only, pool {pool}"
        row = self._row("smtp", variant, count, child, before)
        row.extra.update(connections=pool, sink_cpu_seconds=round(sink.cpu() - sink_cpu, 2))
        if signing:  # the row's CPU time includes the signing workers'
            row.extra.update(
                workers=child.result.get("workers", 0),
                workers_cpu_seconds=child.result.get("workers_cpu_seconds", 0.0),
                workers_peak_rss_mb=child.result.get("workers_peak_rss_mb", 0.0),
            )
        remove(cwd)
        return row

    def dkim_signing(self) -> None:
        """Sign built messages in one thread, per algorithm: signatures per second per core."""
        count = min(SIGN_COUNT, self.options.smtp_count)
        for algorithm, name in DKIM_ALGORITHMS.items():
            before = load()
            cwd = self.work / f"sign-{algorithm}"
            child = run_stage("sign", {"algorithm": algorithm, "count": count, "now": NOW}, cwd)
            row = self._row("dkim", f"sign {name}, one thread", count, child, before)
            cpu = child.result["thread_cpu_seconds"]
            key_cpu = child.result.get("key_cpu_seconds", 0.0)
            row.extra.update(
                thread_cpu_seconds=round(cpu, 3),
                signatures_per_core_second=round(row.messages / cpu) if cpu > 0 else 0,
                key_operations_per_core_second=round(row.messages / key_cpu) if key_cpu else 0,
            )
            self.add(row)
            remove(cwd)

    def parallel_smtp(self) -> None:
        """Live send split over 2 processes (--shard, each its own state) of pool 2."""
        count = self.options.smtp_count
        csv_path = self.subscribers(count)
        sink = Sink.start(self.options.sink, self.work / "sink-parallel")
        try:
            rows = []
            for _ in range(self.options.repeat):
                params = [
                    {
                        "csv": str(csv_path),
                        "port": sink.port,
                        "pool": 2,
                        "now": NOW,
                        "shard": [k, 2],
                    }
                    for k in (1, 2)
                ]
                rows.append(
                    self._parallel("smtp", "live send, 2 processes x pool 2", count, params)
                )
            self.add(median_row(rows))
        finally:
            sink.stop()

    # ------------------------------------------------------------------ ledger

    def ledger(self) -> None:
        """Claim and record outcomes in the delivery ledger alone, as the SMTP pool does.

        The rate is recipient state changes per second (two per recipient: claimed, sent);
        each figure is the median of ``repeat`` runs, interleaved.
        """
        count = self.options.ledger_count
        runs: dict[int, list[Row]] = {}
        for _ in range(self.options.repeat):
            for pool in (1, 4):
                settle()
                before = load()
                cwd = self.work / f"ledger-{pool}"
                child = run_stage("ledger", {"count": count, "pool": pool}, cwd)
                variant = f"claim ahead, settle, finish; {pool} thread(s)"
                row = self._row("ledger", variant, count, child, before)
                row.extra.update(threads=pool, recipients=child.result["recipients"])
                runs.setdefault(pool, []).append(row)
                remove(cwd)
        for rows in runs.values():
            self.add(median_row(rows))

    def scale(self) -> None:
        """Senders sharing an edition through a durable PostgreSQL server (``bench/scale.py``)."""
        count, sends = self.options.scale_count, self.options.scale_send_count
        self.say(
            f"shared senders on PostgreSQL: ledger of {count:,} recipients, sends of {sends:,}"
        )
        sink = "smtp-sink" if self.options.sink == "auto" and SMTP_SINK.exists() else "aiosmtpd"
        if self.options.sink != "auto":
            sink = self.options.sink
        runs = scale.Scale(self.work, self.add, self.say)
        runs.run(count, sends, self.options.repeat, sink)

    # ------------------------------------------------------------------ the service

    def service(self) -> None:
        """One-click POSTs per second against ``newsletter serve``, sent from another process."""
        count = self.options.service_count
        cwd = self.work / "service"
        cwd.mkdir(parents=True, exist_ok=True)
        config = cwd / "newsletter.toml"
        config.write_text(SERVICE_CONFIG, encoding="utf-8")
        settle()
        before = load()
        command = [sys.executable, "-m", "newsletter", "serve", "--config", str(config)]
        server = Process([*command, "--port", "0"], cwd, cwd / "serve.log", STAGE_TIMEOUT)
        try:
            port = serving_port(server)
            params = {
                "config": str(config),
                "host": "127.0.0.1",
                "port": port,
                "count": count,
                "warmup": SERVICE_WARMUP,
                "connections": SERVICE_CONNECTIONS,
            }
            child = run_stage("oneclick", params, cwd / "client")
        finally:
            if server.popen.poll() is None:
                server.popen.send_signal(signal.SIGTERM)
        code, wall, rss, cpu = server.wait()
        if code not in (0, -signal.SIGTERM):  # uvicorn ends by the signal it was stopped with
            raise server.failure("the service", code)
        result = child.result
        row = Row(
            "service",
            f"one-click POST, {SERVICE_CONNECTIONS} keep-alive connections",
            count,
            messages=result["messages"],
            seconds=result["seconds"],
            process_seconds=wall,
            peak_rss_mb=rss,
            cpu_seconds=cpu,
            load_before=before,
            extra={
                "p50_ms": round(result["p50_ms"], 2),
                "p99_ms": round(result["p99_ms"], 2),
                "max_ms": round(result["max_ms"], 2),
                "connections": SERVICE_CONNECTIONS,
                "client_cpu_seconds": round(child.cpu_seconds, 2),
            },
        )
        self.add(row)
        self.say(
            f"            latency p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
        )
        remove(cwd)

    # ------------------------------------------------------------------ several processes

    def shards(self, size: int) -> None:
        """Split generation and the dry run across 2 processes and compare with one."""
        self.add(
            self._parallel(
                "generate",
                "MessageFactory.build, 2 processes",
                size,
                [{"count": size, "now": NOW, "part": [k, 2]} for k in (1, 2)],
            )
        )
        csv_path = str(self.subscribers(size))
        for mode in ("mbox", "eml"):
            if not self._room_for(size):
                continue
            params = [
                {
                    "csv": csv_path,
                    "mode": mode,
                    "now": NOW,
                    "shard": [k, 2],
                    "outbox": str(self.work / f"shard-{mode}-{k}" / "outbox"),
                }
                for k in (1, 2)
            ]
            self.add(
                self._parallel("dryrun", f"{mode}, 2 processes (--shard 1/2, 2/2)", size, params)
            )

    def _parallel(self, stage: str, variant: str, size: int, params: list[dict[str, Any]]) -> Row:
        """Run one stage in several processes at once; time them from start to last exit."""
        settle()
        before = load()
        began = time.perf_counter()
        folders = [self.work / f"par-{stage}-{n}" for n in range(len(params))]
        started = [start_stage(stage, p, cwd) for p, cwd in zip(params, folders, strict=True)]
        children = [finish_stage(p, out, f"stage {stage} (parallel)") for p, out in started]
        wall = time.perf_counter() - began
        for folder in folders:
            remove(folder)
        for p in params:
            if "outbox" in p:
                remove(Path(p["outbox"]).parent)
        names = {"dryrun": "dry run", "smtp": "smtp"}
        return Row(
            "parallel",
            f"{names.get(stage, stage)} {variant}",
            size,
            messages=sum(c.result["messages"] for c in children),
            seconds=max(c.result["seconds"] for c in children),
            process_seconds=wall,
            peak_rss_mb=max(c.peak_rss_mb for c in children),
            cpu_seconds=sum(c.cpu_seconds for c in children),
            load_before=before,
            extra={
                "processes": len(children),
                "per_process_seconds": [round(c.result["seconds"], 3) for c in children],
            },
        )

    # ------------------------------------------------------------------ all

    def run(self) -> None:
        """Run every selected stage."""
        chosen = self.options.stages
        sizes = self.options.sizes
        self.say(f"working in {self.work}")
        self.build()
        for size in sizes:
            self.say(f"{size:,} subscribers")
            if "generate" in chosen:
                self.generate(size)
            if "read" in chosen:
                self.read(size)
            if "dryrun" in chosen:
                self.dry_run(size, "eml")
                self.dry_run(size, "mbox")
                self.dry_run(size, "eml", sample=min(self.options.sample, size))
        if "dkim" in chosen:
            self.dkim_signing()
        if "smtp" in chosen:
            self.smtp()
        if "ledger" in chosen:
            self.say(f"delivery ledger, {self.options.ledger_count:,} recipients")
            self.ledger()
        if "service" in chosen:
            self.say(f"the public service, {self.options.service_count:,} one-click POSTs")
            self.service()
        if "scale" in chosen:
            self.scale()
        if "parallel" in chosen:
            self.say(f"2 processes, {max(sizes):,} subscribers")
            self.shards(max(sizes))
            if "smtp" in chosen:
                self.parallel_smtp()


# --------------------------------------------------------------------------- verdicts


def _find(rows: list[Row], stage: str, variant: str, size: int | None = None) -> list[Row]:
    return [
        r
        for r in rows
        if r.stage == stage and r.variant.startswith(variant) and (size is None or r.size == size)
    ]


def verdicts(rows: list[Row]) -> list[dict[str, Any]]:
    """Compare the measurements with the targets of the spec."""
    found: list[dict[str, Any]] = []
    generation = _find(rows, "generate", "MessageFactory.build")
    if generation:
        best = max(generation, key=lambda r: r.size)
        found.append(
            _verdict(
                f"message generation, {best.size:,} messages, one process",
                f"{best.rate:,.0f} msgs/s",
                f">= {GENERATION_TARGET:,} msgs/s",
                best.rate >= GENERATION_TARGET,
            )
        )
    for row in _find(rows, "dry run", "", DRY_RUN_TARGET_SIZE):
        found.append(
            _verdict(
                f"dry run {row.variant}, {row.size:,} subscribers (whole process)",
                f"{row.process_seconds:.1f} s, peak {row.peak_rss_mb:.0f} MB",
                f"< {DRY_RUN_SECONDS:.0f} s and < {DRY_RUN_MEMORY_MB:.0f} MB",
                row.process_seconds < DRY_RUN_SECONDS and row.peak_rss_mb < DRY_RUN_MEMORY_MB,
            )
        )
    for connections in (1, 4):
        theirs = _find(rows, "smtp", f"Postfix smtp-source, {connections} session")
        for variant in ("newsletter live send", "send_messages only"):
            ours = _find(rows, "smtp", f"{variant}, pool {connections}")
            if ours and theirs:
                found.append(_smtp_verdict(f"{variant}, pool {connections}", ours[0], theirs[0]))
        parallel = _find(rows, "parallel", "smtp live send, 2 processes")
        if connections == 4 and parallel and theirs:
            found.append(_smtp_verdict("live send, 2 processes x pool 2", parallel[0], theirs[0]))
    if _find(rows, "smtp", "newsletter") and not _find(rows, "smtp", "Postfix smtp-source"):
        found.append(
            _verdict(
                "SMTP against Postfix's smtp-source",
                "not measured (no smtp-sink/smtp-source, or --sink aiosmtpd)",
                f">= {SMTP_RATIO:.2f} with 4 connections",
                None,
            )
        )
    found.extend(_dkim_verdicts(rows))
    found.extend(_parallel_verdicts(rows))
    found.extend(scale.verdicts(rows))
    for row in _find(rows, "service", "one-click POST"):
        p99 = row.extra["p99_ms"]
        found.append(
            _verdict(
                f"service: {row.variant} (one process, SQLite)",
                f"{row.rate:,.0f} req/s, p50 {row.extra['p50_ms']:.1f} ms, p99 {p99:.1f} ms",
                f">= {SERVICE_RATE:,.0f} req/s and p99 < {SERVICE_P99_MS:.0f} ms",
                row.rate >= SERVICE_RATE and p99 < SERVICE_P99_MS,
            )
        )
    return found


def _dkim_verdicts(rows: list[Row]) -> list[dict[str, Any]]:
    """Signed against unsigned live sends (same sink, same run); signatures per core.

    The ratio is judged only on Postfix's sink: a Python sink is slower than the sender
    and takes the CPU the signing needs, so there the ratio shows the sink.
    """
    found = []
    plain = _find(rows, "smtp", "newsletter live send, pool 4")
    judged = bool(_find(rows, "smtp", "Postfix smtp-source"))
    for name in DKIM_ALGORITHMS.values():
        signing = _find(rows, "dkim", f"sign {name}")
        if signing:
            per_core = signing[0].extra.get("signatures_per_core_second", 0)
            found.append(
                _verdict(
                    f"DKIM {name}: signatures per second per core (one thread)",
                    f"{per_core:,.0f}",
                    "(for reference)",
                    None,
                )
            )
            key_alone = signing[0].extra.get("key_operations_per_core_second", 0)
            if key_alone:
                found.append(
                    _verdict(
                        f"DKIM {name}: private-key operations per second per core (alone)",
                        f"{key_alone:,.0f}",
                        "(for reference)",
                        None,
                    )
                )
        signed = _find(rows, "smtp", f"newsletter live send, DKIM {name}, pool 4")
        if signed and plain and plain[0].rate:
            ratio = signed[0].rate / plain[0].rate
            found.append(
                _verdict(
                    f"SMTP live send signed with {name} vs unsigned, pool 4",
                    f"{signed[0].rate:,.0f} / {plain[0].rate:,.0f} msgs/s = {ratio:.2f}",
                    f">= {DKIM_RATIO:.2f}" if judged else "(for reference: not Postfix's sink)",
                    ratio >= DKIM_RATIO if judged else None,
                )
            )
    return found


def _smtp_verdict(what: str, ours: Row, theirs: Row) -> dict[str, Any]:
    ratio = ours.rate / theirs.rate if theirs.rate else 0.0
    connections = theirs.extra.get("connections", 0)
    judged = connections == 4 and what.startswith(("newsletter live send", "live send"))
    return _verdict(
        f"SMTP {what} vs smtp-source {connections} session(s)",
        f"{ours.rate:,.0f} / {theirs.rate:,.0f} msgs/s = {ratio:.2f}",
        f">= {SMTP_RATIO:.2f}" if judged else "(for reference)",
        ratio >= SMTP_RATIO if judged else None,
    )


def _single_for(rows: list[Row], row: Row) -> Row | None:
    """The one-process row a parallel row is compared with."""
    kind = row.variant.split(" ")[0]
    if kind == "generate":
        found = _find(rows, "generate", "MessageFactory.build", row.size)
    elif kind == "dry":
        mode = row.variant.removeprefix("dry run ").split(",")[0]
        found = [r for r in _find(rows, "dry run", mode, row.size) if r.variant == mode]
    else:
        found = _find(rows, "smtp", "newsletter live send, pool 4")
    return found[0] if found else None


def _parallel_verdicts(rows: list[Row]) -> list[dict[str, Any]]:
    found = []
    for row in _find(rows, "parallel", ""):
        single = _single_for(rows, row)
        if single is None:
            continue
        if row.variant.startswith("smtp"):
            mine, theirs, basis = row.seconds, single.seconds, "sending time"
        else:
            mine, theirs, basis = row.process_seconds, single.process_seconds, "whole processes"
        if mine > 0:
            found.append(
                _verdict(
                    f"{row.variant}, {row.size:,}: speed-up over one process ({basis})",
                    f"{theirs / mine:.2f}x",
                    "(helps if > 1.2x)",
                    None,
                )
            )
    return found


def _verdict(what: str, measured: str, target: str, passed: bool | None) -> dict[str, Any]:
    return {"what": what, "measured": measured, "target": target, "passed": passed}


# --------------------------------------------------------------------------- output


def describe(machine: dict[str, Any]) -> str:
    """One paragraph about the machine and the run."""
    return (
        f"{machine['date']} · {machine['cpu']} · {machine['cores']} cores "
        f"({machine['usable_cores']} usable) · {machine['ram_gb']} GB RAM · {machine['os']} · "
        f"Python {machine['python']} · load average at start {machine['load_average'][0]}"
        + (f" · Postfix {machine['postfix']}" if machine["postfix"] else "")
    )


def table(rows: list[Row]) -> str:
    """Format the rows as a Markdown table."""
    head = (
        "| stage | variant | N | messages | time s | msgs/s | process s | peak RSS MB "
        "| CPU s | load |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        rate = f"{r.rate:,.0f}" if r.messages > 1 else "–"
        size = f"{r.size:,}" if r.size else "–"
        lines.append(
            f"| {r.stage} | {r.variant} | {size} | {r.messages:,} | {r.seconds:.3f} | {rate} "
            f"| {r.process_seconds:.2f} | {r.peak_rss_mb:.1f} | {r.cpu_seconds:.2f} "
            f"| {r.load_before:.1f} |"
        )
    return "\n".join(lines)


def verdict_lines(found: list[dict[str, Any]]) -> str:
    """Format the verdicts, one per line."""
    marks = {True: "PASS", False: "FAIL", None: "info"}
    return "\n".join(
        f"  [{marks[v['passed']]}] {v['what']}: {v['measured']} (target {v['target']})"
        for v in found
    )


def report(bench: Bench, machine: dict[str, Any]) -> dict[str, Any]:
    """Everything measured, as JSON-ready data."""
    return {
        "machine": machine,
        "sink": bench.sink_label,
        "message_bytes": bench.message_bytes,
        "options": {
            "sizes": bench.options.sizes,
            "smtp_count": bench.options.smtp_count,
            "ledger_count": bench.options.ledger_count,
            "service_count": bench.options.service_count,
            "scale_count": bench.options.scale_count,
            "scale_send_count": bench.options.scale_send_count,
            "sample": bench.options.sample,
            "stages": sorted(bench.options.stages),
        },
        "rows": [asdict(r) | {"msgs_per_s": round(r.rate, 1)} for r in bench.rows],
        "verdicts": verdicts(bench.rows),
        "notes": bench.notes,
    }


# --------------------------------------------------------------------------- command line

ALL_STAGES = (
    "generate", "read", "dryrun", "dkim", "smtp", "ledger", "service", "parallel", "scale",
)  # fmt: skip
DEFAULT_STAGES = set(ALL_STAGES) - {"scale"}  # scale: about 15 minutes, make bench-scale


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes like 1000,10000") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be 1 or more")
    return sorted(set(sizes))


def _stages(text: str) -> set[str]:
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    unknown = chosen - set(ALL_STAGES)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALL_STAGES)}"
        )
    return chosen


def parse_options(argv: list[str] | None = None) -> Options:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, help="subscriber counts (default 1k,10k,100k)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 subscribers, 200 SMTP messages, 1,000 ledger recipients and POSTs",
    )
    parser.add_argument("--smtp-count", type=int, help="messages per SMTP run (default 10000)")
    parser.add_argument(
        "--ledger-count", type=int, help=f"recipients of the ledger stage (default {LEDGER_COUNT})"
    )
    parser.add_argument(
        "--scale-count",
        type=int,
        help=f"recipients of the PostgreSQL ledger runs of the scale stage (default {SCALE_COUNT})",
    )
    parser.add_argument(
        "--scale-send-count",
        type=int,
        help=f"messages of each full send of the scale stage (default {SCALE_SEND_COUNT})",
    )
    parser.add_argument(
        "--service-count",
        type=int,
        help=f"one-click POSTs of the service stage (default {SERVICE_COUNT})",
    )
    parser.add_argument("--sample", type=int, default=100, help="messages saved by a sample run")
    parser.add_argument("--repeat", type=int, help="runs of each SMTP measurement (default 3)")
    parser.add_argument(
        "--stages",
        type=_stages,
        default=DEFAULT_STAGES,
        help=f"comma-separated, from {','.join(ALL_STAGES)} (the build always runs)",
    )
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "aiosmtpd"], default="auto")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temp folder)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = args.sizes or ([200] if quick else [1000, 10_000, 100_000])
    smtp_count = args.smtp_count or (200 if quick else 10_000)
    ledger_count = args.ledger_count or (1000 if quick else LEDGER_COUNT)
    service_count = args.service_count or (1000 if quick else SERVICE_COUNT)
    if smtp_count < 1 or ledger_count < 1 or service_count < 1:
        parser.error("--smtp-count, --ledger-count and --service-count must be 1 or more")
    if args.sample < 0 or (args.repeat is not None and args.repeat < 1):
        parser.error("--sample must be 0 or more and --repeat 1 or more")
    if args.sink == "smtp-sink" and not SMTP_SINK.exists():
        parser.error(INSTALL_HINT)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    return Options(
        sizes=sizes,
        smtp_count=smtp_count,
        ledger_count=ledger_count,
        service_count=service_count,
        scale_count=args.scale_count or (1000 if quick else SCALE_COUNT),
        scale_send_count=args.scale_send_count or (200 if quick else SCALE_SEND_COUNT),
        sample=args.sample,
        warm_runs=2 if quick else 5,
        repeat=args.repeat or (1 if quick else 3),
        stages=args.stages,
        sink=args.sink,
        workdir=workdir.resolve(),
        out_dir=args.out,
        keep=args.keep or args.workdir is not None,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the bench, print the table and the verdicts, and write the JSON."""
    options = parse_options(argv)
    options.workdir.mkdir(parents=True, exist_ok=True)
    machine = workload.machine(options.workdir)
    bench = Bench(options)
    if "smtp" in options.stages and options.sink == "auto" and not SMTP_SINK.exists():
        bench.notes.append(INSTALL_HINT)
        bench.say(f"note: {INSTALL_HINT}")
    if machine["load_average"][0] > 0.5 * machine["usable_cores"]:
        bench.notes.append(
            f"the machine was busy at the start (load average {machine['load_average'][0]}); "
            "the figures are lower than on an idle machine"
        )
    try:
        bench.run()
    except StageFailed as err:
        print(f"bench failed: {err}", file=sys.stderr)
        print(f"the scratch folder is kept: {options.workdir}", file=sys.stderr)
        return 1
    if not options.keep:
        remove(options.workdir)
    data = report(bench, machine)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    options.out_dir.mkdir(parents=True, exist_ok=True)
    path = options.out_dir / f"{stamp}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print()
    print(describe(machine))
    if bench.sink_label:
        print(f"SMTP sink: {bench.sink_label}; message size {bench.message_bytes:,} bytes")
    print()
    print(table(bench.rows))
    print()
    print("Targets:")
    print(verdict_lines(data["verdicts"]) or "  (none of the stages run has a target)")
    for note in bench.notes:
        print(f"note: {note}")
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
