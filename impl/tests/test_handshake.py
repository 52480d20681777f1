"""Tests for rfc6455.handshake: RFC 6455 §4 for the server (from a WSGI environ) and client."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import h11
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from rfc6455.errors import HandshakeError, VersionMismatch
from rfc6455.extensions import (
    ClientExtensionFactory,
    Extension,
    ExtensionParams,
    ServerExtensionFactory,
)
from rfc6455.frame import Frame, Opcode
from rfc6455.handshake import (
    GUID,
    ServerHandshake,
    accept_key,
    client_request,
    is_websocket_request,
    server_handshake,
    validate_response,
)

# RFC 6455 §1.3: the worked example of a key and its accept value.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# -- a small real extension, to negotiate something that does something --------------------


class XorExtension(Extension):
    """Toy extension "x-xor": XORs every payload byte with ``key`` and marks frames RSV2."""

    name = "x-xor"
    rsv_mask = 0b010

    def __init__(self, key: int) -> None:
        self.key = key

    def _xor(self, payload: bytes) -> bytes:
        return bytes(byte ^ self.key for byte in payload)

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        return Frame(self._xor(frame.payload), frame.opcode, final=frame.final)

    def encode(self, frame: Frame) -> Frame:
        return Frame(self._xor(frame.payload), frame.opcode, final=frame.final, rsv2=1)


def _xor_key(params: ExtensionParams) -> int | None:
    """The key in ``params``; None when out of range; HandshakeError when malformed."""
    if len(params) != 1 or params[0][0] != "key" or params[0][1] is None:
        raise HandshakeError(f"x-xor takes exactly one 'key=<n>' parameter, got {params!r}")
    value = params[0][1]
    if not value.isdigit():
        raise HandshakeError(f"x-xor key {value!r} is not a number")
    key = int(value)
    return key if 1 <= key <= 255 else None


class XorServerFactory(ServerExtensionFactory):
    name = "x-xor"

    def accept(self, offers: Sequence[ExtensionParams]) -> tuple[ExtensionParams, Extension] | None:
        for params in offers:
            key = _xor_key(params)
            if key is not None:
                return [("key", str(key))], XorExtension(key)
        return None


class XorClientFactory(ClientExtensionFactory):
    name = "x-xor"

    def __init__(self, key: int = 7) -> None:
        self.key = key

    def offer(self) -> ExtensionParams:
        return [("key", str(self.key))]

    def accept_response(self, params: ExtensionParams) -> Extension:
        key = _xor_key(params)
        if key != self.key:
            raise HandshakeError(f"the server answered x-xor with key {key}, we offered {self.key}")
        return XorExtension(key)


# -- building requests ----------------------------------------------------------------------


def environ_from_headers(
    headers: Sequence[tuple[str, str]], method: str = "GET", protocol: str = "HTTP/1.1"
) -> dict[str, Any]:
    """A WSGI environ as a PEP 3333 server builds it: repeated headers joined with ","."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SERVER_PROTOCOL": protocol,
        "PATH_INFO": "/chat",
        "QUERY_STRING": "",
        "SERVER_NAME": "server.example.com",
        "SERVER_PORT": "80",
    }
    for name, value in headers:
        cgi = "HTTP_" + name.upper().replace("-", "_")
        environ[cgi] = f"{environ[cgi]},{value}" if cgi in environ else value
    return environ


def rfc_request(**overrides: str | None) -> dict[str, Any]:
    """The request of RFC 6455 §1.2 as an environ; an override of None drops the header."""
    environ = environ_from_headers(
        [
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", RFC_KEY),
            ("Origin", "http://example.com"),
            ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Version", "13"),
        ]
    )
    for name, value in overrides.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return environ


def b64(length: int) -> str:
    return base64.b64encode(bytes(range(length))).decode("ascii")


# -- key and accept -------------------------------------------------------------------------


