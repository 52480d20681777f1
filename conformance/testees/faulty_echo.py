"""An echo testee that misbehaves on purpose, for the harness's own fault tests.

Usage: ``python conformance/testees/faulty_echo.py PORT MODE [N]`` where MODE is

- ``die``: exit with status 3 (after a line on stderr) when connection N arrives;
- ``stall``: never answer the opening handshake of connection N (the fuzzer waits for ever),
  after printing ``stalling at connection N`` on stdout;
- ``mute``: complete every handshake but never echo anything.

Counting connections, not seconds, makes each fault land on a known fuzzer case.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

MODES = ("die", "stall", "mute")


class Faults:
    """Counts connections and injects the chosen fault at the Nth."""

    def __init__(self, mode: str, at: int) -> None:
        self.mode = mode
        self.at = at
        self.connections = 0

    async def before_handshake(self, _: ServerConnection, request: Request) -> Response | None:
        """websockets' process_request hook: runs once per connection, before the 101."""
        self.connections += 1
        if self.connections == self.at and self.mode == "die":
            print(f"faulty_echo: dying on purpose at connection {self.at}", file=sys.stderr)
            sys.stderr.flush()
            os._exit(3)
        if self.connections == self.at and self.mode == "stall":
            print(f"stalling at connection {self.at}", flush=True)
            await asyncio.Event().wait()
        return None

    async def handle(self, connection: ServerConnection) -> None:
        """Echo (or, when mute, swallow) every message until the peer closes."""
        with contextlib.suppress(ConnectionClosed):
            async for message in connection:
                if self.mode != "mute":
                    await connection.send(message)


async def main(port: int, mode: str, at: int) -> None:
    """Serve until terminated (or until the fault ends the process)."""
    faults = Faults(mode, at)
    async with serve(
        faults.handle,
        "127.0.0.1",
        port,
        process_request=faults.before_handshake,
        max_size=2**25,
        open_timeout=None,
        ping_interval=None,
    ) as server:
        print(f"serving on ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[2] not in MODES:
        sys.exit(f"usage: faulty_echo.py PORT {{{'|'.join(MODES)}}} [N]")
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 1))
