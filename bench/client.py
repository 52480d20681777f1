"""The one load client of the network benches: raw sockets over loopback, no library.

Every server is driven by this same client so that differences come from the servers. It
speaks just enough RFC 6455 to load them: the opening handshake of §4.1 (one request, a 101
check), masked binary frames built once (§5.3: a client masks every frame), and byte
counting for echoes (a 32-byte message comes back as a 34-byte unmasked frame).

The echo loop avoids asyncio: after blocking-socket handshakes it drives non-blocking
TCP_NODELAY sockets from one ``select.epoll`` loop (poll, ``recv_into`` a preallocated
buffer, count whole echoes, ``send`` the prebuilt frame). On asyncio the client cost
~28 us of CPU per round trip, more than the servers it measures, so on a 2-core machine it
was the bottleneck: every server came out alike, picows' process at half a core. This loop
costs ~7-10 us, mostly the kernel's loopback send and receive that every server pays too,
so each server runs at ~95% of a core and its own cost sets the rate.

Modes (``python bench/client.py MODE --port P ...``), each printing one JSON line; with
``--server-pid``, ``echo`` and ``handshakes`` also report ``server_cpu``, the seconds of CPU
(user + system, from ``/proc``) the server's process spent over the measured window:
- ``echo``: N connections, each sends a message, waits for its echo, sends the next;
  reports round trips per second over ``--duration`` after ``--warmup``. A connection the
  server closes is dropped (and reported on stderr); the others go on.
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
import select
import socket
import sys
import time

HOST = "127.0.0.1"
KEY = b"\x37\xfa\x21\x3d"
#: Bound on every wait: connecting, a handshake, one poll with nothing ready.
TIMEOUT = 10.0


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
    """One connection: the opening handshake, then possibly the closing one."""

    def __init__(self, port: int) -> None:
        self.port = port
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
            if not upgraded(status):
                self.opened.set_exception(RuntimeError(f"no upgrade: {status!r}"))
                return
            self.handshaking = False
            data = self.head[end + 4 :]
            self.head = b""
            if not self.opened.done():
                self.opened.set_result(None)
            if not data:
                return
        # Waiting for the server's Close (2-byte header + 2-byte code).
        self.pending += len(data)
        if self.pending >= 4 and not self.closed.done():
            self.closed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("connection lost before the upgrade"))
            self.opened.exception()  # retrieved here: nobody may be waiting any more
        if not self.closed.done():
            self.closed.set_result(None)  # TCP closed: the closing handshake is over too


def upgraded(status: bytes) -> bool:
    """Whether an HTTP status line is ``101 Switching Protocols``."""
    return b" 101 " in status + b" "


async def open_client(port: int) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Client(port), HOST, port)
    await asyncio.wait_for(client.opened, TIMEOUT)
    return client


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far, from ``/proc``; 0 without."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_socket(port: int) -> tuple[socket.socket, int]:
    """A blocking connection through the opening handshake; the bytes already past it."""
    sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(upgrade_request(port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("connection lost before the upgrade")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if not upgraded(status):
            raise RuntimeError(f"no upgrade: {status!r}")
        sock.setblocking(False)
        return sock, len(head) - head.index(b"\r\n\r\n") - 4
    except BaseException:
        sock.close()
        raise


def echo(
    port: int, connections: int, size: int, warmup: float, duration: float, server: int | None
) -> dict:
    """Echo round trips from one epoll loop; at most one message in flight per connection.

    With one frame in flight a connection's send buffer never fills, so each ``send`` of
    a prebuilt frame goes out whole; echoes are counted by bytes, whatever the reads' sizes.
    """
    frame = masked_frame(0x2, os.urandom(size))
    echo_size = 2 + size  # RFC 6455 §5.2: unmasked, 7-bit length
    sockets: dict[int, socket.socket] = {}
    pending: dict[int, int] = {}
    poller = select.epoll()
    try:
        for _ in range(connections):
            sock, extra = open_socket(port)
            sockets[sock.fileno()] = sock
            pending[sock.fileno()] = extra
            poller.register(sock.fileno(), select.EPOLLIN)
        for sock in sockets.values():
            sock.send(frame)
        buffer = bytearray(65536)
        count = dropped = 0
        start_count, start = 0, 0.0
        now = time.perf_counter()
        mark, end = now + warmup, now + warmup + duration
        measuring = False
        while True:
            now = time.perf_counter()
            if now >= mark:
                if measuring:
                    break
                measuring = True
                start_count, start, mark = count, now, end
                cpu = process_cpu(server)
            for fd, _ in poller.poll(min(mark - now, TIMEOUT)):
                sock = sockets[fd]
                try:
                    received = sock.recv_into(buffer)
                    if received:
                        echoes, pending[fd] = divmod(pending[fd] + received, echo_size)
                        if echoes:
                            count += echoes
                            sock.send(frame)
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass  # reset by the server: dropped like a clean close
                poller.unregister(fd)
                del sockets[fd], pending[fd]
                sock.close()
                dropped += 1
        elapsed = now - start
        done = count - start_count
        cpu = process_cpu(server) - cpu
    finally:
        poller.close()
        for sock in sockets.values():
            sock.close()
    if dropped:
        print(f"echo: the server closed {dropped} of {connections} connections", file=sys.stderr)
    return {"round_trips": done, "seconds": elapsed, "rate": done / elapsed, "server_cpu": cpu}


async def handshakes(
    port: int, workers: int, warmup: float, duration: float, server: int | None
) -> dict:
    loop = asyncio.get_running_loop()
    counter = [0]
    deadline = loop.time() + warmup + duration
    marks: dict[str, float] = {}

    async def worker() -> None:
        while loop.time() < deadline:
            client = await open_client(port)
            assert client.transport is not None
            client.transport.write(CLOSE_1000)
            await asyncio.wait_for(client.closed, TIMEOUT)
            client.transport.close()
            counter[0] += 1

    async def mark() -> None:
        await asyncio.sleep(warmup)
        marks["count"], marks["start"] = counter[0], time.perf_counter()
        marks["cpu"] = process_cpu(server)
        await asyncio.sleep(duration)
        marks["end_count"], marks["end"] = counter[0], time.perf_counter()
        marks["cpu"] = process_cpu(server) - marks["cpu"]

    await asyncio.gather(mark(), *(worker() for _ in range(workers)))
    done = marks["end_count"] - marks["count"]
    elapsed = marks["end"] - marks["start"]
    rate = done / elapsed
    return {"handshakes": done, "seconds": elapsed, "rate": rate, "server_cpu": marks["cpu"]}


async def idle(port: int, stages: list[int]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients: list[Client] = []
    limit = asyncio.Semaphore(64)

    async def opened() -> Client:
        async with limit:
            return await open_client(port)

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
    parser.add_argument("--server-pid", type=int, help="report this process's CPU time")
    args = parser.parse_args()
    server = args.server_pid
    if args.mode == "echo":
        result = echo(args.port, args.connections, args.size, args.warmup, args.duration, server)
        print(json.dumps(result), flush=True)
    elif args.mode == "handshakes":
        result = asyncio.run(
            handshakes(args.port, args.workers, args.warmup, args.duration, server)
        )
        print(json.dumps(result), flush=True)
    else:
        asyncio.run(idle(args.port, [int(stage) for stage in args.stages.split(",")]))


if __name__ == "__main__":
    main()