def test_accept_key_of_the_rfc_example() -> None:
    assert accept_key(RFC_KEY) == RFC_ACCEPT


def test_accept_key_hashes_the_key_as_sent_with_the_guid() -> None:
    import hashlib

    key = b64(16)
    digest = hashlib.sha1((key + GUID).encode()).digest()
    assert accept_key(key) == base64.b64encode(digest).decode()
    assert accept_key(key) != accept_key(b64(16)[::-1])


# -- server: the valid request --------------------------------------------------------------


def test_server_answers_the_rfc_example_with_the_rfc_response() -> None:
    result = server_handshake(rfc_request(), subprotocols=["chat"])
    assert result == ServerHandshake(
        key=RFC_KEY,
        headers=[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", RFC_ACCEPT),
            ("Sec-WebSocket-Protocol", "chat"),
        ],
        subprotocol="chat",
        extensions=[],
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTTP_UPGRADE", "WebSocket"),
        ("HTTP_UPGRADE", "h2c, websocket"),
        ("HTTP_CONNECTION", "keep-alive, Upgrade"),
        ("HTTP_CONNECTION", "UPGRADE"),
        ("HTTP_CONNECTION", "upgrade,keep-alive"),
        ("SERVER_PROTOCOL", "HTTP/1.2"),
        ("HTTP_HOST", "server.example.com:8080"),
        ("HTTP_HOST", "[::1]:8080"),
        ("HTTP_HOST", "127.0.0.1"),
    ],
)
def test_server_accepts_valid_variants(name: str, value: str) -> None:
    result = server_handshake(rfc_request(**{name: value}))
    assert ("Sec-WebSocket-Accept", RFC_ACCEPT) in result.headers


def test_server_without_subprotocols_sends_no_protocol_header() -> None:
    result = server_handshake(rfc_request())
    assert result.subprotocol is None
    assert [name for name, _ in result.headers] == [
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Accept",
    ]


# -- server: every rejection, with its status, reason and headers ---------------------------


