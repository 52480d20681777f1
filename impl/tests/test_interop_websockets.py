"""rfc6455's server against another library's client: websockets' asyncio client, loopback.

Also the documented snippet: a ``WS`` subclass behind ``WebSocket(handle=...)`` in a
``WsgiHandler`` chain, served by the built-in server, talking to a browser-style client.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from rfc6455.errors import HandshakeError
from rfc6455.handler import WS, Headers
from rfc6455.middleware import WebSocket
from rfc6455.server import SERVER_SOFTWARE, Server, WsgiHandler

Environ = MutableMapping[str, Any]
PeerFactory = Callable[[int], Awaitable[Any]]  # conftest.raw_peer
RequestFactory = Callable[..., bytes]  # conftest.upgrade_request


class Echo(WS):
    subprotocols = ("chat.v2", "chat.v1")

    def on_message(self, environ: Environ, message: str | bytes) -> str | bytes:
        return message

    def on_handshake(self, environ: Environ, headers: Headers) -> Headers | None:
        if environ["PATH_INFO"] == "/forbidden":
            raise HandshakeError("this path takes no WebSocket", status=400)
        return headers


def page(environ: Environ, start_response: Callable[..., Any]) -> list[bytes] | None:
    if environ["PATH_INFO"] != "/page":
        return None
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"plain page"]


def make_server(**options: Any) -> Server:
    app = WsgiHandler(middleware=[WebSocket(Echo(), max_message_size=2**24), page])
    return Server(app, **options)


async def test_text_message_echoes_as_text() -> None:
    async with make_server() as server, connect(server.url) as client:
        await client.send("héllo wörld ✓")
        assert await client.recv() == "héllo wörld ✓"


async def test_binary_message_echoes_as_binary() -> None:
    payload = bytes(range(256)) * 4
    async with make_server() as server, connect(server.url) as client:
        await client.send(payload)
        assert await client.recv() == payload


async def test_empty_messages_echo() -> None:
    async with make_server() as server, connect(server.url) as client:
        await client.send("")
        assert await client.recv() == ""
        await client.send(b"")
        assert await client.recv() == b""


async def test_large_binary_message_of_8_mib_echoes() -> None:
    payload = bytes(range(256)) * (8 * 2**20 // 256)
    async with make_server() as server, connect(server.url, max_size=None) as client:
        await client.send(payload)
        assert await client.recv() == payload


async def test_fragmented_messages_are_reassembled() -> None:
    async with make_server() as server, connect(server.url) as client:
        # An iterable is sent as one message in several frames (RFC 6455 §5.4).
        await client.send(["frag", "ment", "ed ✓"])
        assert await client.recv() == "fragmented ✓"
        await client.send([b"\x00", b"\x01" * 70000, b"\x02"])
        assert await client.recv() == b"\x00" + b"\x01" * 70000 + b"\x02"


async def test_4_mib_message_in_64_kib_fragments_echoes() -> None:
    # Autobahn 9.4.x: frame boundaries fall anywhere in the server's reads, so the parser
    # often holds a frame header whose payload is still arriving.
    payload = bytes(range(256)) * (4 * 2**20 // 256)
    chunks = [payload[i : i + 65536] for i in range(0, len(payload), 65536)]
    async with make_server() as server, connect(server.url, max_size=None) as client:
        await client.send(chunks)
        assert await client.recv() == payload


async def test_many_messages_keep_their_order() -> None:
    async with make_server() as server, connect(server.url) as client:
        for index in range(200):
            await client.send(str(index))
        assert [await client.recv() for _ in range(200)] == [str(i) for i in range(200)]


async def test_ping_is_answered_with_pong_carrying_the_payload() -> None:
    async with make_server() as server, connect(server.url) as client:
        # RFC 6455 §5.5.3: the Pong has "identical Application data" to the Ping; websockets
        # only resolves the waiter for a Pong with this payload.
        latency = await asyncio.wait_for(await client.ping(b"payload-123"), 10)
        assert latency >= 0


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1008, 1011, 3000, 4000, 4999])
async def test_close_code_is_echoed(code: int) -> None:
    async with make_server() as server:
        client = await connect(server.url)
        await client.close(code, "bye")
        # RFC 6455 §5.5.1: the answering Close "typically echos the status code it received".
        assert client.protocol.close_rcvd is not None
        assert client.protocol.close_rcvd.code == code


async def test_refused_handshake_gets_400_with_the_reason() -> None:
    async with make_server() as server:
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url + "/forbidden")
    assert refused.value.response.status_code == 400
    assert b"this path takes no WebSocket" in refused.value.response.body


async def test_bad_version_gets_426_naming_13(
    raw_peer: PeerFactory, upgrade_request: RequestFactory
) -> None:
    # websockets cannot send another version; a raw request does.
    request = upgrade_request().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8")
    async with make_server() as server:
        peer = await raw_peer(server.port)
        status, headers, body = await peer.request(request)
        peer.close()
    assert status == 426
    assert headers["sec-websocket-version"] == "13"
    assert b"13" in body


async def test_plain_http_falls_through_to_the_next_app() -> None:
    async with make_server() as server:
        base = f"http://127.0.0.1:{server.port}"

        def fetch(path: str) -> tuple[int, str, bytes]:
            try:
                with urllib.request.urlopen(base + path, timeout=30) as response:
                    return response.status, response.headers["Server"], response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.headers["Server"], error.read()

        found = await asyncio.to_thread(fetch, "/page")
        missing = await asyncio.to_thread(fetch, "/nowhere")
    assert found == (200, SERVER_SOFTWARE, b"plain page")
    assert missing[:2] == (404, SERVER_SOFTWARE)


async def test_subprotocol_is_negotiated() -> None:
    async with make_server() as server:
        async with connect(server.url, subprotocols=["chat.v1", "chat.v2"]) as client:  # type: ignore[list-item]
            assert client.subprotocol == "chat.v1"
        async with connect(server.url, subprotocols=["other"]) as client:  # type: ignore[list-item]
            assert client.subprotocol is None


async def test_message_over_the_limit_gets_1009() -> None:
    async with make_server() as server:
        # Not ``async with connect``: its exit closes again a connection the server ended,
        # and websockets' abort() of a transport asyncio already closed raises on 3.11.
        client = await connect(server.url, max_size=None)
        with pytest.raises(ConnectionClosed):  # the server may fail it before the send ends
            await client.send(b"x" * (2**24 + 1))
            await client.recv()
    assert client.close_code == 1009


# -- the documented snippet -------------------------------------------------------------------


async def test_documented_snippet_echoes_a_browser_style_client() -> None:
    events: list[str] = []

    # ---- the snippet (README) ----
    class Chat(WS):
        def on_open(self, environ: Environ) -> None:
            self.send(environ, "welcome")

        def on_message(self, environ: Environ, message: str | bytes) -> str | bytes:
            return message  # echo: text as text, binary as binary

        def on_close(self, environ: Environ) -> None:
            events.append("closed")

    def home(environ: Environ, start_response: Callable[..., Any]) -> list[bytes] | None:
        if environ["PATH_INFO"] != "/":
            return None  # not mine: the next middleware (or a 404) answers
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    app = WsgiHandler(middleware=[WebSocket(handle=Chat()), home])
    # ---- end of snippet; ``rfc6455.server.run(app, port=8000)`` serves it until Ctrl-C ----

    async with Server(app) as server:
        browser_headers = {
            "Origin": f"http://127.0.0.1:{server.port}",
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Accept-Language": "en-US,en;q=0.9",
        }
        async with connect(
            server.url + "/chat",
            origin=f"http://127.0.0.1:{server.port}",  # type: ignore[arg-type]
            user_agent_header="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
            additional_headers={k: v for k, v in browser_headers.items() if k != "Origin"},
            compression="deflate",  # offers permessage-deflate, as browsers do
        ) as client:
            assert await client.recv() == "welcome"
            await client.send("hi from the browser")
            assert await client.recv() == "hi from the browser"
            await client.send(b"\x89PNG")
            assert await client.recv() == b"\x89PNG"
            # No extension was configured: the offer is declined, and the client goes on
            # without compression (RFC 6455 §9.1).
            assert client.response is not None
            assert client.response.headers.get("Sec-WebSocket-Extensions") is None
    assert events == ["closed"]
