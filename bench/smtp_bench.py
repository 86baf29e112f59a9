"""Measure live-delivery throughput: N generated ~60 KB messages to a local SMTP sink.

The sink is Postfix's ``smtp-sink`` when /usr/sbin/smtp-sink exists, else an aiosmtpd
``Sink`` handler, each in its own process (so the sender does not share its GIL).
The ledger is a real SQLite file in a temporary folder, as in a real send.

    .venv/bin/python bench/smtp_bench.py                 # 10,000 messages, pools 1 and 4
    .venv/bin/python bench/smtp_bench.py --count 2000 --pools 1,2,4,8 --size-kb 20
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import SmtpSettings  # noqa: E402
from newsletter.delivery.ledger import Ledger  # noqa: E402
from newsletter.delivery.smtp import send_messages  # noqa: E402
from newsletter.models import OutgoingMessage  # noqa: E402

SMTP_SINK = Path("/usr/sbin/smtp-sink")


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_sink(kind: str, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start the sink process; return it and a description."""
    if kind == "auto":
        kind = "smtp-sink" if SMTP_SINK.exists() else "aiosmtpd"
    if kind == "smtp-sink":
        command = [str(SMTP_SINK), "-c", f"127.0.0.1:{port}", "1000"]
        label = f"Postfix smtp-sink ({SMTP_SINK})"
    else:
        command = [
            sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
            "-c", "aiosmtpd.handlers.Sink",
        ]  # fmt: skip
        label = "aiosmtpd Sink (python -m aiosmtpd -c aiosmtpd.handlers.Sink)"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.recv(512)
            return process, label
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the sink on port {port} did not start")


def cpu_seconds(pid: int) -> float:
    """Return the CPU time a process has used (Linux /proc), or 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def body(size: int) -> bytes:
    """Return a quoted-printable-looking HTML body of about ``size`` bytes (CRLF lines)."""
    line = b'<td style=3D"padding:0 24px;font-family:Georgia,serif;color:#1f2933">News =\r\n'
    text = b"<p>A paragraph of the lead story, long enough to wrap at 76 columns.</p>=\r\n"
    block = line + text
    return block * max(1, size // len(block))


def generate(count: int, size: int) -> Iterator[OutgoingMessage]:
    """Yield ``count`` messages built from one shared body (as the real factory does)."""
    shared = body(size)
    for n in range(count):
        address = f"reader{n}@example.org"
        message_id = f"<{n}.bench@news.example>"
        head = (
            f"From: The Meridian Post <news@news.example>\r\nTo: {address}\r\n"
            f"Subject: Bench digest\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        yield OutgoingMessage(address, message_id, head + shared)


def run(count: int, size: int, pool: int, port: int) -> tuple[float, float, int]:
    """Send once with ``pool`` connections; return (seconds, sender CPU seconds, accepted)."""
    settings = SmtpSettings(
        host="127.0.0.1", port=port, security="none", pool=pool, max_per_connection=100_000
    )
    with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "state.sqlite3") as led:
        began, cpu = time.perf_counter(), time.process_time()
        summary = send_messages(
            generate(count, size), settings, led, "bench", envelope_from="bounces@news.example"
        )
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    if summary.paused or summary.sent != count:
        raise SystemExit(f"the run did not complete: {summary.as_dict()}")
    return seconds, cpu, summary.sent


def main() -> None:
    """Parse the options, start the sink, run each pool size and print msgs/s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--size-kb", type=int, default=60)
    parser.add_argument("--pools", default="1,4", help="comma-separated connection counts")
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "aiosmtpd"], default="auto")
    args = parser.parse_args()
    if args.sink == "smtp-sink" and not SMTP_SINK.exists():
        raise SystemExit(f"{SMTP_SINK} is not installed (apt-get install postfix)")
    size = args.size_kb * 1024
    sample = next(generate(1, size)).data
    port = free_port()
    sink, label = start_sink(args.sink, port)
    try:
        print(f"sink: {label}")
        print(
            f"messages: {args.count} x {len(sample) / 1024:.1f} KB; cpus: {os.cpu_count()}; "
            f"python {sys.version.split()[0]}; load average: {os.getloadavg()[0]:.1f}"
        )
        for pool in (int(p) for p in args.pools.split(",")):
            sink_cpu = cpu_seconds(sink.pid)
            seconds, cpu, sent = run(args.count, size, pool, port)
            sink_cpu = cpu_seconds(sink.pid) - sink_cpu
            megabytes = sent * len(sample) / 1e6
            print(
                f"pool {pool}: {sent} messages in {seconds:.2f} s = {sent / seconds:.0f} msgs/s "
                f"({megabytes / seconds:.1f} MB/s); CPU per message: sender "
                f"{cpu / sent * 1000:.2f} ms, sink {sink_cpu / sent * 1000:.2f} ms; "
                f"load average {os.getloadavg()[0]:.1f}"
            )
    finally:
        sink.terminate()
        sink.wait(timeout=10)


if __name__ == "__main__":
    main()
