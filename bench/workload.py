"""The benchmark's inputs: a deterministic subscriber list and a description of the machine.

The list looks like a real one: most addresses on a few big domains and the rest on a
long tail, names in several scripts (some with commas or quotes, some missing), a few
plus-tags and capitals, and about 2 % unsubscribed or bounced rows mixed in. ``rows(n)``
yields exactly ``n`` active subscribers, so a list of size N makes N messages.
"""

from __future__ import annotations

import csv
import os
import platform
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

SEED = 20260304
BIG_DOMAINS = (
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "post.example",
    "inbox.example.com",
    "correo.example.es",
    "bücher.example",
)
TAIL_DOMAINS = 3000
FIRST = (
    "ana", "jose", "grace", "li", "priya", "olu", "marta", "kenji", "fatima", "lars",
    "zoë", "søren", "mihai", "aroha", "chen", "amara", "diego", "nadia", "yusuf", "ines",
)  # fmt: skip
LAST = (
    "silva", "núñez", "hopper", "wei", "raman", "adeyemi", "kowalska", "sato", "haddad",
    "berg", "o'brien", "müller", "popescu", "ngata", "zhang", "okafor", "garcía", "ivanova",
)  # fmt: skip
CJK_NAMES = ("山田 花子", "李 伟", "김 민준", "佐藤 健", "王 芳")
INACTIVE = ("unsubscribed", "bounced")
HEADER = ("email", "name", "status", "city")
CITIES = ("Lisbon", "Sevilla", "Kochi", "Lagos", "Osaka", "Berlin", "", "São Paulo")


class Row(NamedTuple):
    """One subscriber row as written to the CSV file."""

    email: str
    name: str
    status: str
    city: str


def _domain(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return rng.choice(BIG_DOMAINS)
    return f"host{rng.randrange(TAIL_DOMAINS)}.example.org"


def _local(rng: random.Random, first: str, last: str, n: int) -> str:
    base = f"{first}.{last}{n}".replace("'", "").replace("ë", "e").replace("ø", "o")
    base = base.encode("ascii", "ignore").decode("ascii")
    roll = rng.random()
    if roll < 0.02:
        return f"{base}+news"
    if roll < 0.03:
        return base.title()
    return base


def _name(rng: random.Random, first: str, last: str) -> str:
    roll = rng.random()
    if roll < 0.13:
        return ""
    if roll < 0.18:
        return rng.choice(CJK_NAMES)
    if roll < 0.23:
        return f"{last.title()}, {first.title()}"
    if roll < 0.25:
        return f'{first.title()} "{last[:3].title()}" {last.title()}'
    return f"{first.title()} {last.title()}"


def rows(count: int, seed: int = SEED) -> Iterator[Row]:
    """Yield ``count`` active rows (plus about 2 % inactive ones mixed in), deterministically."""
    rng = random.Random(seed)
    made = 0
    n = 0
    while made < count:
        n += 1
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{_local(rng, first, last, n)}@{_domain(rng)}"
        inactive = rng.random() < 0.02
        status = rng.choice(INACTIVE) if inactive else "active"
        made += not inactive
        yield Row(email, _name(rng, first, last), status, rng.choice(CITIES))


def write_subscribers(path: Path, count: int) -> Path:
    """Write a CSV list with ``count`` active subscribers to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(HEADER)
        writer.writerows(rows(count))
    return path


# --------------------------------------------------------------------------- the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _postfix_version() -> str:
    postconf = shutil.which("postconf") or "/usr/sbin/postconf"
    if not Path(postconf).exists():
        return ""
    try:
        done = subprocess.run(
            [postconf, "-d", "-h", "mail_version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def machine(workdir: Path) -> dict[str, Any]:
    """Describe the machine: CPU, cores, RAM, OS, Python, disk and the time of the run."""
    usage = shutil.disk_usage(workdir)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gb": round(_memory_gb(), 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "workdir": str(workdir),
        "disk_free_gb": round(usage.free / 1e9, 1),
        "postfix": _postfix_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
