"""rfc6455.takeover: the WebSocket middleware under gunicorn and Werkzeug's development server.

Each server is started for real, as a subprocess on a free loopback port, serving the same
WSGI chain (``WsgiHandler([WebSocket(...), page])``). The websockets client talks to it; a raw
socket checks the bytes around the session: one 101, the frames, then EOF and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from rfc6455.errors import HandshakeError
from rfc6455.frame import Frame, FrameParser, Opcode, Role, parse_close_payload
from rfc6455.takeover import response_head, server_socket

pytest.importorskip("gunicorn", reason="pip install gunicorn (the test extra)")
pytest.importorskip("werkzeug", reason="pip install werkzeug (the test extra)")

# The app every server runs. Paths select behaviour: "/greet" sends from on_open, "/async"
# answers from a coroutine hook, "/boom" raises in on_message; "bye" makes the server close.
APP_SOURCE = textwrap.dedent(
    """
    import asyncio

    from rfc6455.extensions import ServerPerMessageDeflate
    from rfc6455.handler import WS
    from rfc6455.middleware import WebSocket
    from rfc6455.server import WsgiHandler


    class Echo(WS):
        def on_open(self, environ):
            if environ["PATH_INFO"] == "/greet":
                self.send(environ, "welcome")

        def on_message(self, environ, message):
            path = environ["PATH_INFO"]
            if path == "/async":
                return self.later(message)
            if path == "/boom":
                raise RuntimeError("a hook failed")
            if message == "bye":
                self.close(environ, "see you", 4000)
                return None
            return message

        async def later(self, message):
            await asyncio.sleep(0)
            return message.upper()


    def page(environ, start_response):
        body = b"plain " + environ["PATH_INFO"].encode("latin-1")
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]


    app = WsgiHandler([WebSocket(Echo(), [ServerPerMessageDeflate()]), page])
    """
)

WERKZEUG_MAIN = (
    "from werkzeug.serving import run_simple; import wsapp; "
    "run_simple('127.0.0.1', 0, wsapp.app, threaded=True)"
)

SERVERS = {
    # Two processes: the sync worker serves one connection at a time.
    "gunicorn-sync": [
        *("-m", "gunicorn", "--worker-class", "sync", "--workers", "2"),
        *("--bind", "127.0.0.1:0", "--no-control-socket", "wsapp:app"),
    ],
    "gunicorn-gthread": [
        *("-m", "gunicorn", "--worker-class", "gthread", "--workers", "1", "--threads", "4"),
        *("--bind", "127.0.0.1:0", "--no-control-socket", "wsapp:app"),
    ],
    "werkzeug": ["-c", WERKZEUG_MAIN],
}

# What each server prints once it listens.
READY_RE = re.compile(r"(?:Listening at|Running on):? http://127\.0\.0\.1:(\d+)")
START_DEADLINE = 30.0
IO_TIMEOUT = 10.0


@dataclass
class RunningServer:
    name: str
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One real server process for the module's tests, stopped at the end."""
    name: str = request.param
    folder = tmp_path_factory.mktemp(name)
    (folder / "wsapp.py").write_text(APP_SOURCE)
    log = folder / "server.log"
    env = {**os.environ, "PYTHONPATH": str(folder), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *SERVERS[name]],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        port = _wait_until_listening(process, log)
        yield RunningServer(name, port, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(process: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        match = READY_RE.search(log.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    pytest.fail(f"the server did not listen within {START_DEADLINE}s:\n{log.read_text()}")


# -- through a WebSocket client -------------------------------------------------------------


async def test_server_echoes_text_and_binary_with_permessage_deflate(
    server: RunningServer,
) -> None:
    async with connect(server.url + "/echo", open_timeout=IO_TIMEOUT) as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        await ws.send("héllo" * 1000)
        assert await ws.recv() == "héllo" * 1000
        await ws.send(bytes(range(256)) * 40)
        assert await ws.recv() == bytes(range(256)) * 40
    assert ws.close_code == 1000


async def test_on_open_sends_first_and_coroutine_hooks_are_awaited(server: RunningServer) -> None:
    async with connect(server.url + "/greet", open_timeout=IO_TIMEOUT) as ws:
        assert await ws.recv() == "welcome"
    async with connect(server.url + "/async", open_timeout=IO_TIMEOUT) as ws:
        await ws.send("shout")
        assert await ws.recv() == "SHOUT"


async def test_server_closes_with_the_code_the_handler_chose(server: RunningServer) -> None:
    async with connect(server.url + "/echo", open_timeout=IO_TIMEOUT) as ws:
        await ws.send("bye")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4000
    assert ws.close_reason == "see you"


async def test_raising_hook_closes_with_1011(server: RunningServer) -> None:
    async with connect(server.url + "/boom", open_timeout=IO_TIMEOUT) as ws:
        await ws.send("anything")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    # RFC 6455 §7.4.1: 1011, an unexpected condition; the details stay in the server's log.
    assert ws.close_code == 1011
    assert ws.close_reason == ""
    assert "a hook failed" in server.log_text()


async def test_two_connections_are_served_at_once(server: RunningServer) -> None:
    async with (
        connect(server.url + "/one", open_timeout=IO_TIMEOUT) as first,
        connect(server.url + "/two", open_timeout=IO_TIMEOUT) as second,
    ):
        await second.send("to the second")
        await first.send("to the first")
        assert await second.recv() == "to the second"
        assert await first.recv() == "to the first"


# -- bytes on the wire ----------------------------------------------------------------------


def _raw_upgrade(port: int, version: str = "13") -> tuple[socket.socket, bytes]:
    """Send an upgrade request; return the socket and the response head."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    sock.sendall(
        f"GET /raw HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: {version}\r\n\r\n".encode("ascii")
    )
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        assert data, f"EOF before the response head: {received!r}"
        received += data
    return sock, received


def _read_to_eof(sock: socket.socket, already: bytes) -> bytes:
    data = already
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_after_the_closing_handshake_the_server_writes_nothing_and_closes(
    server: RunningServer,
) -> None:
    sock, received = _raw_upgrade(server.port)
    with sock:
        head, _, rest = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        text = Frame(b"ping me", Opcode.TEXT, masking_key=os.urandom(4), final=True)
        sock.sendall(text.build_frame())
        sock.sendall(Frame.close(1000, "done", masking_key=os.urandom(4)).build_frame())
        stream = _read_to_eof(sock, rest)
    parser = FrameParser(13, Role.CLIENT)
    parser.feed(stream)
    frames = list(parser.frames())
    # The echo, the Close answering ours (RFC 6455 §5.5.1), then EOF: no second response,
    # no HTTP bytes from the server after the session, and the socket was not kept alive.
    assert [(f.opcode, f.payload) for f in frames[:1]] == [(Opcode.TEXT, b"ping me")]
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.CLOSE]
    assert parse_close_payload(frames[1].payload) == (1000, "")
    assert parser.buffered == 0
    assert b"HTTP/" not in stream
    # The server logged no error of its own: the only tracebacks are the failing hook's.
    log = server.log_text()
    assert log.count("Traceback") == log.count("WS.on_message raised")


def test_bad_version_gets_426_from_the_server_itself(server: RunningServer) -> None:
    sock, received = _raw_upgrade(server.port, version="12")
    with sock:
        head = received.partition(b"\r\n\r\n")[0].decode("latin-1")
    status_line, *lines = head.split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    # RFC 6455 §4.2.2: a version we do not speak gets 426 and the version we do.
    assert status_line.split(" ")[1] == "426"
    assert headers["sec-websocket-version"] == "13"


def test_plain_requests_fall_through_to_the_next_app(server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        response = _read_to_eof(sock, b"")
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"\r\n\r\nplain /page")


# -- the takeover's refusals, before anything is written ---------------------------------------


def test_takeover_refuses_a_thread_that_runs_an_event_loop() -> None:
    async def status() -> int:
        with socket.socket() as sock, pytest.raises(HandshakeError) as refused:
            server_socket({"werkzeug.socket": sock})
        return refused.value.status

    assert asyncio.run(status()) == 501


def test_takeover_refuses_a_tls_socket() -> None:
    context = ssl.create_default_context()
    with (
        context.wrap_socket(socket.socket(), server_hostname="localhost") as tls,
        pytest.raises(HandshakeError, match="TLS") as refused,
    ):
        server_socket({"gunicorn.socket": tls})
    assert refused.value.status == 501


def test_takeover_is_not_used_without_a_server_socket() -> None:
    assert server_socket({"REQUEST_METHOD": "GET"}) is None
    with socket.socket() as sock:
        assert server_socket({"gunicorn.socket": sock}) is sock


@pytest.mark.parametrize(
    "header",
    [("X-Split", "a\r\nSet-Cookie: x=1"), ("Bad Name", "v"), ("X-Text", "\u20ac")],
)
def test_response_head_refuses_a_header_it_cannot_write(header: tuple[str, str]) -> None:
    with pytest.raises(HandshakeError) as refused:
        response_head([("Upgrade", "websocket"), header])
    assert refused.value.status == 500


def test_response_head_is_a_101_with_the_headers_in_order() -> None:
    head = response_head([("Upgrade", "websocket"), ("Connection", "Upgrade")])
    assert head == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
