"""The shared serving parts: a server on a thread, ``on_stop``, binding, the Host check."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest

from newsletter.errors import ConfigError
from newsletter.web.host_check import HostCheck, host_names
from newsletter.web.security import Message, Receive, Scope, Send
from newsletter.web.serve import Background, bind


class Ticker:
    """An ASGI app that streams ``tick`` lines until ``finish`` is called from any thread."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None

    def finish(self) -> None:
        self.finished.set()
        if self.loop is not None and self.wake is not None:
            self.loop.call_soon_threadsafe(self.wake.set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.loop, self.wake = asyncio.get_running_loop(), asyncio.Event()
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
        while not self.finished.is_set():
            await self.wake.wait()
        await send({"type": "http.response.body", "body": b"done\n"})


def test_a_background_server_ends_a_stream_through_on_stop() -> None:
    ticker = Ticker()
    listener = bind("127.0.0.1", 0)
    served = Background(ticker, listener, on_stop=[ticker.finish]).start()
    host, port = listener.address
    assert listener.url == f"http://127.0.0.1:{port}"
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        stream = sock.makefile("rb")
        while stream.readline() != b"tick\n":
            pass
        assert served.stop()
        rest = stream.read()
    assert ticker.finished.is_set()
    assert rest.endswith(b"done\n\r\n0\r\n\r\n")
    assert listener.sock.fileno() == -1


def test_stopping_a_server_that_never_started_frees_its_socket() -> None:
    listener = bind("127.0.0.1", 0)
    assert Background(Ticker(), listener).stop()
    assert listener.sock.fileno() == -1


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            bind("127.0.0.1", port)
    assert str(caught.value) == (
        f"cannot listen on 127.0.0.1:{port}: it is in use; pick another with --port "
        "(0: any free port)"
    )


def test_host_names_cover_the_loopback_names_and_bracket_ipv6() -> None:
    assert host_names(8025) == {"127.0.0.1:8025", "localhost:8025", "[::1]:8025"}
    assert "[::1]:80" in host_names(80, "::1")
    assert "127.8.9.10:80" in host_names(80, "127.8.9.10")
    assert "preview.local:80" in host_names(80, "Preview.Local")


def _answer(check: HostCheck, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    asyncio.run(check(scope, receive, send))
    return sent


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(b"host", b"localhost:8025")], 200),
        ([(b"host", b"LOCALHOST:8025")], 200),
        ([], 200),
        ([(b"host", b"localhost:8026")], 421),
        ([(b"host", b"evil.example:8025")], 421),
        ([(b"host", b"localhost:8025"), (b"host", b"evil.example:8025")], 421),
    ],
)
def test_the_host_check_answers_only_its_names(
    headers: list[tuple[bytes, bytes]], status: int
) -> None:
    check = HostCheck(_ok, host_names(8025), "use the printed address")
    sent = _answer(check, headers)
    assert sent[0]["status"] == status
    if status == 421:
        assert sent[1]["body"] == b"use the printed address\n"
