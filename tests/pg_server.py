"""A throwaway PostgreSQL server for the tests: Debian's binaries, its own cluster, no TCP.

``PostgresServer.start()`` runs ``initdb`` into a new temporary folder and starts the
server listening only on a Unix socket in that folder (``listen_addresses = ''``). As
root (CI), ``initdb``, ``pg_ctl`` and the server run as ``nobody``, owner of the
folder, because PostgreSQL refuses to run as root. For the tests ``fsync`` is off: they
stop the server (``pg_ctl -m immediate``, a crash of the server's processes) but never
the machine, and what a commit wrote is in the operating system's cache either way.
The benchmark starts one with ``durable=True``: every commit reaches the disk, as in
production (``fsync``, ``synchronous_commit`` and ``full_page_writes`` on).

Each test gets a schema of its own in one database (``url(schema)``): quick to make,
and the state's tables go to the first schema of the URL's ``search_path``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg

USER = "newsletter"
DATABASE = "state_tests"
SETTINGS = """
listen_addresses = ''
unix_socket_directories = '{socket}'
max_connections = 60
"""
UNSAFE = """
fsync = off
full_page_writes = off
"""  # a crash of the machine may lose or corrupt data: for tests only


class ServerUnavailable(Exception):
    """PostgreSQL cannot be started here (not installed, or it failed to start)."""


def find_bindir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: ``pg_config --bindir``, Debian's folders, PATH."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found:
            candidates.append(Path(found))
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(d) for d in debian), key=lambda d: int(d.parent.name), reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise ServerUnavailable(
        "initdb and pg_ctl not found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH); "
        "install Debian's postgresql package"
    )


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, reached over its Unix socket."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"

    @classmethod
    def start(cls, *, durable: bool = False) -> PostgresServer:
        """Make a cluster in a new temporary folder and start it; ``ServerUnavailable`` if not.

        ``durable``: commits reach the disk (``fsync`` on), as a production server's do.
        """
        bindir = find_bindir()
        # /tmp: short enough for the socket path, and open to the unprivileged user.
        root = Path(tempfile.mkdtemp(prefix="newsletter-pg-", dir="/tmp"))
        server = cls(bindir, root)
        try:
            if os.geteuid() == 0:
                nobody = pwd.getpwnam("nobody")
                os.chown(root, nobody.pw_uid, nobody.pw_gid)
            server._run(
                "initdb", "-D", str(server.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                "--no-locale", "--no-sync", "--no-instructions",
            )  # fmt: skip
            with (server.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
                conf.write(SETTINGS.format(socket=root) + ("" if durable else UNSAFE))
            server.resume()
            with server.connect("postgres") as admin:
                admin.execute(f"CREATE DATABASE {DATABASE}")
        except BaseException:
            server.remove()
            raise
        return server

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            nobody = pwd.getpwnam("nobody")
            user = [f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
            command = ["setpriv", *user, *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise ServerUnavailable(
                f"{program} failed ({done.returncode}): {done.stderr.strip()}\n{log[-2000:]}"
            )

    def url(self, schema: str = "", database: str = DATABASE) -> str:
        """A URL of the server's database; with ``schema``, the state lives in that schema."""
        options = "&options=" + quote(f"-c search_path={schema}", safe="") if schema else ""
        return f"postgresql://{USER}@/{database}?host={quote(str(self.root), safe='/')}{options}"

    def connect(self, database: str = DATABASE) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit session on ``database``, for a test to look or to set things up."""
        return psycopg.connect(self.url(database=database), autocommit=True)

    def new_schema(self, name: str) -> str:
        """Make the schema ``name`` (if missing) and return the URL of a state kept in it."""
        with self.connect() as admin:
            admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
        return self.url(name)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` kills it, as a crash would."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def resume(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def remove(self) -> None:
        """Stop the server if it runs and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ServerUnavailable):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
