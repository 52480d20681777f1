"""rfc6455.middleware: the WSGI side of the opening handshake, called as a WSGI app."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import Any

import pytest

from rfc6455.errors import HandshakeError
from rfc6455.extensions import Extension, ExtensionParams, ServerExtensionFactory
from rfc6455.frame import Frame
from rfc6455.handler import WS, Headers
from rfc6455.handshake import accept_key
from rfc6455.middleware import DEFAULT_MAX_MESSAGE_SIZE, WebSocket
from rfc6455.session import WebSocketSession


class StartResponse:
    """Records what the middleware answered."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.calls.append((status, headers))
        return lambda data: None

    @property
    def status(self) -> int:
        return int(self.calls[-1][0].split(" ")[0])

    def header(self, name: str) -> str | None:
        for key, value in self.calls[-1][1]:
            if key.lower() == name.lower():
                return value
        return None


def upgrade_environ(**overrides: Any) -> dict[str, Any]:
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/chat",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "example.com",
        "HTTP_UPGRADE": "websocket",
        "HTTP_CONNECTION": "keep-alive, Upgrade",
        "HTTP_SEC_WEBSOCKET_KEY": key,
        "HTTP_SEC_WEBSOCKET_VERSION": "13",
    }
    environ.update(overrides)
    return {key: value for key, value in environ.items() if value is not None}


def test_plain_request_falls_through_without_answering() -> None:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "example.com"}
    start_response = StartResponse()
    assert WebSocket(WS())(environ, start_response) is None
    assert start_response.calls == []
    assert "rfc6455.websocket" not in environ


def test_request_the_handler_does_not_match_falls_through() -> None:
    class OnlyChat(WS):
        def match(self, environ: Any) -> bool:
            return bool(environ["PATH_INFO"] == "/chat")

    start_response = StartResponse()
    assert WebSocket(OnlyChat())(upgrade_environ(PATH_INFO="/other"), start_response) is None
    assert start_response.calls == []


def test_valid_upgrade_gets_101_with_accept_and_a_session_in_the_environ() -> None:
    environ = upgrade_environ()
    start_response = StartResponse()
    handler = WS()
    body = WebSocket(handler)(environ, start_response)
    assert body == []
    assert start_response.calls[0][0] == "101 Switching Protocols"
    # RFC 6455 §4.2.2 step 5.4: the accept value proves the server read this key.
    assert start_response.header("Sec-WebSocket-Accept") == accept_key(
        environ["HTTP_SEC_WEBSOCKET_KEY"]
    )
    session = environ["rfc6455.websocket"]
    assert isinstance(session, WebSocketSession)
    assert session.handler is handler
    assert session.environ is environ
    assert session.connection.max_message_size == DEFAULT_MAX_MESSAGE_SIZE


def test_max_message_size_reaches_the_connection() -> None:
    environ = upgrade_environ()
    WebSocket(WS(), max_message_size=1234)(environ, StartResponse())
    assert environ["rfc6455.websocket"].connection.max_message_size == 1234


def test_bad_key_gets_400_with_the_reason_as_body() -> None:
    environ = upgrade_environ(HTTP_SEC_WEBSOCKET_KEY="not-base64!")
    start_response = StartResponse()
    body = WebSocket(WS())(environ, start_response)
    assert body is not None
    assert start_response.status == 400
    assert b"Sec-WebSocket-Key" in b"".join(body)
    assert start_response.header("Content-Type") == "text/plain; charset=utf-8"
    assert "rfc6455.websocket" not in environ


def test_unsupported_version_gets_426_naming_version_13() -> None:
    # RFC 6455 §4.2.2: "... a |Sec-WebSocket-Version| header field indicating the
    # version(s) the server is capable of understanding".
    start_response = StartResponse()
    body = WebSocket(WS())(upgrade_environ(HTTP_SEC_WEBSOCKET_VERSION="8"), start_response)
    assert body is not None
    assert start_response.status == 426
    assert start_response.header("Sec-WebSocket-Version") == "13"


