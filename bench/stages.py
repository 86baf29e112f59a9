"""One benchmark stage, run in a fresh process: ``python bench/stages.py STAGE PARAMS OUT``.

``PARAMS`` is a JSON object; the stage writes its result (a JSON object) to ``OUT``.
``bench/run.py`` starts one process per stage so each one's peak memory is its own,
and reads the peak from the kernel (``wait4``) rather than trusting the stage.

The working directory is the stage's own scratch folder: the bundled sample
publication keeps its state (history, ledger) there.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_started = time.perf_counter()
from newsletter import audience as who  # noqa: E402
from newsletter import pipeline  # noqa: E402
from newsletter.config.load import load_settings  # noqa: E402
from newsletter.config.settings import Settings, SmtpSettings  # noqa: E402
from newsletter.delivery.dryrun import write_outbox  # noqa: E402
from newsletter.delivery.smtp.pool import CLAIM_AHEAD, UNRECORDED, send_messages  # noqa: E402
from newsletter.dkim.keys import load_private_key, sign_digest  # noqa: E402
from newsletter.dkim.settings import DkimSettings, parse_dkim  # noqa: E402
from newsletter.dkim.signer import DkimSigner  # noqa: E402
from newsletter.messages import MessageFactory, unsubscribe_url  # noqa: E402
from newsletter.models import OutgoingMessage, Subscriber  # noqa: E402
from newsletter.sends.edition import send_edition  # noqa: E402
from newsletter.sends.plan import Prepared, SendHooks, SendPlan  # noqa: E402
from newsletter.state.api import Ledger  # noqa: E402
from newsletter.state.openers import open_ledger, open_suppressions  # noqa: E402
from newsletter.subscribers.reader import read_subscribers  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _started

import workload  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa  # noqa: E402
from shared_stages import share_ledger, share_setup  # noqa: E402

Params = dict[str, Any]


def _settings() -> Settings:
    return load_settings(None)


def _build(settings: Settings, params: Params) -> pipeline.BuildResult:
    now = datetime.fromisoformat(params["now"])
    return pipeline.build_edition(settings, pipeline.BuildOptions(now=now, allow_repeats=True))


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    value = action()
    return time.perf_counter() - began, value


def build(params: Params) -> Params:
    """Render the edition once cold (first in this process), then warm a few times."""
    settings = _settings()
    cold, result = _timed(lambda: _build(settings, params))
    warm = [_timed(lambda: _build(settings, params))[0] for _ in range(params["repeat"])]
    factory = MessageFactory(result.edition, settings)
    sample = factory.build(Subscriber(email="ana.silva@example.com", name="Ana Silva"))
    folder = Path(params["sample_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sample.eml").write_bytes(sample.data)
    return {
        "import_seconds": IMPORT_SECONDS,
        "cold_seconds": cold,
        "warm_seconds": statistics.median(warm) if warm else None,
        "warm_runs": len(warm),
        "edition_id": result.edition.id,
        "html_bytes": result.edition.html_size,
        "message_bytes": len(sample.data),
        "sample_message": str(folder / "sample.eml"),
    }


def _synthetic(count: int, part: tuple[int, int] | None) -> Iterator[Subscriber]:
    """Yield the list's active subscribers without reading a file (part K of N by position)."""
    for index, row in enumerate(r for r in workload.rows(count) if r.status == "active"):
        if part is None or index % part[1] == part[0] - 1:
            yield Subscriber(email=row.email, name=row.name, line=index + 2)


def generate(params: Params) -> Params:
    """Build every subscriber's message bytes and discard them (no file, no network).

    Subscribers are made on the fly (flat memory); only the ``build`` calls are timed.
    """
    settings = _settings()
    result = _build(settings, params)
    factory = MessageFactory(result.edition, settings)
    part = tuple(params["part"]) if params.get("part") else None
    clock = time.perf_counter
    seconds, count, total = 0.0, 0, 0
    began = clock()
    for subscriber in _synthetic(params["count"], part):
        start = clock()
        data = factory.build(subscriber).data
        seconds += clock() - start
        count += 1
        total += len(data)
    loop = clock() - began
    return {"seconds": seconds, "loop_seconds": loop, "messages": count, "bytes": total}


