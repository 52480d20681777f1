"""How connections end other than by a closing handshake: no lost Close, one log line each.

Issue 19: the server closed a socket whose receive queue still held the peer's bytes (the
rest of a frame that had just failed the connection); the kernel then resets the connection,
and a reset discards what is still queued for the peer, or overtakes it: the echo and the
Close 1002 never arrive. These tests replay that over loopback, with the read path forced
into one-byte reads, and check the log line every abnormal ending leaves.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import struct
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest

import rfc6455.session
from rfc6455.__main__ import echo_app
from rfc6455.client import connect
from rfc6455.errors import ConnectionClosed
from rfc6455.frame import Frame, Opcode, parse_close_payload
from rfc6455.handler import WS
from rfc6455.limits import Limits
from rfc6455.middleware import WebSocket
from rfc6455.readbuffer import ReceiveBuffer
from rfc6455.server import Server, WsgiHandler
from rfc6455.session import WebSocketSession

Environ = MutableMapping[str, Any]
HELLO = b"Hello, world!"
#: Bounds every wait, so that a broken server fails a test instead of hanging it.
PATIENCE = 30


def client_frame(opcode: int, payload: bytes, *, final: bool = True) -> bytes:
    return Frame(payload, Opcode(opcode), final=final, masking_key=os.urandom(4)).build_frame()


#: A frame with reserved opcode 7 (RFC 6455 §5.2), masked with a zero key: the connection
#: must fail with 1002 when its header arrives.
RESERVED_OPCODE_FRAME = struct.pack("!BB", 0x87, 0x80 | len(HELLO)) + bytes(4) + HELLO


def case_4_1_5() -> bytes:
    """Autobahn 4.1.5's bytes: a text message, a frame with reserved opcode 7, a Ping."""
    return client_frame(1, HELLO) + RESERVED_OPCODE_FRAME + client_frame(9, b"")


