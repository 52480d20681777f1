"""``WebSocketSession``: one upgraded connection, run on asyncio streams with the ``WS`` hooks.

Invariants:
- The session is the thin asyncio shell around the sans-I/O ``Connection``: bytes read from
  the stream go to ``receive_data`` / ``receive_eof``, events go to the handler's hooks one
  at a time, and everything queued on the connection leaves through ``data_to_send``. It
  parses nothing itself.
- Replies keep the order of the frames that caused them: events are pulled one by one and
  each hook (awaited when it is a coroutine) runs before the next event is parsed.
- Writes happen once per batch of events read together; while the write buffer is above
  its low-water mark the session awaits the writer's ``drain()`` (backpressure) before
  reading again (below it ``drain()`` would return at once, so it is skipped).
- After our Close is sent the peer has ``closing_timeout`` seconds to finish the closing
  handshake; then TCP is dropped (RFC 6455 §7.1.1: the server closes the TCP connection
  once the closing handshake is done).
- What a peer can make the session hold is bounded by its ``Limits``: at most
  ``max_read_buffer`` bytes are read ahead of the handler (the server's stream reader stops
  reading the socket beyond it), and the write buffer is drained before reading more, so a
  peer that does not read stops being read; one that reads nothing for ``send_timeout``
  is dropped. With ``ping_interval`` set, a Ping goes out
  every ``ping_interval`` seconds; no Pong within ``ping_timeout`` closes with 1011, except
  while a hook is busy (its Pong may be waiting, unread, behind the message being handled).
- Every method is for the event loop's thread; from another thread use
  ``loop.call_soon_threadsafe(session.send, data)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from .connection import Connection, State
from .errors import CloseCode
from .events import BinaryMessage, Closed, Ping, Pong, TextMessage
from .extensions import Extension
from .frame import Role
from .handler import WS
from .limits import DEFAULT_LIMITS, Limits

__all__ = ["READ_SIZE", "WebSocketSession"]

logger = logging.getLogger("rfc6455.session")

#: Bytes asked of the stream per read. Large reads keep the per-read cost low when the peer
#: streams big messages (Autobahn 9.x sends 16 MiB); a read returns what is there, so small
#: messages are not delayed.
READ_SIZE = 2**20

#: Replies that are certainly not awaitable: checked first, ``inspect.isawaitable`` is slow.
_PLAIN_REPLIES = (str, bytes, type(None))

_MESSAGES = (TextMessage, BinaryMessage)


class WebSocketSession:
    """A live server-side WebSocket connection; ``environ["rfc6455.websocket"]``.

    Created by the ``WebSocket`` middleware once the handshake is accepted, run by the server
    after it has written the 101. Use ``send`` / ``ping`` / ``close`` at any time from the
    event loop; they queue frames and write them at once (``drain()`` waits for a slow peer).
    ``send`` after the closing handshake started raises ``rfc6455.errors.InvalidState``.
    """

    def __init__(
        self,
        handler: WS,
        environ: MutableMapping[str, Any],
        *,
        extensions: Sequence[Extension] = (),
        subprotocol: str | None = None,
        max_message_size: int | None = None,
        max_frame_size: int | None = None,
    ) -> None:
        self.handler = handler
        self.environ = environ
        self.subprotocol = subprotocol
        self.extensions = list(extensions)
        self.connection = Connection(
            Role.SERVER,
            extensions=self.extensions,
            max_message_size=max_message_size,
            subprotocol=subprotocol,
            max_frame_size=max_frame_size,
        )
        self._writer: asyncio.StreamWriter | None = None
        self._limits = DEFAULT_LIMITS
        self._closing_timeout = DEFAULT_LIMITS.closing_timeout
        self._closing_timer: asyncio.TimerHandle | None = None
        # Keepalive (RFC 6455 §5.5.2: a Ping "may serve either as a keepalive or as a means
        # to verify that the remote endpoint is still responsive").
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None  # the keepalive Ping awaiting its Pong
        self._hooks_waiting = 0  # hooks suspended in an ``await``
        self._draining = 0  # of which, or the read loop, waiting in ``drain()``
        self._abort_timer: asyncio.TimerHandle | None = None
        self._on_close_called = False
        self._finished = False
        # Created by ``wait_closed`` only: an ``asyncio.Event`` holds a deque of 760 bytes,
        # for every idle connection.
        self._done: asyncio.Event | None = None

    # -- public API --------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """``State.OPEN``, ``State.CLOSING`` or ``State.CLOSED``."""
        return self.connection.state

    @property
    def closed(self) -> bool:
        """Whether the connection is over (``on_close`` has run or is running)."""
        return self.connection.state is State.CLOSED

    @property
    def close_code(self) -> int | None:
        """How the connection ended (RFC 6455 §7.1.5; 1006 if TCP dropped), else ``None``."""
        return self.connection.close_code

    @property
    def close_reason(self) -> str | None:
        """The reason that came with ``close_code`` (RFC 6455 §7.1.6)."""
        return self.connection.close_reason

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send one message: ``str`` as a text message, bytes-like as a binary message."""
        if isinstance(data, str):
            self.connection.send_text(data)
        else:
            self.connection.send_binary(bytes(data))
        self._flush()

    def ping(self, payload: bytes = b"") -> None:
        """Send a Ping; the answer arrives as ``WS.on_pong`` (RFC 6455 §5.5.2)."""
        self.connection.send_ping(payload)
        self._flush()

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake (idempotent); ``on_close`` runs once it is over."""
        if self.connection.state is State.OPEN:
            self.connection.close(code, reason)
        self._flush()

    async def drain(self) -> None:
        """Wait until the writer's buffer is below its high-water mark.

        A handler that sends a lot awaits this between sends: it blocks while the peer is
        not reading, so the server's buffer stays near ``Limits.write_buffer_size``. A peer
        that reads nothing for ``Limits.send_timeout`` seconds is dropped (the connection
        then ends with 1006).
        """
        writer = self._writer
        if writer is not None:
            self._draining += 1
            try:
                async with asyncio.timeout(self._limits.send_timeout):
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
            except TimeoutError:
                timeout = self._limits.send_timeout
                logger.info("the peer read nothing for %s s; dropping TCP", timeout)
                writer.transport.abort()
            finally:
                self._draining -= 1

    @property
    def transport(self) -> asyncio.Transport | None:
        """The running connection's transport (write buffer size, reading state), or ``None``."""
        if self._writer is None:
            return None
        transport = self._writer.transport
        return transport if isinstance(transport, asyncio.Transport) else None

    async def wait_closed(self) -> None:
        """Wait until the session has finished (TCP closed, ``on_close`` done)."""
        if self._finished:
            return
        if self._done is None:
            self._done = asyncio.Event()
        await self._done.wait()

    # -- the server's side ---------------------------------------------------------------------

    async def run(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        initial: bytes = b"",
        *,
        limits: Limits = DEFAULT_LIMITS,
        closing_timeout: float | None = None,
    ) -> None:
        """Run the connection until it is closed; the server has written the 101.

        ``initial`` holds the bytes the client sent after its request that the HTTP parser
        had already read (h11's ``trailing_data``): they are the start of the WebSocket
        stream. ``limits`` gives the timeouts, the keepalive and the read size
        (``closing_timeout``, if given, overrides its field). Returns once TCP is closed and
        ``on_close`` has run.
        """
        if self._writer is not None:
            raise RuntimeError("this session is already running")
        self._writer = writer
        self._limits = limits
        self._closing_timeout = (
            limits.closing_timeout if closing_timeout is None else closing_timeout
        )
        read_size = min(READ_SIZE, limits.max_read_buffer)
        connection = self.connection
        transport = writer.transport
        self._schedule_ping()
        try:
            await self._call_hook("on_open", self.handler.on_open, self.environ)
            if initial:
                connection.receive_data(initial)
            await self._process_events()
            self._flush()
            while not connection.close_transport and not self._on_close_called:
                try:
                    data = await reader.read(read_size)
                except ConnectionError:
                    data = b""
                if data:
                    connection.receive_data(data)
                else:
                    connection.receive_eof()
                await self._process_events()
                self._flush()
                if not data or connection.close_transport:
                    break
                # Writing pauses above the high-water mark and resumes at the low one: at or
                # below the low mark ``drain()`` would not wait, so the common case skips it.
                if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[0]:
                    await self.drain()
        finally:
            await self._finish(writer)

    # -- internals ------------------------------------------------------------------------------

    async def _process_events(self) -> None:
        """Hand each pending event to its hook, in order, before parsing the next one."""
        connection = self.connection
        handler = self.handler
        environ = self.environ
        for event in connection.events():
            if isinstance(event, _MESSAGES):
                # ``on_message`` and its reply, inline: this runs once per message.
                try:
                    reply = handler.on_message(environ, event.data)
                except Exception:
                    self._hook_failed("on_message")
                    continue
                if not isinstance(reply, _PLAIN_REPLIES) and inspect.isawaitable(reply):
                    reply = await self._await_reply(reply)
                if reply is None or connection.state is not State.OPEN:
                    continue
                if isinstance(reply, str):
                    connection.send_text(reply)
                else:
                    connection.send_binary(bytes(reply))
            elif isinstance(event, Ping):
                await self._call_hook("on_ping", handler.on_ping, environ, event.payload)
            elif isinstance(event, Pong):
                if event.payload == self._ping_payload:
                    self._keepalive_answered()
                await self._call_hook("on_pong", handler.on_pong, environ, event.payload)
            elif isinstance(event, Closed):
                await self._call_on_close()
            # CloseReceived needs nothing from us: the connection already queued the answer.

    async def _await_reply(
        self, pending: Awaitable[str | bytes | bytearray | memoryview | None]
    ) -> str | bytes | bytearray | memoryview | None:
        """Await an asynchronous ``on_message``; ``None`` (nothing to send) if it raised."""
        self._flush()  # what earlier events produced goes out before we wait
        self._hooks_waiting += 1
        try:
            return await pending
        except Exception:
            self._hook_failed("on_message")
            return None
        finally:
            self._hooks_waiting -= 1

    async def _call_hook(
        self, name: str, hook: Callable[..., Awaitable[None] | None], *args: Any
    ) -> None:
        try:
            result = hook(*args)
            if inspect.isawaitable(result):
                self._flush()
                self._hooks_waiting += 1
                try:
                    await result
                finally:
                    self._hooks_waiting -= 1
        except Exception:
            self._hook_failed(name)

    async def _call_on_close(self) -> None:
        if self._on_close_called:
            return
        self._on_close_called = True
        await self._call_hook("on_close", self.handler.on_close, self.environ)

    def _hook_failed(self, name: str) -> None:
        """A hook raised: log it and close with 1011, telling the peer nothing more."""
        logger.exception("WS.%s raised; closing the connection with 1011", name)
        if self.connection.state is State.OPEN:
            # RFC 6455 §7.4.1: 1011, "an unexpected condition that prevented it from
            # fulfilling the request".
            self.connection.close(CloseCode.INTERNAL_ERROR, "")

    def _flush(self) -> None:
        """Write what the connection has queued; arm the closing timer once we are closing."""
        writer = self._writer
        if writer is None:
            return  # not running yet: the bytes stay queued until ``run`` starts
        data = self.connection.data_to_send()
        if data and not writer.is_closing():
            writer.write(data)
        if self.connection.state is State.CLOSING and self._closing_timer is None:
            loop = asyncio.get_running_loop()
            self._closing_timer = loop.call_later(self._closing_timeout, self._closing_timed_out)

    def _schedule_ping(self) -> None:
        interval = self._limits.ping_interval
        if interval is not None:
            loop = asyncio.get_running_loop()
            self._ping_timer = loop.call_later(interval, self._send_keepalive_ping)

    def _send_keepalive_ping(self) -> None:
        """Ping the peer, unless an earlier keepalive Ping is still unanswered; re-arm."""
        if self.connection.state is not State.OPEN:
            return
        if self._ping_payload is None:
            # RFC 6455 §5.5.3: the Pong echoes the Ping's "Application data"; a random
            # payload tells the answer apart from unsolicited Pongs.
            self._ping_payload = os.urandom(4)
            self.connection.send_ping(self._ping_payload)
            self._flush()
            timeout = self._limits.ping_timeout
            if timeout is not None:
                loop = asyncio.get_running_loop()
                self._pong_timer = loop.call_later(timeout, self._keepalive_timed_out)
        self._schedule_ping()

    def _keepalive_answered(self) -> None:
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None

    def _keepalive_timed_out(self) -> None:
        """No Pong in time: close with 1011, unless a hook holds up reading the Pong."""
        self._pong_timer = None
        if self.connection.state is not State.OPEN or self._writer is None:
            return
        if self._hooks_waiting > self._draining:
            # A hook is awaiting something other than the peer: the Pong may be sitting
            # unread behind the message it is handling. Judge again later.
            timeout = self._limits.ping_timeout or self._limits.closing_timeout
            self._pong_timer = asyncio.get_running_loop().call_later(
                timeout, self._keepalive_timed_out
            )
            return
        logger.info("keepalive ping timed out; closing the connection with 1011")
        # RFC 6455 §7.4.1: 1011, the server "encountered an unexpected condition that
        # prevented it from fulfilling the request" (websockets sends the same code and
        # reason). The peer is unresponsive, so TCP is closed without waiting for its Close.
        self.connection.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        self._flush()
        writer = self._writer
        writer.close()
        # A peer that does not read keeps the Close in our buffer: drop TCP after a grace.
        self._abort_timer = asyncio.get_running_loop().call_later(
            self._closing_timeout, writer.transport.abort
        )

    def _closing_timed_out(self) -> None:
        """The peer did not finish the closing handshake in time: drop TCP."""
        if self._writer is not None:
            logger.info("closing handshake timed out; dropping the TCP connection")
            self._writer.transport.abort()

    async def _finish(self, writer: asyncio.StreamWriter) -> None:
        """Close TCP, make sure the connection knows it ended, run ``on_close`` once."""
        for timer in (self._closing_timer, self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        try:
            if self.connection.state is not State.CLOSED:
                self.connection.receive_eof()  # e.g. cancelled at shutdown: 1006
                for event in self.connection.events():
                    if isinstance(event, Closed):
                        break
            if not writer.is_closing():
                data = self.connection.data_to_send()
                if data:
                    writer.write(data)
                writer.close()
            await self._call_on_close()
            try:
                async with asyncio.timeout(self._closing_timeout):
                    await writer.wait_closed()
            except (TimeoutError, ConnectionError):
                writer.transport.abort()
        finally:
            if self._abort_timer is not None:
                self._abort_timer.cancel()
            self._finished = True
            if self._done is not None:
                self._done.set()