def read(params: Params) -> Params:
    """Read and validate the CSV list (both passes), counting active subscribers."""
    began = time.perf_counter()
    count = sum(1 for _ in read_subscribers(Path(params["csv"])))
    return {"seconds": time.perf_counter() - began, "messages": count}


def _folder_size(folder: Path) -> tuple[int, int]:
    """Count the files in ``folder`` and their bytes, without listing them in memory."""
    files = size = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                files += 1
                size += entry.stat(follow_symlinks=False).st_size
    return files, size


def dryrun(params: Params) -> Params:
    """Build the edition, then write the dry run (eml, mbox or a sample) for the list.

    This is ``pipeline.dry_run`` spelled out, so that a sample can be asked for too.
    """
    settings = _settings()
    build_seconds, result = _timed(lambda: _build(settings, params))
    audience = who.Audience(
        subscribers_path=Path(params["csv"]),
        shard=tuple(params["shard"]) if params.get("shard") else None,
    )
    began = time.perf_counter()
    factory = MessageFactory(result.edition, settings)
    held = who.held_in(settings.paths.state)
    outcome = write_outbox(
        result.edition,
        factory,
        who.recipients(audience, who.Reach.of(audience), held),
        Path(params["outbox"]),
        force=True,
        selection=result.selection,
        mode=params["mode"],
        sample=params.get("sample"),
    )
    seconds = time.perf_counter() - began
    files, size = _folder_size(outcome.folder)
    return {
        "seconds": seconds,
        "build_seconds": build_seconds,
        "messages": outcome.written,
        "saved": outcome.saved,
        "files": files,
        "bytes": size,
    }


def _dkim(settings: Settings, algorithm: str) -> DkimSettings:
    """Settings that sign with a key made for this run: RSA-2048 or Ed25519 (not timed)."""
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    path = Path(f"dkim-{algorithm}.pem").resolve()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    table = {"selector": f"bench-{algorithm}", "key_file": str(path)}
    dkim, problems = parse_dkim(table, path.parent, default_domain=settings.sender.domain)
    if dkim is None:
        raise SystemExit(f"DKIM settings: {problems}")
    return dkim


def sign(params: Params) -> Params:
    """Sign each subscriber's message in one thread: the signing cost per message, per core.

    Messages are built as the live send builds them (with their pieces) and dropped after
    signing, so memory stays flat; only the signing is timed, in wall time and in CPU
    time of the thread (signatures per second per core). The private-key operation is
    then timed alone, as many times, over a fixed digest.
    """
    settings = _settings()
    result = _build(settings, params)
    dkim = _dkim(settings, params["algorithm"])
    signer = DkimSigner(dkim)
    factory = MessageFactory(result.edition, settings)
    clock, cpu_clock = time.perf_counter, time.thread_time
    seconds = cpu_seconds = 0.0
    count = 0
    for subscriber in _synthetic(params["count"], None):
        message = factory.build(subscriber, payload=True)
        began, cpu = clock(), cpu_clock()
        signer.signature(message.data, message.pieces)
        seconds += clock() - began
        cpu_seconds += cpu_clock() - cpu
        count += 1
    key, digest = load_private_key(dkim.private_key), bytes(32)
    cpu = cpu_clock()
    for _ in range(count):
        sign_digest(key, digest)
    return {
        "seconds": seconds,
        "thread_cpu_seconds": cpu_seconds,
        "messages": count,
        "key_cpu_seconds": cpu_clock() - cpu,  # the private-key operation alone
    }


