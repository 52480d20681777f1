"""An echo testee built on websockets, for comparing against the reference server.

Usage: ``python conformance/testees/websockets_echo.py PORT [HOST]``. permessage-deflate is on
(websockets' default) and messages up to 32 MiB are accepted, because Autobahn 9.x sends
messages of 16 MiB and an echo server must not refuse them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

MAX_MESSAGE_SIZE = 2**25


async def echo(connection: ServerConnection) -> None:
    """Send every message back unchanged, text as text and binary as binary.

    A connection the peer breaks on purpose (most fuzzer cases) ends the handler quietly.
    """
    with contextlib.suppress(ConnectionClosed):
        async for message in connection:
            await connection.send(message)


async def main(port: int, host: str = "127.0.0.1") -> None:
    """Serve until the process is terminated; print the address once listening."""
    async with serve(
        echo, host, port, compression="deflate", max_size=MAX_MESSAGE_SIZE, ping_interval=None
    ) as server:
        print(f"serving on ws://{host}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: websockets_echo.py PORT [HOST]")
    asyncio.run(main(int(sys.argv[1]), *sys.argv[2:3]))
