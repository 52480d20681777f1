"""An echo testee built on tornado's websocket handler, for comparing implementations.

Usage: ``python conformance/testees/tornado_echo.py PORT [HOST]``. permessage-deflate is on
(``get_compression_options`` returns options) and messages up to 32 MiB are accepted, because
Autobahn 9.x sends messages of 16 MiB and an echo server must not refuse them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from tornado.web import Application
from tornado.websocket import WebSocketClosedError, WebSocketHandler

MAX_MESSAGE_SIZE = 2**25


class EchoHandler(WebSocketHandler):
    """Send every message back unchanged, text as text and binary as binary."""

    def get_compression_options(self) -> dict[str, Any]:
        # An empty dict enables permessage-deflate with tornado's defaults.
        return {}

    async def on_message(self, message: str | bytes) -> None:
        # The fuzzer breaks connections on purpose: a closed one ends the echo quietly.
        with contextlib.suppress(WebSocketClosedError):
            await self.write_message(message, binary=isinstance(message, bytes))


async def main(port: int, host: str = "127.0.0.1") -> None:
    """Serve until the process is terminated; print the address once listening."""
    app = Application([(r"/.*", EchoHandler)], websocket_max_message_size=MAX_MESSAGE_SIZE)
    app.listen(port, host, max_body_size=MAX_MESSAGE_SIZE)
    print(f"serving on ws://{host}:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: tornado_echo.py PORT [HOST]")
    asyncio.run(main(int(sys.argv[1]), *sys.argv[2:3]))
