"""Node's ``ws`` client (npm) against rfc6455's server: a second, independent client stack.

The peer is ``impl/tests/node/ws_client.js`` with the ``ws`` version pinned in
``impl/tests/node/package-lock.json`` (``npm ci`` there; ``.ci/install-peers.sh`` does it).
It reports what it saw as one JSON line; the server's handler records its own view.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

from rfc6455.extensions import ServerPerMessageDeflate
from rfc6455.handler import WS
from rfc6455.middleware import WebSocket
from rfc6455.server import Server, WsgiHandler

NODE_DIR = Path(__file__).parent / "node"
CLIENT = NODE_DIR / "ws_client.js"
NODE = shutil.which("node")
RUN_DEADLINE = 60.0

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed: run .ci/install-peers.sh"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "ws" / "package.json").exists(),
        reason="npm package ws missing: run `npm ci` in impl/tests/node (.ci/install-peers.sh)",
    ),
]

Environ = MutableMapping[str, Any]


class Recorder(WS):
    """Echoes messages; "bye" makes the server close with 4000; remembers what it saw."""

    subprotocols = ("chat",)

    def __init__(self) -> None:
        self.received: list[str | bytes] = []
        self.pings: list[bytes] = []
        self.closes: list[tuple[int | None, str | None]] = []

    def on_message(self, environ: Environ, message: str | bytes) -> str | bytes | None:
        self.received.append(message)
        if message == "bye":
            self.close(environ, "see you", 4000)
            return None
        return message

    def on_ping(self, environ: Environ, payload: bytes) -> None:
        self.pings.append(payload)

    def on_close(self, environ: Environ) -> None:
        ws = self.websocket(environ)
        self.closes.append((ws.close_code, ws.close_reason))


async def run_node(url: str, mode: str) -> dict[str, Any]:
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(CLIENT),
        url,
        mode,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(RUN_DEADLINE):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, f"node failed:\n{out.decode()}\n{err.decode()}"
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


async def test_node_ws_client_gets_every_echo_then_closes_with_its_code() -> None:
    handler = Recorder()
    app = WsgiHandler([WebSocket(handler, [ServerPerMessageDeflate()])])
    async with Server(app) as server:
        report = await run_node(server.url + "/node", "echo")
        await _wait_for_close(handler)
    assert report["errors"] == []
    assert report["protocol"] == "chat"  # RFC 6455 §4.2.2: the subprotocol we both speak
    assert report["extensions"].startswith("permessage-deflate")
    assert report["texts"] == ["héllo from node", "100000 chars, intact: true"]
    assert report["binaries"] == ["000102ff"]
    # RFC 6455 §5.5.3: the Pong carries the Ping's payload.
    assert report["pongs"] == ["are you there"]
    assert handler.pings == [b"are you there"]
    # RFC 6455 §5.5.1: the server echoes the client's close code.
    assert report["closeCode"] == 4001
    assert handler.closes == [(4001, "node done")]
    assert handler.received == ["héllo from node", b"\x00\x01\x02\xff", "ab" * 50000]


async def test_node_ws_client_sees_the_servers_close_code_and_reason() -> None:
    handler = Recorder()
    async with Server(WsgiHandler([WebSocket(handler)])) as server:
        report = await run_node(server.url + "/node", "bye")
        await _wait_for_close(handler)
    assert report["errors"] == []
    assert report["extensions"] == ""  # the server offered no extension
    assert (report["closeCode"], report["closeReason"]) == (4000, "see you")
    assert handler.closes == [(4000, "see you")]


async def _wait_for_close(handler: Recorder) -> None:
    """The server's on_close may run just after the client saw the closing handshake."""
    async with asyncio.timeout(RUN_DEADLINE):
        while not handler.closes:
            await asyncio.sleep(0.01)
