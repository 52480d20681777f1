"""Headless Chromium against rfc6455's server: a page served through the middleware chain
opens a WebSocket back to the server that served it.

The page comes from ``WsgiHandler([WebSocket(...), page])``: the plain GET falls through
the middleware to ``page``; the page's script opens ``ws://<same host>/echo``, sends text, binary
and a large compressible text, checks the echoes, closes with 4001, and writes what it saw
into the DOM as JSON. The test drives Chromium (Debian's ``chromium`` package) over the
DevTools protocol, with the websockets client, and reads that DOM node.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from rfc6455.extensions import ServerPerMessageDeflate
from rfc6455.handler import WS
from rfc6455.middleware import WebSocket
from rfc6455.server import Server, WsgiHandler

CHROMIUM = os.environ.get("RFC6455_CHROMIUM") or shutil.which("chromium")
DEADLINE = 60.0

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed: run .ci/install-peers.sh (apt-get install chromium)",
)

Environ = MutableMapping[str, Any]
StartResponse = Any

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>rfc6455 echo</title></head>
<body><pre id="result">running</pre>
<script>
"use strict";
const big = "chromium ".repeat(20000);
const report = {texts: [], binaries: [], errors: []};
const ws = new WebSocket(`ws://${location.host}/echo`, ["chat"]);
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  report.protocol = ws.protocol;
  report.extensions = ws.extensions;
  ws.send("h\xc3\xa9llo from chromium");
  ws.send(new Uint8Array([0, 1, 2, 255]));
  ws.send(big);
};
ws.onmessage = (event) => {
  if (typeof event.data === "string") {
    report.texts.push(event.data.length > 100
      ? `${event.data.length} chars, intact: ${event.data === big}` : event.data);
  } else {
    report.binaries.push(Array.from(new Uint8Array(event.data)));
  }
  if (report.texts.length === 2 && report.binaries.length === 1) ws.close(4001, "page done");
};
ws.onerror = () => report.errors.push("error event");
ws.onclose = (event) => {
  report.closeCode = event.code;
  report.closeReason = event.reason;
  report.wasClean = event.wasClean;
  const node = document.getElementById("result");
  node.textContent = JSON.stringify(report);
  node.dataset.done = "1";
};
</script></body></html>
"""

# Waits for the page's script to finish, then hands back the DOM node's text.
READ_RESULT = """
new Promise((resolve) => {
  const poll = () => {
    const node = document.getElementById("result");
    if (node && node.dataset.done === "1") resolve(node.textContent);
    else setTimeout(poll, 20);
  };
  poll();
})
"""


class Echo(WS):
    subprotocols = ("chat",)

    def __init__(self) -> None:
        self.closes: list[tuple[int | None, str | None]] = []
        self.origins: list[str | None] = []

    def on_open(self, environ: Environ) -> None:
        self.origins.append(environ.get("HTTP_ORIGIN"))

    def on_message(self, environ: Environ, message: str | bytes) -> str | bytes:
        return message

    def on_close(self, environ: Environ) -> None:
        ws = self.websocket(environ)
        self.closes.append((ws.close_code, ws.close_reason))


def page(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))],
    )
    return [PAGE]


class DevTools:
    """A minimal Chrome DevTools protocol client: one browser connection, flat sessions."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") != number:
                continue  # an event, or the answer to someone else
            if "error" in reply:
                raise RuntimeError(f"{method} failed: {reply['error']}")
            return reply["result"]


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[DevTools]:
    """Headless Chromium with a DevTools endpoint on a free loopback port."""
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its helper processes share its process group
    )
    try:
        endpoint = await _devtools_endpoint(process)
        async with connect(endpoint, max_size=None, open_timeout=DEADLINE) as ws:
            yield DevTools(ws)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def _devtools_endpoint(process: asyncio.subprocess.Process) -> str:
    """Read Chromium's stderr until it prints ``DevTools listening on ws://...``."""
    assert process.stderr is not None
    seen: list[str] = []
    while True:
        line = (await process.stderr.readline()).decode(errors="replace")
        if not line:
            raise RuntimeError("chromium exited before listening:\n" + "".join(seen))
        seen.append(line)
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            asyncio.get_running_loop().create_task(_drain(process.stderr))
            return match.group(1)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def test_chromium_page_opens_a_websocket_back_through_the_middleware(
    tmp_path: Path,
) -> None:
    handler = Echo()
    app = WsgiHandler([WebSocket(handler, [ServerPerMessageDeflate()]), page])
    async with asyncio.timeout(DEADLINE), Server(app) as server:
        page_url = f"http://127.0.0.1:{server.port}/"
        async with chromium(tmp_path / "profile") as devtools:
            target = await devtools.call("Target.createTarget", url="about:blank")
            attached = await devtools.call(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            session = attached["sessionId"]
            await devtools.call("Page.navigate", session, url=page_url)
            result = await _evaluate_on(devtools, session, page_url)
        while not handler.closes:
            await asyncio.sleep(0.01)
    report = json.loads(result)
    assert report["errors"] == []
    assert report["protocol"] == "chat"
    # Chromium offers permessage-deflate; the server accepted it (RFC 7692 §5).
    assert report["extensions"].startswith("permessage-deflate")
    assert report["texts"] == ["héllo from chromium", "180000 chars, intact: true"]
    assert report["binaries"] == [[0, 1, 2, 255]]
    # RFC 6455 §7.1.5/§5.5.1: the close code the page chose, echoed; a clean closing handshake.
    assert (report["closeCode"], report["wasClean"]) == (4001, True)
    assert handler.closes == [(4001, "page done")]
    assert handler.origins == [f"http://127.0.0.1:{server.port}"]  # RFC 6455 §4.1 step 8


async def _evaluate_on(devtools: DevTools, session: str, page_url: str) -> str:
    """Run ``READ_RESULT`` in the page once it is the current document."""
    while True:
        try:
            href = await devtools.call(
                "Runtime.evaluate", session, expression="location.href", returnByValue=True
            )
            if href["result"].get("value") != page_url:
                await asyncio.sleep(0.02)
                continue
            answer = await devtools.call(
                "Runtime.evaluate",
                session,
                expression=READ_RESULT,
                awaitPromise=True,
                returnByValue=True,
            )
        except RuntimeError as exc:
            if "context" in str(exc).lower():  # navigation replaced the document meanwhile
                continue
            raise
        if "exceptionDetails" in answer:
            raise RuntimeError(f"the page's script failed: {answer['exceptionDetails']}")
        value: str = answer["result"]["value"]
        return value
