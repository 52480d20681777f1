"""rfc6455.server (and the session it runs): HTTP/1.1 over h11, upgrades, shutdown, the CLI.

Every test talks to a real server over loopback: a raw TCP peer for bytes a client library
would not send, the websockets client for WebSocket behaviour.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

import rfc6455
from rfc6455.errors import CloseCode
from rfc6455.extensions import ServerPerMessageDeflate
from rfc6455.frame import Frame, Opcode, parse_close_payload
from rfc6455.handler import WS
from rfc6455.http11 import HTTPConnection
from rfc6455.middleware import WebSocket
from rfc6455.readbuffer import receive_buffer
from rfc6455.server import SERVER_SOFTWARE, Server, WsgiHandler, loop_factory
from rfc6455.session import WebSocketSession

Environ = MutableMapping[str, Any]
PeerFactory = Callable[[int], Awaitable[Any]]  # conftest.raw_peer
RequestFactory = Callable[..., bytes]  # conftest.upgrade_request
StartResponse = Callable[..., Any]


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``; pytest-timeout bounds the wait."""
    while not condition():
        await asyncio.sleep(0.01)


class Echo(WS):
    def on_message(self, environ: Environ, message: str | bytes) -> str | bytes:
        return message


def hello(environ: Environ, start_response: StartResponse) -> list[bytes]:
    body = f"hello {environ['PATH_INFO']}?{environ['QUERY_STRING']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def echo_body(environ: Environ, start_response: StartResponse) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


def chain(*apps: Any) -> WsgiHandler:
    return WsgiHandler(middleware=[WebSocket(Echo()), *apps])


# -- plain HTTP ---------------------------------------------------------------------------------


