"""rfc6455.client over loopback: against our server, websockets' server, and a raw peer.

The raw peer (an asyncio server speaking bytes) provokes what a well-behaved server never
sends: a bad frame right after a valid message, a handshake that never finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import pytest
import websockets.asyncio.server as ws_server
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from rfc6455.client import ClientConnection, connect, parse_url
from rfc6455.errors import CloseCode, ConnectionClosed, HandshakeError, InvalidState
from rfc6455.extensions import PerMessageDeflate, ServerPerMessageDeflate
from rfc6455.frame import Frame, FrameParser, Opcode, Role
from rfc6455.handler import WS, Headers
from rfc6455.handshake import accept_key
from rfc6455.middleware import WebSocket
from rfc6455.server import Server, WsgiHandler

Environ = MutableMapping[str, Any]


class ServerSide(WS):
    """Our server's handler: echoes, and acts on a few command messages."""

    subprotocols = ("chat.v2", "chat.v1")

    def __init__(self) -> None:
        self.closed: asyncio.Future[tuple[int | None, str | None]] | None = None

    def on_handshake(self, environ: Environ, headers: Headers) -> Headers | None:
        if environ["PATH_INFO"] == "/forbidden":
            raise HandshakeError("no WebSocket here", status=403)
        return headers

    def on_message(self, environ: Environ, message: str | bytes) -> str | bytes | None:
        ws = self.websocket(environ)
        if message == "send three then close 4000":
            for n in range(3):
                ws.send(f"message {n}")
            ws.close(4000, "done")
            return None
        if message == "send 5000 bytes":
            return b"x" * 5000
        return message

    def on_close(self, environ: Environ) -> None:
        ws = self.websocket(environ)
        if self.closed is not None and not self.closed.done():
            self.closed.set_result((ws.close_code, ws.close_reason))


@contextlib.asynccontextmanager
async def reference_server() -> AsyncIterator[tuple[Server, ServerSide]]:
    handler = ServerSide()
    handler.closed = asyncio.get_running_loop().create_future()
    extensions = [ServerPerMessageDeflate()]
    app = WsgiHandler(middleware=[WebSocket(handler, extensions, max_message_size=2**24)])
    async with Server(app) as server:
        yield server, handler


# -- against our own server ----------------------------------------------------------------


async def test_client_echoes_text_and_binary_through_reference_server() -> None:
    async with reference_server() as (server, _), connect(server.url) as ws:
        await ws.send("héllo wörld ✓")
        assert await ws.recv() == "héllo wörld ✓"
        await ws.send(bytes(range(256)) * 100)
        assert await ws.recv() == bytes(range(256)) * 100
        await ws.send(bytearray(b"\x00\xff"))
        assert await ws.recv() == b"\x00\xff"


async def test_client_offers_permessage_deflate_by_default() -> None:
    async with reference_server() as (server, _):
        async with connect(server.url) as ws:
            assert [type(ext) for ext in ws.extensions] == [PerMessageDeflate]
            text = "compressible " * 10_000
            await ws.send(text)
            assert await ws.recv() == text
        async with connect(server.url, extensions=()) as ws:
            assert ws.extensions == []