def request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /case HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Peer:
    """A non-blocking client socket on the test's loop: bytes in, bytes out, and how it ended."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.received = b""

    @classmethod
    async def open(cls, port: int, *, rcvbuf: int | None = None, extra: bytes = b"") -> Peer:
        """Connect and upgrade; ``extra`` goes in the same write as the request."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        peer = cls(sock)
        await peer.loop.sock_connect(sock, ("127.0.0.1", port))
        await peer.send(request(port) + extra)
        while b"\r\n\r\n" not in peer.received:
            peer.received += await peer.recv()
        head, _, peer.received = peer.received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        return peer

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def recv(self) -> bytes:
        return await asyncio.wait_for(self.loop.sock_recv(self.sock, 65536), PATIENCE)

    async def read_to_end(self) -> str:
        """Read until the server's EOF: ``"eof"``, or ``"reset"`` if TCP was reset."""
        try:
            while chunk := await self.recv():
                self.received += chunk
        except ConnectionResetError:
            return "reset"
        return "eof"

    def frames(self) -> list[Frame]:
        parser = rfc6455.frame.FrameParser(13, rfc6455.frame.Role.CLIENT)
        parser.feed(self.received)
        return list(parser.frames())

    def reset(self) -> None:
        """Close with a reset (SO_LINGER 0), as a crashed peer's kernel would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


def echo_server(**options: Any) -> Server:
    return Server(echo_app(64 * 2**20, deflate=False), **options)


async def only_session(server: Server) -> WebSocketSession:
    while not server.sessions:
        await asyncio.sleep(0.005)
    return server.sessions[0]


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), PATIENCE)


def ending_lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and "ended abnormally" in r.message]


# -- the lost Close (issue 19) -------------------------------------------------------------------


async def test_server_delivers_echo_and_close_to_a_peer_still_sending() -> None:
    # The echo waits in the server's buffers (the peer reads slowly) when a frame with
    # reserved opcode 7 fails the connection; the peer's bytes keep arriving after that.
    # Closing the socket with them unread would reset TCP and drop the queued Close.
    # More than the server's socket buffer takes (net.ipv4.tcp_wmem allows 4 MiB) and the
    # peer's small one: the rest waits in the transport's buffer, which never pauses reading.
    size = 8 * 2**20
    limits = Limits(write_buffer_size=2**30, closing_timeout=PATIENCE)
    async with echo_server(limits=limits) as server:
        peer = await Peer.open(server.port, rcvbuf=64 * 1024)
        await peer.send(client_frame(2, bytes(size)) + RESERVED_OPCODE_FRAME)
        session = await only_session(server)
        await until(lambda: session.closed)
        await peer.send(client_frame(9, b"still sending") * 64)
        end = await peer.read_to_end()
        peer.close()
    frames = peer.frames()
    assert [f.opcode for f in frames] == [Opcode.BINARY, Opcode.CLOSE]
    assert len(frames[0].payload) == size
    # RFC 6455 §7.4.1: 1002, a protocol error; then TCP ends with a FIN, not a reset.
    assert parse_close_payload(frames[1].payload)[0] == 1002
    assert end == "eof"


async def test_server_reads_again_to_drain_a_peer_it_stopped_reading() -> None:
    # Backpressure paused reading (the peer reads nothing) when the keepalive fails the
    # connection; the peer's bytes then arriving must still be read before TCP is closed.
    limits = Limits(
        write_buffer_size=64 * 1024, send_timeout=None, ping_interval=0.05, ping_timeout=0.1
    )
    async with echo_server(limits=limits, closing_timeout=PATIENCE) as server:
        peer = await Peer.open(server.port, rcvbuf=64 * 1024)
        session = await only_session(server)
        while not (session.transport and session.transport.get_write_buffer_size()):
            session.send(bytes(2**20))
        assert session.transport is not None and not session.transport.is_reading()
        await until(lambda: session.closed)
        await peer.send(client_frame(9, b"still sending") * 64)
        end = await peer.read_to_end()
        peer.close()
    frames = peer.frames()
    assert {f.opcode for f in frames[:-1]} == {Opcode.BINARY, Opcode.PING}
    assert frames[-1].opcode == Opcode.CLOSE
    # RFC 6455 §7.4.1: 1011; then TCP ends with a FIN, not a reset.
    assert parse_close_payload(frames[-1].payload)[0] == 1011
    assert end == "eof"


@pytest.mark.parametrize("with_request", [False, True], ids=["after-101", "with-request"])
async def test_4_1_5_in_one_byte_reads_echoes_then_fails_with_1002(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, with_request: bool
) -> None:
    # Fault injection: the session's receive buffer holds one byte, so every byte of the
    # message, of the bad frame and of the Ping is its own read.
    one_byte = ReceiveBuffer(memoryview(bytearray(1)))
    monkeypatch.setattr(rfc6455.session, "receive_buffer", lambda: one_byte)
    caplog.set_level(logging.INFO, "rfc6455.session")
    async with echo_server() as server:
        data = case_4_1_5()
        peer = await Peer.open(server.port, extra=data if with_request else b"")
        if not with_request:
            await peer.send(data)
        end = await peer.read_to_end()
        peer.close()
    frames = peer.frames()
    assert [(f.opcode, f.payload) for f in frames[:1]] == [(Opcode.TEXT, HELLO)]
    assert [f.opcode for f in frames[1:]] == [Opcode.CLOSE]
    assert parse_close_payload(frames[1].payload)[0] == 1002
    assert end == "eof"
    [line] = ending_lines(caplog, "rfc6455.session")
    assert "127.0.0.1:" in line.message and "/case" in line.message
    assert "in state OPEN" in line.message
    assert "opcode 0x7 is reserved" in line.message and "sent Close 1002" in line.message


# -- one line per abnormal ending ------------------------------------------------------------


async def test_server_logs_peer_eof_without_close(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rfc6455.session")
    async with echo_server() as server:
        peer = await Peer.open(server.port)
        session = await only_session(server)
        peer.sock.shutdown(socket.SHUT_WR)
        assert await peer.read_to_end() == "eof"
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        peer.close()
    [line] = ending_lines(caplog, "rfc6455.session")
    assert "in state OPEN: the peer closed TCP without a Close frame" in line.message
    assert "(close code 1006)" in line.message


async def test_server_logs_peer_reset(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rfc6455.session")
    async with echo_server() as server:
        peer = await Peer.open(server.port)
        session = await only_session(server)
        peer.reset()
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
    [line] = ending_lines(caplog, "rfc6455.session")
    assert "in state OPEN: TCP connection lost: ConnectionResetError" in line.message


async def test_server_logs_message_over_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rfc6455.session")
    async with Server(echo_app(1024, deflate=False)) as server:
        peer = await Peer.open(server.port)
        await peer.send(client_frame(2, bytes(2048)))
        assert await peer.read_to_end() == "eof"
        peer.close()
        await asyncio.wait_for((await only_session(server)).wait_closed(), PATIENCE)
    [line] = ending_lines(caplog, "rfc6455.session")
    assert "MessageTooBig" in line.message and "sent Close 1009" in line.message


async def test_server_logs_peer_that_never_answers_close(caplog: pytest.LogCaptureFixture) -> None:
    class Closer(WS):
        def on_open(self, environ: Environ) -> None:
            self.close(environ, "go away", code=4001)

    caplog.set_level(logging.INFO, "rfc6455.session")
    async with Server(WsgiHandler([WebSocket(Closer())]), closing_timeout=0.2) as server:
        peer = await Peer.open(server.port)
        await peer.read_to_end()  # the server drops TCP: the peer kept it open
        peer.close()
    [line] = ending_lines(caplog, "rfc6455.session")
    assert "in state CLOSING: no Close from the peer within 0.2 s of ours" in line.message


async def test_server_logs_peer_that_never_closes_tcp(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rfc6455.session")
    async with echo_server(closing_timeout=0.2) as server:
        peer = await Peer.open(server.port)
        await peer.send(client_frame(8, struct.pack("!H", 1000)))
        session = await only_session(server)
        # The closing handshake completes; the server half-closes and waits for our EOF.
        while len(peer.frames()) < 1:
            peer.received += await peer.recv()
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        peer.close()
    [line] = ending_lines(caplog, "rfc6455.session")
    assert "in state CLOSED: the peer did not close TCP within 0.2 s of ours" in line.message
    assert "(close code 1000)" in line.message


async def test_server_logs_peer_that_reads_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rfc6455.session")
    limits = Limits(send_timeout=0.2, write_buffer_size=64 * 1024)
    async with echo_server(limits=limits) as server:
        peer = await Peer.open(server.port, rcvbuf=4096)
        session = await only_session(server)
        for _ in range(64):
            session.send(bytes(256 * 1024))
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        peer.close()
    [line] = ending_lines(caplog, "rfc6455.session")
    assert "in state OPEN: the peer read nothing for 0.2 s; dropped" in line.message


async def test_server_logs_keepalive_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rfc6455.session")
    async with echo_server(limits=Limits(ping_interval=0.05, ping_timeout=0.1)) as server:
        peer = await Peer.open(server.port)  # never answers the Ping
        assert await peer.read_to_end() == "eof"
        peer.close()
        await asyncio.wait_for((await only_session(server)).wait_closed(), PATIENCE)
    [line] = ending_lines(caplog, "rfc6455.session")
    assert "in state OPEN: no Pong within 0.1 s of the keepalive Ping" in line.message
    assert "(close code 1011)" in line.message


async def test_server_logs_hook_exception_as_warning(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(WS):
        def on_message(self, environ: Environ, message: str | bytes) -> None:
            raise ValueError("secret detail")

    caplog.set_level(logging.INFO, "rfc6455.session")
    async with Server(WsgiHandler([WebSocket(Broken())]), closing_timeout=0.2) as server:
        peer = await Peer.open(server.port)
        await peer.send(client_frame(1, b"boom"))
        await peer.read_to_end()
        peer.close()
    [line] = ending_lines(caplog, "rfc6455.session")
    assert line.levelno == logging.WARNING
    assert "in state OPEN: WS.on_message raised" in line.message


async def test_server_logs_connections_dropped_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "rfc6455.session")
    server = echo_server(shutdown_timeout=0.1, closing_timeout=30)
    await server.start()
    peer = await Peer.open(server.port)
    await only_session(server)
    await server.close()  # the peer never answers the 1001
    peer.close()
    [line] = ending_lines(caplog, "rfc6455.session")
    assert "in state CLOSING: the server shut down; still open after 0.1 s" in line.message


async def test_a_completed_closing_handshake_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "rfc6455")
    async with echo_server() as server:
        peer = await Peer.open(server.port)
        await peer.send(client_frame(1, HELLO) + client_frame(8, struct.pack("!H", 1000)))
        assert await peer.read_to_end() == "eof"
        peer.close()
        await asyncio.wait_for((await only_session(server)).wait_closed(), PATIENCE)
    assert [f.opcode for f in peer.frames()] == [Opcode.TEXT, Opcode.CLOSE]
    assert ending_lines(caplog, "rfc6455.session") == []


# -- the client ---------------------------------------------------------------------------------


async def raw_server(after_upgrade: bytes, *, close: bool) -> tuple[asyncio.Server, int]:
    """A server that accepts any upgrade, writes ``after_upgrade``, then closes TCP or not."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        accept = rfc6455.handshake.accept_key(key)
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            + b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept.encode()
            + b"\r\n\r\n"
            + after_upgrade
        )
        try:
            if not close:
                await reader.read()  # until the client gives up and drops TCP
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_client_logs_a_server_protocol_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rfc6455.client")
    server, port = await raw_server(b"\x87\x00", close=False)  # reserved opcode 7, unmasked
    async with server:
        ws = await connect(f"ws://127.0.0.1:{port}/c", extensions=())
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        await ws.wait_closed()
    [line] = ending_lines(caplog, "rfc6455.client")
    assert f"ws://127.0.0.1:{port}/c" in line.message and "in state OPEN" in line.message
    assert "opcode 0x7 is reserved" in line.message and "sent Close 1002" in line.message


async def test_client_logs_server_eof_without_close(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rfc6455.client")
    server, port = await raw_server(b"", close=True)
    async with server:
        ws = await connect(f"ws://127.0.0.1:{port}/c", extensions=())
        await ws.wait_closed()
    [line] = ending_lines(caplog, "rfc6455.client")
    assert "in state OPEN: the server closed TCP without a Close frame" in line.message
    assert "(close code 1006)" in line.message


# -- the testee's stderr ------------------------------------------------------------------------


async def test_echo_testee_prints_the_ending_to_stderr(echo_testee: Any) -> None:
    async with echo_testee(stderr=True) as testee:
        process = testee.process
        assert process.stdout is not None and process.stderr is not None
        peer = await Peer.open(testee.port)
        await peer.send(case_4_1_5())
        assert await peer.read_to_end() == "eof"
        peer.close()
        logged = (await asyncio.wait_for(process.stderr.readline(), PATIENCE)).decode()
    assert logged.startswith("INFO rfc6455.session: WebSocket 127.0.0.1:")
    assert "opcode 0x7 is reserved" in logged
