"""The one load client of the network benches: raw asyncio over loopback, no library.

Every server is driven by this same client so that differences come from the servers. It
speaks just enough RFC 6455 to load them: the opening handshake of §4.1 (one request, a 101
check), masked binary frames built once (§5.3: a client masks every frame), and byte
counting for echoes (a 32-byte message comes back as a 34-byte unmasked frame).

Modes (``python bench/client.py MODE --port P ...``), each printing one JSON line:
- ``echo``: N connections, each sends a message, waits for its echo, sends the next;
  reports round trips per second over ``--duration`` after ``--warmup``.
- ``handshakes``: W workers, each opens a connection, completes the opening handshake, then
  the closing one (Close 1000 out, Close back), and closes TCP; reports handshakes/s.
- ``idle``: opens connections in stages given by ``--stages`` (e.g. ``10,1010``), prints
  ``{"open": n}`` after each stage and waits for a line on stdin before the next; after the
  last one it holds the connections until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time

HOST = "127.0.0.1"
KEY = b"\x37\xfa\x21\x3d"


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame (payloads under 126 bytes only: all this client sends)."""
    assert len(payload) < 126
    masked = bytes(byte ^ KEY[index % 4] for index, byte in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + KEY + masked


CLOSE_1000 = masked_frame(0x8, (1000).to_bytes(2, "big"))


def upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Client(asyncio.Protocol):
    """One connection: handshake, then either echo round trips or a closing handshake."""

    def __init__(self, port: int, message: bytes | None, counter: list[int]) -> None:
        self.port = port
        self.frame = masked_frame(0x2, message) if message is not None else b""
        self.echo_size = 2 + len(message) if message is not None else 0
        self.counter = counter
        self.running = True
        self.head = b""
        self.pending = 0
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.handshaking = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(upgrade_request(self.port))

    def data_received(self, data: bytes) -> None:
        if self.handshaking:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head.split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                self.opened.set_exception(RuntimeError(f"no upgrade: {status!r}"))
                return
            self.handshaking = False
            data = self.head[end + 4 :]
            self.head = b""
            if not self.opened.done():
                self.opened.set_result(None)
            if self.echo_size and self.transport is not None:
                self.transport.write(self.frame)
            if not data:
                return
        if not self.echo_size:
            # Waiting for the server's Close (2-byte header + 2-byte code).
            self.pending += len(data)
            if self.pending >= 4 and not self.closed.done():
                self.closed.set_result(None)
            return
        self.pending += len(data)
        while self.pending >= self.echo_size:
            self.pending -= self.echo_size
            self.counter[0] += 1
            if self.running and self.transport is not None:
                self.transport.write(self.frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("connection lost before the upgrade"))
            self.opened.exception()  # retrieved here: nobody may be waiting any more
        if not self.closed.done():
            self.closed.set_result(None)  # TCP closed: the closing handshake is over too


async def open_client(port: int, message: bytes | None, counter: list[int]) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Client(port, message, counter), HOST, port)
    await asyncio.wait_for(client.opened, 10)
    return client


async def echo(port: int, connections: int, size: int, warmup: float, duration: float) -> dict:
    counter = [0]
    message = os.urandom(size)
    clients = await asyncio.gather(
        *(open_client(port, message, counter) for _ in range(connections))
    )
    await asyncio.sleep(warmup)
    start_count, start = counter[0], time.perf_counter()
    await asyncio.sleep(duration)
    done, elapsed = counter[0] - start_count, time.perf_counter() - start
    for client in clients:
        client.running = False
        if client.transport is not None:
            client.transport.close()
    return {"round_trips": done, "seconds": elapsed, "rate": done / elapsed}


async def handshakes(port: int, workers: int, warmup: float, duration: float) -> dict:
    loop = asyncio.get_running_loop()
    counter = [0]
    deadline = loop.time() + warmup + duration
    marks: dict[str, float] = {}

    async def worker() -> None:
        while loop.time() < deadline:
            client = await open_client(port, None, [0])
            assert client.transport is not None
            client.transport.write(CLOSE_1000)
            await asyncio.wait_for(client.closed, 10)
            client.transport.close()
            counter[0] += 1

    async def mark() -> None:
        await asyncio.sleep(warmup)
        marks["count"], marks["start"] = counter[0], time.perf_counter()
        await asyncio.sleep(duration)
        marks["end_count"], marks["end"] = counter[0], time.perf_counter()

    await asyncio.gather(mark(), *(worker() for _ in range(workers)))
    done = marks["end_count"] - marks["count"]
    elapsed = marks["end"] - marks["start"]
    return {"handshakes": done, "seconds": elapsed, "rate": done / elapsed}


async def idle(port: int, stages: list[int]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients: list[Client] = []
    limit = asyncio.Semaphore(64)

    async def opened() -> Client:
        async with limit:
            return await open_client(port, None, [0])

    for stage in stages:
        clients += await asyncio.gather(*(opened() for _ in range(stage - len(clients))))
        print(json.dumps({"open": len(clients)}), flush=True)
        await reader.readline()
    await reader.read()
    for client in clients:
        if client.transport is not None:
            client.transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["echo", "handshakes", "idle"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--stages", default="10,1010")
    args = parser.parse_args()
    if args.mode == "echo":
        result = asyncio.run(
            echo(args.port, args.connections, args.size, args.warmup, args.duration)
        )
        print(json.dumps(result), flush=True)
    elif args.mode == "handshakes":
        result = asyncio.run(handshakes(args.port, args.workers, args.warmup, args.duration))
        print(json.dumps(result), flush=True)
    else:
        asyncio.run(idle(args.port, [int(stage) for stage in args.stages.split(",")]))


if __name__ == "__main__":
    main()