def test_post_upgrade_gets_405() -> None:
    start_response = StartResponse()
    WebSocket(WS())(upgrade_environ(REQUEST_METHOD="POST"), start_response)
    assert start_response.status == 405
    assert start_response.header("Allow") == "GET"


def test_on_handshake_can_refuse_with_its_own_status_and_reason() -> None:
    class OriginCheck(WS):
        def on_handshake(self, environ: Any, headers: Headers) -> Headers | None:
            if environ.get("HTTP_ORIGIN") != "https://good.example":
                raise HandshakeError("origin not allowed", status=403)
            return headers

    start_response = StartResponse()
    environ = upgrade_environ(HTTP_ORIGIN="https://evil.example")
    body = WebSocket(OriginCheck())(environ, start_response)
    assert body is not None
    assert start_response.status == 403
    assert b"origin not allowed" in b"".join(body)
    assert "rfc6455.websocket" not in environ

    start_response = StartResponse()
    WebSocket(OriginCheck())(upgrade_environ(HTTP_ORIGIN="https://good.example"), start_response)
    assert start_response.status == 101


def test_on_handshake_edits_the_101_headers() -> None:
    class Cookie(WS):
        def on_handshake(self, environ: Any, headers: Headers) -> Headers | None:
            headers.append(("Set-Cookie", "session=1"))
            return None  # edited in place

    start_response = StartResponse()
    WebSocket(Cookie())(upgrade_environ(), start_response)
    assert start_response.header("Set-Cookie") == "session=1"


def test_subprotocol_is_negotiated_from_the_handler_list() -> None:
    class Chat(WS):
        subprotocols = ("chat.v2", "chat.v1")

    environ = upgrade_environ(HTTP_SEC_WEBSOCKET_PROTOCOL="chat.v1, chat.v2")
    start_response = StartResponse()
    WebSocket(Chat())(environ, start_response)
    # The client's list is in its order of preference (RFC 6455 §1.3).
    assert start_response.header("Sec-WebSocket-Protocol") == "chat.v1"
    assert environ["rfc6455.websocket"].subprotocol == "chat.v1"


def test_no_common_subprotocol_means_no_protocol_header() -> None:
    class Chat(WS):
        subprotocols = ("chat.v2",)

    environ = upgrade_environ(HTTP_SEC_WEBSOCKET_PROTOCOL="other")
    start_response = StartResponse()
    WebSocket(Chat())(environ, start_response)
    assert start_response.status == 101
    assert start_response.header("Sec-WebSocket-Protocol") is None
    assert environ["rfc6455.websocket"].subprotocol is None


class Identity(Extension):
    """A do-nothing extension claiming RSV2, to watch negotiation end to end."""

    name = "x-identity"
    rsv_mask = 0b010

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        return frame

    def encode(self, frame: Frame) -> Frame:
        return frame


class IdentityFactory(ServerExtensionFactory):
    name = "x-identity"

    def accept(self, offers: Sequence[ExtensionParams]) -> tuple[ExtensionParams, Extension]:
        return [], Identity()


def test_offered_extension_is_accepted_by_its_factory() -> None:
    environ = upgrade_environ(HTTP_SEC_WEBSOCKET_EXTENSIONS="x-identity, permessage-deflate")
    start_response = StartResponse()
    WebSocket(WS(), extensions=[IdentityFactory()])(environ, start_response)
    assert start_response.header("Sec-WebSocket-Extensions") == "x-identity"
    (extension,) = environ["rfc6455.websocket"].extensions
    assert isinstance(extension, Identity)


def test_offers_are_declined_without_factories() -> None:
    environ = upgrade_environ(HTTP_SEC_WEBSOCKET_EXTENSIONS="permessage-deflate")
    start_response = StartResponse()
    WebSocket(WS(), extensions=None)(environ, start_response)
    assert start_response.status == 101
    assert start_response.header("Sec-WebSocket-Extensions") is None
    assert environ["rfc6455.websocket"].extensions == []


def test_handle_must_be_a_ws() -> None:
    with pytest.raises(TypeError):
        WebSocket(object())  # type: ignore[arg-type]