@pytest.mark.parametrize(
    ("overrides", "status", "reason", "headers"),
    [
        pytest.param(
            {"REQUEST_METHOD": "POST"},
            405,
            "a WebSocket upgrade must use GET, not POST",
            [("Allow", "GET")],
            id="post",
        ),
        pytest.param(
            {"REQUEST_METHOD": "get"},
            405,
            "a WebSocket upgrade must use GET, not get",
            [("Allow", "GET")],
            id="lowercase-method",
        ),
        pytest.param(
            {"SERVER_PROTOCOL": "HTTP/1.0"},
            400,
            "a WebSocket upgrade needs HTTP/1.1 or later, got HTTP/1.0",
            [],
            id="http10",
        ),
        pytest.param(
            {"SERVER_PROTOCOL": "SPDY"},
            400,
            "unrecognised HTTP version 'SPDY'; HTTP/1.1 is required",
            [],
            id="bad-protocol",
        ),
        pytest.param({"HTTP_HOST": None}, 400, "missing Host header", [], id="no-host"),
        pytest.param({"HTTP_HOST": ""}, 400, "Host header is empty", [], id="empty-host"),
        pytest.param(
            {"HTTP_HOST": "a.example,b.example"},
            400,
            "Host header appears more than once",
            [],
            id="two-hosts",
        ),
        pytest.param(
            {"HTTP_HOST": "a b"},
            400,
            "Host header 'a b' is not a valid host[:port]",
            [],
            id="bad-host",
        ),
        pytest.param(
            {"HTTP_UPGRADE": None},
            426,
            "missing Upgrade header; a WebSocket request needs 'Upgrade: websocket'",
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
            id="no-upgrade",
        ),
        pytest.param(
            {"HTTP_UPGRADE": "h2c"},
            426,
            "Upgrade is 'h2c'; a WebSocket request needs 'Upgrade: websocket'",
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
            id="other-upgrade",
        ),
        pytest.param(
            {"HTTP_CONNECTION": None},
            400,
            "missing Connection header; it must include the 'Upgrade' token",
            [],
            id="no-connection",
        ),
        pytest.param(
            {"HTTP_CONNECTION": "keep-alive, upgraded"},
            400,
            "Connection is 'keep-alive, upgraded'; it must include the 'Upgrade' token",
            [],
            id="connection-without-upgrade",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_VERSION": None},
            426,
            "missing Sec-WebSocket-Version header; this server speaks 13",
            [("Sec-WebSocket-Version", "13")],
            id="no-version",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_VERSION": "8"},
            426,
            "Sec-WebSocket-Version must be 13, got '8'",
            [("Sec-WebSocket-Version", "13")],
            id="version-8",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_VERSION": "13,13"},
            400,
            "Sec-WebSocket-Version appears more than once",
            [],
            id="two-versions",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_KEY": None},
            400,
            "missing Sec-WebSocket-Key header",
            [],
            id="no-key",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_KEY": b64(15)},
            400,
            "Sec-WebSocket-Key must decode to 16 bytes, got 15",
            [],
            id="key-15-bytes",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_KEY": b64(17)},
            400,
            "Sec-WebSocket-Key must decode to 16 bytes, got 17",
            [],
            id="key-17-bytes",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_KEY": f"{RFC_KEY},{b64(16)}"},
            400,
            "Sec-WebSocket-Key appears more than once",
            [],
            id="two-keys",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ"},
            400,
            "Sec-WebSocket-Key 'dGhlIHNhbXBsZSBub25jZQ' is not valid base64",
            [],
            id="key-unpadded",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25j*Q=="},
            400,
            "Sec-WebSocket-Key 'dGhlIHNhbXBsZSBub25j*Q==' is not valid base64",
            [],
            id="key-bad-alphabet",
        ),
        pytest.param(
            # Same 16 bytes as the RFC key, but stray bits in the last character.
            {"HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZR=="},
            400,
            "Sec-WebSocket-Key 'dGhlIHNhbXBsZSBub25jZR==' is not in canonical base64 form",
            [],
            id="key-non-canonical",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_PROTOCOL": "chat, super chat"},
            400,
            "Sec-WebSocket-Protocol offers 'super chat', which is not a token",
            [],
            id="protocol-not-token",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_PROTOCOL": "chat;v=1"},
            400,
            "Sec-WebSocket-Protocol offers 'chat;v=1', which is not a token",
            [],
            id="protocol-separator",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_PROTOCOL": ""},
            400,
            "Sec-WebSocket-Protocol is empty; it must list at least one token",
            [],
            id="protocol-empty",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_PROTOCOL": "chat, chat"},
            400,
            "Sec-WebSocket-Protocol offers 'chat' more than once",
            [],
            id="protocol-twice",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_EXTENSIONS": "x-xor; =1"},
            400,
            "expected a parameter name of 'x-xor'",
            [],
            id="extensions-malformed",
        ),
        pytest.param(
            {"HTTP_SEC_WEBSOCKET_EXTENSIONS": "x-xor; key=seven"},
            400,
            "x-xor key 'seven' is not a number",
            [],
            id="extension-offer-malformed",
        ),
    ],
)
def test_server_rejects_bad_request(
    overrides: dict[str, str | None], status: int, reason: str, headers: list[tuple[str, str]]
) -> None:
    with pytest.raises(HandshakeError) as info:
        server_handshake(rfc_request(**overrides), ["chat"], [XorServerFactory()])
    assert info.value.status == status
    assert info.value.reason.startswith(reason)
    assert info.value.headers == headers


def test_server_rejects_version_mismatch_as_its_own_type() -> None:
    with pytest.raises(VersionMismatch):
        server_handshake(rfc_request(HTTP_SEC_WEBSOCKET_VERSION="7"))


