"""The local preview: the edition as one subscriber gets it, rebuilt when files change.

``PreviewApp`` builds snapshots (settings, edition, problems) and watches the config,
the templates, local content files and the subscriber list by polling their mtimes.
``start_server`` serves it over HTTP: a fixed set of paths, nothing read from disk by
URL, loopback only unless told otherwise; it never sends mail. ``write_static_preview``
writes the same page as one self-contained file.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import secrets
import socket
import sys
import threading
import traceback
import webbrowser
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from newsletter.audience import normalize_address
from newsletter.config.load import load_settings
from newsletter.config.settings import Settings
from newsletter.errors import (
    ConfigError,
    ContentError,
    DeliveryError,
    NewsletterError,
    NothingToSend,
    OutputExistsError,
    RenderError,
    SubscriberError,
)
from newsletter.hosts import is_loopback
from newsletter.models import Subscriber
from newsletter.pipeline import BuildOptions, BuildResult, Messages, build_edition
from newsletter.preflight.sample import sample_subscriber
from newsletter.preview_page import page
from newsletter.preview_page.page import SAMPLE, Personal, Problem
from newsletter.sources.fetch import is_url
from newsletter.subscribers.reader import read_subscribers

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
POLL_SECONDS = 0.4
SETTLE_SECONDS = 0.15
SETTLE_LIMIT = 20
KEEPALIVE_SECONDS = 15.0
MAX_CHOICES = 50
MAX_WATCHED = 2000
MAX_QUERY = 2048
MAX_ADDRESS = 320
CACHE_SIZE = 32
STATIC_NAME = "preview.html"
# The unsubscribe token of an address that is not in the list: visibly not a signature.
STAND_IN_TOKEN = "PREVIEW-ONLY-address-not-in-the-list"  # noqa: S105 - not a secret

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
PLAIN_CSP = "default-src 'none'; frame-ancestors 'self'; sandbox"

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class PreviewOptions:
    """What the preview builds: the config (``None``: the bundled sample) and build flags.

    A naive ``build.now`` is taken in the publication's time zone. ``subscriber`` is the
    address shown when the page's URL names none (default: the sample subscriber).
    """

    config: Path | None = None
    build: BuildOptions = field(default_factory=BuildOptions)
    subscriber: str = ""


# --------------------------------------------------------------------------- watching


@dataclass(frozen=True)
class Watch:
    """The files a snapshot depends on, and folders whose every file counts."""

    files: tuple[Path, ...] = ()
    folders: tuple[Path, ...] = ()

    def paths(self) -> list[Path]:
        """Every watched file that exists now, folders expanded (bounded)."""
        found = list(self.files)
        for folder in self.folders:
            found.extend(islice(_files_under(folder), MAX_WATCHED))
        return found[:MAX_WATCHED]

    def signature(self) -> tuple[tuple[str, int, int], ...]:
        """What changes when a watched file is edited, added or removed."""
        marks: list[tuple[str, int, int]] = []
        for path in self.paths():
            try:
                stat = path.stat()
            except OSError:
                marks.append((str(path), -1, -1))
                continue
            marks.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(marks)


def _files_under(folder: Path) -> Iterator[Path]:
    try:
        entries = sorted(folder.rglob("*"))
    except OSError:
        return
    for entry in entries:
        if entry.is_file() and not entry.name.startswith("."):
            yield entry


def watch_for(settings: Settings | None, options: PreviewOptions) -> Watch:
    """List what the preview depends on: config, templates, local sources, subscribers."""
    files: list[Path] = []
    folders: list[Path] = []
    if options.config is not None:
        files.append(options.config.resolve())
    if settings is None:
        return Watch(tuple(files))
    if settings.paths.config_file and settings.paths.config_file not in files:
        files.append(settings.paths.config_file)
    folders.append(settings.paths.templates)
    for spec in options.build.sources or settings.paths.sources:
        if is_url(spec):
            continue
        path = Path(spec).expanduser().resolve()
        (folders if path.is_dir() else files).append(path)
    files.append(settings.paths.subscribers)
    return Watch(tuple(dict.fromkeys(files)), tuple(dict.fromkeys(folders)))


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One build of the preview: the edition or the problem that stopped it."""

    version: str
    built_at: datetime
    watch: Watch
    signature: tuple[tuple[str, int, int], ...]
    settings: Settings | None = None
    result: BuildResult | None = None
    messages: Messages | None = None
    problem: Problem | None = None
    warnings: tuple[str, ...] = ()
    choices: tuple[Subscriber, ...] = ()
    choices_note: str = ""

    @property
    def ok(self) -> bool:
        """Whether there is an edition to show."""
        return self.result is not None and self.messages is not None


