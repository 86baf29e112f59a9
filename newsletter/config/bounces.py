"""The ``[bounces]`` table: the return path (VERP or not) and the soft-bounce threshold."""

from __future__ import annotations

from newsletter.config.reader import TableReader
from newsletter.config.settings import BounceSettings
from newsletter.tokens import MAX_LOCAL_PART, VERP_EXTRA


def read_bounces(top: TableReader, fallback_return_path: str) -> BounceSettings:
    """Read ``[bounces]``; ``fallback_return_path`` is the envelope sender without one here.

    With ``verp`` the return path's local part must leave room for the token: the whole
    local part stays within the 64 octets of RFC 5321.
    """
    b = top.table("bounces")
    defaults = BounceSettings()
    bounces = BounceSettings(
        verp=b.flag("verp", defaults.verp),
        return_path=b.address("return_path", defaults.return_path),
        soft_limit=b.whole("soft_limit", defaults.soft_limit, 1, 1000),
        soft_window_days=b.whole("soft_window_days", defaults.soft_window_days, 1, 3650),
    )
    address = bounces.return_path or fallback_return_path
    local = address.rpartition("@")[0]
    room = MAX_LOCAL_PART - VERP_EXTRA
    if bounces.verp and len(local.encode()) > room:
        where = "return_path" if bounces.return_path else "verp"
        b.problem(
            where,
            f"the return path's local part {local!r} is {len(local.encode())} octets; VERP adds "
            f"{VERP_EXTRA}, and a local part may hold 64: use a return path whose part before "
            f"the @ has at most {room} characters",
        )
    b.finish()
    return bounces