def test_server_rejects_malformed_extensions_even_without_factories() -> None:
    with pytest.raises(HandshakeError, match="expected a parameter name"):
        server_handshake(rfc_request(HTTP_SEC_WEBSOCKET_EXTENSIONS="x-xor; =1"))


def test_server_checks_version_before_key_so_old_drafts_learn_the_version() -> None:
    # A hybi-00 client sends Sec-WebSocket-Key1/Key2 and no version: tell it to speak 13.
    with pytest.raises(VersionMismatch):
        server_handshake(rfc_request(HTTP_SEC_WEBSOCKET_VERSION=None, HTTP_SEC_WEBSOCKET_KEY=None))


# -- is_websocket_request -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upgrade", "expected"),
    [
        ("websocket", True),
        ("WebSocket", True),
        ("h2c, websocket", True),
        (None, False),
        ("h2c", False),
        ("websockets", False),
    ],
)
def test_is_websocket_request_reads_the_upgrade_header(upgrade: str | None, expected: bool) -> None:
    assert is_websocket_request(rfc_request(HTTP_UPGRADE=upgrade)) is expected


def test_every_request_that_is_not_an_upgrade_is_rejected_by_the_server_too() -> None:
    environ = rfc_request(HTTP_UPGRADE="h2c")
    assert not is_websocket_request(environ)
    with pytest.raises(HandshakeError):
        server_handshake(environ)


# -- subprotocol choice ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "supported", "chosen"),
    [
        pytest.param("chat, superchat", ["superchat", "chat"], "chat", id="client-order-wins"),
        pytest.param("superchat, chat", ["chat", "superchat"], "superchat", id="client-order"),
        pytest.param("a,b", ["b"], "b", id="wsgi-joined-headers"),
        pytest.param("a , ,b", ["b"], "b", id="empty-elements-skipped"),
        pytest.param("chat", ["other"], None, id="none-supported"),
        pytest.param("Chat", ["chat"], None, id="case-sensitive"),
    ],
)
def test_server_picks_the_clients_first_supported_subprotocol(
    offered: str, supported: list[str], chosen: str | None
) -> None:
    result = server_handshake(rfc_request(HTTP_SEC_WEBSOCKET_PROTOCOL=offered), supported)
    assert result.subprotocol == chosen
    protocol_headers = [value for name, value in result.headers if name == "Sec-WebSocket-Protocol"]
    assert protocol_headers == ([] if chosen is None else [chosen])


def test_server_without_client_offer_chooses_no_subprotocol() -> None:
    result = server_handshake(rfc_request(HTTP_SEC_WEBSOCKET_PROTOCOL=None), ["chat"])
    assert result.subprotocol is None


def test_server_refuses_a_string_as_its_subprotocol_list() -> None:
    with pytest.raises(TypeError):
        server_handshake(rfc_request(), "chat")


# -- extension negotiation ------------------------------------------------------------------


def test_server_accepts_an_extension_it_supports() -> None:
    environ = rfc_request(HTTP_SEC_WEBSOCKET_EXTENSIONS="x-unknown, x-xor; key=0, x-xor; key=9")
    result = server_handshake(environ, extensions=[XorServerFactory()])
    # key=0 is declined by the factory; the next offer is accepted; x-unknown is ignored.
    assert ("Sec-WebSocket-Extensions", "x-xor; key=9") in result.headers
    [extension] = result.extensions
    assert isinstance(extension, XorExtension)
    assert extension.key == 9


def test_server_without_acceptable_offer_sends_no_extensions_header() -> None:
    environ = rfc_request(HTTP_SEC_WEBSOCKET_EXTENSIONS="x-xor; key=0, permessage-deflate")
    result = server_handshake(environ, extensions=[XorServerFactory()])
    assert result.extensions == []
    assert all(name != "Sec-WebSocket-Extensions" for name, _ in result.headers)