def _problem(err: NewsletterError, watch: Watch, kind: str, clues: Iterable[str] = ()) -> Problem:
    titles = {
        "config": "The configuration has a problem",
        "template": "A template could not be rendered",
        "content": "The content could not be read",
        "nothing": "Nothing to send",
        "subscribers": "The subscriber list has a problem",
        "build": "The edition could not be built",
    }
    return page.problem(titles[kind], str(err), kind, watch.paths(), "\n".join(clues))


def _kind(err: NewsletterError) -> str:
    for cls, kind in (
        (NothingToSend, "nothing"),
        (ConfigError, "config"),
        (RenderError, "template"),
        (ContentError, "content"),
        (SubscriberError, "subscribers"),
    ):
        if isinstance(err, cls):
            return kind
    return "build"


def _choices(settings: Settings) -> tuple[tuple[Subscriber, ...], str]:
    """The first active subscribers for the picker, or why the list cannot be read."""
    try:
        found = tuple(islice(read_subscribers(settings.paths.subscribers), MAX_CHOICES))
    except SubscriberError as err:
        return (), str(err)
    return found, ""


def build_snapshot(options: PreviewOptions, version: str) -> Snapshot:
    """Load the settings and build the edition; every user mistake becomes a ``Problem``."""
    started = datetime.now(UTC)
    try:
        settings = load_settings(options.config)
    except ConfigError as err:
        watch = watch_for(None, options)
        return Snapshot(
            version, started, watch, watch.signature(), problem=_problem(err, watch, "config")
        )
    watch = watch_for(settings, options)
    signature = watch.signature()
    base = Snapshot(version, started, watch, signature, settings=settings)
    choices, note = _choices(settings)
    base = replace(base, choices=choices, choices_note=note)
    build = options.build
    try:
        result = build_edition(settings, build)
        messages = Messages(settings, result.edition)
    except NewsletterError as err:
        found = _problem(err, watch, _kind(err), err.warnings)
        return replace(base, problem=found, warnings=err.warnings)
    except Exception:  # the preview outlives a bug in any stage, and shows it
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        return replace(base, problem=page.problem("The preview hit a bug", trace, "bug", []))
    return replace(base, result=result, messages=messages, warnings=result.warnings)


