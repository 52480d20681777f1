"""rfc6455.handler: the WS hooks' defaults, and send/ping/close through the environ."""

from __future__ import annotations

from typing import Any

import pytest

from rfc6455.connection import State
from rfc6455.errors import InvalidState
from rfc6455.frame import FrameParser, Opcode, Role, parse_close_payload
from rfc6455.handler import WEBSOCKET_KEY, WS
from rfc6455.session import WebSocketSession


def _environ_with_session(handler: WS) -> tuple[dict[str, Any], WebSocketSession]:
    environ: dict[str, Any] = {"PATH_INFO": "/"}
    session = WebSocketSession(handler, environ)
    environ[WEBSOCKET_KEY] = session
    return environ, session


def _sent_frames(session: WebSocketSession) -> list[Any]:
    """What the server side queued, parsed as a client would."""
    parser = FrameParser(13, Role.CLIENT)
    parser.feed(session.connection.data_to_send())
    return list(parser.frames())


def test_ws_defaults_match_everything_and_keep_handshake_headers() -> None:
    ws = WS()
    headers = [("Upgrade", "websocket")]
    assert ws.match({"PATH_INFO": "/anything"}) is True
    assert ws.on_handshake({}, headers) is headers
    assert ws.on_message({}, "text") is None
    assert ws.subprotocols == ()


def test_ws_websocket_is_the_session_in_the_environ() -> None:
    ws = WS()
    environ, session = _environ_with_session(ws)
    assert WS.websocket(environ) is session
    assert environ["rfc6455.websocket"] is session


def test_ws_websocket_without_a_session_raises_key_error() -> None:
    with pytest.raises(KeyError):
        WS.websocket({})


def test_ws_send_str_queues_a_text_frame_and_bytes_a_binary_frame() -> None:
    ws = WS()
    environ, session = _environ_with_session(ws)
    ws.send(environ, "héllo")
    ws.send(environ, b"\x00\xff")
    frames = _sent_frames(session)
    assert [(f.opcode, f.payload, f.final) for f in frames] == [
        (Opcode.TEXT, "héllo".encode(), True),
        (Opcode.BINARY, b"\x00\xff", True),
    ]


def test_ws_ping_queues_a_ping_with_the_payload() -> None:
    ws = WS()
    environ, session = _environ_with_session(ws)
    ws.ping(environ, b"are you there")
    (frame,) = _sent_frames(session)
    assert frame.opcode == Opcode.PING
    assert frame.payload == b"are you there"


def test_ws_close_sends_close_with_code_and_reason_once() -> None:
    ws = WS()
    environ, session = _environ_with_session(ws)
    ws.close(environ, "going home", code=4000)
    ws.close(environ)  # idempotent: the closing handshake has started
    (frame,) = _sent_frames(session)
    assert frame.opcode == Opcode.CLOSE
    assert parse_close_payload(frame.payload) == (4000, "going home")
    assert session.state is State.CLOSING


def test_ws_close_without_message_sends_1000() -> None:
    ws = WS()
    environ, session = _environ_with_session(ws)
    ws.close(environ)
    (frame,) = _sent_frames(session)
    assert parse_close_payload(frame.payload) == (1000, "")


def test_ws_send_after_close_raises_invalid_state() -> None:
    # RFC 6455 §5.5.1: "The application MUST NOT send any more data frames after sending a
    # Close frame."
    ws = WS()
    environ, _session = _environ_with_session(ws)
    ws.close(environ)
    with pytest.raises(InvalidState):
        ws.send(environ, "too late")
