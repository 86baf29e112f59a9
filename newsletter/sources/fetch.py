"""Fetch a feed over http(s): bounded in time, size and redirects, with conditional GET.

Each response is cached under ``<state_dir>/feeds`` with its ETag and Last-Modified;
the next fetch sends ``If-None-Match``/``If-Modified-Since`` and a ``304 Not Modified``
reuses the cached body. Redirects are followed by hand (at most ``MAX_REDIRECTS``,
only to http or https). Each wait is bounded by ``timeout`` and the whole fetch by
``total_time``, so a body that trickles in is cut off too.

A user name and password in the URL (``https://user:secret@host/feed``) are sent as
HTTP Basic authentication, to that scheme, host and port only (not to where it
redirects elsewhere), and never shown: messages name the URL masked (``masking``).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from newsletter import __version__
from newsletter.config.settings import Settings
from newsletter.errors import ContentError

from .masking import hide, masked

MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = 20.0  # seconds to connect and between bytes
TOTAL_TIME = 60.0  # seconds for the whole fetch, redirects included
MAX_REDIRECTS = 5
CHUNK = 65536
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


class FetchError(ContentError):
    """A feed could not be fetched; the message names the URL and what went wrong."""


@dataclass(frozen=True)
class Fetched:
    """A fetched body and where it finally came from."""

    url: str
    body: bytes
    content_type: str = ""
    from_cache: bool = False
    warnings: tuple[str, ...] = ()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Leave redirects to the caller, who bounds and checks them."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def is_url(spec: str) -> bool:
    """Tell whether a source spec is an http(s) URL (anything else is a path)."""
    return urlsplit(spec.strip()).scheme.lower() in ("http", "https")


def without_credentials(url: str) -> tuple[str, str | None]:
    """Split a URL's user name and password off; return it and the Basic credentials, if any."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, "Basic " + base64.b64encode(pair).decode("ascii")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def ascii_url(url: str) -> str:
    """Make a URL sendable: IDNA host, percent-encoded non-ASCII path and query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if parts.username is not None:
        netloc = f"{parts.netloc.rpartition('@')[0]}@{netloc}"
    safe = "/?&=+:;,@!$'()*~%#[]"
    return urlunsplit((parts.scheme, netloc, quote(parts.path, safe), quote(parts.query, safe), ""))


@dataclass(frozen=True)
class Fetcher:
    """Fetches feeds with the publication's User-Agent and a conditional-GET cache."""

    user_agent: str
    cache_dir: Path | None = None
    timeout: float = TIMEOUT
    total_time: float = TOTAL_TIME
    max_bytes: int = MAX_BYTES
    max_redirects: int = MAX_REDIRECTS

    @classmethod
    def from_settings(cls, settings: Settings) -> Fetcher:
        """The fetcher for a publication: its site in the User-Agent, its state folder."""
        site = settings.publication.site_url
        agent = f"newsletter/{__version__}" + (f" (+{site})" if site else "")
        return cls(user_agent=agent, cache_dir=settings.paths.state_dir / "feeds")

    def get(self, url: str) -> Fetched:
        """Fetch ``url``; raise ``FetchError`` on any failure (the URL masked in it)."""
        try:
            return self._get(url)
        except FetchError as err:
            err.args = (hide(str(err), url),)
            raise

    def _get(self, url: str) -> Fetched:
        cached = self._load_cache(url)
        shown = masked(url)
        bare, credentials = without_credentials(url)
        visited: list[str] = []
        current = bare
        deadline = time.monotonic() + self.total_time
        opener = urllib.request.build_opener(_NoRedirect)
        while True:
            visited.append(current)
            if not is_url(current):
                raise FetchError(f"{shown}: only http(s) addresses can be fetched")
            # The credentials go only where the user sent them, never after a redirect away.
            login = credentials if _origin(current) == _origin(bare) else None
            try:
                request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
                    ascii_url(current), headers=self._headers(cached, login)
                )
                with opener.open(request, timeout=self.timeout) as response:
                    return self._ok(url, current, response, deadline)
            except urllib.error.HTTPError as err:
                with err:
                    if err.code == 304 and cached is not None:
                        return self._not_modified(url, current, cached)
                    if err.code not in _REDIRECTS:
                        raise FetchError(
                            f"{shown}: HTTP {err.code} {err.reason}{_via(current, bare)}; "
                            f"{_next_step(err.code, credentials)}"
                        ) from None
                    current = self._next_hop(url, current, err.headers, visited)
            except (
                TimeoutError,
                urllib.error.URLError,
                http.client.HTTPException,
                OSError,
                ValueError,
                UnicodeError,
            ) as err:
                problem = _describe(err, self.timeout)
                raise FetchError(f"{shown}: {problem}{_via(current, bare)}") from err

    def _headers(self, cached: dict[str, Any] | None, login: str | None) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Accept": _ACCEPT, "Accept-Encoding": "gzip"}
        if login is not None:
            headers["Authorization"] = login
        if cached is not None:
            if cached.get("etag"):
                headers["If-None-Match"] = str(cached["etag"])
            if cached.get("last_modified"):
                headers["If-Modified-Since"] = str(cached["last_modified"])
        return headers

    def _next_hop(self, url: str, current: str, headers: Message, visited: list[str]) -> str:
        shown = masked(url)
        location = headers.get("Location")
        if not location:
            raise FetchError(f"{shown}: a redirect without a Location{_via(current, visited[0])}")
        target = urljoin(current, location.strip())
        if urlsplit(target).scheme.lower() not in ("http", "https"):
            raise FetchError(
                f"{shown}: redirected to {masked(target)[:200]!r}, which is not http(s)"
            )
        if target in visited:
            hops = " → ".join(masked(hop) for hop in [*visited, target])
            raise FetchError(f"{shown}: redirect loop ({hops[:500]})")
        if len(visited) > self.max_redirects:
            raise FetchError(
                f"{shown}: more than {self.max_redirects} redirects; give the final address"
            )
        return target

    def _ok(self, url: str, final: str, response: Any, deadline: float) -> Fetched:
        body = self._read(url, response, deadline)
        headers = response.headers
        if (headers.get("Content-Encoding") or "").strip().lower() in ("gzip", "x-gzip"):
            body = self._gunzip(url, body)
        fetched = Fetched(url=final, body=body, content_type=headers.get("Content-Type") or "")
        problem = self._store_cache(url, fetched, headers)
        return fetched if problem is None else _with_warning(fetched, problem)

    def _read(self, url: str, response: Any, deadline: float) -> bytes:
        length = response.headers.get("Content-Length") or ""
        if length.strip().isdigit() and int(length) > self.max_bytes:
            raise FetchError(f"{masked(url)}: {_too_large(int(length), self.max_bytes)}")
        chunks: list[bytes] = []
        total = 0
        while True:
            if time.monotonic() > deadline:
                raise FetchError(
                    f"{masked(url)}: timed out after {self.total_time:g} s while reading"
                )
            chunk = response.read1(CHUNK)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > self.max_bytes:
                raise FetchError(f"{masked(url)}: {_too_large(total, self.max_bytes)}")
            chunks.append(chunk)

    def _gunzip(self, url: str, body: bytes) -> bytes:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(body, self.max_bytes + 1)
        except zlib.error as err:
            raise FetchError(f"{masked(url)}: the gzip-compressed body is damaged ({err})") from err
        if len(out) > self.max_bytes:
            raise FetchError(
                f"{masked(url)}: {_too_large(len(out), self.max_bytes)} once uncompressed"
            )
        return out

    def _not_modified(self, url: str, final: str, cached: dict[str, Any]) -> Fetched:
        path = self._cache_paths(url)[1]
        try:
            body = path.read_bytes()
        except OSError as err:
            raise FetchError(
                f"{masked(url)}: not modified, but the cached copy is gone ({err})"
            ) from err
        return Fetched(
            url=str(cached.get("final_url") or final),
            body=body,
            content_type=str(cached.get("content_type") or ""),
            from_cache=True,
        )

    def _cache_paths(self, url: str) -> tuple[Path, Path]:
        assert self.cache_dir is not None
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:40]
        return self.cache_dir / f"{key}.json", self.cache_dir / f"{key}.body"

    def _load_cache(self, url: str) -> dict[str, Any] | None:
        if self.cache_dir is None:
            return None
        meta_path, body_path = self._cache_paths(url)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("url") != masked(url) or not body_path.is_file():
            return None
        return meta

    def _store_cache(self, url: str, fetched: Fetched, headers: Message) -> str | None:
        etag, modified = headers.get("ETag"), headers.get("Last-Modified")
        if self.cache_dir is None or not (etag or modified):
            return None
        meta = {
            "url": masked(url),  # the file is keyed by a hash of the whole URL
            "final_url": fetched.url,
            "etag": etag,
            "last_modified": modified,
            "content_type": fetched.content_type,
        }
        meta_path, body_path = self._cache_paths(url)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(body_path, fetched.body)
            _write_atomic(meta_path, json.dumps(meta).encode("utf-8"))
        except OSError as err:
            problem = err.strerror or err
            return f"{masked(url)}: could not cache the feed in {self.cache_dir} ({problem})"
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, delete=False) as out:
        temporary = Path(out.name)
        try:
            out.write(data)
        except OSError:
            out.close()
            temporary.unlink(missing_ok=True)
            raise
    os.replace(temporary, path)


