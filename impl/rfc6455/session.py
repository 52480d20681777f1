"""``WebSocketSession``: one upgraded connection, the transport's protocol, with the ``WS`` hooks.

Invariants:
- The session is the thin asyncio shell around the sans-I/O ``Connection``: once started it
  is the transport's ``asyncio.BufferedProtocol`` (the transport reads into the thread's
  one receive buffer, ``rfc6455.readbuffer``); bytes it receives go to ``receive_data`` /
  ``receive_eof``, events go to the handler's hooks one at a time, and everything queued on
  the connection leaves through ``data_to_send``. It parses nothing itself.
- Replies keep the order of the frames that caused them: events are pulled one by one and
  each hook runs before the next event is parsed. Plain hooks run inline, in the transport's
  callback; a hook that returns an awaitable suspends event handling: a task awaits it,
  then handles the events that arrived meanwhile. No task or future exists per read.
- Writes happen once per batch of events read together. While the transport's write buffer
  is above its high-water mark (``Limits.write_buffer_size``) reading pauses (backpressure:
  a peer that does not read stops being read) until it falls to the low-water mark; a peer
  that leaves it there for ``send_timeout`` seconds is dropped.
- While a hook is suspended, at most ``max_read_buffer`` bytes are read ahead of it; then
  reading pauses until the hook is done.
- After our Close is sent the peer has ``closing_timeout`` seconds to finish the closing
  handshake; then TCP is dropped (RFC 6455 §7.1.1: the server closes the TCP connection
  once the closing handshake is done).
- TCP is never closed with input unread: closing a socket whose receive queue holds data
  makes the kernel answer with a reset (RFC 1122 §4.2.2.13), and a reset discards what is
  still queued for the peer, or overtakes it: the echo and the Close that fail a connection
  would be lost (issue 19). So the session half-closes (our FIN follows everything queued),
  reads and discards until the peer's EOF, then closes; a peer that has not closed within
  ``closing_timeout`` is aborted.
- A connection that ends other than by a completed closing handshake (a protocol error, the
  peer's EOF or reset, a timeout, a hook's exception, a shutdown) logs exactly one line on
  ``rfc6455.session`` once it is over (``rfc6455.endings``).
- With ``ping_interval`` set, a Ping goes out every ``ping_interval`` seconds; no Pong
  within ``ping_timeout`` closes with 1011, except while a hook is suspended (its Pong may
  be waiting, unread, behind the message being handled).
- ``on_close`` runs exactly once; the session is finished when it has run and TCP is closed.
- Every method is for the event loop's thread; from another thread use
  ``loop.call_soon_threadsafe(session.send, data)``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from .connection import Connection, State
from .endings import Ending, failure_level, note, protocol_failure
from .errors import CloseCode
from .events import BinaryMessage, Closed, Ping, Pong, TextMessage
from .extensions import Extension
from .frame import Role
from .handler import WS
from .limits import DEFAULT_LIMITS, MAX_MESSAGE_SIZE, Limits
from .readbuffer import read_buffer

__all__ = ["WebSocketSession"]

logger = logging.getLogger("rfc6455.session")

#: Replies that are certainly not awaitable: checked first, ``inspect.isawaitable`` is slow.
_PLAIN_REPLIES = (str, bytes)

_MESSAGES = (TextMessage, BinaryMessage)
#: ``get_buffer`` before ``start``: an empty buffer, which asyncio refuses loudly.
_NOT_STARTED = memoryview(b"")


class WebSocketSession(asyncio.BufferedProtocol):
    """A live server-side WebSocket connection; ``environ["rfc6455.websocket"]``.

    Created by the ``WebSocket`` middleware once the handshake is accepted, started by the
    server after it has written the 101 (it then becomes the transport's protocol). Use
    ``send`` / ``ping`` / ``close`` at any time from the event loop; they queue frames and
    write them at once (``drain()`` waits for a slow peer). ``send`` after the closing
    handshake started raises ``rfc6455.errors.InvalidState``.
    """

    # Slots: one per open connection, so no per-instance dict (memory, and attribute speed).
    __slots__ = (
        "_abort_timer",
        "_closing_timeout",
        "_closing_timer",
        "_closing_transport",
        "_done",
        "_drain_waiters",
        "_draining",
        "_ending",
        "_eof",
        "_eof_fed",
        "_finished",
        "_hooks_waiting",
        "_limits",
        "_loop",
        "_lost",
        "_lost_exc",
        "_on_close_called",
        "_on_close_done",
        "_on_finished",
        "_ping_payload",
        "_ping_timer",
        "_pong_timer",
        "_read_view",
        "_reading_paused",
        "_send_timer",
        "_task",
        "_transport",
        "_unread",
        "_writing_paused",
        "connection",
        "environ",
        "extensions",
        "handler",
        "subprotocol",
    )

    def __init__(
        self,
        handler: WS,
        environ: MutableMapping[str, Any],
        *,
        extensions: Sequence[Extension] = (),
        subprotocol: str | None = None,
        max_message_size: int | None = MAX_MESSAGE_SIZE,
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
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limits = DEFAULT_LIMITS
        self._closing_timeout = DEFAULT_LIMITS.closing_timeout
        self._on_finished: Callable[[], None] | None = None
        self._read_view = _NOT_STARTED  # the thread's receive buffer, once started
        # The task awaiting a suspended hook; events wait for it.
        self._task: asyncio.Task[None] | None = None
        self._unread = 0  # bytes received while a hook is suspended
        self._writing_paused = False
        self._reading_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._eof = False  # the peer closed TCP (or it was lost)
        self._eof_fed = False  # ... and the connection was told
        self._lost = False  # ``connection_lost`` ran
        self._lost_exc: Exception | None = None  # ... and why, if the transport says
        # Why the connection ended abnormally, if it did: logged once, when it is over.
        self._ending: Ending | None = None
        self._closing_transport = False
        self._closing_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        # Keepalive (RFC 6455 §5.5.2: a Ping "may serve either as a keepalive or as a means
        # to verify that the remote endpoint is still responsive").
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None  # the keepalive Ping awaiting its Pong
        self._hooks_waiting = 0  # hooks suspended in an ``await``
        self._draining = 0  # of which, waiting in ``drain()``
        self._on_close_called = False
        self._on_close_done = False
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
        """Wait until the write buffer is back at its low-water mark.

        A handler that sends a lot awaits this between sends: it blocks while the peer is
        not reading, so the server's buffer stays near ``Limits.write_buffer_size``. A peer
        that reads nothing for ``Limits.send_timeout`` seconds is dropped (the connection
        then ends with 1006, and this returns).
        """
        if not self._writing_paused or self._lost or self._loop is None:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        self._draining += 1
        try:
            await waiter
        finally:
            self._draining -= 1
            if waiter in self._drain_waiters:
                self._drain_waiters.remove(waiter)

    def abort(self, reason: str) -> None:
        """Drop TCP now, without a closing handshake; ``reason`` goes into the log line."""
        if self._transport is None or self._lost:
            return
        self._note_ending(reason, self.connection.state)
        self._transport.abort()

    @property
    def transport(self) -> asyncio.Transport | None:
        """The running connection's transport (write buffer size, reading state), or ``None``."""
        return self._transport

    async def wait_closed(self) -> None:
        """Wait until the session has finished (TCP closed, ``on_close`` done)."""
        if self._finished:
            return
        if self._done is None:
            self._done = asyncio.Event()
        await self._done.wait()

    # -- the server's side ---------------------------------------------------------------------

    def start(
        self,
        transport: asyncio.Transport,
        initial: bytes = b"",
        *,
        limits: Limits = DEFAULT_LIMITS,
        closing_timeout: float | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        """Take over ``transport`` (the 101 is written) and run the connection on it.

        ``initial`` holds the bytes the client sent after its request that the HTTP parser
        had already read (h11's ``trailing_data``): they are the start of the WebSocket
        stream. ``limits`` gives the timeouts, buffer sizes and keepalive
        (``closing_timeout``, if given, overrides its field). ``on_finished`` is called once
        TCP is closed and ``on_close`` has run.
        """
        if self._transport is not None:
            raise RuntimeError("this session is already running")
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._limits = limits
        self._closing_timeout = (
            limits.closing_timeout if closing_timeout is None else closing_timeout
        )
        self._on_finished = on_finished
        self._read_view = read_buffer()
        # Above the high-water mark the transport calls ``pause_writing``: the bound on what
        # a peer that does not read makes the server buffer.
        transport.set_write_buffer_limits(high=limits.write_buffer_size)
        transport.set_protocol(self)
        self._schedule_ping()
        if initial:
            self.connection.receive_data(initial)
        if not self._run_hook("on_open", self.handler.on_open, self.environ):
            self._process()

    # -- asyncio.BufferedProtocol -------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        # The parser copies the bytes into its own buffer: the shared one is free again.
        self.data_received(self._read_view[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self._closing_transport:
            return  # lingering until the peer's EOF: nothing is processed now
        self.connection.receive_data(data)
        if self._task is None:
            self._process()
        else:
            self._unread += len(data)
            if self._unread > self._limits.max_read_buffer:
                self._update_reading()

    def eof_received(self) -> bool:
        self._eof = True
        if self._closing_transport:
            # Our FIN is queued and every byte of the peer's was read: a close that cannot
            # reset the connection.
            assert self._transport is not None
            self._transport.close()
            return True
        if self._task is None:
            self._process()
        return True  # the session closes TCP itself, once the connection says so

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._lost_exc = exc
        self._eof = True
        for timer in (
            self._closing_timer,
            self._abort_timer,
            self._send_timer,
            self._ping_timer,
            self._pong_timer,
        ):
            if timer is not None:
                timer.cancel()
        self._wake_drain_waiters()
        if self._task is None:
            self._process()
        self._maybe_finish()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()
        timeout = self._limits.send_timeout
        if timeout is not None and self._loop is not None:
            self._send_timer = self._loop.call_later(timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        self._wake_drain_waiters()
        self._update_reading()

    # -- internals ------------------------------------------------------------------------------

    def _process(self) -> None:
        """Hand each pending event to its hook, in order, until one suspends; then write."""
        connection = self.connection
        handler = self.handler
        environ = self.environ
        while True:
            for event in connection.events():
                if isinstance(event, _MESSAGES):
                    # ``on_message`` and its reply, inline: this runs once per message.
                    try:
                        reply = handler.on_message(environ, event.data)
                    except Exception:
                        self._hook_failed("on_message")
                        continue
                    if reply is None:
                        continue
                    if not isinstance(reply, _PLAIN_REPLIES) and inspect.isawaitable(reply):
                        self._suspend(self._await_reply(reply))
                        return
                    self._send_reply(reply)
                elif isinstance(event, Ping):
                    if self._run_hook("on_ping", handler.on_ping, environ, event.payload):
                        return
                elif isinstance(event, Pong):
                    if event.payload == self._ping_payload:
                        self._keepalive_answered()
                    if self._run_hook("on_pong", handler.on_pong, environ, event.payload):
                        return
                elif isinstance(event, Closed):
                    self._note_close(event)
                    if self._call_on_close():
                        return
                # CloseReceived needs nothing from us: the connection already queued the
                # answer.
            if self._eof and not self._eof_fed:
                # Every byte that came before the EOF was handled: now the connection ends.
                self._eof_fed = True
                if connection.state is not State.CLOSED and self._ending is None:
                    # (An abort we made already said why TCP ended.)
                    self._note_ending(self._eof_reason(), connection.state)
                connection.receive_eof()
                continue
            break
        self._flush()
        if connection.close_transport:
            self._close_transport()

    def _send_reply(self, reply: str | bytes | bytearray | memoryview) -> None:
        connection = self.connection
        if connection.state is not State.OPEN:
            return
        if isinstance(reply, str):
            connection.send_text(reply)
        else:
            connection.send_binary(reply)

    def _run_hook(self, name: str, hook: Callable[..., Any], *args: Any) -> bool:
        """Call a hook; ``True`` if it returned an awaitable and event handling is suspended."""
        try:
            result = hook(*args)
        except Exception:
            self._hook_failed(name)
            return False
        if result is not None and inspect.isawaitable(result):
            self._suspend(self._await_hook(name, result))
            return True
        return False

    def _call_on_close(self) -> bool:
        """Run ``on_close`` once; ``True`` if it suspended event handling."""
        if self._on_close_called:
            return False
        self._on_close_called = True
        if self._run_hook("on_close", self.handler.on_close, self.environ):
            return True
        self._on_close_done = True
        self._maybe_finish()
        return False

    def _suspend(self, waiting: Awaitable[None]) -> None:
        """Await ``waiting`` in a task; events that arrive meanwhile wait for it."""
        self._flush()  # what earlier events produced goes out before we wait
        assert self._loop is not None
        self._task = self._loop.create_task(self._resume_after(waiting))

    async def _resume_after(self, waiting: Awaitable[None]) -> None:
        self._hooks_waiting += 1
        try:
            await waiting
        finally:
            self._hooks_waiting -= 1
            self._task = None
            self._unread = 0
        if self._on_close_called and not self._on_close_done:
            self._on_close_done = True  # the suspended hook was on_close
            self._maybe_finish()
        self._update_reading()
        self._process()

    async def _await_reply(
        self, pending: Awaitable[str | bytes | bytearray | memoryview | None]
    ) -> None:
        """Await an asynchronous ``on_message`` and send its reply; nothing if it raised."""
        try:
            reply = await pending
        except Exception:
            self._hook_failed("on_message")
            return
        if reply is not None:
            self._send_reply(reply)

    async def _await_hook(self, name: str, pending: Awaitable[None]) -> None:
        try:
            await pending
        except Exception:
            self._hook_failed(name)

    def _hook_failed(self, name: str) -> None:
        """A hook raised: log it and close with 1011, telling the peer nothing more."""
        logger.exception("WS.%s raised; closing the connection with 1011", name)
        self._note_ending(f"WS.{name} raised", self.connection.state, logging.WARNING)
        if self.connection.state is State.OPEN:
            # RFC 6455 §7.4.1: 1011, "an unexpected condition that prevented it from
            # fulfilling the request".
            self.connection.close(CloseCode.INTERNAL_ERROR, "")

    def _flush(self) -> None:
        """Write what the connection has queued; arm the closing timer once we are closing."""
        transport = self._transport
        if transport is None:
            return  # not started yet: the bytes stay queued until ``start``
        connection = self.connection
        data = connection.data_to_send()
        if data and not self._lost and not self._closing_transport and not transport.is_closing():
            transport.write(data)
        if connection.state is State.CLOSING and self._closing_timer is None and not self._lost:
            assert self._loop is not None
            self._closing_timer = self._loop.call_later(
                self._closing_timeout, self._closing_timed_out
            )

    def _close_transport(self) -> None:
        """End TCP without a reset: half-close, drain the peer until its EOF, then close.

        Our FIN follows everything queued (asyncio shuts the socket down once its buffer is
        written). Closing at once instead would reset the connection whenever the peer's
        bytes are still arriving, as they are after a frame that fails the connection, and
        the reset can cost the peer our Close (see the module's invariants). A peer that
        neither reads nor closes within ``closing_timeout`` is aborted.
        """
        transport = self._transport
        if self._closing_transport or self._lost or transport is None:
            return
        self._closing_transport = True
        assert self._loop is not None
        if self._eof or not transport.can_write_eof():
            # The peer's EOF was read (nothing can be left unread), or the transport cannot
            # half-close (TLS): close once the buffer is written.
            transport.close()
            if transport.get_write_buffer_size():
                self._abort_timer = self._loop.call_later(
                    self._closing_timeout, self._linger_timed_out
                )
            return
        transport.write_eof()
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()  # the peer's bytes are read (and dropped) until EOF
        self._abort_timer = self._loop.call_later(self._closing_timeout, self._linger_timed_out)

    def _linger_timed_out(self) -> None:
        """The peer neither took our last bytes nor closed TCP in time: drop it."""
        self._abort_timer = None
        if self._transport is not None and not self._lost:
            self._note_ending(
                f"the peer did not close TCP within {self._closing_timeout:g} s of ours; dropped",
                self.connection.state,
            )
            self._transport.abort()

    def _update_reading(self) -> None:
        """Pause reading while the peer does not read, or a suspended hook has enough."""
        transport = self._transport
        if transport is None or self._lost or self._closing_transport or transport.is_closing():
            return
        pause = self._writing_paused or (
            self._task is not None and self._unread > self._limits.max_read_buffer
        )
        if pause is not self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _send_timed_out(self) -> None:
        """The peer read nothing for ``send_timeout`` seconds: drop TCP."""
        self._send_timer = None
        if self._transport is not None and self._writing_paused:
            self._note_ending(
                f"the peer read nothing for {self._limits.send_timeout:g} s; dropped",
                self.connection.state,
            )
            self._transport.abort()

    def _maybe_finish(self) -> None:
        if self._finished or not self._lost or not self._on_close_done:
            return
        self._finished = True
        if self._ending is not None:
            environ = self.environ
            peer = f"{environ.get('REMOTE_ADDR', '?')}:{environ.get('REMOTE_PORT', '?')}"
            name = f"{peer} {environ.get('PATH_INFO', '')}".rstrip()
            self._ending.log(logger, name, self.connection.close_code)
        # The environ and this session refer to each other, a cycle only the cyclic GC
        # frees: what the session alone holds (the transport, its socket and buffers) is
        # let go now instead.
        self._transport = None
        self._task = None
        if self._done is not None:
            self._done.set()
        on_finished, self._on_finished = self._on_finished, None
        if on_finished is not None:
            # Called once and dropped: the callback's owner refers to this session, and a
            # reference cycle would hold the connection's memory until the cyclic GC runs.
            on_finished()

    def _schedule_ping(self) -> None:
        interval = self._limits.ping_interval
        if interval is not None and self._loop is not None:
            self._ping_timer = self._loop.call_later(interval, self._send_keepalive_ping)

    def _send_keepalive_ping(self) -> None:
        """Ping the peer, unless an earlier keepalive Ping is still unanswered; re-arm."""
        if self.connection.state is not State.OPEN or self._lost:
            return
        if self._ping_payload is None:
            # RFC 6455 §5.5.3: the Pong echoes the Ping's "Application data"; a random
            # payload tells the answer apart from unsolicited Pongs.
            self._ping_payload = os.urandom(4)
            self.connection.send_ping(self._ping_payload)
            self._flush()
            timeout = self._limits.ping_timeout
            if timeout is not None and self._loop is not None:
                self._pong_timer = self._loop.call_later(timeout, self._keepalive_timed_out)
        self._schedule_ping()

    def _keepalive_answered(self) -> None:
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None

    def _keepalive_timed_out(self) -> None:
        """No Pong in time: close with 1011, unless a hook holds up reading the Pong."""
        self._pong_timer = None
        if self.connection.state is not State.OPEN or self._lost or self._loop is None:
            return
        if self._hooks_waiting > self._draining:
            # A hook is awaiting something other than the peer: the Pong may be sitting
            # unread behind the message it is handling. Judge again later.
            timeout = self._limits.ping_timeout or self._limits.closing_timeout
            self._pong_timer = self._loop.call_later(timeout, self._keepalive_timed_out)
            return
        self._note_ending(
            f"no Pong within {self._limits.ping_timeout:g} s of the keepalive Ping; "
            "sent Close 1011",
            self.connection.state,
        )
        # RFC 6455 §7.4.1: 1011, the server "encountered an unexpected condition that
        # prevented it from fulfilling the request" (websockets sends the same code and
        # reason). The peer is unresponsive, so TCP is closed without waiting for its Close;
        # a peer that does not read keeps the Close in our buffer: TCP is dropped after a
        # grace period.
        self.connection.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        self._flush()
        self._close_transport()

    def _closing_timed_out(self) -> None:
        """The peer did not finish the closing handshake in time: drop TCP."""
        if self._transport is not None and not self._lost:
            self._note_ending(
                f"no Close from the peer within {self._closing_timeout:g} s of ours; dropped",
                self.connection.state,
            )
            self._transport.abort()

    # -- how the connection ended ---------------------------------------------------------------

    def _note_ending(self, reason: str, state: State, level: int = logging.INFO) -> None:
        """Record a reason the connection ends abnormally (logged once it is over)."""
        self._ending = note(self._ending, reason, state, level)

    def _note_close(self, event: Closed) -> None:
        """Record why the connection failed, if the ``Closed`` event says it did."""
        failure = self.connection.failure
        if failure is not None:
            state = self.connection.failed_in or State.OPEN
            self._note_ending(protocol_failure(failure, event.code), state, failure_level(failure))

    def _eof_reason(self) -> str:
        """Why TCP ended before the closing handshake did."""
        exc = self._lost_exc
        if exc is not None:
            return f"TCP connection lost: {exc!r}"
        if self._lost:
            return "TCP connection lost"
        return "the peer closed TCP without a Close frame"
