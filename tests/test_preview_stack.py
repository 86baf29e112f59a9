"""The preview on the service's stack (Starlette under uvicorn): streams, stopping, Host names.

The behaviour every preview had is in tests/test_preview.py; these cover what the stack
brings: event streams that end when the server stops (in a thread or on SIGTERM), raw
HTTP the old server never saw (two Host headers, HEAD on the stream, IPv6 loopback).
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from test_preview import NOW, fetch, make_project, options_for, running

from newsletter.web.preview.live import PreviewApp
from newsletter.web.preview.notify import Notifier
from newsletter.web.preview.serve import PreviewServer, start_server

CHUNK_END = b"0\r\n\r\n"  # the last chunk: a response that ended, not one cut off


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def server(project: Path) -> Iterator[PreviewServer]:
    with running(PreviewApp(options_for(project))) as srv:
        yield srv


def raw(server: PreviewServer, request: bytes) -> bytes:
    """Send bytes as they are and read the whole answer (the request asks to close)."""
    host, port = server.server_address
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def open_events(host: str, port: int) -> tuple[socket.socket, IO[bytes]]:
    """Open /events and read up to the first version; return the socket and its reader."""
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    stream = sock.makefile("rb")
    assert stream.readline().startswith(b"HTTP/1.1 200")
    while not stream.readline().startswith(b"data: "):
        pass
    return sock, stream


# --------------------------------------------------------------------------- stopping


def test_stopping_the_server_ends_an_open_event_stream(project: Path) -> None:
    app = PreviewApp(options_for(project))
    server = start_server(app, "127.0.0.1", 0)
    server.start()
    host, port = server.server_address
    sock, stream = open_events(host, port)
    with sock, stream:
        assert not app.closed
        assert server.stop(), "the server thread did not end"
        rest = stream.read()  # to the end: the server closed the connection
    assert app.closed, "stopping the server stops the app's streams"
    assert rest.endswith(CHUNK_END), rest[-80:]
    app.close()


def test_sigterm_stops_the_preview_with_an_open_event_stream(project: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from newsletter.clock import parse_time\n"
        "from newsletter.pipeline import BuildOptions\n"
        "from newsletter.web.preview.serve import serve\n"
        "from newsletter.web.preview.snapshots import PreviewOptions\n"
        "options = PreviewOptions(config=Path(sys.argv[1]),"
        " build=BuildOptions(now=parse_time(sys.argv[2])))\n"
        "serve(options, port=0, echo=lambda m: print(m, flush=True))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(project), NOW.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        found = re.search(r"at http://127\.0\.0\.1:(\d+)/", first)
        assert found is not None, first + process.stdout.read()
        sock, stream = open_events("127.0.0.1", int(found.group(1)))
        with sock, stream:
            process.send_signal(signal.SIGTERM)
            rest = stream.read()
        out = first + process.stdout.read()
        process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    assert process.returncode == 0, out
    assert rest.endswith(CHUNK_END)
    assert out.rstrip().endswith("stopped")
    assert "Traceback" not in out
    assert "Cancel" not in out, "uvicorn had to cancel the stream"


def test_a_change_wakes_a_waiting_stream_and_stop_releases_it(project: Path) -> None:
    app = PreviewApp(options_for(project))
    first = app.snapshot.version

    async def wait_for(version: str) -> str:
        return (await app.changed(version, 60)).version

    async def rebuild_meanwhile() -> str:
        waiting = asyncio.create_task(wait_for(first))
        await asyncio.sleep(0)
        await asyncio.to_thread(app.rebuild)
        return await waiting

    second = asyncio.run(rebuild_meanwhile())
    assert second != first
    assert second == app.snapshot.version

    async def stop_meanwhile() -> str:
        waiting = asyncio.create_task(wait_for(second))
        await asyncio.sleep(0)
        threading.Thread(target=app.stop).start()
        return await waiting

    assert asyncio.run(stop_meanwhile()) == second
    assert app.closed
    app.close()


def test_the_notifier_says_whether_the_condition_came_true() -> None:
    notifier = Notifier()
    flag = threading.Event()

    async def waits(timeout: float) -> bool:
        return await notifier.wait(flag.is_set, timeout)

    assert asyncio.run(waits(0.01)) is False

    async def set_from_a_thread() -> bool:
        def set_flag() -> None:
            flag.set()
            notifier.notify()

        waiting = asyncio.create_task(waits(60))
        await asyncio.sleep(0)
        threading.Thread(target=set_flag).start()
        return await waiting

    assert asyncio.run(set_from_a_thread()) is True


# --------------------------------------------------------------------------- requests


def test_head_on_the_event_stream_answers_at_once(server: PreviewServer) -> None:
    reply = fetch(server, "/events", method="HEAD")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert reply.headers["cache-control"] == "no-store"
    assert reply.body == b""


def test_a_long_or_crowded_query_is_refused(server: PreviewServer) -> None:
    long = fetch(server, "/?subscriber=" + "a" * 2100)
    assert long.status == 404
    assert long.body == b"not found\n"
    eight = "&".join(f"f{n}=1" for n in range(8))
    assert fetch(server, "/status.json?" + eight).status == 200
    crowded = fetch(server, "/status.json?" + eight + "&f8=1")
    assert crowded.status == 400
    assert crowded.body == b"bad query\n"
    assert fetch(server, "/events?" + eight + "&f8=1").status == 400


def test_other_methods_are_refused_on_every_path_without_reading_a_body(
    server: PreviewServer,
) -> None:
    for method, path in (("OPTIONS", "/"), ("POST", "/events"), ("PUT", "/status.json")):
        reply = fetch(server, path, method=method)
        assert reply.status == 405, (method, path)
        assert reply.headers["allow"] == "GET, HEAD"
        assert reply.body == b"the preview only answers GET and HEAD\n"
    posted = raw(
        server,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 5\r\n"
        b"Connection: close\r\n\r\nhello" % server.server_address[1],
    )
    assert posted.startswith(b"HTTP/1.1 405 ")


def test_every_answer_carries_the_stacks_security_headers(server: PreviewServer) -> None:
    for path in ("/", "/email.html", "/email.txt", "/status.json", "/preview.js", "/nowhere"):
        reply = fetch(server, path)
        assert reply.headers["x-content-type-options"] == "nosniff", path
        assert reply.headers["referrer-policy"] == "no-referrer", path
        assert reply.headers["cache-control"] == "no-store", path
        assert "content-security-policy" in reply.headers, path
        assert "server" not in reply.headers, path
    assert fetch(server, "/").headers["x-frame-options"] == "DENY"
    assert fetch(server, "/email.html").headers["x-frame-options"] == "SAMEORIGIN"


# --------------------------------------------------------------------------- Host names


def test_two_host_headers_are_refused_and_none_is_allowed(server: PreviewServer) -> None:
    port = server.server_address[1]
    both = raw(
        server,
        b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nHost: attacker.example:%d\r\n"
        b"Connection: close\r\n\r\n" % (port, port),
    )
    assert both.startswith(b"HTTP/1.1 421 ")
    assert b"open the preview at the address it printed" in both
    bare = raw(server, b"GET /status.json HTTP/1.0\r\n\r\n")
    assert bare.startswith(b"HTTP/1.1 200 ")
    assert b'"ok": true' in bare


@pytest.mark.parametrize("name", ["attacker.example", "127.0.0.1.nip.io", "localhost.attacker"])
def test_a_rebound_name_gets_nothing(server: PreviewServer, name: str) -> None:
    port = server.server_address[1]
    for path in ("/", "/status.json", "/message.eml", "/events", "/preview.js"):
        reply = fetch(server, path, headers={"Host": f"{name}:{port}"})
        assert reply.status == 421, path
        assert b"Subject" not in reply.body
    wrong_port = fetch(server, "/", headers={"Host": f"127.0.0.1:{port + 1}"})
    assert wrong_port.status == 421


def test_the_preview_answers_on_ipv6_loopback(project: Path) -> None:
    app = PreviewApp(options_for(project))
    server = start_server(app, "::1", 0)
    server.start()
    try:
        port = server.server_address[1]
        assert server.url == f"http://[::1]:{port}/"
        for name in ("[::1]", "localhost", "127.0.0.1"):
            assert fetch(server, "/status.json", headers={"Host": f"{name}:{port}"}).status == 200
        assert fetch(server, "/", headers={"Host": f"attacker.example:{port}"}).status == 421
    finally:
        app.close()
        assert server.stop()
