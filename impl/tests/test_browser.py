"""Headless Chromium against rfc6455's server: a page served through the middleware chain
opens a WebSocket back to the server that served it.

The page comes from ``WsgiHandler([WebSocket(...), page])``: the plain GET falls through
the middleware to ``page``; the page's script opens ``ws://<same host>/echo``, sends text, binary
and a large compressible text, checks the echoes, closes with 4001, and writes what it saw
into the DOM as JSON. The test drives Chromium (Debian's ``chromium`` package) over the
DevTools protocol (``headless_chromium``) and reads that DOM node.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from headless_chromium import DEADLINE, chromium, require_chromium

from rfc6455.extensions import ServerPerMessageDeflate
from rfc6455.handler import WS
from rfc6455.middleware import WebSocket
from rfc6455.server import Server, WsgiHandler

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


async def test_chromium_page_opens_a_websocket_back_through_the_middleware(
    tmp_path: Path,
) -> None:
    require_chromium()
    handler = Echo()
    app = WsgiHandler([WebSocket(handler, [ServerPerMessageDeflate()]), page])
    async with asyncio.timeout(DEADLINE), Server(app) as server:
        page_url = f"http://127.0.0.1:{server.port}/"
        async with chromium(tmp_path / "profile") as devtools:
            session = await devtools.open(page_url)
            result = await devtools.evaluate(session, READ_RESULT, page_url)
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
