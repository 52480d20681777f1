"""An exception of our own while reading fails the connection with 1011, for either role.

RFC 6455 §7.4.1: 1011 means the endpoint "encountered an unexpected condition that prevented
it from fulfilling the request". The fault is injected into the codec's state (a frame limit
that is not a number), so the real header parser raises ``TypeError``: the pure-Python one
and the compiled one (``rfc6455.speedups``) each raise their own. The peer gets a Close 1011
with no reason (the details stay in our log), and the log has the traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import pytest

import rfc6455.frame
from rfc6455 import speedups
from rfc6455.client import connect
from rfc6455.connection import Connection
from rfc6455.errors import ConnectionClosed
from rfc6455.frame import Frame, Opcode, parse_close_payload
from rfc6455.handler import WS
from rfc6455.middleware import WebSocket
from rfc6455.server import Server, WsgiHandler

Environ = MutableMapping[str, Any]
PATIENCE = 30

_READERS: dict[str, Callable[..., Any] | None] = {
    "python": rfc6455.frame._read_header_python,
    "compiled": None if speedups.compiled is None else speedups.compiled.read_header,
}


_BATCHES: dict[str, Callable[..., Any] | None] = {
    "python": rfc6455.frame._parse_frames_python,
    "compiled": None if speedups.compiled is None else speedups.compiled.parse_frames,
}
_MESSAGES: dict[str, Callable[..., Any] | None] = {
    "python": rfc6455.frame._parse_messages_python,
    "compiled": None if speedups.compiled is None else speedups.compiled.parse_messages,
}


@pytest.fixture(params=sorted(_READERS))
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The frame parsers in use (header, batch and whole messages): the pure-Python ones or
    the compiled."""
    reader = _READERS[request.param]
    if reader is None:
        pytest.skip("the compiled accelerator is not built here")
    monkeypatch.setattr(rfc6455.frame, "_read_header", reader)
    monkeypatch.setattr(rfc6455.frame, "_parse_frames", _BATCHES[request.param])
    monkeypatch.setattr(rfc6455.frame, "_parse_messages", _MESSAGES[request.param])
    yield request.param


def break_codec(connection: Connection) -> None:
    """Give the frame parser a limit no header parser can compare a length with."""
    connection._parser.max_frame_size = "not a number"  # type: ignore[assignment]


@pytest.mark.parametrize("read", ["events_received", "next_event", "parsed"])
def test_connection_fails_with_1011_on_every_read_api(codec: str, read: str) -> None:
    # The whole-message pass meets the fault first: nothing is consumed or delivered, and
    # the frame-by-frame path that follows it fails the connection.
    connection = Connection()
    break_codec(connection)
    data = Frame(b"hi", Opcode.TEXT, masking_key=b"abcd", final=True).msg * 2
    connection.receive_data(data, parse=read == "parsed")
    if read == "events_received":
        events: list[object] = list(connection.events_received())
    else:
        events = list(connection.events())
    assert [type(event).__name__ for event in events] == ["Closed"]
    assert connection.close_code == 1011 and isinstance(connection.failure, TypeError)
    sent = connection.data_to_send()
    assert sent[:1] == b"\x88" and int.from_bytes(sent[2:4], "big") == 1011


class BreakOnOpen(WS):
    """Breaks its connection's codec as soon as the connection is open."""

    def on_open(self, environ: Environ) -> None:
        break_codec(self.websocket(environ).connection)

    def on_message(self, environ: Environ, message: str | bytes) -> str | bytes:
        return message


class Greeter(WS):
    """Sends one message on open; remembers how the connection ended."""

    def __init__(self) -> None:
        self.close_codes: list[int | None] = []
        self.closed = asyncio.Event()

    def on_open(self, environ: Environ) -> None:
        self.send(environ, "hello")

    def on_close(self, environ: Environ) -> None:
        self.close_codes.append(self.websocket(environ).close_code)
        self.closed.set()


async def test_server_fails_with_1011_when_its_codec_raises(
    codec: str, raw_peer: Any, upgrade_request: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with Server(WsgiHandler([WebSocket(BreakOnOpen())])) as server:
        peer = await raw_peer(server.port)
        status, _, _ = await peer.request(upgrade_request())
        assert status == 101
        peer.send_frame(Frame(b"hello", Opcode.TEXT))
        frame = await asyncio.wait_for(peer.next_frame(), PATIENCE)
        assert frame is not None and frame.opcode == Opcode.CLOSE
        assert parse_close_payload(frame.payload) == (1011, "")  # nothing of the details
        assert await asyncio.wait_for(peer.at_eof(), PATIENCE)
        peer.close()
    failures = [r for r in caplog.records if r.name == "rfc6455.connection"]
    assert len(failures) == 1 and failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is TypeError
    endings = [r.getMessage() for r in caplog.records if r.name == "rfc6455.session"]
    assert any("TypeError" in line and "Close 1011" in line for line in endings), endings


async def test_client_fails_with_1011_when_its_codec_raises(
    codec: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    handler = Greeter()
    async with Server(WsgiHandler([WebSocket(handler)])) as server:
        ws = await connect(server.url)
        break_codec(ws.connection)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), PATIENCE)
        assert closed.value.code == 1011
        await asyncio.wait_for(ws.wait_closed(), PATIENCE)
        await asyncio.wait_for(handler.closed.wait(), PATIENCE)
    assert handler.close_codes == [1011]  # the server received our Close 1011
    failures = [r for r in caplog.records if r.name == "rfc6455.connection"]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert failures[0].exc_info[0] is TypeError
