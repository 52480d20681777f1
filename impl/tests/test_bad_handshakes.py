"""A corpus of bad opening handshakes, sent as raw bytes to the real server over loopback.

Each entry is one request a broken or hostile client might send: headers missing,
duplicated or oversized, wrong key lengths and encodings, other versions and methods,
malformed request lines, and bytes that are not HTTP at all. Each must be answered with
the 4xx it names and a plain-text reason: never a 101, never a 5xx, never a traceback in
the log, never a connection dropped without an answer.

Requests the RFCs let a server accept are not here (a declined permessage-deflate offer
with invalid parameters, RFC 7692 §5.1; a bare LF or an obs-fold, RFC 7230 §3.5 and
§3.2.4; an upgrade request with a body): they get a 101, tested elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest

from rfc6455.extensions import ServerPerMessageDeflate
from rfc6455.frame import Frame, Opcode
from rfc6455.handler import WS
from rfc6455.middleware import WebSocket
from rfc6455.server import Server, WsgiHandler

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's sample nonce
OTHER_KEY = "AQIDBAUGBwgJCgsMDQ4PEA=="
BASE = [
    ("Host", "127.0.0.1"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]


def request(
    line: str = "GET /chat HTTP/1.1", headers: list[tuple[str, str]] | None = None
) -> bytes:
    fields = BASE if headers is None else headers
    text = line + "\r\n" + "".join(f"{name}: {value}\r\n" for name, value in fields) + "\r\n"
    return text.encode("latin-1")


def without(name: str) -> bytes:
    return request(headers=[field for field in BASE if field[0] != name])


def replaced(name: str, value: str) -> bytes:
    return request(headers=[(n, value if n == name else v) for n, v in BASE])


def plus(*extra: tuple[str, str]) -> bytes:
    return request(headers=[*BASE, *extra])


def b64(size: int) -> str:
    return base64.b64encode(bytes(i % 256 for i in range(size))).decode()


@dataclass(frozen=True)
class Bad:
    """One bad request, the status it must get, and a word its reason must contain."""

    name: str
    data: bytes
    status: int
    reason_contains: str


CORPUS = [
    # -- missing headers (RFC 6455 §4.2.1 items 2-6) ----------------------------------------
    Bad("missing-host", without("Host"), 400, "host"),
    # Without "Upgrade: websocket" the request is not a WebSocket request: it falls through
    # the middleware chain to the end, which has nothing at that path.
    Bad("missing-upgrade", without("Upgrade"), 404, "nothing here"),
    Bad("missing-connection", without("Connection"), 400, "connection"),
    Bad("missing-key", without("Sec-WebSocket-Key"), 400, "sec-websocket-key"),
    Bad("missing-version", without("Sec-WebSocket-Version"), 426, "sec-websocket-version"),
    Bad("missing-all-headers", request(headers=[("Host", "a")]), 404, "nothing here"),
    # -- duplicated headers ------------------------------------------------------------------
    Bad("duplicate-host", plus(("Host", "example.com")), 400, "host"),
    Bad("duplicate-key", plus(("Sec-WebSocket-Key", OTHER_KEY)), 400, "more than once"),
    Bad("duplicate-key-same-value", plus(("Sec-WebSocket-Key", KEY)), 400, "more than once"),
    Bad("duplicate-version", plus(("Sec-WebSocket-Version", "13")), 400, "more than once"),
    Bad("version-as-list", replaced("Sec-WebSocket-Version", "13, 8"), 400, "more than once"),
    Bad(
        "duplicate-content-length",
        plus(("Content-Length", "1"), ("Content-Length", "2")),
        400,
        "content-length",
    ),
    Bad("duplicate-subprotocol", plus(("Sec-WebSocket-Protocol", "chat, chat")), 400, "once"),
    # -- the key (RFC 6455 §4.1 step 7: base64 of 16 bytes) -----------------------------------
    Bad("key-15-bytes", replaced("Sec-WebSocket-Key", b64(15)), 400, "16 bytes"),
    Bad("key-17-bytes", replaced("Sec-WebSocket-Key", b64(17)), 400, "16 bytes"),
    Bad("key-1-byte", replaced("Sec-WebSocket-Key", b64(1)), 400, "16 bytes"),
    Bad("key-768-bytes", replaced("Sec-WebSocket-Key", b64(768)), 400, "16 bytes"),
    Bad("key-empty", replaced("Sec-WebSocket-Key", ""), 400, "16 bytes"),
    Bad("key-not-base64", replaced("Sec-WebSocket-Key", "not*base64*at*all!!!"), 400, "base64"),
    Bad("key-no-padding", replaced("Sec-WebSocket-Key", KEY.rstrip("=")), 400, "base64"),
    Bad(
        "key-non-canonical", replaced("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZR=="), 400, "canon"
    ),
    Bad("key-inner-space", replaced("Sec-WebSocket-Key", KEY[:8] + " " + KEY[8:]), 400, "base64"),
    Bad(
        "key-underscore-name",
        replaced("Sec-WebSocket-Key", KEY)
        .replace(b"Sec-", b"Sec_", 1)
        .replace(b"Sec_WebSocket-Key", b"Sec_WebSocket_Key"),
        400,
        "sec-websocket-key",
    ),
    # -- the version (RFC 6455 §4.2.2: 426 with the versions we speak) ------------------------
    Bad("version-8", replaced("Sec-WebSocket-Version", "8"), 426, "13"),
    Bad("version-12", replaced("Sec-WebSocket-Version", "12"), 426, "13"),
    Bad("version-14", replaced("Sec-WebSocket-Version", "14"), 426, "13"),
    Bad("version-0", replaced("Sec-WebSocket-Version", "0"), 426, "13"),
    Bad("version-word", replaced("Sec-WebSocket-Version", "thirteen"), 426, "13"),
    Bad("version-empty", replaced("Sec-WebSocket-Version", ""), 426, "13"),
    # -- the method (RFC 6455 §4.2.1 item 1: GET) ---------------------------------------------
    Bad("method-post", request("POST /chat HTTP/1.1"), 405, "get"),
    Bad("method-put", request("PUT /chat HTTP/1.1"), 405, "get"),
    Bad("method-delete", request("DELETE /chat HTTP/1.1"), 405, "get"),
    Bad("method-head", request("HEAD /chat HTTP/1.1"), 405, ""),  # HEAD: no body, RFC 7231
    Bad("method-options", request("OPTIONS /chat HTTP/1.1"), 405, "get"),
    Bad("method-connect", request("CONNECT 127.0.0.1:80 HTTP/1.1"), 405, "get"),
    Bad("method-lowercase", request("get /chat HTTP/1.1"), 405, "get"),
    # -- the request line ---------------------------------------------------------------------
    Bad("http-1.0", request("GET /chat HTTP/1.0"), 400, "http/1.1"),
    Bad("http-0.9-no-version", b"GET /chat\r\n\r\n", 400, "request line"),
    Bad("http-version-garbage", request("GET /chat HTTP/x.y"), 400, "request line"),
    Bad("request-line-double-spaces", request("GET  /chat  HTTP/1.1"), 400, "request line"),
    Bad("target-asterisk", request("GET * HTTP/1.1"), 400, "request target"),
    Bad("target-without-slash", request("GET chat HTTP/1.1"), 400, "request target"),
    Bad("target-with-fragment", request("GET /chat#top HTTP/1.1"), 400, "fragment"),
    # -- Host, Upgrade, Connection values -----------------------------------------------------
    Bad("host-empty", replaced("Host", ""), 400, "host"),
    Bad("host-with-space", replaced("Host", "bad host"), 400, "host"),
    Bad("host-with-path", replaced("Host", "a/b@c"), 400, "host"),
    Bad("upgrade-h2c", replaced("Upgrade", "h2c"), 404, "nothing here"),
    Bad("upgrade-websockets-typo", replaced("Upgrade", "websockets"), 404, "nothing here"),
    Bad("connection-keep-alive", replaced("Connection", "keep-alive"), 400, "upgrade"),
    Bad("connection-empty", replaced("Connection", ""), 400, "upgrade"),
    # -- subprotocol and extension headers ----------------------------------------------------
    Bad("subprotocol-empty-list", plus(("Sec-WebSocket-Protocol", ",")), 400, "empty"),
    Bad("subprotocol-not-a-token", plus(("Sec-WebSocket-Protocol", "chat room")), 400, "token"),
    Bad(
        "extension-header-malformed",
        plus(("Sec-WebSocket-Extensions", "permessage-deflate; =1")),
        400,
        "permessage-deflate",
    ),
    # -- header syntax (RFC 7230 §3.2) --------------------------------------------------------
    Bad(
        "header-without-colon",
        plus(("X-Broken", "x")).replace(b"X-Broken:", b"X-Broken"),
        400,
        "header",
    ),
    Bad(
        "header-space-before-colon",
        replaced("Upgrade", "websocket").replace(b"Upgrade:", b"Upgrade :"),
        400,
        "header",
    ),
    Bad("header-nul-in-value", plus(("X-Nul", "a\x00b")), 400, "header"),
    Bad("content-length-negative", plus(("Content-Length", "-1")), 400, "content-length"),
    # -- sizes (Limits: max_header_field_size, max_header_count, max_head_size) ---------------
    Bad("header-field-9-kib", plus(("X-Big", "a" * 9000)), 431, "too large"),
    Bad("header-count-101", plus(*[(f"X-H{i}", "v") for i in range(101)]), 431, "too many"),
    Bad("head-20-kib", plus(*[(f"X-H{i}", "v" * 1000) for i in range(20)]), 431, "too large"),
    Bad("target-20-kib", request("GET /" + "a" * 20000 + " HTTP/1.1"), 431, "too large"),
    # -- not HTTP at all: a 400, which h11 can still say ---------------------------------------
    Bad(
        "tls-client-hello",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n",
        400,
        "request line",
    ),
    Bad("binary-garbage", bytes(range(256)) + b"\r\n\r\n", 400, "request line"),
    Bad(
        "websocket-frame-first",
        Frame(b"hello", Opcode.TEXT, masking_key=b"\0\0\0\0", final=True).build_frame()
        + b"\r\n\r\n",
        400,
        "request line",
    ),
]


class Echo(WS):
    subprotocols = ["chat"]

    def on_message(self, environ: MutableMapping[str, Any], message: str | bytes) -> str | bytes:
        return message


def app() -> WsgiHandler:
    return WsgiHandler([WebSocket(Echo(), [ServerPerMessageDeflate()])])


async def answer(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data``; the response's status, headers and body (``(0, {}, b"")`` if none)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return 0, {}, b""  # dropped without an answer
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = 0 if data.startswith(b"HEAD ") else int(headers.get("content-length", "0"))
        return status, headers, await reader.readexactly(length)
    finally:
        writer.close()


def test_corpus_is_large_and_distinct() -> None:
    assert len(CORPUS) >= 40
    assert len({bad.name for bad in CORPUS}) == len(CORPUS)
    assert len({bad.data for bad in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("bad", CORPUS, ids=[bad.name for bad in CORPUS])
async def test_server_answers_bad_handshake_with_4xx_and_a_reason(
    bad: Bad, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rfc6455")
    async with Server(app()) as server:
        status, headers, body = await answer(server.port, bad.data)
    assert 400 <= status < 500, f"{bad.name}: {status} {body!r}"
    assert status == bad.status, body
    assert headers["content-type"].startswith("text/plain")
    if not bad.data.startswith(b"HEAD "):
        reason = body.decode("utf-8")
        assert reason.strip(), "the answer carries its reason"
        assert bad.reason_contains in reason.lower()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_server_survives_the_whole_corpus_and_still_upgrades() -> None:
    async with Server(app()) as server:
        answers = await asyncio.gather(*(answer(server.port, bad.data) for bad in CORPUS))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request("GET /chat HTTP/1.1"))
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(
            Frame(b"still here", Opcode.TEXT, masking_key=b"abcd", final=True).build_frame()
        )
        echo = await reader.readexactly(2 + len(b"still here"))
        writer.close()
    assert sorted({status for status, _, _ in answers}) == [400, 404, 405, 426, 431]
    assert head.startswith(b"HTTP/1.1 101 ")
    assert echo[2:] == b"still here"


async def test_unknown_transfer_coding_gets_501_not_a_crash() -> None:
    # RFC 7230 §3.3.1: a server that receives a transfer coding it does not understand
    # "SHOULD respond with 501 (Not Implemented)": the one 5xx a client's request can earn.
    async with Server(app()) as server:
        status, _, body = await answer(server.port, plus(("Transfer-Encoding", "gzip")))
    assert status == 501
    assert b"transfer-encoding" in body.lower()