class PreviewApp:
    """Keeps the latest snapshot, rebuilds it when watched files change, personalizes it."""

    def __init__(self, options: PreviewOptions, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.options = options
        self.poll_seconds = poll_seconds
        self._instance = secrets.token_hex(4)
        self._count = 0
        self._changed = threading.Condition(threading.RLock())
        self._stop = threading.Event()
        self._cache: dict[tuple[str, str], Personal] = {}
        self._cache_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._snapshot = build_snapshot(options, self._next_version())

    def _next_version(self) -> str:
        with self._changed:
            self._count += 1
            return f"{self._instance}-{self._count}"

    @property
    def snapshot(self) -> Snapshot:
        """The latest snapshot."""
        with self._changed:
            return self._snapshot

    def rebuild(self) -> Snapshot:
        """Build a new snapshot now and wake everyone waiting for a change."""
        snapshot = build_snapshot(self.options, self._next_version())
        with self._changed:
            self._snapshot = snapshot
            self._changed.notify_all()
        with self._cache_lock:
            self._cache.clear()
        return snapshot

    def check(self) -> bool:
        """Rebuild if a watched file changed (once the files stop changing); say if it did."""
        current = self.snapshot
        mark = current.watch.signature()
        if mark == current.signature:
            return False
        for _ in range(SETTLE_LIMIT):
            if self._stop.wait(SETTLE_SECONDS):
                return False
            again = current.watch.signature()
            if again == mark:
                break
            mark = again
        self.rebuild()
        return True

    def start(self) -> None:
        """Watch the files in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="preview-watch", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.check()

    def close(self) -> None:
        """Stop watching and release everyone waiting for a change."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._stop.is_set()

    def wait_for_change(self, version: str, timeout: float) -> Snapshot:
        """Return the snapshot once its version differs from ``version`` (or on timeout)."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._snapshot.version != version or self._stop.is_set(), timeout
            )
            return self._snapshot

    # -- personalization

    def subscriber(self, snapshot: Snapshot, wanted: str) -> Subscriber:
        """Find who ``wanted`` names: the sample, a listed subscriber, or any valid address."""
        settings = snapshot.settings
        if settings is None:
            raise SubscriberError("no settings: fix the configuration first")
        sample = sample_subscriber(settings)
        wanted = wanted.strip() or self.options.subscriber.strip()
        if wanted == SAMPLE:
            return sample
        if not wanted or wanted.casefold() == sample.email.casefold():
            return sample
        if len(wanted) > MAX_ADDRESS:
            raise SubscriberError(f"{wanted[:40]!r}…: an address is at most {MAX_ADDRESS} long")
        key = wanted.casefold()
        for listed in snapshot.choices:
            if listed.email.casefold() == key:
                return listed
        found = _find_subscriber(settings, key)
        if found is not None:
            return found
        return Subscriber(email=normalize_address(wanted), name="")

    def personal(self, snapshot: Snapshot, wanted: str) -> Personal:
        """Build (or reuse) the message for ``wanted``; raise ``NewsletterError`` if unusable."""
        if snapshot.result is None or snapshot.messages is None:
            raise NewsletterError("the edition could not be built; see the problem above")
        key = (snapshot.version, wanted.strip().casefold())
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        subscriber = self.subscriber(snapshot, wanted)
        sample = snapshot.settings is not None and subscriber == sample_subscriber(
            snapshot.settings
        )
        made = personalize(
            snapshot.result,
            snapshot.messages,
            subscriber,
            is_sample=sample,
            signed=sample or bool(subscriber.line),  # listed rows have their CSV line
        )
        with self._cache_lock:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = made
        return made


def _find_subscriber(settings: Settings, key: str) -> Subscriber | None:
    """Look an address up in the whole list (inactive rows too); ``None`` if absent."""
    try:
        for row in read_subscribers(settings.paths.subscribers, include_inactive=True):
            if row.email.casefold() == key:
                return row
    except SubscriberError:
        return None
    return None


def personalize(
    result: BuildResult,
    messages: Messages,
    subscriber: Subscriber,
    *,
    is_sample: bool,
    signed: bool = True,
) -> Personal:
    """Build one subscriber's exact message bytes and decode them for display.

    Unless ``signed``, the unsubscribe links carry ``STAND_IN_TOKEN``: the preview shows
    any address typed into it, and must not hand out a working unsubscribe link for
    someone else's address.
    """
    outgoing = messages.build(subscriber, token=None if signed else STAND_IN_TOKEN)
    message = email.message_from_bytes(outgoing.data, policy=email.policy.default)
    if not isinstance(message, EmailMessage):
        raise DeliveryError("the message could not be read back")
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    html_body = html_part.get_content() if html_part is not None else ""
    text_body = text_part.get_content() if text_part is not None else ""
    local = _SAFE_NAME.sub("_", outgoing.recipient.partition("@")[0]).strip("._")[:40]
    return Personal(
        subscriber=subscriber,
        is_sample=is_sample,
        data=outgoing.data,
        html=html_body,
        text=text_body,
        headers=tuple((name, str(value)) for name, value in message.items()),
        filename=f"{_SAFE_NAME.sub('_', result.edition.id)}-{local or 'message'}.eml",
    )


# --------------------------------------------------------------------------- static file


def static_preview_html(
    result: BuildResult, settings: Settings, subscriber: Subscriber | None = None
) -> str:
    """Render the preview page as one self-contained document (no server, no live reload)."""
    who = subscriber or sample_subscriber(settings)
    made = personalize(
        result,
        Messages(settings, result.edition),
        who,
        is_sample=who == sample_subscriber(settings),
    )
    view = page.PageView(
        version=result.edition.id,
        settings=settings,
        result=result,
        warnings=result.warnings,
        personal=made,
        built_at=result.edition.created,
    )
    return page.static_page(view)


def write_static_preview(
    result: BuildResult,
    settings: Settings,
    out_dir: Path,
    *,
    force: bool = False,
    subscriber: Subscriber | None = None,
) -> Path:
    """Write ``preview.html`` into ``out_dir``; refuse to replace it without ``force``."""
    target = Path(out_dir) / STATIC_NAME
    if target.exists() and not force:
        raise OutputExistsError(
            f"{target} already exists; use --force to replace it or choose another --out"
        )
    text = static_preview_html(result, settings, subscriber)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="")
    except OSError as err:
        raise NewsletterError(f"{target}: cannot write the preview ({err.strerror})") from err
    return target


# --------------------------------------------------------------------------- HTTP


def remote_warning(host: str) -> str:
    """The warning printed when the preview listens beyond loopback."""
    return (
        f"the preview listens on {host}: anyone who can reach this machine can read the "
        "edition and the first subscriber addresses; stop it when you are done"
    )


class PreviewServer(ThreadingHTTPServer):
    """An HTTP server that serves one ``PreviewApp``."""

    daemon_threads = True
    app: PreviewApp
    allowed_hosts: frozenset[str] | None

    @property
    def url(self) -> str:
        """The address to open in a browser."""
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        if host in ("0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
            shown = "127.0.0.1"
        return f"http://{shown}:{port}/"


class _PreviewServer6(PreviewServer):
    address_family = socket.AF_INET6


def start_server(
    app: PreviewApp,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    allow_remote: bool = False,
) -> PreviewServer:
    """Bind the preview to ``host:port`` (0: any free port); non-loopback needs ``allow_remote``."""
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"refusing to serve the preview on {host!r}: it shows subscriber addresses; "
            "it listens on 127.0.0.1 unless you pass --host explicitly"
        )
    cls = _PreviewServer6 if ":" in host else PreviewServer
    try:
        server = cls((host.strip("[]"), port), _Handler)
    except OSError as err:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({err.strerror}); choose another --port "
            "(--port 0 picks a free one)"
        ) from err
    server.app = app
    bound = server.server_address[1]
    server.allowed_hosts = (
        None
        if allow_remote and not is_loopback(host)
        else frozenset(
            f"{name}:{bound}" for name in ("127.0.0.1", "localhost", "[::1]", host.lower())
        )
    )
    return server


def serve(
    options: PreviewOptions,
    *,
    host: str | None = None,
    port: int | None = None,
    open_browser: bool = False,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> None:
    """Serve the live preview until interrupted (Ctrl-C); never sends mail."""
    address = host or DEFAULT_HOST
    app = PreviewApp(options)
    try:
        if options.subscriber and app.snapshot.ok:
            app.personal(app.snapshot, options.subscriber)
        server = _bind(app, address, port, explicit_host=host is not None)
    except NewsletterError:
        app.close()
        raise
    if not is_loopback(address):
        warn(remote_warning(address))
    app.start()
    snapshot = app.snapshot
    where = options.config or "the bundled sample publication"
    echo(f"Previewing {where} at {server.url}")
    echo(f"  watching {len(snapshot.watch.paths())} files; the page updates when they change")
    if snapshot.problem is not None:
        warn(f"{snapshot.problem.title}: {snapshot.problem.message}")
    echo("  never sends mail; press Ctrl-C to stop")
    if open_browser:
        threading.Timer(0.3, webbrowser.open, args=(server.url,)).start()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        app.close()
        server.server_close()


def _bind(app: PreviewApp, host: str, port: int | None, *, explicit_host: bool) -> PreviewServer:
    """Bind to ``port``, or the default port, falling back to a free one if it is taken."""
    if port is not None:
        return start_server(app, host, port, allow_remote=explicit_host)
    try:
        return start_server(app, host, DEFAULT_PORT, allow_remote=explicit_host)
    except ConfigError:
        return start_server(app, host, 0, allow_remote=explicit_host)


Route = Callable[["_Handler", dict[str, str]], None]


class _Handler(BaseHTTPRequestHandler):
    """Answers a fixed set of paths; everything else is 404."""

    server: PreviewServer
    server_version = "newsletter-preview"
    sys_version = ""
    _head = False

    def log_message(self, format: str, *args: object) -> None:
        """Keep the terminal quiet: requests are not logged."""

    def do_GET(self) -> None:
        """Serve a GET request."""
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        """Serve a HEAD request (headers only)."""
        self._dispatch(head=True)

    def _refuse_method(self) -> None:
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED,
            b"the preview only answers GET and HEAD\n",
            "text/plain; charset=utf-8",
            {"Allow": "GET, HEAD"},
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    # -- plumbing

    def _dispatch(self, *, head: bool) -> None:
        self._head = head
        if not self._host_allowed():
            self._send(
                HTTPStatus.MISDIRECTED_REQUEST,
                b"unknown Host header; open the preview at the address it printed\n",
                "text/plain; charset=utf-8",
            )
            return
        parts = urlsplit(self.path)
        route = _ROUTES.get(parts.path)
        if route is None or len(parts.query) > MAX_QUERY:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            return
        try:
            query = {k: v[0] for k, v in parse_qs(parts.query, max_num_fields=8).items() if v}
        except ValueError:
            self._send(HTTPStatus.BAD_REQUEST, b"bad query\n", "text/plain; charset=utf-8")
            return
        route(self, query)

    def _host_allowed(self) -> bool:
        allowed = self.server.allowed_hosts
        host = self.headers.get("Host")
        return allowed is None or host is None or host.lower() in allowed

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Content-Security-Policy": PLAIN_CSP,
            **(extra or {}),
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not self._head:
            self.wfile.write(body)

    def _html(self, status: HTTPStatus, text: str, csp: str) -> None:
        self._send(
            status,
            text.encode("utf-8"),
            "text/html; charset=utf-8",
            {"Content-Security-Policy": csp},
        )

    def _view(self, query: dict[str, str]) -> page.PageView:
        app = self.server.app
        snapshot = app.snapshot
        wanted = query.get("subscriber", "")
        personal, trouble = None, None
        if snapshot.ok:
            try:
                personal = app.personal(snapshot, wanted)
            except NewsletterError as err:
                trouble = page.problem(
                    f"Cannot show the message for {wanted.strip()[:80]!r}", str(err), "subscriber"
                )
                personal = self._fallback(snapshot)
        return page.PageView(
            version=snapshot.version,
            settings=snapshot.settings,
            result=snapshot.result,
            problem=snapshot.problem,
            warnings=snapshot.warnings,
            personal=personal,
            personal_problem=trouble,
            wanted=wanted,
            choices=snapshot.choices,
            choices_note=snapshot.choices_note,
            watched=tuple(snapshot.watch.paths()),
            built_at=snapshot.built_at,
            lead_url=app.options.build.lead_url or "",
        )

    def _fallback(self, snapshot: Snapshot) -> Personal | None:
        """The sample subscriber's message, shown when the requested one cannot be built."""
        try:
            return self.server.app.personal(snapshot, SAMPLE)
        except NewsletterError:
            return None

    def _personal(self, query: dict[str, str]) -> Personal | None:
        """The requested subscriber's message, or ``None`` after answering with the reason."""
        app = self.server.app
        snapshot = app.snapshot
        if not snapshot.ok:
            self._send(
                HTTPStatus.SERVICE_UNAVAILABLE,
                b"the edition could not be built; the preview page shows why\n",
                "text/plain; charset=utf-8",
            )
            return None
        try:
            return app.personal(snapshot, query.get("subscriber", ""))
        except NewsletterError as err:
            self._send(
                HTTPStatus.BAD_REQUEST,
                f"{err}\n".encode(),
                "text/plain; charset=utf-8",
            )
            return None

    # -- routes

    def page(self, query: dict[str, str]) -> None:
        """The preview page."""
        self._html(HTTPStatus.OK, page.live_page(self._view(query)), PAGE_CSP)

    def panels(self, query: dict[str, str]) -> None:
        """The part of the page that changes when the edition is rebuilt."""
        self._html(HTTPStatus.OK, page.panels(self._view(query)), PAGE_CSP)

    def email_html(self, query: dict[str, str]) -> None:
        """The personalized HTML part, as sent; ``scheme=dark`` applies its dark rules."""
        made = self._personal(query)
        if made is None:
            return
        body = page.force_dark(made.html) if query.get("scheme") == "dark" else made.html
        self._html(HTTPStatus.OK, body, EMAIL_CSP)

    def email_text(self, query: dict[str, str]) -> None:
        """The personalized plain-text part, as sent."""
        made = self._personal(query)
        if made is not None:
            self._send(HTTPStatus.OK, made.text.encode("utf-8"), "text/plain; charset=utf-8")

    def eml(self, query: dict[str, str]) -> None:
        """The exact message bytes, as a download."""
        made = self._personal(query)
        if made is not None:
            self._send(
                HTTPStatus.OK,
                made.data,
                "message/rfc822",
                {"Content-Disposition": f'attachment; filename="{made.filename}"'},
            )

    def status(self, _query: dict[str, str]) -> None:
        """The current version and problem, as JSON."""
        snapshot = self.server.app.snapshot
        problem = snapshot.problem
        data = {
            "version": snapshot.version,
            "ok": snapshot.ok,
            "subject": snapshot.result.edition.subject if snapshot.result else None,
            "problem": None
            if problem is None
            else {
                "kind": problem.kind,
                "title": problem.title,
                "message": problem.message,
                "file": str(problem.location.path) if problem.location else None,
                "line": problem.location.line if problem.location else None,
            },
        }
        self._send(
            HTTPStatus.OK,
            json.dumps(data, ensure_ascii=False).encode("utf-8"),
            "application/json; charset=utf-8",
        )

    def asset(self, _query: dict[str, str]) -> None:
        """The page's own stylesheet or script, from the package."""
        name = urlsplit(self.path).path.lstrip("/")
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        self._send(HTTPStatus.OK, page.asset(name).encode("utf-8"), f"{kind}; charset=utf-8")

    def events(self, _query: dict[str, str]) -> None:
        """Server-sent events: the current version now, then each new one as it comes."""
        app = self.server.app
        self.send_response(HTTPStatus.OK)
        for name, value in (
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ):
            self.send_header(name, value)
        self.end_headers()
        if self._head:
            return
        version = app.snapshot.version
        try:
            self._event(f"retry: 1000\nevent: version\ndata: {version}\n\n")
            while not app.closed:
                snapshot = app.wait_for_change(version, KEEPALIVE_SECONDS)
                if snapshot.version != version:
                    version = snapshot.version
                    self._event(f"event: version\ndata: {version}\n\n")
                else:
                    self._event(": still here\n\n")
        except (BrokenPipeError, ConnectionResetError):
            return

    def _event(self, text: str) -> None:
        self.wfile.write(text.encode("utf-8"))
        self.wfile.flush()


_ROUTES: dict[str, Route] = {
    "/": _Handler.page,
    "/panels": _Handler.panels,
    "/email.html": _Handler.email_html,
    "/email.txt": _Handler.email_text,
    "/message.eml": _Handler.eml,
    "/status.json": _Handler.status,
    "/events": _Handler.events,
    "/preview.css": _Handler.asset,
    "/preview.js": _Handler.asset,
}
