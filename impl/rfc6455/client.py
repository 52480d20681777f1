"""``connect``: an asyncio WebSocket client on the sans-I/O ``Connection``.

Invariants:
- The client's role on the one asyncio shell (``rfc6455.shell``), as ``session`` is the
  server's: everything the shell promises holds here too. The opening handshake is
  ``handshake.client_request`` / ``validate_response`` around h11's HTTP/1.1 parser, on a
  small protocol (``_Opening``) that hands the transport, and every byte after the 101, to
  the connection.
- Frames are parsed on demand: the next event is pulled only while someone wants one (a
  ``recv()`` waiting, a ``ping()`` awaiting its Pong, a closing handshake in progress, or the
  handler's hooks). An application that answers each message before asking for the next one
  therefore keeps its replies in frame order: the echo of a valid message that precedes a bad
  frame leaves before the Close that fails the connection. At most ``READ_SIZE`` bytes are
  read ahead of the application; then reading pauses, so TCP flow control slows a server
  that sends faster than the application reads.
- RFC 6455 §7.1.1: after the closing handshake the client waits for the server to close TCP
  (at most ``close_timeout`` seconds), reading and discarding what still arrives (a socket
  closed with input unread resets the connection), then closes it itself.
- A connection that ends other than by a completed closing handshake logs exactly one line
  on ``rfc6455.client`` once it is over (``rfc6455.endings``).
- Every method is for the event loop's thread.

Two ways to use it::

    async with connect("ws://localhost:8000/chat") as ws:   # or: ws = await connect(...)
        await ws.send("hello")                              # str: text, bytes: binary
        reply = await ws.recv()
        async for message in ws:                            # until the connection closes
            ...
        await ws.ping(b"are you there")                     # waits for the Pong
        await ws.close(1000, "bye")

    ws = await connect(url, handler=MyWS())   # the pulsar-style hooks, as on the server side
    await ws.wait_closed()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl as ssl_module
import time
from collections import deque
from collections.abc import AsyncIterator, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import h11

from .connection import Connection, State
from .errors import CloseCode, ConnectionClosed, HandshakeError, InvalidState
from .extensions import ClientExtensionFactory, ClientPerMessageDeflate
from .frame import MAX_CONTROL_PAYLOAD, Role
from .handler import WEBSOCKET_KEY, WS
from .handshake import client_request, validate_response
from .limits import MAX_MESSAGE_SIZE, WRITE_BUFFER_SIZE
from .readbuffer import receive_buffer
from .shell import Deferred, OnClose, Shell, Stage
from .version import __version__

__all__ = [
    "CLOSE_TIMEOUT",
    "MAX_QUEUE",
    "OPEN_TIMEOUT",
    "ClientConnection",
    "Connecting",
    "connect",
]

#: Seconds for TCP connect plus the opening handshake. websockets' ``open_timeout`` is 10 s.
OPEN_TIMEOUT = 10.0
#: Seconds the server has to finish the closing handshake and close TCP. websockets'
#: ``close_timeout`` is 10 s.
CLOSE_TIMEOUT = 10.0
#: Messages read ahead while nobody calls ``recv()`` (a ``ping()`` or a closing handshake is
#: reading): websockets' ``max_queue`` is 16.
MAX_QUEUE = 16
#: Bytes read ahead of the application before reading pauses (Autobahn 9.x sends 16 MiB
#: messages; a read returns what is there, so small messages are not delayed).
READ_SIZE = 2**20
#: The opening handshake's response head. h11's own default is 16 KiB.
MAX_RESPONSE_HEAD = 16 * 1024
USER_AGENT = f"rfc6455/{__version__} (Python asyncio)"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a ``ws://`` or ``wss://`` URL points (RFC 6455 §3)."""

    secure: bool
    host: str
    port: int
    resource: str  # path and query: the request target
    host_header: str  # RFC 6455 §4.1 step 4: host, and ":port" unless it is the default


