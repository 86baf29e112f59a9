"""How an address appears in logs: enough to tell a domain's trouble, not who it was."""

from __future__ import annotations


def mask_address(email: str) -> str:
    """Shorten ``email`` for a log line: the local part's first character and the domain.

    ``jane.doe@example.org`` becomes ``j…@example.org``; something without an ``@``
    becomes ``…``. Logs are read by more people than the list, and kept longer.
    """
    local, at, domain = email.strip().rpartition("@")
    if not at or not local:
        return "…"
    return f"{local[0]}…@{domain}"
