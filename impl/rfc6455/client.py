"""``connect``: an asyncio WebSocket client on the sans-I/O ``Connection``.

Invariants:
- A thin shell, like ``session``: bytes read from the stream go to ``receive_data`` /
  ``receive_eof``, events are pulled from ``Connection.events()`` one at a time, and whatever
  the connection queued leaves through ``data_to_send``. The opening handshake is
  ``handshake.client_request`` / ``validate_response`` around h11's HTTP/1.1 parser.
- Frames are parsed on demand: the next event is pulled only while someone wants one (a
  ``recv()`` waiting, a ``ping()`` awaiting its Pong, a closing handshake in progress, or the
  handler's hooks). An application that answers each message before asking for the next one
  therefore keeps its replies in frame order: the echo of a valid message that precedes a bad
  frame leaves before the Close that fails the connection. Unread data stays in the socket,
  so TCP flow control slows a server that sends faster than the application reads.
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
import inspect
import logging
import os
import ssl as ssl_module
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import h11

from . import __version__
from .connection import Connection, State
from .endings import Ending, failure_level, note, protocol_failure
from .errors import CloseCode, ConnectionClosed, HandshakeError, InvalidState
from .events import BinaryMessage, Closed, Event, Ping, Pong, TextMessage
from .extensions import ClientExtensionFactory, ClientPerMessageDeflate, Extension
from .frame import MAX_CONTROL_PAYLOAD, Role
from .handler import WEBSOCKET_KEY, WS
from .handshake import client_request, validate_response
from .limits import MAX_MESSAGE_SIZE

__all__ = [
    "CLOSE_TIMEOUT",
    "MAX_QUEUE",
    "OPEN_TIMEOUT",
    "ClientConnection",
    "Connecting",
    "connect",
]

logger = logging.getLogger("rfc6455.client")

#: Seconds for TCP connect plus the opening handshake. websockets' ``open_timeout`` is 10 s.
OPEN_TIMEOUT = 10.0
#: Seconds the server has to finish the closing handshake and close TCP. websockets'
#: ``close_timeout`` is 10 s.
CLOSE_TIMEOUT = 10.0
#: Messages read ahead while nobody calls ``recv()`` (a ``ping()`` or a closing handshake is
#: reading): websockets' ``max_queue`` is 16.
MAX_QUEUE = 16
#: Bytes asked of the stream per read, as the server's session does (Autobahn 9.x sends
#: 16 MiB messages; a read returns what is there, so small messages are not delayed).
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


class _Drained:
    """What ``send`` returns: awaiting it waits for the write buffer to drain; it may be ignored."""

    __slots__ = ("_ws",)

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    def __await__(self) -> Generator[Any, None, None]:
        return self._ws.drain().__await__()


class _PongAwaited:
    """What ``ping`` returns: awaiting it gives the round trip in seconds once the Pong came."""

    __slots__ = ("_pong", "_ws")

    def __init__(self, ws: ClientConnection, pong: asyncio.Future[float]) -> None:
        self._ws = ws
        self._pong = pong

    def __await__(self) -> Generator[Any, None, float]:
        return self._ws._wait_for_pong(self._pong).__await__()


class _ClosingAwaited:
    """What ``close`` returns: awaiting it waits until the connection is over."""

    __slots__ = ("_ws",)

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    def __await__(self) -> Generator[Any, None, None]:
        return self._ws.wait_closed().__await__()


class ClientConnection:
    """An open client WebSocket connection (what ``connect`` gives).

    ``send`` / ``ping`` / ``close`` act at once and return something that may be awaited
    (backpressure, the Pong, the end of the closing handshake) or ignored, so the ``WS``
    hooks' helpers (``WS.send(environ, data)``) work on it as on a server-side session.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: Connection,
        *,
        url: str,
        response_headers: list[tuple[str, str]],
        initial: bytes = b"",
        handler: WS | None = None,
        close_timeout: float = CLOSE_TIMEOUT,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self.url = url
        self.connection = connection
        self.response_headers = response_headers
        self.handler = handler
        #: What the hooks receive as ``environ``: this connection under ``WEBSOCKET_KEY``.
        self.environ: dict[str, Any] = {
            WEBSOCKET_KEY: self,
            "rfc6455.role": "client",
            "rfc6455.url": url,
            "rfc6455.response_headers": response_headers,
        }
        self._reader = reader
        self._writer = writer
        self._close_timeout = close_timeout
        self._max_queue = max_queue
        self._messages: deque[str | bytes] = deque()
        self._recv_waiters: deque[asyncio.Future[str | bytes]] = deque()
        self._pong_waiters: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._wanted = asyncio.Event()  # set when someone may want the next event
        self._closed_waiters = 0  # wait_closed() calls in progress
        self._closed_seen = False
        self._eof = False
        self._closing_timer: asyncio.TimerHandle | None = None
        self._done = asyncio.Event()
        # Why the connection ended abnormally, if it did: logged once, when it is over.
        self._ending: Ending | None = None
        if initial:
            connection.receive_data(initial)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"websocket {url}")

    # -- public API --------------------------------------------------------------------------

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server selected (RFC 6455 §4.1), or ``None``."""
        return self.connection.subprotocol

    @property
    def extensions(self) -> list[Extension]:
        """The negotiated extensions, in order."""
        return self.connection.extensions

    @property
    def state(self) -> State:
        return self.connection.state

    @property
    def closed(self) -> bool:
        """Whether the connection is over (TCP closed or about to be)."""
        return self._done.is_set()

    @property
    def close_code(self) -> int | None:
        """How the connection ended (RFC 6455 §7.1.5; 1006 without a Close), else ``None``."""
        return self.connection.close_code

    @property
    def close_reason(self) -> str:
        """The reason that came with ``close_code`` (RFC 6455 §7.1.6)."""
        return self.connection.close_reason

    def send(self, message: str | bytes | bytearray | memoryview) -> _Drained:
        """Send one message (``str``: text, bytes-like: binary); await it to wait for drain.

        ``ConnectionClosed`` once the connection is over; ``InvalidState`` after ``close``.
        """
        self._check_not_closed()
        self.connection.send(message)
        self._flush()
        return _Drained(self)

    async def recv(self) -> str | bytes:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises ``ConnectionClosed`` (with the close code) once the connection is over and
        every message received before the end has been returned.
        """
        if self.handler is not None:
            raise InvalidState("this connection's messages go to its handler's on_message")
        if self._messages:
            return self._messages.popleft()
        if self._closed_seen:
            raise self._closed_error()
        waiter: asyncio.Future[str | bytes] = asyncio.get_running_loop().create_future()
        self._recv_waiters.append(waiter)
        self._wanted.set()
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

    def ping(self, payload: bytes | str | None = None) -> _PongAwaited:
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
        sent = time.monotonic()
        self._pong_waiters[data] = (pong, sent)
        self._flush()
        self._wanted.set()
        return _PongAwaited(self, pong)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> _ClosingAwaited:
        """Start the closing handshake (RFC 6455 §7.1.2); await it to wait for the end.

        Idempotent. The server has ``close_timeout`` seconds to answer and close TCP.
        """
        if self.connection.state is State.OPEN:
            self.connection.close(code, reason)
            self._flush()
        self._wanted.set()
        return _ClosingAwaited(self)

    async def wait_closed(self) -> None:
        """Wait until the connection is over (TCP closed, ``on_close`` run).

        While it waits, frames are read (messages are queued for ``recv``, up to
        ``max_queue``), so a Close from the server is seen and answered.
        """
        self._closed_waiters += 1
        self._wanted.set()
        try:
            await self._done.wait()
        finally:
            self._closed_waiters -= 1

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark."""
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    async def __aenter__(self) -> ClientConnection:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the read loop -----------------------------------------------------------------------

    def _wants_events(self) -> bool:
        """Whether the next event may be parsed now (see the module's invariants)."""
        if self.handler is not None or self._recv_waiters:
            return True
        if self.connection.state is not State.OPEN:
            return True  # a closing handshake must be read to its end
        reading_ahead = bool(self._pong_waiters) or self._closed_waiters > 0
        return reading_ahead and len(self._messages) < self._max_queue

    async def _run(self) -> None:
        """Pull events on demand until the Close, then wait for the server to close TCP."""
        try:
            if self.handler is not None:
                await self._call_hook("on_open", self.handler.on_open, self.environ)
            while not self._closed_seen:
                if not self._wants_events():
                    self._wanted.clear()
                    await self._wanted.wait()
                    continue
                event = next(self.connection.events(), None)
                if event is None:
                    self._flush()
                    await self.drain()
                    await self._read()
                    continue
                await self._dispatch(event)
                self._flush()
            self._flush()
            await self._wait_for_server_close()
        except Exception as exc:
            logger.exception("the client connection to %s failed; closing it with 1011", self.url)
            self._note_ending(f"{type(exc).__name__} raised", level=logging.WARNING)
            self.connection.fail(CloseCode.INTERNAL_ERROR)
            with contextlib.suppress(Exception):
                self._flush()
        finally:
            await self._finish()

    async def _read(self) -> None:
        try:
            data = await self._reader.read(READ_SIZE)
        except ConnectionError as exc:
            data = b""
            lost: str | None = f"TCP connection lost: {exc!r}"
        else:
            lost = None
        if data:
            self.connection.receive_data(data)
        else:
            self._eof = True
            if self.connection.state is not State.CLOSED and self._ending is None:
                self._note_ending(lost or "the server closed TCP without a Close frame")
            self.connection.receive_eof()

    async def _dispatch(self, event: Event) -> None:
        if isinstance(event, TextMessage | BinaryMessage):
            await self._deliver(event.data)
        elif isinstance(event, Ping):
            if self.handler is not None:
                await self._call_hook("on_ping", self.handler.on_ping, self.environ, event.payload)
        elif isinstance(event, Pong):
            self._pong_received(event.payload)
            if self.handler is not None:
                await self._call_hook("on_pong", self.handler.on_pong, self.environ, event.payload)
        elif isinstance(event, Closed):
            self._closed_seen = True
            failure = self.connection.failure
            if failure is not None:
                self._note_ending(
                    protocol_failure(failure, event.code),
                    self.connection.failed_in,
                    failure_level(failure),
                )
        # CloseReceived needs nothing here: the connection already queued the answering Close.

    async def _deliver(self, message: str | bytes) -> None:
        if self.handler is None:
            while self._recv_waiters:
                waiter = self._recv_waiters.popleft()
                if not waiter.done():
                    waiter.set_result(message)
                    return
            if self.connection.state is State.OPEN or len(self._messages) < self._max_queue:
                self._messages.append(message)
            return  # a message arriving while we close, beyond the queue: dropped
        try:
            reply = self.handler.on_message(self.environ, message)
            if inspect.isawaitable(reply):
                self._flush()
                reply = await reply
        except Exception:
            self._hook_failed("on_message")
            return
        if reply is not None and self.connection.state is State.OPEN:
            self.connection.send(reply)

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

    async def _wait_for_server_close(self) -> None:
        """RFC 6455 §7.1.1: the server closes TCP first; give it ``close_timeout``."""
        if self._eof:
            return
        await self.drain()
        try:
            async with asyncio.timeout(self._close_timeout):
                while await self._reader.read(READ_SIZE):
                    pass  # RFC 6455 §5.5.1: nothing is processed after a Close
        except TimeoutError:
            self._note_ending(f"the server did not close TCP within {self._close_timeout:g} s")
        except ConnectionError as exc:
            self._note_ending(f"TCP connection lost: {exc!r}")

    async def _finish(self) -> None:
        """Close TCP, fail the waiters, run ``on_close`` once, mark the connection done."""
        if self._closing_timer is not None:
            self._closing_timer.cancel()
        if self.connection.state is not State.CLOSED:
            self._note_ending("the connection was cancelled")
            self.connection.receive_eof()  # cancelled or broken: 1006
        self._closed_seen = True
        error = self._closed_error()
        while self._recv_waiters:
            waiter = self._recv_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        for pong, _ in self._pong_waiters.values():
            pong.cancel()
        self._pong_waiters.clear()
        writer = self._writer
        try:
            if not writer.is_closing():
                writer.close()
            try:
                async with asyncio.timeout(self._close_timeout):
                    await writer.wait_closed()
            except (TimeoutError, ConnectionError, ssl_module.SSLError) as exc:
                self._note_ending(f"TCP did not close cleanly ({exc!r}); dropped")
                writer.transport.abort()
            if self.handler is not None:
                await self._call_hook("on_close", self.handler.on_close, self.environ)
        finally:
            if self._ending is not None:
                self._ending.log(logger, self.url, self.connection.close_code)
            self._done.set()

    # -- helpers -----------------------------------------------------------------------------

    def _flush(self) -> None:
        """Write what the connection queued; bound the closing handshake once it started."""
        data = self.connection.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)
        if self.connection.state is State.CLOSING and self._closing_timer is None:
            loop = asyncio.get_running_loop()
            self._closing_timer = loop.call_later(self._close_timeout, self._closing_timed_out)

    def _closing_timed_out(self) -> None:
        """The server did not answer our Close in time: drop TCP (the code becomes 1006)."""
        self._note_ending(f"no Close from the server within {self._close_timeout:g} s of ours")
        self._writer.transport.abort()

    def _note_ending(
        self, reason: str, state: State | None = None, level: int = logging.INFO
    ) -> None:
        """Record a reason the connection ends abnormally (logged once it is over)."""
        self._ending = note(self._ending, reason, state or self.connection.state, level)

    def _check_not_closed(self) -> None:
        if self.connection.state is State.CLOSED:
            raise self._closed_error()

    def _closed_error(self) -> ConnectionClosed:
        code = self.connection.close_code
        return ConnectionClosed(CloseCode.ABNORMAL if code is None else code, self.close_reason)

    async def _call_hook(
        self, name: str, hook: Callable[..., Awaitable[None] | None], *args: Any
    ) -> None:
        try:
            result = hook(*args)
            if inspect.isawaitable(result):
                self._flush()
                await result
        except Exception:
            self._hook_failed(name)

    def _hook_failed(self, name: str) -> None:
        """A hook raised: log it and close with 1011, telling the server nothing more."""
        logger.exception("WS.%s raised; closing the connection with 1011", name)
        self._note_ending(f"WS.{name} raised", level=logging.WARNING)
        if self.connection.state is State.OPEN:
            # RFC 6455 §7.4.1: 1011, "an unexpected condition that prevented it from
            # fulfilling the request".
            self.connection.close(CloseCode.INTERNAL_ERROR, "")


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
    async with asyncio.timeout(open_timeout):
        reader, writer = await asyncio.open_connection(
            target.host, target.port, ssl=context, limit=READ_SIZE
        )
        try:
            http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD)
            writer.write(
                http.send(h11.Request(method="GET", target=target.resource, headers=request))
            )
            status, response_headers, initial = await _read_response(reader, http)
            subprotocol, negotiated = validate_response(
                status, response_headers, key, subprotocols, extensions
            )
        except BaseException:
            writer.transport.abort()
            raise
    connection = Connection(
        Role.CLIENT,
        extensions=negotiated,
        max_message_size=max_message_size,
        subprotocol=subprotocol,
    )
    return ClientConnection(
        reader,
        writer,
        connection,
        url=url,
        response_headers=response_headers,
        initial=initial,
        handler=handler,
        close_timeout=close_timeout,
        max_queue=max_queue,
    )


async def _read_response(
    reader: asyncio.StreamReader, http: Any
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The server's answer: status, headers, and the bytes after it (already WebSocket data)."""
    while True:
        try:
            event = http.next_event()
        except h11.RemoteProtocolError as exc:
            raise HandshakeError(f"the server's response is not valid HTTP/1.1: {exc}") from exc
        if event is h11.NEED_DATA:
            data = await reader.read(READ_SIZE)
            if not data:
                raise HandshakeError(
                    "the server closed the connection during the opening handshake"
                )
            http.receive_data(data)
            continue
        if isinstance(event, h11.InformationalResponse | h11.Response):
            headers = [
                (name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers
            ]
            if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
                continue  # RFC 9110 §15.2: other 1xx answers are interim; the final one follows
            trailing: bytes = http.trailing_data[0] if event.status_code == 101 else b""
            return event.status_code, headers, bytes(trailing)
        raise HandshakeError(f"unexpected HTTP event in the opening handshake: {event!r}")
