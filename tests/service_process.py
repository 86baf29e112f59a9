"""The public service as a real process for tests: ``python -m newsletter serve`` on loopback.

Usage::

    config = write_config(tmp_path, smtp_port=server.port)
    with ServiceProcess(config) as service:
        reply = service.request("POST", one_click_path(config, "ana@example.org"), body=...)
        assert reply.status == 200
    assert "ana@example.org" not in service.log()

The process gets ``PYTHONPATH`` set to this checkout, a signing key, and ``--port 0``: it
prints the port it bound in its "serving … on http://…" line, which ``start`` waits for.
Its stderr (the access log, the confirmation emails' log lines) goes to a file.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from newsletter.config.load import load_settings
from newsletter.config.settings import Settings
from newsletter.messages import unsubscribe_url

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-signing-key-0123456789"
LIST_ID = "daily.news.example"
PUBLIC = "https://news.example"
_SERVING = re.compile(r"serving .* on (http://\S+)")


def write_config(
    folder: Path,
    *,
    smtp_port: int | None = None,
    state_url: str = "",
    public: str = PUBLIC,
    extra: str = "",
) -> Path:
    """A config for the service: its state in ``folder``, SMTP on 127.0.0.1 if a port is given.

    ``public`` is where readers reach the service (the unsubscribe links and the subscribe
    form are under it); a test that follows links in a browser gives the service's own URL.
    """
    folder.mkdir(parents=True, exist_ok=True)
    smtp = (
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n' if smtp_port else ""
    )
    state = f'[state]\nurl = "{state_url}"\n' if state_url else ""
    text = f"""
[publication]
name = "The Test Post"
site_url = "https://news.example"
postal_address = "1 Test Street, Test Town"
contact_email = "desk@news.example"

[sender]
name = "The Test Post"
address = "newsletter@news.example"

[list]
id = "{LIST_ID}"
name = "Test Daily"
unsubscribe_url = "{public}/unsubscribe"

[output]
state_dir = "state"

{smtp}
{state}
{extra}
"""
    config = folder / "newsletter.toml"
    config.write_text(text, encoding="utf-8")
    return config


def settings_of(config: Path) -> Settings:
    """The settings the service reads from ``config``, with the test signing key."""
    return load_settings(config, environ={**os.environ, "NEWSLETTER_SIGNING_KEY": KEY})


def path_of(url: str) -> str:
    """The path and query of ``url``, as a request line names them."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def one_click_path(config: Path, email: str) -> str:
    """The path and query of ``email``'s unsubscribe link, exactly as its messages carry it."""
    settings = settings_of(config)
    return path_of(unsubscribe_url(settings, email, settings.signing_key))


@dataclass
class Reply:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    body: str


@dataclass
class ServiceProcess:
    """``newsletter serve`` in a subprocess."""

    config: Path
    environ: dict[str, str] = field(default_factory=dict)
    port_wanted: int = 0  # 0: any free port
    url: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Where the process's stderr goes."""
        return self.config.parent / "service.log"

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        """Start the service and wait for the line that says where it listens."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")},
            "PYTHONPATH": str(ROOT),
            "NEWSLETTER_SIGNING_KEY": KEY,
            **self.environ,
        }
        command = [sys.executable, "-m", "newsletter", "serve", "--config", str(self.config)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port_wanted)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        seen = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                seen += chunk
                found = _SERVING.search(seen.decode("utf-8", "replace"))
                if found:
                    self.url = found.group(1)
                    return self
                if not chunk:
                    break
            elif self.process.poll() is not None:
                break
        self.stop()
        raise AssertionError(f"the service did not start: {seen!r}\n{self.log()}")

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        """Send one request on a new connection; return the whole response."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            names = {name.lower(): value for name, value in response.getheaders()}
            return Reply(response.status, names, data.decode("utf-8", "replace"))
        finally:
            conn.close()

    def form(self, path: str, fields: str, headers: dict[str, str] | None = None) -> Reply:
        """POST ``fields`` (already form-encoded) as application/x-www-form-urlencoded."""
        form_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", path, fields.encode(), form_headers)

    def stop(self) -> None:
        """Stop it with SIGTERM (as a service manager does) and wait."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def log(self) -> str:
        """Everything it wrote to stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
