"""``Shell``: the one asyncio shell around the sans-I/O ``Connection``, for either role.

Invariants:
- The shell is the transport's ``asyncio.BufferedProtocol`` (the transport reads into the
  thread's one receive buffer, ``rfc6455.readbuffer``): bytes it receives go to
  ``receive_data`` / ``receive_eof``, events go to the hooks one at a time, and everything
  queued on the connection leaves through ``data_to_send``. It parses nothing itself, and
  holds no error policy for input: the connection fails itself (``Connection.events``). A
  hook that raises closes with 1011 (``_hook_failed``, the one place for hooks).
- Replies keep the order of the frames that caused them: events are pulled one by one and
  each hook runs before the next event is parsed. Plain hooks run inline, in the transport's
  callback; a hook that returns an awaitable suspends event handling: a task awaits it,
  then handles the events that arrived meanwhile. No task or future exists per read. A
  role that pulls on demand (the client's ``recv()``) suspends the same way until an event
  is wanted. The server's read of whole messages in one frame skips the events: they go to
  ``on_message`` as they are parsed and the plain replies are framed as they come
  (``Connection.receive_answering``, compiled), the same hooks in the same order; whatever
  else the read holds goes through the events from where that pass stopped.
- Writes happen once per batch of events read together. While the transport's write buffer
  is above its high-water mark reading pauses (backpressure: a peer that does not read
  stops being read) until it falls to the low-water mark; a peer that leaves it there for
  ``send_timeout`` seconds is dropped. While event handling is suspended, at most
  ``max_read_buffer`` bytes are read ahead; then reading pauses until it resumes.
- After our Close is sent the peer has ``closing_timeout`` seconds to finish the closing
  handshake; then TCP is dropped.
- TCP is never closed with input unread: closing a socket whose receive queue holds data
  makes the kernel answer with a reset (RFC 1122 §4.2.2.13), which discards or overtakes
  what is still queued for the peer (issue 19). Once the connection is over the shell reads
  and discards until the peer's EOF, then closes; the server half-closes first (RFC 6455
  §7.1.1: the server closes TCP first), the client waits for it. A peer that has not closed
  within ``closing_timeout`` is dropped.
- A connection that ends other than by a completed closing handshake logs exactly one line
  once it is over (``rfc6455.endings``). ``on_close`` runs exactly once, when the ``Closed``
  event is handled; the shell is finished when it has run and TCP is closed.
- Every method is for the event loop's thread.

The transport's lifecycle, one ``Stage`` changed only by ``_enter``::

    NEW       --started on a transport-----------------------------------> OPEN
    OPEN      --the peer's EOF read (fed to the connection in order)-------> PEER_EOF
    OPEN      --the connection is over: half-close or wait for the peer---> LINGERING
    PEER_EOF, LINGERING --nothing left to read: close TCP----------------> CLOSING
    OPEN, PEER_EOF, LINGERING, CLOSING --connection_lost------------------> LOST
    LOST      --on_close has run--------------------------------------------> FINISHED
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from enum import Enum
from typing import Any, Generic, TypeVar

from .connection import Connection, State
from .endings import Ending, failure_level, note, protocol_failure
from .errors import CloseCode
from .events import Closed, Ping, Pong
from .extensions import Extension
from .frame import ANSWER_RAISED, ANSWER_REPLY
from .handler import WS
from .readbuffer import ReceiveBuffer

__all__ = ["Deferred", "OnClose", "Shell", "Stage"]

T = TypeVar("T")

#: Replies that are certainly not awaitable: checked first, ``inspect.isawaitable`` is slow.
_PLAIN_REPLIES = (str, bytes)
#: What ``Connection.next_event`` gives for a whole message: its data.
_MESSAGE_DATA = (bytes, str)
#: ``get_buffer`` before the start: an empty buffer, which asyncio refuses loudly.
_NOT_STARTED = ReceiveBuffer(memoryview(b""))


class Stage(Enum):
    NEW = "NEW"  # not on a transport yet: sends stay queued on the connection
    OPEN = "OPEN"  # bytes flow both ways
    PEER_EOF = "PEER_EOF"  # the peer closed its side; what it sent before is still handled
    LINGERING = "LINGERING"  # over: reading and discarding until the peer's EOF
    CLOSING = "CLOSING"  # TCP close requested, waiting for ``connection_lost``
    LOST = "LOST"  # TCP is closed; ``on_close`` may still be running
    FINISHED = "FINISHED"  # TCP closed and ``on_close`` done: nothing more happens

    # Members are singletons: hash them by identity, in C (Enum's own hash runs Python code).
    __hash__ = object.__hash__


# The members the per-read paths test, as module globals: on Python 3.11 an Enum member read
# off its class (``Stage.OPEN``) goes through the metaclass's ``__getattr__`` hook, about
# ten times the cost of a global; a read tested seven of them.
_OPEN, _PEER_EOF, _LOST = Stage.OPEN, Stage.PEER_EOF, Stage.LOST
_STATE_OPEN, _STATE_CLOSING, _STATE_CLOSED = State.OPEN, State.CLOSING, State.CLOSED


class OnClose(Enum):
    """Where a connection is with ``on_close``."""

    PENDING = "PENDING"  # no ``Closed`` event handled yet
    RUNNING = "RUNNING"  # the ``Closed`` event was handled: ``on_close`` is running
    DONE = "DONE"  # ``on_close`` has run (or there is no handler)


_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.NEW: frozenset({Stage.OPEN}),
    Stage.OPEN: frozenset({Stage.PEER_EOF, Stage.LINGERING, Stage.LOST}),
    Stage.PEER_EOF: frozenset({Stage.CLOSING, Stage.LOST}),
    Stage.LINGERING: frozenset({Stage.CLOSING, Stage.LOST}),
    Stage.CLOSING: frozenset({Stage.LOST}),
    Stage.LOST: frozenset({Stage.FINISHED}),
    Stage.FINISHED: frozenset(),
}


class Deferred(Generic[T]):
    """What ``send`` / ``ping`` / ``close`` return: they act at once; awaiting the result
    waits for what follows (the write buffer drained, the Pong, the end); it may be ignored."""

    __slots__ = ("_wait",)

    def __init__(self, wait: Callable[[], Awaitable[T]]) -> None:
        self._wait = wait

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait().__await__()


class _TcpSide(asyncio.BufferedProtocol):
    """The TCP side of a shell: its ``Stage``, writes with backpressure and ``drain``, the
    closing and send timeouts, ending TCP without a reset, and the notes on how it ended."""

    # Slots: one per open connection, so no per-instance dict (memory, and attribute speed).
    # The role gives the settings below, as slots or (the server's ``Limits``) properties.
    __slots__ = (
        "_abort_timer",
        "_closing_timer",
        "_done",
        "_drain_waiters",
        "_draining",
        "_ending",
        "_loop",
        "_lost_exc",
        "_reading_paused",
        "_send_timer",
        "_stage",
        "_task",
        "_transport",
        "_unread",
        "_writing_paused",
        "connection",
        "get_buffer",
    )

    #: ``asyncio.BufferedProtocol.get_buffer`` as a shared object, not a method (see
    #: ``rfc6455.readbuffer``): the transport calls it; ``buffer_updated`` reads its view.
    get_buffer: ReceiveBuffer

    #: How the log and the ending reasons name the other side.
    _peer = "the peer"
    #: Whether TCP is half-closed by us first once the connection is over (the server's part).
    _half_close_first = True

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._stage = Stage.NEW
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The thread's receive buffer, once started (the transport calls it, see readbuffer).
        self.get_buffer = _NOT_STARTED
        # The task awaiting a suspended hook (or a wanted event); events wait for it.
        self._task: asyncio.Task[None] | None = None
        self._unread = 0  # bytes received while event handling is suspended
        self._writing_paused = False
        self._reading_paused = False
        self._drain_waiters: list[asyncio.Future[None]] | None = None  # made by ``drain``
        self._draining = 0  # ``drain()`` calls waiting
        self._lost_exc: Exception | None = None  # why ``connection_lost`` came, if it says
        # Why the connection ended abnormally, if it did: logged once, when it is over.
        self._ending: Ending | None = None
        self._closing_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        # Created by ``wait_closed`` only: an ``asyncio.Event`` holds a deque of 760 bytes,
        # for every idle connection.
        self._done: asyncio.Event | None = None

    @property
    def _closing_timeout(self) -> float:
        """Seconds the peer has to finish the closing handshake, then to close TCP."""
        raise NotImplementedError

    @property
    def _send_timeout(self) -> float | None:
        """Seconds the peer may leave a full write buffer unread (``None``: no limit)."""
        raise NotImplementedError

    @property
    def _max_read_buffer(self) -> int:
        """Bytes read ahead while event handling is suspended, before reading pauses."""
        raise NotImplementedError

    @property
    def transport(self) -> asyncio.Transport | None:
        """The running connection's transport (write buffer size, reading state), or ``None``."""
        return self._transport

    async def drain(self) -> None:
        """Wait until the write buffer is back at its low-water mark.

        A peer that reads nothing for ``send_timeout`` seconds is dropped (the connection
        then ends with 1006, and this returns).
        """
        if not self._writing_paused or self._stage is Stage.LOST or self._loop is None:
            return
        waiter = self._loop.create_future()
        if self._drain_waiters is None:
            self._drain_waiters = []
        waiters = self._drain_waiters
        waiters.append(waiter)
        self._draining += 1
        try:
            await waiter
        finally:
            self._draining -= 1
            if waiter in waiters:
                waiters.remove(waiter)

    def abort(self, reason: str) -> None:
        """Drop TCP now, without a closing handshake; ``reason`` goes into the log line."""
        if self._transport is None or self._stage in (Stage.LOST, Stage.FINISHED):
            return
        self._note_ending(reason, self.connection.state)
        self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection has finished (TCP closed, ``on_close`` done)."""
        if self._stage is Stage.FINISHED:
            return
        if self._done is None:
            self._done = asyncio.Event()
        await self._done.wait()

    def _enter(self, stage: Stage) -> None:
        """The one place the stage changes (see the module's drawing)."""
        if stage not in _TRANSITIONS[self._stage]:
            raise RuntimeError(
                f"{self._name()}: no transition from {self._stage.value} to {stage.value}"
            )
        self._stage = stage

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()
        timeout = self._send_timeout
        if timeout is not None and self._loop is not None:
            self._send_timer = self._loop.call_later(timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        self._wake_drain_waiters()
        self._update_reading()

    def _flush(self) -> None:
        """Write what the connection has queued; arm the closing timer once we are closing."""
        transport = self._transport
        if transport is None:
            return  # not started yet: the bytes stay queued until it is
        connection = self.connection
        data = connection.data_to_send()
        stage = self._stage
        open_ = stage is _OPEN or stage is _PEER_EOF
        if data and open_ and not transport.is_closing():
            transport.write(data)
        if connection.state is _STATE_CLOSING and self._closing_timer is None and open_:
            assert self._loop is not None
            self._closing_timer = self._loop.call_later(
                self._closing_timeout, self._closing_timed_out
            )

    def _close_transport(self) -> None:
        """End TCP without a reset: read and discard until the peer's EOF, then close.

        The server half-closes first: our FIN follows everything queued (asyncio shuts the
        socket down once its buffer is written). A peer that neither reads nor closes within
        ``closing_timeout`` is dropped.
        """
        transport = self._transport
        if transport is None:
            return
        if self._stage is Stage.PEER_EOF:
            self._close_now()  # nothing can be left unread
            return
        if self._stage is not Stage.OPEN:
            return
        self._enter(Stage.LINGERING)
        assert self._loop is not None
        if self._half_close_first:
            if not transport.can_write_eof():
                # (TLS cannot half-close: close once the buffer is written.)
                self._close_now()
                return
            transport.write_eof()
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()  # the peer's bytes are read (and dropped) until EOF
        self._abort_timer = self._loop.call_later(self._closing_timeout, self._linger_timed_out)

    def _close_now(self) -> None:
        """Close TCP once the write buffer is out; drop it if the peer does not take that."""
        transport = self._transport
        assert transport is not None and self._loop is not None
        self._enter(Stage.CLOSING)
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        transport.close()
        if transport.get_write_buffer_size():
            self._abort_timer = self._loop.call_later(self._closing_timeout, self._linger_timed_out)

    def _linger_timed_out(self) -> None:
        """The peer neither took our last bytes nor closed TCP in time: drop it."""
        self._abort_timer = None
        if self._transport is not None and self._stage is not Stage.LOST:
            self._note_ending(self._linger_reason(), self.connection.state)
            self._transport.abort()

    def _linger_reason(self) -> str:
        return f"{self._peer} did not close TCP within {self._closing_timeout:g} s of ours; dropped"

    def _update_reading(self) -> None:
        """Pause reading while the peer does not read, or a suspended hook has enough."""
        transport = self._transport
        if transport is None or self._stage is not Stage.OPEN or transport.is_closing():
            return
        pause = self._writing_paused or (
            self._task is not None and self._unread > self._max_read_buffer
        )
        if pause is not self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _send_timed_out(self) -> None:
        """The peer read nothing for ``send_timeout`` seconds: drop TCP."""
        self._send_timer = None
        if self._transport is not None and self._writing_paused:
            self._note_ending(
                f"{self._peer} read nothing for {self._send_timeout:g} s; dropped",
                self.connection.state,
            )
            self._transport.abort()

    def _closing_timed_out(self) -> None:
        """The peer did not finish the closing handshake in time: drop TCP."""
        if self._transport is not None and self._stage is not Stage.LOST:
            self._note_ending(
                f"no Close from {self._peer} within {self._closing_timeout:g} s of ours; dropped",
                self.connection.state,
            )
            self._transport.abort()

    def _name(self) -> str:
        """The connection, as the log line names it."""
        return self._peer

    def _note_ending(self, reason: str, state: State, level: int = logging.INFO) -> None:
        """Record a reason the connection ends abnormally (logged once it is over)."""
        self._ending = note(self._ending, reason, state, level)

    def _eof_reason(self) -> str:
        """Why TCP ended before the closing handshake did."""
        exc = self._lost_exc
        if exc is not None:
            return f"TCP connection lost: {exc!r}"
        if self._stage is Stage.LOST:
            return "TCP connection lost"
        return f"{self._peer} closed TCP without a Close frame"


class Shell(_TcpSide):
    """A live WebSocket connection on an asyncio transport, with the ``WS`` hooks.

    Subclasses give the role: ``rfc6455.session.WebSocketSession`` (server) and
    ``rfc6455.client.ClientConnection``. ``send`` / ``close`` / ``drain`` work from any
    code on the event loop; ``send`` after the closing handshake started raises
    ``rfc6455.errors.InvalidState``.
    """

    __slots__ = ("_hooks_waiting", "_on_close", "environ", "handler")

    #: Whether events are parsed only while someone wants one (``_wants_events``).
    _pull = False
    #: Whether a read's whole messages go to ``on_message`` in one pass, replies queued as
    #: they come (``Connection.receive_answering``, the server's): the same hooks in the same
    #: order as through ``_process``, which handles everything else.
    _answer_reads = False
    _logger = logging.getLogger("rfc6455.session")

    def __init__(
        self,
        handler: WS | None,
        environ: MutableMapping[str, Any],
        connection: Connection,
    ) -> None:
        super().__init__(connection)
        self.handler = handler
        self.environ = environ
        self._hooks_waiting = 0  # hooks suspended in an ``await`` (of which ``_draining``)
        self._on_close = OnClose.PENDING

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the 101 selected (RFC 6455 §4.1, §4.2.2), or ``None``."""
        return self.connection.subprotocol

    @property
    def extensions(self) -> list[Extension]:
        """The extensions in use, in the order the 101 listed them (RFC 6455 §9.1)."""
        return self.connection.extensions

    @property
    def state(self) -> State:
        """``State.OPEN``, ``State.CLOSING`` or ``State.CLOSED``."""
        return self.connection.state

    @property
    def close_code(self) -> int | None:
        """How the connection ended (RFC 6455 §7.1.5; 1006 if TCP dropped), else ``None``."""
        return self.connection.close_code

    @property
    def close_reason(self) -> str:
        """The reason that came with ``close_code`` (RFC 6455 §7.1.6)."""
        return self.connection.close_reason

    def send(self, data: str | bytes | bytearray | memoryview) -> Deferred[None]:
        """Send one message (``str``: text, bytes-like: binary); await it to wait for drain."""
        if isinstance(data, str):
            self.connection.send_text(data)
        else:
            self.connection.send_binary(bytes(data))
        self._flush()
        return Deferred(self.drain)

    def _begin(
        self,
        transport: asyncio.Transport,
        initial: bytes,
        write_buffer_size: int,
        buffer: ReceiveBuffer,
    ) -> None:
        """Become ``transport``'s protocol reading into ``buffer`` (the thread's receive
        buffer, ``rfc6455.readbuffer``), take ``initial`` bytes, run ``on_open``."""
        if self._stage is not Stage.NEW:
            raise RuntimeError("this connection is already running")
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self.get_buffer = buffer
        self._enter(Stage.OPEN)
        # Above the high-water mark the transport calls ``pause_writing``: the bound on what
        # a peer that does not read makes us buffer.
        transport.set_write_buffer_limits(high=write_buffer_size)
        transport.set_protocol(self)
        if not transport.is_reading():
            transport.resume_reading()
        if initial:
            self.connection.receive_data(initial)
        handler = self.handler
        if handler is None or not self._run_hook("on_open", handler.on_open, self.environ):
            self._process()

    def buffer_updated(self, nbytes: int) -> None:
        # What arrived is parsed or copied out (``receive_data``) before this returns: the
        # shared buffer is free again for the next connection's read.
        if self._stage is not _OPEN:
            return  # lingering until the peer's EOF: nothing is processed now
        data = self.get_buffer.view[:nbytes]
        if self._task is None:
            connection = self.connection
            handler = self.handler
            if self._answer_reads and handler is not None:
                # The common read, whole messages answered in one pass (``_answered``).
                answered = connection.receive_answering(data, handler, self.environ)
                if type(answered) is bytes:
                    # All answered, the connection still open: ``_flush``, inline.
                    transport = self._transport
                    if (
                        answered
                        and transport is not None
                        and self._stage is _OPEN
                        and not transport.is_closing()
                    ):
                        transport.write(answered)
                    return
                if answered is not None:
                    self._answered(*answered)
                    return
            # Events are pulled at once, unless the role pulls on demand.
            connection.receive_data(data, parse=not self._pull)
            self._process()
        else:
            self.connection.receive_data(data)
            self._unread += nbytes
            if self._unread > self._max_read_buffer:
                self._update_reading()

    def eof_received(self) -> bool:
        if self._stage is Stage.LINGERING:
            # Every byte of the peer's was read: a close that cannot reset the connection.
            self._close_now()
            return True
        if self._stage is Stage.OPEN:
            self._enter(Stage.PEER_EOF)
            if self._task is None:
                self._process()
        return True  # the shell closes TCP itself, once the connection says so

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost_exc = exc
        self._enter(Stage.LOST)
        for timer in (self._closing_timer, self._abort_timer, self._send_timer):
            if timer is not None:
                timer.cancel()
        self._stop_timers()
        self._wake_drain_waiters()
        if self._task is None:
            self._process()
        self._maybe_finish()

    def _process(self) -> None:
        """Hand each pending event to its hook, in order, until one suspends; then write."""
        connection = self.connection
        next_event = connection.next_event
        handler = self.handler
        environ = self.environ
        pull = self._pull
        if pull and self._wait_until_wanted():
            return
        while True:
            event = next_event()
            if event is None:
                stage = self._stage  # (``is`` tests: hashing an Enum member runs Python code)
                eof_seen = stage is _PEER_EOF or stage is _LOST
                if eof_seen and connection.state is not _STATE_CLOSED:
                    # Every byte that came before the EOF was handled: now the connection ends.
                    if self._ending is None:  # (an abort we made already said why TCP ended)
                        self._note_ending(self._eof_reason(), connection.state)
                    connection.receive_eof()
                    continue
                break
            if isinstance(event, _MESSAGE_DATA):  # a whole message, as its data
                if handler is None:
                    self._deliver(event)
                else:
                    # ``on_message`` and its reply, inline: this runs once per message.
                    try:
                        reply = handler.on_message(environ, event)
                    except Exception:
                        self._hook_failed("on_message")
                        reply = None
                    if reply is not None and self._take_reply(reply):
                        return
            elif isinstance(event, Ping):
                if handler is not None and self._run_hook(
                    "on_ping", handler.on_ping, environ, event.payload
                ):
                    return
            elif isinstance(event, Pong):
                self._pong_received(event.payload)
                if handler is not None and self._run_hook(
                    "on_pong", handler.on_pong, environ, event.payload
                ):
                    return
            elif isinstance(event, Closed) and self._handle_closed(event):
                return
            # CloseReceived needs nothing from us: the connection already queued the answer.
            if pull and self._wait_until_wanted():
                return
        self._flush()
        if connection.state is _STATE_CLOSED:
            self._close_transport()

    def _answered_read(
        self, data: bytes | bytearray | memoryview, end: int, outcome: int, value: Any
    ) -> None:
        """The compiled server read (``rfc6455._speedups.server_read``) answered ``data`` up
        to ``end`` and stopped on ``outcome`` short of a whole answer: the rest, as
        ``buffer_updated`` does it."""
        self._answered(*self.connection.answered_rest(data, end, outcome, value))

    def _answered(self, outcome: int, value: Any) -> None:
        """Finish a read ``Connection.receive_answering`` answered in part: what it stopped
        on, as ``_process`` would have handled it, then the events after it."""
        if outcome == ANSWER_REPLY:
            if self._take_reply(value):
                return
        elif outcome == ANSWER_RAISED:
            if not isinstance(value, Exception):
                raise value  # (as ``_process`` lets it escape)
            self._hook_failed("on_message", value)
        self._process()

    def _take_reply(self, reply: Any) -> bool:
        """``on_message`` returned ``reply`` (not ``None``): send it, or await it first;
        ``True`` if it is awaited and event handling is suspended."""
        if not isinstance(reply, _PLAIN_REPLIES) and inspect.isawaitable(reply):
            self._suspend(self._await_reply(reply))
            return True
        connection = self.connection
        if connection.state is _STATE_OPEN:  # (``_send_reply``, inline)
            connection.send(reply)
        return False

    def _send_reply(self, reply: str | bytes | bytearray | memoryview) -> None:
        """A hook's reply goes out as a message, unless our Close already has (RFC 6455
        §5.5.1: nothing follows it): a message that arrived before it is answered by none."""
        connection = self.connection
        if connection.state is State.OPEN:
            connection.send(reply)

    def _deliver(self, message: str | bytes) -> None:
        """A message for a connection without a handler (the client's ``recv()`` queue)."""

    def _pong_received(self, payload: bytes) -> None:
        """A Pong arrived: a role's own waiters (keepalive, ``ping()``) are answered here."""

    def _wait_until_wanted(self) -> bool:
        """For a role that pulls: suspend until an event is wanted; ``True`` if suspended."""
        return False

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

    def _handle_closed(self, event: Closed) -> bool:
        """The connection is over: note how, run ``on_close``; ``True`` if it suspended."""
        self._on_close = OnClose.RUNNING
        failure = self.connection.failure
        if failure is not None:
            state = self.connection.failed_in or State.OPEN
            self._note_ending(protocol_failure(failure, event.code), state, failure_level(failure))
        self._connection_over()
        handler = self.handler
        if handler is not None and self._run_hook("on_close", handler.on_close, self.environ):
            return True
        self._on_close = OnClose.DONE
        self._maybe_finish()
        return False

    def _connection_over(self) -> None:
        """The ``Closed`` event was handled: a role's waiters learn it here."""

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
        if self._on_close is OnClose.RUNNING:
            self._on_close = OnClose.DONE  # the suspended hook was on_close
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

    def _hook_failed(self, name: str, exc: BaseException | None = None) -> None:
        """A hook raised (``exc``, or the exception being handled): log it and close with
        1011, telling the peer nothing more."""
        self._logger.error(
            "the WS.%s hook failed; closing the connection with 1011",
            name,
            exc_info=True if exc is None else exc,
        )
        self._note_ending(f"WS.{name} raised", self.connection.state, logging.WARNING)
        if self.connection.state is State.OPEN:
            # RFC 6455 §7.4.1: 1011, "an unexpected condition that prevented it from
            # fulfilling the request".
            self.connection.close(CloseCode.INTERNAL_ERROR, "")

    def _stop_timers(self) -> None:
        """TCP is closed: a role's own timers stop here."""

    def _maybe_finish(self) -> None:
        if self._stage is not Stage.LOST or self._on_close is not OnClose.DONE:
            return
        self._enter(Stage.FINISHED)
        if self._ending is not None:
            self._ending.log(self._logger, self._name(), self.connection.close_code)
        # What the shell alone holds (the transport, its socket and buffers) is let go now:
        # the environ and a session refer to each other, a cycle only the cyclic GC frees.
        self._transport = None
        self._task = None
        if self._done is not None:
            self._done.set()
        self._finished()

    def _finished(self) -> None:
        """TCP is closed and ``on_close`` has run: a role's last step."""
