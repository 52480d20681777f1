"""rfc6455.limits, enforced by the real server: timeouts, sizes, connections, keepalive,
and backpressure in both directions.

Every test runs a real ``Server`` on loopback against a raw TCP peer (for what a polite
client would not do: trickle, stall, never read, never answer a Ping) or the websockets
client. Buffer bounds are asserted on the transports' byte counts, never on elapsed time;
small socket buffers are set where the kernel would otherwise absorb the flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import replace
from typing import Any

import pytest
from websockets.asyncio.client import connect

from rfc6455.deadlines import Deadlines
from rfc6455.errors import CloseCode, InvalidState
from rfc6455.frame import Frame, Opcode, parse_close_payload
from rfc6455.handler import WS
from rfc6455.limits import DEFAULT_LIMITS, Limits
from rfc6455.middleware import WebSocket
from rfc6455.server import Server, WsgiHandler
from rfc6455.session import WebSocketSession

Environ = MutableMapping[str, Any]
PeerFactory = Callable[[int], Awaitable[Any]]  # conftest.raw_peer
RequestFactory = Callable[..., bytes]  # conftest.upgrade_request

SMALL_BUFFER = 64 * 1024  # SO_SNDBUF / SO_RCVBUF, so the kernel does not hide the flood


class Echo(WS):
    def on_message(self, environ: Environ, message: str | bytes) -> str | bytes:
        return message


def echo_app() -> WsgiHandler:
    return WsgiHandler([WebSocket(Echo())])


def limits(**changes: Any) -> Limits:
    """The defaults with ``changes``, keepalive off unless asked for (tests stay quiet)."""
    return replace(DEFAULT_LIMITS, **{"ping_interval": None, **changes})


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``; pytest-timeout bounds the wait."""
    while not condition():
        await asyncio.sleep(0.01)


