"""An echo testee built on aiohttp's server, for comparing implementations.

Usage: ``python conformance/testees/aiohttp_echo.py PORT [HOST]``. permessage-deflate is on
(``compress=True``) and messages up to 32 MiB are accepted, because Autobahn 9.x sends
messages of 16 MiB and an echo server must not refuse them.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import WSMsgType, web

MAX_MESSAGE_SIZE = 2**25


async def echo(request: web.Request) -> web.WebSocketResponse:
    """Send every text and binary message back as it came; stop on close or error."""
    ws = web.WebSocketResponse(compress=True, max_msg_size=MAX_MESSAGE_SIZE, autoping=True)
    await ws.prepare(request)
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await ws.send_bytes(message.data)
        else:  # CLOSE / ERROR: aiohttp answers the closing handshake itself
            break
    return ws


async def main(port: int, host: str = "127.0.0.1") -> None:
    """Serve until the process is terminated; print the address once listening."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"serving on ws://{host}:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: aiohttp_echo.py PORT [HOST]")
    asyncio.run(main(int(sys.argv[1]), *sys.argv[2:3]))
