"""Shards of the subscriber list: part K of N, the same on every machine and run."""

from __future__ import annotations

import hashlib
import re

_SHARD_HINT = "write K/N with K between 1 and N, e.g. 2/4 for the second of four parts"


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` (1 ≤ K ≤ N, e.g. ``2/4``) into ``(K, N)``."""
    match = re.fullmatch(r"\s*([0-9]{1,9})\s*/\s*([0-9]{1,9})\s*", text)
    if not match:
        raise ValueError(f"shard {text!r} is not of the form K/N; {_SHARD_HINT}")
    k, n = int(match[1]), int(match[2])
    if not _shard_ok(k, n):
        raise ValueError(f"shard {text!r} is out of range; {_SHARD_HINT}")
    return k, n


def in_shard(email: str, shard: tuple[int, int] | None) -> bool:
    """Tell whether ``email`` belongs to part K of N; every address is in exactly one part.

    The split hashes the case-folded address with SHA-256, so it is the same on every
    machine and run. ``None`` means no sharding: every address belongs.
    """
    if shard is None:
        return True
    k, n = shard
    if not _shard_ok(k, n):
        raise ValueError(f"shard {k}/{n} is out of range; {_SHARD_HINT}")
    digest = hashlib.sha256(email.casefold().encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest, "big") % n == k - 1


def _shard_ok(k: int, n: int) -> bool:
    """Tell whether part ``k`` of ``n`` exists."""
    return 1 <= k <= n