def _with_warning(fetched: Fetched, warning: str) -> Fetched:
    return Fetched(
        url=fetched.url,
        body=fetched.body,
        content_type=fetched.content_type,
        from_cache=fetched.from_cache,
        warnings=(*fetched.warnings, warning),
    )


def _via(current: str, url: str) -> str:
    return "" if current == url else f" (after a redirect to {masked(current)[:200]})"


def _next_step(code: int, credentials: str | None) -> str:
    if code in (401, 403):
        if credentials:
            return "check the user name and password in the address"
        return "the feed needs a login: put it in the address (https://user:password@host/…)"
    return "check the address, or remove the source if it has moved"


def _too_large(size: int, limit: int) -> str:
    return f"too large: at least {_amount(size)}, over the limit of {_amount(limit)}"


def _amount(size: int) -> str:
    return f"{size / 1048576:.1f} MB" if size >= 1048576 else f"{size} bytes"


def _describe(err: BaseException, timeout: float) -> str:
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s; the server may be down or slow"
    if isinstance(reason, http.client.HTTPException):
        return f"the server broke the HTTP exchange ({type(reason).__name__}: {reason})"
    if isinstance(reason, OSError):
        return f"cannot connect ({reason.strerror or reason})"
    return f"cannot fetch ({reason})"