def smtp(params: Params) -> Params:
    """Send the edition to the list through ``newsletter send``'s path to a local sink.

    The clock starts when the edition has passed the preflight gate (``ready``), so the
    time is the send itself: list, messages, ledger and SMTP. With ``dkim`` ("rsa" or
    "ed25519") every message is signed, as a live send signs; the signing worker
    processes (this process's only children) are reported apart: their CPU time, and
    the sum of their peak memory, sampled while they run (the kernel's figure for
    children counts this process's own memory at the moment it starts them).
    With ``suppressed`` (N), the suppression list holds N addresses first (none of them
    on the list): the send reads them all and keeps watching the list while it sends.
    """
    settings = _with_sink(_settings(), params)
    if params.get("state_url"):  # a PostgreSQL state, shared by the senders of one edition
        settings = replace(settings, paths=replace(settings.paths, state_url=params["state_url"]))
    if params.get("dkim"):
        settings = replace(settings, dkim=_dkim(settings, params["dkim"]))
    with open_suppressions(settings.paths.state) as suppressions:
        for n in range(params.get("suppressed", 0)):
            suppressions.add(f"gone{n}@example.net", "unsubscribe", "bench")
    audience = who.Audience(
        subscribers_path=Path(params["csv"]),
        shard=tuple(params["shard"]) if params.get("shard") else None,
    )
    now = datetime.fromisoformat(params["now"])
    plan = SendPlan(audience, pipeline.BuildOptions(now=now, allow_repeats=True))
    began: list[float] = []
    began_at: list[float] = []

    def ready(_prepared: Prepared) -> None:
        began.append(time.perf_counter())
        began_at.append(time.time())

    hooks = SendHooks(ready=ready)
    peaks: dict[int, int] = {}
    done = threading.Event()
    sampler = threading.Thread(target=_sample_children, args=(peaks, done), daemon=True)
    sampler.start()
    try:
        summary = send_edition(settings, plan, hooks).summary
    finally:
        done.set()
        sampler.join()
    seconds = time.perf_counter() - began[0]
    assert summary is not None  # a live plan
    if summary.paused or summary.failed or summary.deferred:
        raise SystemExit(f"the send did not complete: {summary.as_dict()}")
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": seconds,
        "messages": summary.sent,
        "began_at": began_at[0],  # the wall clock, to time senders in several processes
        "ended_at": time.time(),
        "workers": len(peaks),
        "workers_cpu_seconds": round(workers.ru_utime + workers.ru_stime, 2),
        "workers_peak_rss_mb": round(sum(peaks.values()) / 1024, 1),
    }


def _sample_children(peaks: dict[int, int], done: threading.Event) -> None:
    """Keep each child process's peak resident size (kB) until ``done`` is set."""
    tasks = Path("/proc/self/task")
    while not done.wait(0.1):
        try:
            children = {int(pid) for task in tasks.iterdir() for pid in _children_of(task)}
        except OSError:  # no /proc: nothing to report
            return
        for pid in children:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:  # ended meanwhile
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = max(peaks.get(pid, 0), int(line.split()[1]))


def _children_of(task: Path) -> list[str]:
    try:
        return (task / "children").read_text().split()
    except OSError:  # the thread ended meanwhile
        return []


def send(params: Params) -> Params:
    """Send already-built messages with ``send_messages`` (ledger included): the sender alone.

    A hundred real messages are built first and reused for every recipient, so neither
    the subscriber list nor message generation is part of the time.
    """
    settings = _with_sink(_settings(), params)
    result = _build(settings, params)
    factory = MessageFactory(result.edition, settings)
    built = [factory.build(s, payload=True) for s in _synthetic(100, None)]
    messages = (
        OutgoingMessage(
            f"reader{n}@example.com", f"<{n}.bench@meridianpost.example>", m.data, m.payload
        )
        for n, m in zip(range(params["count"]), itertools.cycle(built))
    )
    envelope = settings.smtp.envelope_from or settings.sender.address
    with open_ledger(settings.paths.state) as ledger:
        began = time.perf_counter()
        summary = send_messages(
            messages, settings.smtp, ledger, result.edition.id, envelope_from=envelope
        )
        seconds = time.perf_counter() - began
    if summary.paused or summary.sent != params["count"]:
        raise SystemExit(f"the send did not complete: {summary.as_dict()}")
    return {"seconds": seconds, "messages": summary.sent}