def parse_url(url: str) -> Target:
    """Split a WebSocket URI (RFC 6455 §3); ``ValueError`` for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"{url!r} is not a ws:// or wss:// URL")
    # RFC 6455 §3: "Fragment identifiers are meaningless in the context of WebSocket URIs
    # and MUST NOT be used on these URIs."
    if parts.fragment or url.endswith("#"):
        raise ValueError(f"{url!r} has a fragment, which a WebSocket URI may not have")
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{url!r} carries credentials; send them in a header instead")
    secure = scheme == "wss"
    default_port = 443 if secure else 80  # RFC 6455 §3: the default ports
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ValueError(f"{url!r} has an invalid port") from exc
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(secure, host, port, resource, host_header)


class ClientConnection(Shell):
    """An open client WebSocket connection (what ``connect`` gives).

    ``send`` / ``ping`` / ``close`` act at once and return something that may be awaited
    (backpressure, the Pong, the end of the closing handshake) or ignored, so the ``WS``
    hooks' helpers (``WS.send(environ, data)``) work on it as on a server-side session.
    """

    __slots__ = (
        "_closed_waiters",
        "_closing_timeout",
        "_max_queue",
        "_max_read_buffer",
        "_messages",
        "_pong_waiters",
        "_recv_waiters",
        "_send_timeout",
        "_wanted",
        "response_headers",
        "url",
    )

    _closing_timeout: float  # (slots, where the server's settings are its Limits)
    _send_timeout: float | None
    _max_read_buffer: int

    _peer = "the server"
    # RFC 6455 §7.1.1: the server closes TCP first; the client waits for it.
    _half_close_first = False
    _pull = True
    _logger = logging.getLogger("rfc6455.client")

    def __init__(
        self,
        connection: Connection,
        *,
        url: str,
        response_headers: list[tuple[str, str]],
        handler: WS | None = None,
        close_timeout: float = CLOSE_TIMEOUT,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        environ: dict[str, Any] = {
            "rfc6455.role": "client",
            "rfc6455.url": url,
            "rfc6455.response_headers": response_headers,
        }
        super().__init__(handler, environ, connection)
        #: What the hooks receive as ``environ``: this connection under ``WEBSOCKET_KEY``.
        environ[WEBSOCKET_KEY] = self
        self.url = url
        self.response_headers = response_headers
        self._closing_timeout = close_timeout
        self._send_timeout = None  # a server that reads nothing is not dropped
        self._max_read_buffer = READ_SIZE
        self._max_queue = max_queue
        self._messages: deque[str | bytes] = deque()
        self._recv_waiters: deque[asyncio.Future[str | bytes]] = deque()
        self._pong_waiters: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._wanted: asyncio.Future[None] | None = None  # resolved when an event is wanted
        self._closed_waiters = 0  # wait_closed() calls in progress

    # -- public API --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is over (TCP closed or about to be)."""
        return self._stage is Stage.FINISHED

    def send(self, data: str | bytes | bytearray | memoryview) -> Deferred[None]:
        """Send one message (``str``: text, bytes-like: binary); await it to wait for drain.

        ``ConnectionClosed`` once the connection is over; ``InvalidState`` after ``close``.
        """
        self._check_not_closed()
        return super().send(data)

    async def recv(self) -> str | bytes:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises ``ConnectionClosed`` (with the close code) once the connection is over and
        every message received before the end has been returned.
        """
        if self.handler is not None:
            raise InvalidState("this connection's messages go to its handler's on_message")
        if self._messages:
            return self._messages.popleft()
        if self._on_close is not OnClose.PENDING:
            raise self._closed_error()
        waiter: asyncio.Future[str | bytes] = asyncio.get_running_loop().create_future()
        self._recv_waiters.append(waiter)
        self._want()
        try:
            return await waiter
        except asyncio.CancelledError:
            # Cancelled after the message was handed over: keep it for the next recv().
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._messages.appendleft(waiter.result())
            with contextlib.suppress(ValueError):
                self._recv_waiters.remove(waiter)
            raise

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        """Messages until the connection closes (however it closes: see ``close_code``)."""
        while True:
            try:
                message = await self.recv()
            except ConnectionClosed:
                return
            yield message

    def ping(self, payload: bytes | str | None = None) -> Deferred[float]:
        """Send a Ping (RFC 6455 §5.5.2); await the result for the round trip in seconds.

        ``payload`` defaults to 4 random bytes; at most 125 bytes (RFC 6455 §5.5). A Pong
        answers the Ping with the same payload and every Ping sent before it (RFC 6455
        §5.5.3: an endpoint "MAY elect to send a Pong frame for only the most recently
        processed Ping frame"). The Pong is read in frame order: by ``recv()``, or by the
        wait itself while fewer than ``max_queue`` received messages await ``recv()``.
        """
        self._check_not_closed()
        data = os.urandom(4) if payload is None else _as_bytes(payload)
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError(
                f"a Ping payload is at most {MAX_CONTROL_PAYLOAD} bytes (RFC 6455 §5.5)"
            )
        if data in self._pong_waiters:
            raise ValueError(f"a Ping with payload {data!r} is already waiting for its Pong")
        self.connection.send_ping(data)
        pong: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pong_waiters[data] = (pong, time.monotonic())
        self._flush()
        self._want()
        return Deferred(lambda: self._wait_for_pong(pong))

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> Deferred[None]:
        """Start the closing handshake (RFC 6455 §7.1.2); await it to wait for the end.

        Idempotent. The server has ``close_timeout`` seconds to answer and close TCP.
        """
        if self.connection.state is State.OPEN:
            self.connection.close(code, reason)
            self._flush()
        self._want()
        return Deferred(self.wait_closed)

    async def wait_closed(self) -> None:
        """Wait until the connection is over (TCP closed, ``on_close`` run).

        While it waits, frames are read (messages are queued for ``recv``, up to
        ``max_queue``), so a Close from the server is seen and answered.
        """
        self._closed_waiters += 1
        self._want()
        try:
            await super().wait_closed()
        finally:
            self._closed_waiters -= 1

    async def __aenter__(self) -> ClientConnection:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- events on demand ----------------------------------------------------------------------

    def _wants_events(self) -> bool:
        """Whether the next event may be parsed now (see the module's invariants)."""
        if self.handler is not None or self._recv_waiters:
            return True
        if self.connection.state is not State.OPEN:
            return True  # a closing handshake must be read to its end
        reading_ahead = bool(self._pong_waiters) or self._closed_waiters > 0
        return reading_ahead and len(self._messages) < self._max_queue

    def _wait_until_wanted(self) -> bool:
        if self._wants_events() or self._stage is Stage.LOST:
            return False  # (once TCP is lost, what arrived is handled at once)
        assert self._loop is not None
        wanted: asyncio.Future[None] = self._loop.create_future()
        self._wanted = wanted
        self._suspend(self._until_wanted(wanted))
        return True

    async def _until_wanted(self, wanted: asyncio.Future[None]) -> None:
        try:
            await wanted
        finally:
            self._wanted = None

    def _want(self) -> None:
        """Someone may want the next event: resume event handling if it waits for that."""
        wanted = self._wanted
        if wanted is not None and not wanted.done():
            wanted.set_result(None)

    def _deliver(self, message: str | bytes) -> None:
        while self._recv_waiters:
            waiter = self._recv_waiters.popleft()
            if not waiter.done():
                waiter.set_result(message)
                return
        if self.connection.state is State.OPEN or len(self._messages) < self._max_queue:
            self._messages.append(message)
        # (a message arriving while we close, beyond the queue, is dropped)

    def _pong_received(self, payload: bytes) -> None:
        if payload not in self._pong_waiters:
            # RFC 6455 §5.5.3: "A Pong frame MAY be sent unsolicited ... A response to an
            # unsolicited Pong frame is not expected."
            return
        now = time.monotonic()
        for data in list(self._pong_waiters):
            pong, sent = self._pong_waiters.pop(data)
            if not pong.done():
                pong.set_result(now - sent)
            if data == payload:
                break

    async def _wait_for_pong(self, pong: asyncio.Future[float]) -> float:
        try:
            return await asyncio.shield(pong)
        except asyncio.CancelledError:
            if pong.cancelled():  # the connection ended before the Pong came
                raise self._closed_error() from None
            raise

    def _connection_over(self) -> None:
        """Waiting ``recv()`` calls get ``ConnectionClosed``; waiting pings are cancelled."""
        error = self._closed_error()
        while self._recv_waiters:
            waiter = self._recv_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        for pong, _ in self._pong_waiters.values():
            pong.cancel()
        self._pong_waiters.clear()

    def _linger_reason(self) -> str:
        return f"the server did not close TCP within {self._closing_timeout:g} s"

    def _name(self) -> str:
        return self.url

    def _check_not_closed(self) -> None:
        if self.connection.state is State.CLOSED:
            raise self._closed_error()

    def _closed_error(self) -> ConnectionClosed:
        code = self.connection.close_code
        return ConnectionClosed(CloseCode.ABNORMAL if code is None else code, self.close_reason)


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


# -- opening the connection --------------------------------------------------------------------


class Connecting:
    """What ``connect`` returns: await it for the connection, or use it with ``async with``."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.url = url
        self._options = options
        self._connection: ClientConnection | None = None

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return _open(self.url, **self._options).__await__()

    async def __aenter__(self) -> ClientConnection:
        self._connection = await self
        return self._connection

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            await self._connection.close()


def connect(
    url: str,
    *,
    subprotocols: Sequence[str] = (),
    extensions: Sequence[ClientExtensionFactory] | None = None,
    headers: Sequence[tuple[str, str]] = (),
    handler: WS | None = None,
    max_message_size: int | None = MAX_MESSAGE_SIZE,
    max_queue: int = MAX_QUEUE,
    open_timeout: float | None = OPEN_TIMEOUT,
    close_timeout: float = CLOSE_TIMEOUT,
    ssl: ssl_module.SSLContext | None = None,
) -> Connecting:
    """Open a WebSocket connection to ``url`` (``ws://`` or ``wss://``).

    ``subprotocols`` are offered in order of preference; ``extensions`` default to
    permessage-deflate (RFC 7692) with its default offer, ``()`` offers none. ``headers`` are
    extra request headers (``Origin``, cookies, ...). With ``handler``, its ``on_open`` /
    ``on_message`` / ``on_ping`` / ``on_pong`` / ``on_close`` run as on the server side
    (``recv()`` is then unavailable). ``max_message_size`` (``None``: no limit) fails larger
    messages with 1009. ``open_timeout`` bounds TCP connect plus the handshake
    (``TimeoutError``); a refused handshake is a ``HandshakeError``.
    """
    if max_queue < 1:
        raise ValueError("max_queue must be at least 1")
    options: dict[str, Any] = {
        "subprotocols": list(subprotocols),
        "extensions": [ClientPerMessageDeflate()] if extensions is None else list(extensions),
        "headers": list(headers),
        "handler": handler,
        "max_message_size": max_message_size,
        "max_queue": max_queue,
        "open_timeout": open_timeout,
        "close_timeout": close_timeout,
        "ssl": ssl,
    }
    return Connecting(url, options)


async def _open(
    url: str,
    *,
    subprotocols: list[str],
    extensions: list[ClientExtensionFactory],
    headers: list[tuple[str, str]],
    handler: WS | None,
    max_message_size: int | None,
    max_queue: int,
    open_timeout: float | None,
    close_timeout: float,
    ssl: ssl_module.SSLContext | None,
) -> ClientConnection:
    target = parse_url(url)
    if not any(name.lower() == "user-agent" for name, _ in headers):
        headers = [*headers, ("User-Agent", USER_AGENT)]
    key, request = client_request(
        target.host_header, target.resource, subprotocols, extensions, headers
    )
    context = (
        ssl if ssl is not None else (ssl_module.create_default_context() if target.secure else None)
    )
    if context is not None and not target.secure:
        raise ValueError(f"an SSL context was given for {url!r}, which is not wss://")
    loop = asyncio.get_running_loop()
    http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD)
    async with asyncio.timeout(open_timeout):
        transport, opening = await loop.create_connection(
            lambda: _Opening(http), target.host, target.port, ssl=context
        )
        try:
            transport.write(
                http.send(h11.Request(method="GET", target=target.resource, headers=request))
            )
            status, response_headers = await opening.response
            subprotocol, negotiated = validate_response(
                status, response_headers, key, subprotocols, extensions
            )
        except BaseException:
            transport.abort()
            raise
    connection = Connection(
        Role.CLIENT,
        extensions=negotiated,
        max_message_size=max_message_size,
        subprotocol=subprotocol,
    )
    ws = ClientConnection(
        connection,
        url=url,
        response_headers=response_headers,
        handler=handler,
        close_timeout=close_timeout,
        max_queue=max_queue,
    )
    assert isinstance(transport, asyncio.Transport)
    ws._begin(transport, bytes(opening.after), WRITE_BUFFER_SIZE, receive_buffer())
    # What the transport said before the connection took it over, it now hears.
    if opening.lost:
        ws.connection_lost(opening.lost_exc)
    elif opening.eof:
        ws.eof_received()
    return ws


class _Opening(asyncio.Protocol):
    """The transport's protocol until the server's answer: h11 reads it; what follows a 101
    is kept (reading pauses) for the connection, which becomes the protocol then."""

    def __init__(self, http: h11.Connection) -> None:
        self.http = http
        self.transport: asyncio.BaseTransport | None = None
        self.response: asyncio.Future[tuple[int, list[tuple[str, str]]]] = (
            asyncio.get_running_loop().create_future()
        )
        self.after = bytearray()  # bytes after the response head: already WebSocket data
        self.eof = False
        self.lost = False
        self.lost_exc: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.response.done():
            self.after += data
            return
        self.http.receive_data(data)
        self._read_response()

    def eof_received(self) -> bool:
        self.eof = True
        self._refuse("the server closed the connection during the opening handshake")
        return True  # the connection closes TCP itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_exc = exc
        self._refuse("the server closed the connection during the opening handshake")

    def _refuse(self, reason: str) -> None:
        if not self.response.done():
            self.response.set_exception(HandshakeError(reason))

    def _read_response(self) -> None:
        """The server's answer: status and headers (RFC 6455 §4.1), once it is complete."""
        while True:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(f"the server's response is not valid HTTP/1.1: {exc}")
                return
            if event is h11.NEED_DATA:
                return
            if not isinstance(event, h11.InformationalResponse | h11.Response):
                self._refuse(f"unexpected HTTP event in the opening handshake: {event!r}")
                return
            if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
                continue  # RFC 9110 §15.2: other 1xx answers are interim; the final one follows
            headers = [
                (name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers
            ]
            if event.status_code == 101:
                self.after += self.http.trailing_data[0]
            assert isinstance(self.transport, asyncio.Transport)
            self.transport.pause_reading()  # the connection resumes it
            self.response.set_result((event.status_code, headers))
            return
