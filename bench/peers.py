"""Echo servers of the peer libraries, each run in its own process by the network benches.

``python bench/peers.py {aiohttp,websockets,picows} --port 0 [--uvloop]`` listens on
loopback, echoes every text or binary message back as it came, and prints ``serving on
ws://HOST:PORT`` once it listens, as ``python -m rfc6455 serve`` does. Each server is written
the way its library's documentation writes an echo server, with compression off (the bench
client offers none), on asyncio's own loop unless ``--uvloop`` is given. SIGTERM or SIGINT
stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

HOST = "127.0.0.1"


async def serve_aiohttp(port: int, stop: asyncio.Event) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    server: Any = site._server
    _ready(server.sockets[0].getsockname()[1])
    await stop.wait()
    await runner.cleanup()


async def serve_websockets(port: int, stop: asyncio.Event) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(echo, HOST, port, max_size=None, compression=None) as server:
        _ready(server.sockets[0].getsockname()[1])
        await stop.wait()


async def serve_picows(port: int, stop: asyncio.Event) -> None:
    from picows import (
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        WSUpgradeRequest,
        ws_create_server,
    )

    class Echo(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type in (WSMsgType.BINARY, WSMsgType.TEXT):
                transport.send(frame.msg_type, frame.get_payload_as_bytes())
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    def listener(request: WSUpgradeRequest) -> Echo:
        return Echo()

    server = await ws_create_server(listener, HOST, port, max_frame_size=64 * 2**20)
    _ready(server.sockets[0].getsockname()[1])
    await stop.wait()
    server.close()


SERVERS = {
    "aiohttp": serve_aiohttp,
    "websockets": serve_websockets,
    "picows": serve_picows,
}


def _ready(port: int) -> None:
    print(f"serving on ws://{HOST}:{port}", flush=True)


async def main(name: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await SERVERS[name](port, stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("server", choices=sorted(SERVERS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(main(args.server, args.port))
    else:
        asyncio.run(main(args.server, args.port))
    sys.exit(0)