def ledger(params: Params) -> Params:
    """Claim and record outcomes the way the SMTP pool does, with no network: the ledger alone.

    Each of ``pool`` threads claims ``CLAIM_AHEAD`` recipients ahead (``wait=False``),
    settles a claim (and its oldest unrecorded ``sent``) where the message data would go
    out, then records ``sent``. Every recipient changes state twice: claimed, then sent.
    """
    count, pool = params["count"], params["pool"]
    edition = "2026-03-04-bench"
    numbers = iter(range(count))
    taking = threading.Lock()

    def take() -> str | None:
        with taking:
            number = next(numbers, None)
        return None if number is None else f"reader{number}@example.com"

    def work(book: Ledger) -> None:
        ahead: collections.deque[tuple[str, int]] = collections.deque()
        sent: collections.deque[int] = collections.deque(maxlen=UNRECORDED)
        while True:
            if ahead:
                email, ticket = ahead.popleft()
            else:
                found = take()
                if found is None:
                    return
                email, ticket = found, book.claim(edition, found, f"<{found}>", wait=False)
            while len(ahead) < CLAIM_AHEAD and (fresh := take()) is not None:
                ahead.append((fresh, book.claim(edition, fresh, f"<{fresh}>", wait=False)))
            if len(sent) == UNRECORDED:
                ticket = max(ticket, sent[0])
            book.settle(ticket)
            sent.append(book.finish(edition, email, "sent", "250 2.0.0 Ok: queued"))

    with open_ledger(Path("state") / "state.sqlite3") as book:
        began = time.perf_counter()
        book.start(edition, "")
        book.states(edition)
        threads = [threading.Thread(target=work, args=(book,)) for _ in range(pool)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        book.flush()
        seconds = time.perf_counter() - began
        summary = book.summary(edition)
    if summary["sent"] != count:
        raise SystemExit(f"the ledger did not record everyone: {summary}")
    return {"seconds": seconds, "messages": 2 * count, "recipients": count}


def _with_sink(settings: Settings, params: Params) -> Settings:
    smtp_settings = SmtpSettings(
        host="127.0.0.1",
        port=params["port"],
        security="none",
        pool=params["pool"],
        rate=0.0,
        envelope_from=settings.smtp.envelope_from,
    )
    return replace(settings, smtp=smtp_settings, signing_key=b"benchmark key, not secret")


ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"


def oneclick(params: Params) -> Params:
    """POST one-click unsubscribes to a running service over keep-alive connections.

    Each request is the POST a mail provider sends (form-urlencoded, RFC 8058) for an
    address of its own, so each one writes a suppression. ``warmup`` requests go first
    and are not counted. Latency is from writing the request to reading the whole answer.
    """
    settings = load_settings(Path(params["config"]))
    host, port = params["host"], params["port"]
    count, warmup, connections = params["count"], params["warmup"], params["connections"]

    def requests(first: int, number: int) -> list[bytes]:
        made = []
        for n in range(first, first + number):
            url = unsubscribe_url(settings, f"reader{n:07d}@example.com", settings.signing_key)
            path = url[url.index("/", len("https://")) :]
            made.append(
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(ONE_CLICK_BODY)}\r\n\r\n".encode()
                + ONE_CLICK_BODY
            )
        return made

    asyncio.run(_post_all(host, port, requests(count, warmup), connections))
    timed = requests(0, count)
    began = time.perf_counter()
    latencies, statuses = asyncio.run(_post_all(host, port, timed, connections))
    seconds = time.perf_counter() - began
    with open_suppressions(settings.paths.state) as store:
        stored = store.count()
    if statuses != {200: count} or stored != count + warmup:
        raise SystemExit(f"not every POST unsubscribed: answers {statuses}, stored {stored}")
    ordered = sorted(latencies)
    return {
        "seconds": seconds,
        "messages": count,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max_ms": 1000 * ordered[-1],
        "connections": connections,
    }


async def _post_all(
    host: str, port: int, requests: list[bytes], connections: int
) -> tuple[list[float], dict[int, int]]:
    """Send every request over ``connections`` keep-alive connections; latencies, statuses."""
    pending = iter(requests)
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for request in pending:
                began = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - began)
                statuses[int(head[9:12])] += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies, dict(statuses)


STAGES: dict[str, Callable[[Params], Params]] = {
    "build": build,
    "generate": generate,
    "read": read,
    "dryrun": dryrun,
    "smtp": smtp,
    "send": send,
    "sign": sign,
    "ledger": ledger,
    "oneclick": oneclick,
    "share_setup": share_setup,
    "share_ledger": share_ledger,
}


def main() -> None:
    """Run the stage named on the command line and write its result as JSON."""
    name, raw, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    result = STAGES[name](json.loads(raw))
    out.write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
