"""An echo testee built on wsproto (sans-I/O) inside a small asyncio shell.

Usage: ``python conformance/testees/wsproto_echo.py PORT [HOST]``. permessage-deflate is
offered back when the client asks for it, and messages up to 32 MiB are accepted, because
Autobahn 9.x sends messages of 16 MiB and an echo server must not refuse them.

The shell does what any wsproto user must: feed bytes in, act on events, write what the
connection wants sent. wsproto reports a frame it cannot parse as a ``CloseConnection`` event
while the connection is still OPEN (the code is the one to fail with); a peer's close arrives
in REMOTE_CLOSING and is answered with the same code.
"""

from __future__ import annotations

import asyncio
import sys

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

MAX_MESSAGE_SIZE = 2**25
READ_SIZE = 65536
# RFC 6455 §7.4.1: 1009 "message too big to process".
MESSAGE_TOO_BIG = 1009


class EchoSession:
    """One connection: wsproto's state machine plus the message being reassembled."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.ws = WSConnection(ConnectionType.SERVER)
        self.writer = writer
        self.text: list[str] = []
        self.binary = bytearray()
        self.size = 0
        self.done = False

    def send(self, event: Event) -> None:
        self.writer.write(self.ws.send(event))

    def handle(self, event: Event) -> None:
        """Act on one event; sets `done` once the TCP connection should close."""
        if isinstance(event, Request):
            self.send(AcceptConnection(extensions=[PerMessageDeflate()]))
        elif isinstance(event, TextMessage):
            self.text.append(event.data)
            self._grow(len(event.data))
            if event.message_finished and not self.done:
                self.send(TextMessage(data="".join(self.text)))
                self.text.clear()
                self.size = 0
        elif isinstance(event, BytesMessage):
            self.binary += event.data
            self._grow(len(event.data))
            if event.message_finished and not self.done:
                self.send(BytesMessage(data=bytes(self.binary)))
                self.binary.clear()
                self.size = 0
        elif isinstance(event, Ping):
            self.send(event.response())
        elif isinstance(event, CloseConnection):
            if self.ws.state is ConnectionState.REMOTE_CLOSING:
                self.send(event.response())
            elif self.ws.state is ConnectionState.OPEN:  # a frame wsproto could not parse
                self.send(CloseConnection(code=event.code))
            # RFC 6455 §7.1.1: the server closes the TCP connection after the close handshake.
            self.done = True
        elif isinstance(event, RejectConnection):
            self.done = True

    def _grow(self, amount: int) -> None:
        self.size += amount
        if self.size > MAX_MESSAGE_SIZE and not self.done:
            self.send(CloseConnection(code=MESSAGE_TOO_BIG))
            self.done = True


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Pump bytes through one EchoSession until it is done or the peer goes away."""
    session = EchoSession(writer)
    try:
        while not session.done:
            data = await reader.read(READ_SIZE)
            session.ws.receive_data(data or None)
            for event in session.ws.events():
                session.handle(event)
                if session.done:
                    break
            await writer.drain()
            if not data:
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int, host: str = "127.0.0.1") -> None:
    """Serve until the process is terminated; print the address once listening."""
    server = await asyncio.start_server(serve_connection, host, port)
    print(f"serving on ws://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: wsproto_echo.py PORT [HOST]")
    asyncio.run(main(int(sys.argv[1]), *sys.argv[2:3]))
