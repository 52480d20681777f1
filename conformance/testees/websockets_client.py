"""A client testee built on websockets' asyncio client, for comparing clients.

Usage: ``python conformance/testees/websockets_client.py URL AGENT``, where URL is the Autobahn
fuzzing server (``wsconform run-client --client-cmd 'python .../websockets_client.py {url}
{agent}'``). It runs the fuzzing server's case loop: ``/getCaseCount``, then
``/runCase?case=N&agent=AGENT`` for every case, echoing each message (text as text, binary as
binary) until the server closes, then ``/updateReports?agent=AGENT``. permessage-deflate is on
(websockets' default) and messages up to 32 MiB are accepted, because Autobahn 9.x sends
messages of 16 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from urllib.parse import quote

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

MAX_MESSAGE_SIZE = 2**25


async def case_count(url: str) -> int:
    """How many cases the fuzzing server selected."""
    async with connect(f"{url}/getCaseCount") as connection:
        return int(json.loads(await connection.recv()))


async def run_case(url: str, number: int, agent: str) -> None:
    """Echo every message of case `number` until the fuzzing server closes the connection."""
    async with connect(
        f"{url}/runCase?case={number}&agent={quote(agent, safe='')}",
        compression="deflate",
        max_size=MAX_MESSAGE_SIZE,
        ping_interval=None,
    ) as connection:
        with contextlib.suppress(ConnectionClosed):
            async for message in connection:
                await connection.send(message)


async def main(url: str, agent: str) -> None:
    url = url.rstrip("/")
    count = await case_count(url)
    for number in range(1, count + 1):
        try:
            await run_case(url, number, agent)
        except (OSError, InvalidHandshake, ConnectionClosed) as exc:
            print(f"case {number}: {exc}", file=sys.stderr, flush=True)
    async with connect(f"{url}/updateReports?agent={quote(agent, safe='')}") as connection:
        with contextlib.suppress(ConnectionClosed):
            await connection.recv()
    print(f"ran {count} cases", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: websockets_client.py URL AGENT")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
