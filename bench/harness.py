"""What every bench stage shares: stage processes, measured rows, the SMTP sink.

A stage runs in a fresh process (``bench/stages.py``); ``Process`` reads its peak
memory and CPU time from the kernel (``wait4``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STAGES = HERE / "stages.py"
SMTP_SINK = Path("/usr/sbin/smtp-sink")
STAGE_TIMEOUT = 900.0
NOW = "2026-03-04T18:00:00+05:30"  # the bundled sample content is current at this time


@dataclass
class Row:
    """One measured stage."""

    stage: str
    variant: str
    size: int
    messages: int
    seconds: float  # the timed work
    process_seconds: float  # the whole process (or processes), start to exit
    peak_rss_mb: float
    cpu_seconds: float
    load_before: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Messages per second over the timed work."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Child:
    """A finished stage process: what it reported and what the kernel measured."""

    result: dict[str, Any]
    wall: float
    peak_rss_mb: float
    cpu_seconds: float


class StageFailed(RuntimeError):
    """A stage process exited with an error."""


# --------------------------------------------------------------------------- processes


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    env["NEWSLETTER_SIGNING_KEY"] = "benchmark signing key, not secret"
    env["PYTHONHASHSEED"] = "0"
    return env


class Process:
    """A child process whose own peak memory and CPU time are read with ``wait4``."""

    def __init__(self, command: list[str], cwd: Path, log: Path, timeout: float) -> None:
        self.log = log
        cwd.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as sink:
            self.began = time.perf_counter()
            self.popen = subprocess.Popen(
                command, cwd=cwd, env=_environment(), stdout=sink, stderr=sink
            )
        self.timed_out = False
        self.timer = threading.Timer(timeout, self._kill)
        self.timer.daemon = True
        self.timer.start()

    def _kill(self) -> None:
        self.timed_out = True
        self.popen.kill()

    def wait(self) -> tuple[int, float, float, float]:
        """Return exit code, wall seconds, peak RSS (MB) and CPU seconds of the process."""
        _pid, status, usage = os.wait4(self.popen.pid, 0)
        wall = time.perf_counter() - self.began
        self.timer.cancel()
        code = os.waitstatus_to_exitcode(status)
        self.popen.returncode = code
        return code, wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime

    def failure(self, what: str, code: int) -> StageFailed:
        """Describe a failed process with the end of its log."""
        tail = self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        why = "timed out" if self.timed_out else f"exited with {code}"
        return StageFailed(f"{what} {why}; log {self.log}:\n{tail}")


def start_stage(stage: str, params: dict[str, Any], cwd: Path) -> tuple[Process, Path]:
    """Start ``bench/stages.py STAGE`` in ``cwd``; return it and its result file."""
    out = cwd / f"{stage}.result.json"
    command = [sys.executable, str(STAGES), stage, json.dumps(params), str(out)]
    return Process(command, cwd, cwd / f"{stage}.log", STAGE_TIMEOUT), out


def finish_stage(process: Process, out: Path, what: str) -> Child:
    """Wait for a stage process and read its result."""
    code, wall, rss, cpu = process.wait()
    if code != 0 or not out.exists():
        raise process.failure(what, code)
    return Child(json.loads(out.read_text(encoding="utf-8")), wall, rss, cpu)


def run_stage(stage: str, params: dict[str, Any], cwd: Path) -> Child:
    """Run one stage in a fresh process and wait for it."""
    process, out = start_stage(stage, params, cwd)
    return finish_stage(process, out, f"stage {stage} ({cwd.name})")


def load() -> float:
    """The one-minute load average (other work on the machine lowers every figure)."""
    return round(os.getloadavg()[0], 2)


def remove(path: Path) -> None:
    """Delete a scratch folder (not timed)."""
    shutil.rmtree(path, ignore_errors=True)


def settle() -> None:
    """Write back what earlier stages left in the page cache, so no stage pays for another."""
    os.sync()


# --------------------------------------------------------------------------- the sink


class Sink:
    """An SMTP sink process on 127.0.0.1."""

    def __init__(self, kind: str, label: str, port: int, popen: subprocess.Popen[bytes]) -> None:
        self.kind = kind
        self.label = label
        self.port = port
        self.popen = popen

    @classmethod
    def start(cls, wanted: str, folder: Path) -> Sink:
        """Start smtp-sink (if installed, or if asked for) or else an aiosmtpd sink."""
        kind = wanted
        if kind == "auto":
            kind = "smtp-sink" if SMTP_SINK.exists() else "aiosmtpd"
        port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "smtp-sink":
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            command = [str(SMTP_SINK), *user, f"127.0.0.1:{port}", "1000"]
            label = f"Postfix smtp-sink ({SMTP_SINK})"
        else:
            command = [
                sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                "-c", "aiosmtpd.handlers.Sink",
            ]  # fmt: skip
            label = "aiosmtpd Sink handler (python -m aiosmtpd)"
        with (folder / f"{kind}.log").open("wb") as log:
            popen = subprocess.Popen(command, stdout=log, stderr=log)
        sink = cls(kind, label, port, popen)
        sink.wait_ready()
        return sink

    def wait_ready(self) -> None:
        """Wait for the greeting; fail if the sink does not come up."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    if probe.recv(512).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise StageFailed(f"the {self.kind} sink on 127.0.0.1:{self.port} did not start")

    def cpu(self) -> float:
        """CPU seconds the sink has used so far."""
        try:
            stat = Path(f"/proc/{self.popen.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop the sink process."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def serving_port(server: Process, timeout: float = 60.0) -> int:
    """Wait for ``newsletter serve`` to say where it listens; return the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = server.log.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"serving .* on http://127\.0\.0\.1:(\d+)", text)
        if found:
            return int(found.group(1))
        if server.popen.poll() is not None:
            break
        time.sleep(0.05)
    raise server.failure("the service", server.popen.poll() or 0)


def median_row(rows: list[Row]) -> Row:
    """The run with the median rate, noting the spread of all runs."""
    ordered = sorted(rows, key=lambda r: r.rate)
    chosen = ordered[(len(ordered) - 1) // 2]
    if len(rows) > 1:
        chosen.extra["runs"] = len(rows)
        chosen.extra["msgs_per_s_all_runs"] = [round(r.rate) for r in rows]
    return chosen


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
