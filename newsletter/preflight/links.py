"""Link probing (``check --check-links``): ask each link of the HTML whether it still answers.

The only part of the preflight that touches the network: HEAD requests (GET when HEAD
is refused), redirects only to http(s), bounded in count, concurrency and total time.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException, HTTPMessage
from typing import IO
from urllib.parse import urlsplit

from newsletter.preflight.findings import Finding, Report, show
from newsletter.preflight.scan import HtmlFacts

LINK_TIMEOUT = 10.0
LINK_WORKERS = 8
MAX_LINKS = 300
LINK_BUDGET = 60.0
SKIPPED = "skipped"


def link_targets(facts: HtmlFacts, skip: Iterable[str] = ()) -> list[str]:
    """The distinct http(s) links and image sources of the HTML, except ``skip``."""
    skipped = set(skip)
    urls = [*facts.links, *(src for src, _alt in facts.images)]
    wanted = (u for u in urls if u.lower().startswith(("http://", "https://")))
    return list(dict.fromkeys(u for u in wanted if u not in skipped))


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s) URLs."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        """Refuse a redirect to anything but http(s)."""
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        _HttpOnlyRedirects(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
    ):
        opener.add_handler(handler)
    return opener


def probe_link(url: str, timeout: float = LINK_TIMEOUT) -> str | None:
    """HEAD ``url`` (GET if HEAD is refused); return the problem, or None if it answers < 400."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return "not an http(s) URL"
    opener = _opener()
    status = 0
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url, method=method, headers={"User-Agent": "newsletter-linkcheck/1"}
        )
        try:
            with opener.open(request, timeout=timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as err:
            status = err.code
            err.close()
            if status < 400:
                return f"a redirect that cannot be followed (HTTP {status}: a loop or not http)"
        except (urllib.error.URLError, HTTPException, OSError, ValueError) as err:
            return f"unreachable ({getattr(err, 'reason', err)})"
        if status not in (405, 501):
            break
    return f"answering HTTP {status}" if status >= 400 else None


def probe_links(
    urls: Sequence[str],
    *,
    timeout: float = LINK_TIMEOUT,
    workers: int = LINK_WORKERS,
    budget: float = LINK_BUDGET,
) -> list[Finding]:
    """Probe each URL with bounded time and concurrency; one warning per broken link."""
    out = Report()
    targets = list(urls)
    if len(targets) > MAX_LINKS:
        out.warning("links-truncated", f"{len(targets)} links; checked the first {MAX_LINKS}")
        targets = targets[:MAX_LINKS]
    deadline = time.monotonic() + budget

    def probe(url: str) -> str | None:
        return SKIPPED if time.monotonic() > deadline else probe_link(url, timeout)

    results: list[str | None] = []
    if targets:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets)))) as pool:
            results = list(pool.map(probe, targets))
    for url, problem in zip(targets, results, strict=True):
        if problem is not None and problem != SKIPPED:
            out.warning("link-broken", f"{show(url)} is {problem}; fix or remove the link")
    skipped = results.count(SKIPPED)
    if skipped:
        out.warning("links-truncated", f"{skipped} link(s) were not checked within {budget:.0f} s")
    return out.findings