async def test_client_gets_the_subprotocol_the_server_selected() -> None:
    async with reference_server() as (server, _):
        async with connect(server.url, subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v1"  # the client's preference wins
        async with connect(server.url, subprotocols=["other"]) as ws:
            assert ws.subprotocol is None


async def test_client_ping_is_answered_by_a_pong() -> None:
    async with reference_server() as (server, _), connect(server.url) as ws:
        round_trip = await ws.ping(b"are you there")
        assert round_trip >= 0
        await ws.ping()  # a random payload by default
        with pytest.raises(ValueError, match="125"):
            ws.ping(b"x" * 126)


async def test_client_close_sends_code_and_reason() -> None:
    async with reference_server() as (server, handler):
        ws = await connect(server.url)
        await ws.close(4001, "going home")
        assert ws.closed
        assert ws.close_code == 4001  # the server echoed our code (RFC 6455 §5.5.1)
        assert handler.closed is not None
        assert await handler.closed == (4001, "going home")
        with pytest.raises(ConnectionClosed):
            ws.send("too late")
        with pytest.raises(ConnectionClosed):
            await ws.recv()


async def test_client_iteration_ends_when_the_server_closes() -> None:
    async with reference_server() as (server, _), connect(server.url) as ws:
        await ws.send("send three then close 4000")
        received = [message async for message in ws]
        assert received == ["message 0", "message 1", "message 2"]
        assert ws.close_code == 4000
        assert ws.close_reason == "done"


async def test_client_fails_a_message_over_its_limit_with_1009() -> None:
    async with reference_server() as (server, _):
        ws = await connect(server.url, max_message_size=1000)
        await ws.send("send 5000 bytes")
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
        assert caught.value.code == CloseCode.MESSAGE_TOO_BIG
        await ws.wait_closed()


async def test_client_refused_handshake_raises_handshake_error() -> None:
    async with reference_server() as (server, _):
        with pytest.raises(HandshakeError, match="403"):
            await connect(server.url + "/forbidden")


class ClientSide(WS):
    """Client-side hooks: greet on open, count replies, close after the third."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_open(self, environ: Environ) -> None:
        self.events.append("open")
        self.send(environ, "1")

    async def on_message(self, environ: Environ, message: str | bytes) -> str | None:
        self.events.append(f"message {message!r}")
        await asyncio.sleep(0)  # a coroutine hook is awaited before the next event
        if message == "3":
            self.close(environ, "enough", code=4002)
            return None
        assert isinstance(message, str)
        return str(int(message) + 1)

    def on_close(self, environ: Environ) -> None:
        self.events.append(f"close {self.websocket(environ).close_code}")
        self.done.set_result(None)


async def test_client_runs_handler_hooks_like_the_server_side() -> None:
    async with reference_server() as (server, handler):
        hooks = ClientSide()
        ws = await connect(server.url, handler=hooks)
        assert isinstance(ws.environ["rfc6455.websocket"], ClientConnection)
        with pytest.raises(InvalidState):
            await ws.recv()
        await hooks.done
        await ws.wait_closed()
        assert hooks.events == ["open", "message '1'", "message '2'", "message '3'", "close 4002"]
        assert handler.closed is not None
        assert await handler.closed == (4002, "enough")


# -- against websockets' server -------------------------------------------------------------


async def websockets_echo(connection: ws_server.ServerConnection) -> None:
    with contextlib.suppress(WsConnectionClosed):
        async for message in connection:
            if message == "close please":
                await connection.close(4003, "as asked")
                return
            await connection.send(message)


@contextlib.asynccontextmanager
async def websockets_server(**options: Any) -> AsyncIterator[str]:
    async with ws_server.serve(websockets_echo, "127.0.0.1", 0, **options) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_client_talks_to_websockets_server_with_compression() -> None:
    async with websockets_server(compression="deflate", max_size=2**24) as url:
        async with connect(url) as ws:
            assert [type(ext) for ext in ws.extensions] == [PerMessageDeflate]
            for size in (0, 125, 126, 65535, 65536, 2**20):
                payload = bytes(n % 251 for n in range(size))
                await ws.send(payload)
                assert await ws.recv() == payload
            await ws.send("text ✓" * 1000)
            assert await ws.recv() == "text ✓" * 1000
            await ws.ping(b"ping")
        assert ws.close_code == CloseCode.NORMAL


async def test_client_sees_websockets_server_close_code() -> None:
    async with websockets_server(compression=None) as url, connect(url) as ws:
        assert ws.extensions == []  # the server declined the offer
        await ws.send("close please")
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
        assert (caught.value.code, caught.value.reason) == (4003, "as asked")


# -- against a raw peer ----------------------------------------------------------------------

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, FrameParser], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(after_handshake: RawHandler | None) -> AsyncIterator[str]:
    """A server that answers the upgrade by hand (or never, without `after_handshake`)."""
    tasks: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if after_handshake is None:
                await reader.read()  # never answer
                return
            key = next(
                line.split(":", 1)[1].strip()
                for line in head.decode("latin-1").split("\r\n")
                if line.lower().startswith("sec-websocket-key:")
            )
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n"
                + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode("latin-1")
            )
            await after_handshake(reader, writer, FrameParser(13, Role.SERVER))
        finally:
            # Also when the test is over first and cancels this task: no socket outlives it.
            writer.close()

    def start(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.append(asyncio.get_running_loop().create_task(serve(reader, writer)))

    server = await asyncio.start_server(start, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def read_frames(reader: asyncio.StreamReader, parser: FrameParser) -> list[Frame]:
    """Client frames until (and including) its Close, or until TCP ends."""
    frames: list[Frame] = []
    while True:
        frame = parser.next_frame()
        if frame is not None:
            frames.append(frame)
            if frame.opcode == Opcode.CLOSE:
                return frames
            continue
        data = await reader.read(65536)
        if not data:
            return frames
        parser.feed(data)


async def test_client_echo_of_a_valid_message_precedes_the_close_for_a_bad_frame() -> None:
    seen: asyncio.Future[list[Frame]] = asyncio.get_running_loop().create_future()

    async def peer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: FrameParser
    ) -> None:
        # RFC 6455 §5.2: opcode 0x3 is reserved; a message, then that frame, in one write.
        writer.write(Frame(b"valid", Opcode.TEXT, final=True).build_frame() + b"\x83\x00")
        seen.set_result(await read_frames(reader, parser))
        writer.write(Frame.close(1002).build_frame())

    async with raw_server(peer) as url, connect(url, extensions=()) as ws:
        async for message in ws:
            await ws.send(message)
        frames = await seen
        assert [(f.opcode, f.payload) for f in frames[:1]] == [(Opcode.TEXT, b"valid")]
        assert frames[-1].opcode == Opcode.CLOSE
        assert frames[-1].payload[:2] == (1002).to_bytes(2, "big")
        assert ws.close_code == CloseCode.PROTOCOL_ERROR


async def test_client_masks_every_frame() -> None:
    seen: asyncio.Future[list[Frame]] = asyncio.get_running_loop().create_future()

    async def peer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: FrameParser
    ) -> None:
        # The server-role parser refuses unmasked frames (RFC 6455 §5.1), so parsing at all
        # shows the client masked them.
        seen.set_result(await read_frames(reader, parser))
        writer.write(Frame.close(1000).build_frame())

    async with raw_server(peer) as url, connect(url, extensions=()) as ws:
        await ws.send("one")
        await ws.send(b"two")
        await ws.close()
    frames = await seen
    assert [(f.opcode, f.payload) for f in frames] == [
        (Opcode.TEXT, b"one"),
        (Opcode.BINARY, b"two"),
        (Opcode.CLOSE, (1000).to_bytes(2, "big")),
    ]


async def test_client_open_timeout_bounds_a_silent_server() -> None:
    async with raw_server(None) as url:
        with pytest.raises(TimeoutError):
            await connect(url, open_timeout=0.3)


# -- URLs ------------------------------------------------------------------------------------


def test_client_url_defaults_follow_rfc6455_section_3() -> None:
    target = parse_url("ws://example.com")
    assert (target.host, target.port, target.resource, target.host_header) == (
        "example.com",
        80,
        "/",
        "example.com",
    )
    secure = parse_url("wss://example.com:8443/chat?room=1")
    assert (secure.secure, secure.port, secure.resource, secure.host_header) == (
        True,
        8443,
        "/chat?room=1",
        "example.com:8443",
    )
    assert parse_url("ws://[::1]:9000/").host_header == "[::1]:9000"


@pytest.mark.parametrize(
    "url", ["http://example.com/", "ws://example.com/#fragment", "ws:///path", "ws://u:p@host/"]
)
def test_client_refuses_urls_that_are_not_websocket_uris(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


class FailingHook(WS):
    def on_message(self, environ: Environ, message: str | bytes) -> None:
        raise RuntimeError("a bug in the application")


async def test_client_hook_that_raises_closes_with_1011() -> None:
    async with reference_server() as (server, handler):
        ws = await connect(server.url, handler=FailingHook())
        ws.send("anything")  # the echo reaches the raising hook
        await ws.wait_closed()
        assert ws.close_code == CloseCode.INTERNAL_ERROR
        assert handler.closed is not None
        assert await handler.closed == (CloseCode.INTERNAL_ERROR, "")