def test_server_ignores_extension_offers_when_it_supports_none() -> None:
    result = server_handshake(rfc_request(HTTP_SEC_WEBSOCKET_EXTENSIONS="x-xor; key=3"))
    assert result.extensions == []
    assert all(name != "Sec-WebSocket-Extensions" for name, _ in result.headers)


# -- client: the request --------------------------------------------------------------------


def test_client_request_carries_the_handshake_headers() -> None:
    key, headers = client_request(
        "server.example.com",
        "/chat?room=1",
        subprotocols=["chat", "superchat"],
        extensions=[XorClientFactory(5)],
        headers=[("Origin", "http://example.com")],
        key=RFC_KEY,
    )
    assert key == RFC_KEY
    assert headers == [
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", RFC_KEY),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Protocol", "chat, superchat"),
        ("Sec-WebSocket-Extensions", "x-xor; key=5"),
        ("Origin", "http://example.com"),
    ]


def test_client_request_key_is_a_fresh_16_byte_nonce() -> None:
    key, headers = client_request("localhost:9001")
    assert len(base64.b64decode(key, validate=True)) == 16
    assert ("Sec-WebSocket-Key", key) in headers
    other, _ = client_request("localhost:9001")
    assert other != key
    assert all(
        name not in {"Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"} for name, _ in headers
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"host": "bad host"}, "not a valid Host", id="host"),
        pytest.param({"path": "chat"}, "not a resource name", id="relative-path"),
        pytest.param({"path": "/chat#top"}, "not a resource name", id="fragment"),
        pytest.param({"path": "/a b"}, "not a resource name", id="space"),
        pytest.param({"key": b64(15)}, "must decode to 16 bytes, got 15", id="short-key"),
        pytest.param({"subprotocols": ["a b"]}, "is not a token", id="subprotocol-token"),
        pytest.param({"subprotocols": ["a", "a"]}, "listed twice", id="subprotocol-twice"),
        pytest.param(
            {"headers": [("Sec-WebSocket-Key", RFC_KEY)]},
            "set by the handshake",
            id="reserved-header",
        ),
        pytest.param({"headers": [("host", "x")]}, "set by the handshake", id="reserved-lower"),
        pytest.param({"headers": [("X-A", "1\r\nX-B: 2")]}, "CR, LF or NUL", id="injection"),
        pytest.param({"headers": [("X A", "1")]}, "is not a token", id="header-name"),
    ],
)
def test_client_request_rejects_invalid_arguments(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"host": "server.example.com", **kwargs}
    with pytest.raises(ValueError, match=message):
        client_request(**arguments)


# -- client: validating the response --------------------------------------------------------


def response_headers(**overrides: str | None) -> list[tuple[str, str]]:
    """The 101 of RFC 6455 §1.2 for RFC_KEY; an override of None drops the header."""
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": RFC_ACCEPT,
    }
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return list(headers.items())


def test_client_accepts_the_rfc_response() -> None:
    headers = response_headers(**{"Sec_WebSocket_Protocol": "chat"})
    assert validate_response(101, headers, RFC_KEY, ["chat", "superchat"]) == ("chat", [])


def test_client_accepts_header_names_and_tokens_in_any_case() -> None:
    headers = [
        ("upgrade", "WebSocket"),
        ("CONNECTION", "keep-alive, upgrade"),
        ("sec-websocket-accept", RFC_ACCEPT),
    ]
    assert validate_response(101, headers, RFC_KEY) == (None, [])


def test_client_accepts_an_offered_extension() -> None:
    headers = response_headers(**{"Sec_WebSocket_Extensions": "x-xor; key=7"})
    subprotocol, [extension] = validate_response(
        101, headers, RFC_KEY, extensions=[XorClientFactory(7)]
    )
    assert subprotocol is None
    assert isinstance(extension, XorExtension)
    assert extension.key == 7


