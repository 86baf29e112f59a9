"""What a host name means without asking DNS: whether it is this machine, or an example."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1) without DNS."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TOP_LEVEL = ("example", "invalid", "test")  # RFC 2606: never a real mail domain


def is_example_domain(host: str) -> bool:
    """Tell whether ``host`` is a domain reserved for examples (RFC 2606), or under one."""
    name = host.strip().lower().rstrip(".")
    if name.rpartition(".")[2] in RESERVED_TOP_LEVEL:
        return True
    return any(name == domain or name.endswith("." + domain) for domain in EXAMPLE_DOMAINS)