async def open_small(port: int, *, rcvbuf: bool = False, sndbuf: bool = False) -> Any:
    """Streams to ``port`` over a socket whose buffers are shrunk before connecting."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock)


async def upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head


def binary_frame(size: int) -> bytes:
    """A masked binary frame of ``size`` zero bytes (RFC 6455 §5.3: clients mask)."""
    return Frame(bytes(size), Opcode.BINARY, masking_key=b"mask", final=True).build_frame()


def shrink_server_receive_buffer(session: WebSocketSession) -> None:
    transport = session.transport
    assert transport is not None
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split(" ")[1]), headers, body


# -- the Limits value ---------------------------------------------------------------------------


def test_limits_refuse_zero_negative_and_non_numbers() -> None:
    with pytest.raises(ValueError, match="max_head_size"):
        Limits(max_head_size=0)
    with pytest.raises(ValueError, match="handshake_timeout"):
        Limits(handshake_timeout=-1.0)
    with pytest.raises(TypeError, match="whole number"):
        Limits(max_connections=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="may not be None"):
        Limits(write_buffer_size=None)  # type: ignore[arg-type]
    assert Limits(ping_interval=None, max_connections=None).ping_interval is None


def test_default_limits_bound_every_wait_and_buffer() -> None:
    # A default server bounds everything a peer can make it wait for or hold.
    for name in ("handshake_timeout", "max_connections", "max_message_size", "ping_timeout"):
        assert getattr(DEFAULT_LIMITS, name) is not None, name
    assert DEFAULT_LIMITS.max_message_size == 2**20  # websockets' max_size
    assert DEFAULT_LIMITS.max_head_size == 16 * 1024  # h11's max_incomplete_event_size


# -- opening handshake timeout (slowloris) ------------------------------------------------------


async def test_request_trickling_a_byte_at_a_time_gets_408_before_it_completes(
    upgrade_request: RequestFactory,
) -> None:
    data = upgrade_request()
    sent = 0

    async def trickle(writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        for index in range(len(data)):
            writer.write(data[index : index + 1])
            sent += 1
            await asyncio.sleep(0.05)  # the whole request would take about 7 s

    async with Server(echo_app(), limits=limits(handshake_timeout=0.5)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        task = asyncio.create_task(trickle(writer))
        status, headers, body = await read_response(reader)
        at_eof = await reader.read() == b""
        task.cancel()
        writer.close()
    # RFC 7231 §6.5.7: 408 when the request did not arrive in time; the connection closes.
    assert status == 408
    assert headers["connection"] == "close"
    assert b"request timeout" in body
    assert at_eof
    assert sent < len(data), "the server waited for the whole trickled request"


async def test_connection_that_never_sends_is_closed_silently() -> None:
    async with Server(echo_app(), limits=limits(handshake_timeout=0.3)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        received = await reader.read()  # EOF: nothing was asked, nothing is answered
        writer.close()
    assert received == b""


async def test_idle_keep_alive_connection_is_closed_after_the_timeout() -> None:
    def hello(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"hi"]

    async with Server(hello, limits=limits(handshake_timeout=0.3)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        status, _, body = await read_response(reader)
        rest = await reader.read()  # then nothing more: the idle connection is closed
        writer.close()
    assert (status, body, rest) == (200, b"hi", b"")


async def test_request_body_that_stalls_gets_408() -> None:
    def read_body(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    async with Server(read_body, limits=limits(handshake_timeout=0.3)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        status, _, body = await read_response(reader)
        writer.close()
    assert status == 408
    assert b"request timeout" in body


# -- request head size ------------------------------------------------------------------------


async def test_incomplete_head_over_the_limit_gets_431() -> None:
    # The head never ends: h11 gives up once it holds more than max_head_size bytes.
    async with Server(echo_app(), limits=limits(max_head_size=4096)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Filler: aaaaaaaa\r\n" * 400)
        status, _, body = await read_response(reader)
        writer.close()
    # RFC 6585 §5: 431 Request Header Fields Too Large.
    assert status == 431
    assert body.strip()


async def test_header_limits_come_from_limits(upgrade_request: RequestFactory) -> None:
    few = limits(max_header_count=5, max_header_field_size=100)
    async with Server(echo_app(), limits=few) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(upgrade_request(extra="X-One: 1\r\n"))  # 6 fields
        too_many = await read_response(reader)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + b"v" * 100 + b"\r\n\r\n")
        too_long = await read_response(reader)
        writer.close()
    assert too_many[0] == 431 and b"too many header fields: 6" in too_many[2]
    assert too_long[0] == 431 and b"'x-long' is too large" in too_long[2].lower()


# -- maximum concurrent connections -------------------------------------------------------------


async def test_connection_beyond_max_connections_gets_503_and_the_slot_frees_up(
    upgrade_request: RequestFactory,
) -> None:
    async with Server(echo_app(), limits=limits(max_connections=2)) as server:
        first = await connect(server.url)
        second = await connect(server.url)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(upgrade_request())
        status, headers, body = await read_response(reader)
        closed = await reader.read() == b""
        writer.close()
        await first.close()
        await until(lambda: len(server.sessions) < 2)
        async with connect(server.url) as third:  # the freed slot is usable again
            await third.send("again")
            assert await third.recv() == "again"
        await second.close()
    # RFC 7231 §6.6.4 and §7.1.3: 503 with Retry-After; the request never reached the app.
    assert status == 503
    assert headers["retry-after"] == "1"
    assert b"capacity (2 connections)" in body
    assert closed


# -- message and frame size from Limits ----------------------------------------------------------


async def test_message_and_frame_limits_reach_the_connection_through_the_environ(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    small = limits(max_message_size=1000, max_frame_size=100)
    async with Server(echo_app(), limits=small) as server:
        # A 300-byte message in 100-byte frames is within both limits.
        peer = await raw_peer(server.port)
        await peer.request(upgrade_request())
        for index in range(3):
            opcode = Opcode.BINARY if index == 0 else Opcode.CONTINUATION
            peer.send_frame(Frame(b"m" * 100, opcode, final=index == 2))
        echo = await peer.next_frame()
        peer.close()
        # One 101-byte frame is over the frame limit.
        peer = await raw_peer(server.port)
        await peer.request(upgrade_request())
        peer.send_frame(Frame(b"f" * 101, Opcode.BINARY, final=True))
        frame_close = await peer.next_frame()
        peer.close()
        # 1001 bytes in frames of 91 bytes is over the message limit.
        peer = await raw_peer(server.port)
        await peer.request(upgrade_request())
        for index in range(11):
            opcode = Opcode.BINARY if index == 0 else Opcode.CONTINUATION
            peer.send_frame(Frame(b"g" * 91, opcode, final=index == 10))
        message_close = await peer.next_frame()
        peer.close()
    assert echo is not None and echo.payload == b"m" * 300
    # RFC 6455 §7.4.1: 1009, "a message that is too big for it to process".
    for close in (frame_close, message_close):
        assert close is not None and close.opcode == Opcode.CLOSE
        assert parse_close_payload(close.payload)[0] == CloseCode.MESSAGE_TOO_BIG


# -- keepalive ------------------------------------------------------------------------------------


async def test_peer_that_does_not_answer_pings_is_closed_with_1011(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    keepalive = limits(ping_interval=0.1, ping_timeout=0.2)
    async with Server(echo_app(), limits=keepalive) as server:
        peer = await raw_peer(server.port)
        await peer.request(upgrade_request())
        frames = []
        while (frame := await peer.next_frame()) is not None:  # never answered
            frames.append(frame)
        peer.close()
    # One keepalive Ping at a time, then Close 1011 (as websockets does), then TCP closes.
    assert [frame.opcode for frame in frames] == [Opcode.PING, Opcode.CLOSE]
    assert len(frames[0].payload) == 4
    assert parse_close_payload(frames[1].payload) == (
        CloseCode.INTERNAL_ERROR,
        "keepalive ping timeout",
    )


async def test_peer_that_answers_pings_stays_connected() -> None:
    pongs: list[bytes] = []

    class Counting(Echo):
        def on_pong(self, environ: Environ, payload: bytes) -> None:
            pongs.append(payload)

    keepalive = limits(ping_interval=0.05, ping_timeout=0.5)
    app = WsgiHandler([WebSocket(Counting())])
    async with Server(app, limits=keepalive) as server:
        client = await connect(server.url, ping_interval=None)  # answers Pings itself
        await until(lambda: len(pongs) >= 3)
        await client.send("alive")
        assert await client.recv() == "alive"
        await client.close()
    assert len(set(pongs)) == len(pongs), "each keepalive Ping has its own payload"


async def test_busy_handler_does_not_make_an_answered_ping_time_out() -> None:
    release = asyncio.Event()

    class Slow(WS):
        async def on_message(self, environ: Environ, message: str | bytes) -> str | bytes:
            await release.wait()  # the Pong waits, unread, behind this message
            return message

    keepalive = limits(ping_interval=0.05, ping_timeout=0.1)
    async with Server(WsgiHandler([WebSocket(Slow())]), limits=keepalive) as server:
        client = await connect(server.url, ping_interval=None)
        await client.send("slow")
        await asyncio.sleep(0.5)  # several ping timeouts pass while the hook is busy
        release.set()
        assert await client.recv() == "slow"
        await client.send("again")
        assert await client.recv() == "again"
        await client.close()


async def test_open_sessions_share_one_keepalive_schedule_that_goes_with_the_last() -> None:
    # Idle connections cost an entry each in one shared schedule, not a timer each.
    keepalive = limits(ping_interval=3600.0, ping_timeout=3600.0)
    async with Server(echo_app(), limits=keepalive) as server:
        clients = [await connect(server.url, ping_interval=None) for _ in range(3)]
        for client in clients:  # each session has started once its echo comes back
            await client.send("up")
            assert await client.recv() == "up"
        loop = asyncio.get_running_loop()
        pings = Deadlines.shared(loop, 3600.0, WebSocketSession._send_keepalive_ping)
        assert len(pings) == 3 and all(session in pings for session in server.sessions)
        for client in clients:
            await client.close()
        await until(lambda: not server.sessions)
        assert not pings  # every session left it when its TCP closed
        again = Deadlines.shared(loop, 3600.0, WebSocketSession._send_keepalive_ping)
        assert again is not pings


# -- backpressure ---------------------------------------------------------------------------------


async def test_handler_drain_blocks_while_the_peer_does_not_read(
    upgrade_request: RequestFactory,
) -> None:
    message = 64 * 1024
    total = 1024  # 64 MiB: far more than the kernel's buffers hold
    sizes: list[int] = []
    done = asyncio.Event()

    class Flood(WS):
        def on_open(self, environ: Environ) -> None:
            asyncio.get_running_loop().create_task(self.flood(self.websocket(environ)))

        async def flood(self, session: WebSocketSession) -> None:
            try:
                for _ in range(total):
                    session.send(bytes(message))
                    transport = session.transport
                    assert transport is not None
                    sizes.append(transport.get_write_buffer_size())
                    await session.drain()
            except InvalidState:
                pass  # the peer went away
            finally:
                done.set()

    high = 32 * 1024
    async with Server(
        WsgiHandler([WebSocket(Flood())]), limits=limits(write_buffer_size=high)
    ) as server:
        reader, writer = await open_small(server.port, rcvbuf=True)
        await upgrade(reader, writer, upgrade_request())  # and never read again
        session = server.sessions[0]
        transport = session.transport
        assert transport is not None
        assert transport.get_write_buffer_limits() == (high // 4, high)
        await until(lambda: transport.get_write_buffer_size() > high)  # drain() now blocks
        await asyncio.sleep(0.2)  # room for a broken drain() to keep sending
        sent = len(sizes)
        writer.transport.abort()
        await done.wait()
    assert sent < total, "the handler sent everything: drain() did not block"
    # What the server buffers stays within the high-water mark plus the last message.
    assert max(sizes) <= high + message + 16


async def test_websocket_peer_that_never_reads_is_dropped_after_the_send_timeout(
    upgrade_request: RequestFactory,
) -> None:
    sessions: list[WebSocketSession] = []
    done = asyncio.Event()

    class Flood(WS):
        def on_open(self, environ: Environ) -> None:
            session = self.websocket(environ)
            sessions.append(session)
            asyncio.get_running_loop().create_task(self.flood(session))

        async def flood(self, session: WebSocketSession) -> None:
            try:
                while True:
                    session.send(bytes(64 * 1024))
                    await session.drain()
            except InvalidState:
                done.set()  # the connection is over

    stalled = limits(send_timeout=0.3)
    async with Server(WsgiHandler([WebSocket(Flood())]), limits=stalled) as server:
        reader, writer = await open_small(server.port, rcvbuf=True)
        await upgrade(reader, writer, upgrade_request())  # and never read again
        await done.wait()  # the server gave up on its own
        await sessions[0].wait_closed()
        writer.transport.abort()
    # RFC 6455 §7.1.5: no Close frame made it through: the connection ended with 1006.
    assert sessions[0].close_code == CloseCode.ABNORMAL


async def test_http_client_that_never_reads_the_response_is_dropped(
    upgrade_request: RequestFactory,
) -> None:
    closed = asyncio.Event()

    class Body:
        """A large response body; PEP 3333: the server calls ``close()`` when done."""

        def __iter__(self) -> Any:
            return iter([bytes(64 * 1024)] * 256)  # 16 MiB

        def close(self) -> None:
            closed.set()

    def large(environ: Environ, start_response: Callable[..., Any]) -> Body:
        start_response("200 OK", [("Content-Length", str(16 * 2**20))])
        return Body()

    async with Server(large, limits=limits(send_timeout=0.3)) as server:
        reader, writer = await open_small(server.port, rcvbuf=True)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")  # and never read
        await closed.wait()
        received = 0
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(2**20):
                received += len(chunk)
        writer.close()
    assert received < 16 * 2**20, "the whole response was buffered for a peer that never read"


async def test_peer_that_sends_but_never_reads_stops_being_read(
    upgrade_request: RequestFactory,
) -> None:
    read_size = 256 * 1024
    high = 64 * 1024
    frame = binary_frame(16 * 1024)
    count = 1024  # 16 MiB of echo requests whose echoes are never read
    bounded = limits(max_read_buffer=read_size, write_buffer_size=high)

    class SmallBufferEcho(Echo):
        def on_open(self, environ: Environ) -> None:
            shrink_server_receive_buffer(self.websocket(environ))

    async with Server(WsgiHandler([WebSocket(SmallBufferEcho())]), limits=bounded) as server:
        reader, writer = await open_small(server.port, rcvbuf=True)
        await upgrade(reader, writer, upgrade_request())
        session = server.sessions[0]
        transport = session.transport
        assert transport is not None
        writer.write(frame * count)
        await until(lambda: not transport.is_reading())
        buffered = transport.get_write_buffer_size()
        unsent = writer.transport.get_write_buffer_size()
        writer.transport.abort()
    # The session drains its replies before reading more: it holds at most the high-water
    # mark plus the replies to one read.
    assert buffered <= high + read_size
    assert unsent > 0, "the peer's flood was absorbed"


async def test_slow_handler_pauses_reading_after_max_read_buffer(
    upgrade_request: RequestFactory,
) -> None:
    release = asyncio.Event()

    class Slow(WS):
        def on_open(self, environ: Environ) -> None:
            shrink_server_receive_buffer(self.websocket(environ))

        async def on_message(self, environ: Environ, message: str | bytes) -> str | bytes:
            await release.wait()
            return message

    read_ahead = 256 * 1024
    frame = binary_frame(16 * 1024)
    count = 1024  # 16 MiB
    app = WsgiHandler([WebSocket(Slow())])
    async with Server(app, limits=limits(max_read_buffer=read_ahead)) as server:
        reader, writer = await open_small(server.port, sndbuf=True)
        await upgrade(reader, writer, upgrade_request())
        session = server.sessions[0]
        transport = session.transport
        assert transport is not None
        writer.write(frame * count)
        await until(lambda: not transport.is_reading())
        taken = len(frame) * count - writer.transport.get_write_buffer_size()
        release.set()
        echoes = 0
        received = bytearray()
        while echoes < count:  # reading resumes: every message is echoed
            received += await reader.read(2**20)
            while len(received) >= 4 + 16 * 1024:
                assert received[:4] == b"\x82\x7e\x40\x00"  # unmasked, 16 KiB, binary
                del received[: 4 + 16 * 1024]
                echoes += 1
        writer.close()
    # What left the peer: the stream reader's read-ahead (paused beyond read_ahead, plus one
    # socket read of 256 KiB), one read in the parser, and the small kernel buffers.
    assert taken <= 4 * read_ahead + 4 * SMALL_BUFFER + 256 * 1024
    assert echoes == count


# -- python -m rfc6455 serve ----------------------------------------------------------------------


async def test_cli_serve_limit_options(
    raw_peer: PeerFactory, upgrade_request: RequestFactory, echo_testee: Any
) -> None:
    options = ["--max-connections", "1", "--handshake-timeout", "0.3"]
    options += ["--ping-interval", "0.1", "--ping-timeout", "0.2"]
    async with echo_testee(*options) as testee:
        port = testee.port
        holder = await raw_peer(port)
        await holder.request(upgrade_request())  # takes the one slot
        extra = await raw_peer(port)
        status, _, _ = await extra.request(upgrade_request())
        silent = await raw_peer(port)
        silent_answer = await silent.reader.read()
        frames = []
        while (frame := await holder.next_frame()) is not None:
            frames.append(frame)
        for peer in (holder, extra, silent):
            peer.close()
    assert status == 503  # --max-connections 1
    assert silent_answer == b""  # --handshake-timeout: closed without a word
    assert [frame.opcode for frame in frames] == [Opcode.PING, Opcode.CLOSE]  # --ping-*
    assert parse_close_payload(frames[1].payload)[0] == CloseCode.INTERNAL_ERROR