@pytest.mark.parametrize(
    ("status", "headers", "reason"),
    [
        pytest.param(
            200,
            response_headers(),
            "expected status 101 Switching Protocols, got 200",
            id="status",
        ),
        pytest.param(
            101,
            response_headers(Upgrade=None),
            "the response has no Upgrade header",
            id="no-upgrade",
        ),
        pytest.param(
            101,
            response_headers(Upgrade="h2c"),
            "the response's Upgrade is 'h2c', not 'websocket'",
            id="other-upgrade",
        ),
        pytest.param(
            101,
            response_headers(Upgrade="websocket, h2c"),
            "the response's Upgrade is 'websocket, h2c', not 'websocket'",
            id="upgrade-list",
        ),
        pytest.param(
            101,
            response_headers(Connection=None),
            "the response has no Connection header",
            id="no-connection",
        ),
        pytest.param(
            101,
            response_headers(Connection="close"),
            "the response's Connection is 'close'; it lacks 'Upgrade'",
            id="connection-close",
        ),
        pytest.param(
            101,
            response_headers(Sec_WebSocket_Accept=None),
            "the response has no Sec-WebSocket-Accept header",
            id="no-accept",
        ),
        pytest.param(
            101,
            response_headers(Sec_WebSocket_Accept=accept_key(b64(16))),
            f"Sec-WebSocket-Accept is {accept_key(b64(16))!r}, expected {RFC_ACCEPT!r} for our key",
            id="wrong-accept",
        ),
        pytest.param(
            101,
            [*response_headers(), ("Sec-WebSocket-Accept", RFC_ACCEPT)],
            "the response has more than one Sec-WebSocket-Accept header",
            id="two-accepts",
        ),
        pytest.param(
            101,
            response_headers(Sec_WebSocket_Protocol="superchat"),
            "the server selected subprotocol 'superchat', which was not offered",
            id="unoffered-subprotocol",
        ),
        pytest.param(
            101,
            response_headers(Sec_WebSocket_Protocol="chat, superchat"),
            "the server selected more than one subprotocol: 'chat, superchat'",
            id="two-subprotocols",
        ),
        pytest.param(
            101,
            [*response_headers(Sec_WebSocket_Protocol="chat"), ("Sec-WebSocket-Protocol", "chat")],
            "the server selected more than one subprotocol: 'chat, chat'",
            id="two-subprotocol-headers",
        ),
        pytest.param(
            101,
            response_headers(Sec_WebSocket_Protocol=""),
            "the response's Sec-WebSocket-Protocol is empty",
            id="empty-subprotocol",
        ),
        pytest.param(
            101,
            response_headers(Sec_WebSocket_Extensions="permessage-deflate"),
            "the server accepted extension 'permessage-deflate', which was not offered",
            id="unoffered-extension",
        ),
        pytest.param(
            101,
            response_headers(Sec_WebSocket_Extensions="x-xor; key=8"),
            "the server answered x-xor with key 8, we offered 7",
            id="extension-params",
        ),
        pytest.param(
            101,
            response_headers(Sec_WebSocket_Extensions="x-xor; key=7, x-xor; key=7"),
            "the server accepted extension 'x-xor' twice",
            id="extension-twice",
        ),
    ],
)
def test_client_rejects_bad_response(
    status: int, headers: list[tuple[str, str]], reason: str
) -> None:
    with pytest.raises(HandshakeError) as info:
        validate_response(status, headers, RFC_KEY, ["chat"], [XorClientFactory(7)])
    assert info.value.reason == reason


def test_client_rejects_a_subprotocol_when_it_offered_none() -> None:
    headers = response_headers(Sec_WebSocket_Protocol="chat")
    with pytest.raises(HandshakeError, match="'chat', which was not offered"):
        validate_response(101, headers, RFC_KEY)


def test_client_rejects_an_extension_when_it_offered_none() -> None:
    headers = response_headers(Sec_WebSocket_Extensions="x-xor; key=7")
    with pytest.raises(HandshakeError, match="'x-xor', which was not offered"):
        validate_response(101, headers, RFC_KEY)