async def test_plain_request_falls_through_to_the_next_app_with_server_header(
    raw_peer: PeerFactory,
) -> None:
    async with Server(chain(hello)) as server:
        peer = await raw_peer(server.port)
        status, headers, body = await peer.request(
            b"GET /a%20b?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        peer.close()
    assert status == 200
    assert body == b"hello /a b?x=1"  # PEP 3333: PATH_INFO is url-decoded
    assert headers["server"] == f"rfc6455/{rfc6455.__version__}" == SERVER_SOFTWARE
    assert "date" in headers


async def test_keep_alive_serves_several_requests_on_one_connection(raw_peer: PeerFactory) -> None:
    async with Server(chain(hello)) as server:
        peer = await raw_peer(server.port)
        first = await peer.request(b"GET /1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        second = await peer.request(b"GET /2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        peer.close()
    assert first[2] == b"hello /1?"
    assert second[2] == b"hello /2?"


async def test_head_response_has_the_get_headers_and_no_body(raw_peer: PeerFactory) -> None:
    async with Server(chain(hello)) as server:
        peer = await raw_peer(server.port)
        peer.writer.write(b"HEAD /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = await peer.reader.readuntil(b"\r\n\r\n")
        # Were a body sent after the HEAD response, this response would not parse.
        status, _headers, body = await peer.request(b"GET /y HTTP/1.1\r\nHost: localhost\r\n\r\n")
        peer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: 9\r\n" in head.lower()
    assert (status, body) == (200, b"hello /y?")


async def test_generator_body_without_length_is_sent_chunked(raw_peer: PeerFactory) -> None:
    def stream(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"one,"
        yield b""
        yield b"two"

    async with Server(WsgiHandler(middleware=[stream])) as server:
        peer = await raw_peer(server.port)
        status, headers, body = await peer.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        peer.close()
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"one,two"


async def test_start_response_may_be_called_at_the_first_chunk(raw_peer: PeerFactory) -> None:
    def late(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("203 Non-Authoritative Information", [])
        yield b"late"

    async with Server(late) as server:
        peer = await raw_peer(server.port)
        status, _headers, body = await peer.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        peer.close()
    assert (status, body) == (203, b"late")


async def test_empty_chain_answers_404(raw_peer: PeerFactory) -> None:
    async with Server(WsgiHandler()) as server:
        peer = await raw_peer(server.port)
        status, _headers, _body = await peer.request(b"GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n")
        peer.close()
    assert status == 404


async def test_app_exception_answers_500_without_traceback(raw_peer: PeerFactory) -> None:
    def broken(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise RuntimeError("secret detail")

    async with Server(broken) as server:
        peer = await raw_peer(server.port)
        status, _headers, body = await peer.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        # The connection is still usable afterwards.
        again, _, _ = await peer.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        peer.close()
    assert status == again == 500
    assert b"secret" not in body
    assert b"Traceback" not in body


async def test_request_body_reaches_wsgi_input(raw_peer: PeerFactory) -> None:
    async with Server(echo_body) as server:
        peer = await raw_peer(server.port)
        status, _headers, body = await peer.request(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde"
        )
        chunked = await peer.request(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nfoo\r\n3\r\nbar\r\n0\r\n\r\n"
        )
        peer.close()
    assert (status, body) == (200, b"abcde")
    assert chunked[2] == b"foobar"


async def test_bodiless_requests_read_nothing_even_after_an_app_closed_its_input(
    raw_peer: PeerFactory,
) -> None:
    def read_then_close(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        body = stream.read() + stream.readline() + b"".join(stream.readlines()) + b"".join(stream)
        stream.close()  # PEP 3333 does not forbid it; the next request must not notice
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    async with Server(read_then_close) as server:
        peer = await raw_peer(server.port)
        first = await peer.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        second = await peer.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        posted = await peer.request(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok")
        third = await peer.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        peer.close()
    assert [(status, body) for status, _, body in (first, second, posted, third)] == [
        (200, b""),
        (200, b""),
        (200, b"ok"),  # a body is the request's own, whatever came before
        (200, b""),
    ]


async def test_expect_100_continue_gets_100_before_the_body(raw_peer: PeerFactory) -> None:
    async with Server(echo_body) as server:
        peer = await raw_peer(server.port)
        peer.writer.write(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await peer.reader.readuntil(b"\r\n\r\n")
        status, _headers, body = await peer.request(b"xyz")
        peer.close()
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert (status, body) == (200, b"xyz")


async def test_body_over_the_limit_gets_413(raw_peer: PeerFactory) -> None:
    async with Server(echo_body, max_body_size=10) as server:
        peer = await raw_peer(server.port)
        status, _headers, _body = await peer.request(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"
        )
        assert await peer.at_eof()
    assert status == 413


async def test_malformed_request_gets_400_and_close(raw_peer: PeerFactory) -> None:
    async with Server(hello) as server:
        peer = await raw_peer(server.port)
        status, _headers, _body = await peer.request(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
        assert await peer.at_eof()
    assert status == 400


async def test_repeated_headers_are_joined_and_underscore_names_dropped(
    raw_peer: PeerFactory,
) -> None:
    seen: dict[str, Any] = {}

    def record(environ: Environ, start_response: StartResponse) -> list[bytes]:
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    async with Server(record) as server:
        peer = await raw_peer(server.port)
        await peer.request(
            b"GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\n"
            b"Cookie: x=1\r\nCookie: y=2\r\nX_Smuggled: 1\r\n\r\n"
        )
        peer.close()
    assert seen["HTTP_ACCEPT"] == "a, b"
    assert seen["HTTP_COOKIE"] == "x=1; y=2"
    assert "HTTP_X_SMUGGLED" not in seen
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert seen["SERVER_SOFTWARE"] == SERVER_SOFTWARE


# -- the upgrade --------------------------------------------------------------------------------


async def test_101_without_a_session_from_the_middleware_is_500(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    def fake_upgrade(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("101 Switching Protocols", [("Upgrade", "websocket")])
        return []

    async with Server(fake_upgrade) as server:
        peer = await raw_peer(server.port)
        status, _headers, _body = await peer.request(upgrade_request())
        peer.close()
    assert status == 500


async def test_101_carries_the_server_header(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    async with Server(chain()) as server:
        peer = await raw_peer(server.port)
        status, headers, _body = await peer.request(upgrade_request())
        peer.close()
    assert status == 101
    assert headers["server"] == SERVER_SOFTWARE


async def test_frames_sent_with_the_request_reach_the_connection(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    # Bytes after the request that the HTTP parser already buffered (h11's trailing_data)
    # are the start of the WebSocket stream.
    async with Server(chain()) as server:
        peer = await raw_peer(server.port)
        frame = Frame("early", Opcode.TEXT, final=True, masking_key=os.urandom(4))
        status, _headers, _body = await peer.request(upgrade_request() + frame.build_frame())
        echoed = await peer.next_frame()
        peer.close()
    assert status == 101
    assert echoed is not None
    assert (echoed.opcode, echoed.payload) == (Opcode.TEXT, b"early")


async def test_connections_reading_at_once_each_get_their_own_bytes() -> None:
    # Every connection of a thread reads into one shared buffer (rfc6455.readbuffer):
    # messages larger than it, from several clients at once, interleave their reads.
    # Each must come back whole and unmixed, through the handshake and the session.
    size = 700 * 1024

    async def round_trip(port: int, fill: int) -> bytes:
        async with connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
            await ws.send(bytes([fill]) * size)
            reply = await ws.recv()
            assert isinstance(reply, bytes)
            return reply

    async with Server(chain()) as server:
        replies = await asyncio.gather(*(round_trip(server.port, fill) for fill in range(6)))
    assert [reply == bytes([fill]) * size for fill, reply in enumerate(replies)] == [True] * 6


async def test_hook_error_closes_with_1011_and_hides_the_details(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    class Broken(WS):
        def on_message(self, environ: Environ, message: str | bytes) -> None:
            raise ValueError("secret detail")

    async with Server(WsgiHandler(middleware=[WebSocket(Broken())])) as server:
        peer = await raw_peer(server.port)
        await peer.request(upgrade_request())
        peer.send_frame(Frame("boom", Opcode.TEXT, final=True))
        close = await peer.next_frame()
        peer.close()
    assert close is not None
    assert close.opcode == Opcode.CLOSE
    # RFC 6455 §7.4.1: 1011, an unexpected condition; the reason tells the peer nothing.
    assert parse_close_payload(close.payload) == (CloseCode.INTERNAL_ERROR, "")


async def test_coroutine_replies_keep_the_order_of_the_messages(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    class Slow(WS):
        async def on_message(self, environ: Environ, message: str | bytes) -> str | bytes:
            # The first message waits longest: a shell that did not await in order would
            # answer it last.
            assert isinstance(message, str)
            for _ in range(5 - len(message)):
                await asyncio.sleep(0)
            return message

    async with Server(WsgiHandler(middleware=[WebSocket(Slow())])) as server:
        peer = await raw_peer(server.port)
        await peer.request(upgrade_request())
        for text in ("a", "bb", "ccc"):
            peer.send_frame(Frame(text, Opcode.TEXT, final=True))
        replies = [await peer.next_frame() for _ in range(3)]
        peer.close()
    assert [frame.payload for frame in replies if frame is not None] == [b"a", b"bb", b"ccc"]


async def test_hooks_run_in_protocol_order() -> None:
    calls: list[tuple[str, Any]] = []
    closed = asyncio.Event()

    class Recorder(WS):
        def on_open(self, environ: Environ) -> None:
            calls.append(("open", self.websocket(environ).subprotocol))

        def on_message(self, environ: Environ, message: str | bytes) -> None:
            calls.append(("message", message))

        def on_ping(self, environ: Environ, payload: bytes) -> None:
            calls.append(("ping", payload))

        async def on_close(self, environ: Environ) -> None:
            calls.append(("close", self.websocket(environ).close_code))
            closed.set()

    async with Server(WsgiHandler(middleware=[WebSocket(Recorder())])) as server:
        async with connect(server.url) as client:
            await client.send("one")
            await client.send(b"two")
            await (await client.ping(b"p"))
        await asyncio.wait_for(closed.wait(), 10)
    assert calls == [
        ("open", None),
        ("message", "one"),
        ("message", b"two"),
        ("ping", b"p"),
        ("close", 1000),
    ]


async def test_hooks_see_the_peer_address_and_the_negotiated_protocol_and_extensions() -> None:
    seen: list[Any] = []

    class Chat(WS):
        subprotocols = ("chat",)

        def on_open(self, environ: Environ) -> None:
            session = self.websocket(environ)
            assert isinstance(session, WebSocketSession)
            names = [extension.name for extension in session.extensions]
            seen.append((session.subprotocol, names, environ["REMOTE_ADDR"]))
            seen.append(environ["REMOTE_PORT"])

    app = WsgiHandler([WebSocket(Chat(), extensions=[ServerPerMessageDeflate()])])
    async with (
        Server(app) as server,
        connect(server.url, subprotocols=[Subprotocol("chat")]) as client,
    ):
        local_port = client.local_address[1]
        await client.send("ping")  # on_open has run once the server reads this
        await client.ping()
    assert seen == [("chat", ["permessage-deflate"], "127.0.0.1"), str(local_port)]


async def test_session_sends_outside_hooks_and_on_pong_sees_the_answer() -> None:
    pongs: list[bytes] = []

    class Pusher(WS):
        def on_open(self, environ: Environ) -> None:
            session = self.websocket(environ)

            async def push() -> None:
                await asyncio.sleep(0)
                session.send("pushed")
                session.ping(b"hb")
                await session.drain()

            environ["push"] = asyncio.get_running_loop().create_task(push())

        def on_pong(self, environ: Environ, payload: bytes) -> None:
            pongs.append(payload)
            self.close(environ, "done", code=4000)

    async with Server(WsgiHandler(middleware=[WebSocket(Pusher())])) as server:
        async with connect(server.url) as client:
            assert await client.recv() == "pushed"
            with pytest.raises(ConnectionClosed):  # the server closes after the pong
                await client.recv()
        assert client.close_code == 4000
        assert client.close_reason == "done"
    assert pongs == [b"hb"]


async def test_message_over_the_limit_closes_with_1009() -> None:
    app = WsgiHandler(middleware=[WebSocket(Echo(), max_message_size=1000)])
    async with Server(app) as server:
        async with connect(server.url) as client:
            await client.send("x" * 1001)
            with pytest.raises(ConnectionClosed):  # the connection is closed
                await client.recv()
        # RFC 6455 §7.4.1: 1009, "a message that is too big for it to process".
        assert client.close_code == CloseCode.MESSAGE_TOO_BIG


# -- closing and shutdown ---------------------------------------------------------------------


async def test_server_closes_tcp_after_the_closing_handshake(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    async with Server(chain()) as server:
        peer = await raw_peer(server.port)
        await peer.request(upgrade_request())
        peer.send_frame(Frame.close(1000, "bye"))
        answer = await peer.next_frame()
        # RFC 6455 §7.1.1: the server closes the TCP connection first.
        assert await peer.at_eof()
    assert answer is not None
    assert parse_close_payload(answer.payload)[0] == 1000


async def test_peer_that_never_answers_close_is_dropped_after_the_closing_timeout(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    class Closer(WS):
        def on_open(self, environ: Environ) -> None:
            self.close(environ, "go away", code=4001)

    app = WsgiHandler(middleware=[WebSocket(Closer())])
    async with Server(app, closing_timeout=0.2) as server:
        peer = await raw_peer(server.port)
        await peer.request(upgrade_request())
        close = await peer.next_frame()
        # We never answer: the server must drop TCP on its own.
        assert await asyncio.wait_for(peer.at_eof(), 30)
    assert close is not None
    assert parse_close_payload(close.payload) == (4001, "go away")


async def test_shutdown_sends_1001_to_open_websockets() -> None:
    closed_codes: list[int | None] = []

    class Track(Echo):
        def on_close(self, environ: Environ) -> None:
            closed_codes.append(self.websocket(environ).close_code)

    server = Server(WsgiHandler(middleware=[WebSocket(Track())]))
    await server.start()
    async with connect(server.url) as client:
        await client.send("hi")
        assert await client.recv() == "hi"
        assert len(server.sessions) == 1
        assert isinstance(server.sessions[0], WebSocketSession)
        await server.close()
        with pytest.raises(ConnectionClosed):  # closed by the server
            await client.recv()
    # RFC 6455 §7.4.1: 1001, "a server going down".
    assert client.close_code == CloseCode.GOING_AWAY
    assert closed_codes == [CloseCode.GOING_AWAY]


async def test_a_websocket_upgraded_during_shutdown_gets_1001_and_is_waited_for(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    server = Server(chain())
    await server.start()
    peer = await raw_peer(server.port)
    request = upgrade_request()
    peer.writer.write(request[:10])  # a request in progress is not cut off by the shutdown
    await until(lambda: any(conn.received for conn in server._connections))
    closing = asyncio.create_task(server.close())
    await until(lambda: server.closing)
    status, _headers, _body = await peer.request(request[10:])
    close = await peer.next_frame()
    assert not closing.done()  # waiting for this very session to end
    peer.send_frame(Frame.close(1001))
    assert await peer.at_eof()
    await asyncio.wait_for(closing, 30)
    assert status == 101
    assert close is not None and parse_close_payload(close.payload)[0] == CloseCode.GOING_AWAY
    assert not server.sessions


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_an_upgraded_connection_keeps_nothing_of_its_http_side_nor_a_buffer_method(
    loop: str,
) -> None:
    # uvloop keeps the old protocol's data_received after set_protocol, unless the new one
    # has its own: the HTTP connection has none, so nothing of it outlives the upgrade.
    # It keeps the protocol's get_buffer too: every session's is the thread's one object.
    alive: list[object] = []

    async def main() -> None:
        async with Server(chain()) as server, connect(server.url) as client:
            await client.send("up")
            assert await client.recv() == "up"
            gc.collect()
            alive.append(sum(isinstance(o, HTTPConnection) for o in gc.get_objects()))
            alive.append(len(server.sessions))
            alive.append(server.sessions[0].get_buffer is receive_buffer())

    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        runner.run(main())
    assert alive == [0, 1, True]


async def test_shutdown_closes_idle_keep_alive_connections(raw_peer: PeerFactory) -> None:
    server = Server(hello)
    await server.start()
    peer = await raw_peer(server.port)
    status, _headers, _body = await peer.request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    await server.close()
    assert status == 200
    assert await asyncio.wait_for(peer.at_eof(), 30)


# -- python -m rfc6455 serve ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "loop", "runs_on"),
    [
        (signal.SIGTERM, "auto", "uvloop"),  # uvloop is installed here
        (signal.SIGINT, "auto", "uvloop"),
        (signal.SIGTERM, "asyncio", "asyncio"),
        (signal.SIGINT, "asyncio", "asyncio"),
    ],
)
async def test_cli_serve_echoes_and_stops_cleanly_on_signal(
    stop: signal.Signals, loop: str, runs_on: str, echo_testee: Any
) -> None:
    async with echo_testee("--loop", loop, "--log-level", "DEBUG", stderr=True) as testee:
        process, line = testee.process, testee.line
        assert line.startswith("serving on ws://127.0.0.1:")
        url = line.removeprefix("serving on ")
        assert int(url.rsplit(":", 1)[1]) > 0
        async with connect(url + "/any/path", max_size=None) as client:
            # permessage-deflate (RFC 7692) is on by default: the client's offer is accepted.
            assert [ext.name for ext in client.protocol.extensions] == ["permessage-deflate"]
            await client.send("text")
            assert await client.recv() == "text"
            await client.send(b"\x00binary")
            assert await client.recv() == b"\x00binary"
            process.send_signal(stop)
            with pytest.raises(ConnectionClosed):  # the server is going away
                await client.recv()
        assert client.close_code == CloseCode.GOING_AWAY
        assert await asyncio.wait_for(process.wait(), 60) == 0
        assert process.stderr is not None
        assert f"event loop: {runs_on}" in (await process.stderr.read()).decode()


async def test_cli_serve_max_size_limits_messages(echo_testee: Any) -> None:
    async with echo_testee("--max-size", "100", "--no-deflate") as testee:
        line = testee.line
        async with connect(line.removeprefix("serving on ")) as client:
            assert client.protocol.extensions == []
            await client.send(b"x" * 100)
            assert await client.recv() == b"x" * 100
            await client.send(b"x" * 101)
            with pytest.raises(ConnectionClosed):  # closed with 1009
                await client.recv()
        assert client.close_code == CloseCode.MESSAGE_TOO_BIG


def test_the_loop_is_uvloop_where_installed_unless_asyncio_is_asked_for() -> None:
    import uvloop

    from rfc6455.server import loop_factory

    assert loop_factory() is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("asyncio") is None
    with pytest.raises(ValueError, match="unknown event loop 'trio'"):
        loop_factory("trio")