def test_client_rejects_two_extensions_sharing_an_rsv_bit() -> None:
    class OtherClientFactory(XorClientFactory):
        name = "x-other"

    headers = response_headers(Sec_WebSocket_Extensions="x-xor; key=7, x-other; key=7")
    with pytest.raises(HandshakeError, match="RSV bits are already used"):
        validate_response(
            101, headers, RFC_KEY, extensions=[XorClientFactory(7), OtherClientFactory(7)]
        )


# -- round trips: our client against our server, and both against wsproto -------------------


def test_round_trip_client_request_server_handshake_validate_response() -> None:
    key, request = client_request(
        "localhost:9001",
        "/chat",
        subprotocols=["v2.chat", "v1.chat"],
        extensions=[XorClientFactory(42)],
        headers=[("Origin", "http://localhost")],
    )
    result = server_handshake(
        environ_from_headers(request), ["v1.chat", "v2.chat"], [XorServerFactory()]
    )
    assert result.key == key
    subprotocol, client_extensions = validate_response(
        101, result.headers, key, ["v2.chat", "v1.chat"], [XorClientFactory(42)]
    )
    assert subprotocol == result.subprotocol == "v2.chat"
    # The negotiated extensions agree: what the client encodes, the server decodes.
    [client_ext] = client_extensions
    [server_ext] = result.extensions
    sent = client_ext.encode(Frame("héllo", final=True))
    assert sent.payload != "héllo".encode()
    assert sent.rsv2 == 1
    received = server_ext.decode(sent)
    assert received.opcode == Opcode.TEXT
    assert received.payload == "héllo".encode()


def test_round_trip_fails_when_the_response_is_for_another_key() -> None:
    _, request = client_request("localhost")
    result = server_handshake(environ_from_headers(request))
    other_key, _ = client_request("localhost")
    with pytest.raises(HandshakeError, match="Sec-WebSocket-Accept is"):
        validate_response(101, result.headers, other_key)


def _h11_request_environ(data: bytes) -> dict[str, Any]:
    """Parse a request with h11 and build a WSGI environ from it."""
    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    event = server.next_event()
    assert isinstance(event, h11.Request)
    headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers]
    return environ_from_headers(
        headers,
        method=event.method.decode("ascii"),
        protocol="HTTP/" + event.http_version.decode("ascii"),
    )


def test_server_handshake_accepts_wsproto_client() -> None:
    client = WSConnection(ConnectionType.CLIENT)
    data = client.send(
        Request(host="localhost:9001", target="/chat", subprotocols=["wamp", "chat"])
    )
    result = server_handshake(_h11_request_environ(data), subprotocols=["chat"])
    assert result.subprotocol == "chat"
    response = h11.Connection(h11.SERVER)
    response.receive_data(data)
    response.next_event()
    wire = response.send(h11.InformationalResponse(status_code=101, headers=result.headers))
    assert wire is not None
    client.receive_data(wire)
    events = list(client.events())
    assert len(events) == 1
    assert isinstance(events[0], AcceptConnection)
    assert events[0].subprotocol == "chat"


def test_validate_response_accepts_wsproto_server() -> None:
    key, headers = client_request("localhost:9001", "/chat", subprotocols=["wamp", "chat"])
    request = h11.Connection(h11.CLIENT)
    data = request.send(h11.Request(method="GET", target="/chat", headers=headers))
    assert data is not None
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(data)
    [event] = list(server.events())
    assert isinstance(event, Request)
    assert event.subprotocols == ["wamp", "chat"]
    wire = server.send(AcceptConnection(subprotocol="chat"))
    request.receive_data(wire)
    response = request.next_event()
    assert isinstance(response, h11.InformationalResponse)
    assert response.status_code == 101
    decoded = [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in response.headers
    ]
    assert validate_response(101, decoded, key, ["wamp", "chat"]) == ("chat", [])
