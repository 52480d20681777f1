"""``WebSocketSession``: the server's role on the one asyncio shell (``rfc6455.shell``).

Invariants:
- Everything the shell promises holds (events in frame order, backpressure, the closing
  timeout, no reset with input unread, one log line per abnormal ending on
  ``rfc6455.session``, ``on_close`` exactly once); this module adds only what the server's
  side needs: it is created by the ``WebSocket`` middleware once the handshake is accepted
  (``environ["rfc6455.websocket"]``) and started by the server after the 101 is written,
  with the server's ``Limits``.
- RFC 6455 §7.1.1: the server closes TCP first once the closing handshake is done; the
  shell half-closes, then reads and discards until the peer's EOF.
- With ``ping_interval`` set, a Ping goes out every ``ping_interval`` seconds; no Pong
  within ``ping_timeout`` closes with 1011, except while a hook is suspended (its Pong may
  be waiting, unread, behind the message being handled). Both deadlines are entries in the
  loop's shared ``rfc6455.deadlines.Deadlines``, not a timer per connection; they are
  dropped when TCP closes.
- With the compiled accelerator, ``buffer_updated`` is ``rfc6455._speedups.server_read``'s:
  the shell's read as the Python one does it, compiled for a read answered whole (no
  Python frame of ours between the transport and ``on_message``); any other read goes to
  the Python code (``Shell.buffer_updated``, ``Shell._answered_read``).
- Every method is for the event loop's thread; from another thread use
  ``loop.call_soon_threadsafe(session.send, data)``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import replace
from typing import Any

from .connection import Connection, State
from .deadlines import Deadlines
from .errors import CloseCode
from .extensions import Extension
from .frame import Role
from .handler import WS
from .limits import DEFAULT_LIMITS, MAX_MESSAGE_SIZE, Limits
from .readbuffer import receive_buffer
from .shell import Shell, Stage
from .speedups import compiled

__all__ = ["WebSocketSession"]


class WebSocketSession(Shell):
    """A live server-side WebSocket connection; ``environ["rfc6455.websocket"]``.

    Use ``send`` / ``ping`` / ``close`` at any time from the event loop; they queue frames
    and write them at once (``drain()`` waits for a slow peer). ``send`` after the closing
    handshake started raises ``rfc6455.errors.InvalidState``.
    """

    __slots__ = (
        "_limits",
        "_on_finished",
        "_ping_payload",
    )

    _logger = logging.getLogger("rfc6455.session")
    _answer_reads = True

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
        connection = Connection(
            Role.SERVER,
            extensions=extensions,
            max_message_size=max_message_size,
            subprotocol=subprotocol,
            max_frame_size=max_frame_size,
        )
        super().__init__(handler, environ, connection)
        self._limits = DEFAULT_LIMITS
        self._on_finished: Callable[[WebSocketSession], None] | None = None
        # Keepalive (RFC 6455 §5.5.2: a Ping "may serve either as a keepalive or as a means
        # to verify that the remote endpoint is still responsive").
        self._ping_payload: bytes | None = None  # the keepalive Ping awaiting its Pong

    # -- public API --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is over (``on_close`` has run or is running)."""
        return self.connection.state is State.CLOSED

    def ping(self, payload: bytes = b"") -> None:
        """Send a Ping; the answer arrives as ``WS.on_pong`` (RFC 6455 §5.5.2)."""
        self.connection.send_ping(payload)
        self._flush()

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake (idempotent); ``on_close`` runs once it is over."""
        if self.connection.state is State.OPEN:
            self.connection.close(code, reason)
        self._flush()

    # -- the server's side ---------------------------------------------------------------------

    def start(
        self,
        transport: asyncio.Transport,
        initial: bytes = b"",
        *,
        limits: Limits = DEFAULT_LIMITS,
        closing_timeout: float | None = None,
        on_finished: Callable[[WebSocketSession], None] | None = None,
    ) -> None:
        """Take over ``transport`` (the 101 is written) and run the connection on it.

        ``initial`` holds the bytes the client sent after its request that the HTTP parser
        had already read (h11's ``trailing_data``): they are the start of the WebSocket
        stream. ``limits`` gives the timeouts, buffer sizes and keepalive
        (``closing_timeout``, if given, overrides its field). ``on_finished`` is called with
        the session once TCP is closed and ``on_close`` has run (taking the session, one
        callback serves every session of a server).
        """
        if self._stage is not Stage.NEW:
            raise RuntimeError("this session is already running")
        if closing_timeout is not None:
            limits = replace(limits, closing_timeout=closing_timeout)
        self._limits = limits
        self._on_finished = on_finished
        self._begin(transport, initial, limits.write_buffer_size, receive_buffer())
        pings = self._pings()
        if pings is not None:
            pings.add(self)

    # -- the shell's hooks for this role ---------------------------------------------------------

    @property
    def _closing_timeout(self) -> float:
        return self._limits.closing_timeout

    @property
    def _send_timeout(self) -> float | None:
        return self._limits.send_timeout

    @property
    def _max_read_buffer(self) -> int:
        return self._limits.max_read_buffer

    def _pong_received(self, payload: bytes) -> None:
        if payload == self._ping_payload:
            self._ping_payload = None
            pongs = self._pongs()
            if pongs is not None:
                pongs.discard(self)

    def _stop_timers(self) -> None:
        for deadlines in (self._pings(), self._pongs()):
            if deadlines is not None:
                deadlines.discard(self)

    def _finished(self) -> None:
        on_finished, self._on_finished = self._on_finished, None
        if on_finished is not None:
            # Called once and dropped: the callback's owner refers to this session, and a
            # reference cycle would hold the connection's memory until the cyclic GC runs.
            on_finished(self)

    def _name(self) -> str:
        environ = self.environ
        peer = f"{environ.get('REMOTE_ADDR', '?')}:{environ.get('REMOTE_PORT', '?')}"
        return f"{peer} {environ.get('PATH_INFO', '')}".rstrip()

    # -- keepalive -------------------------------------------------------------------------------

    def _pings(self) -> Deadlines[WebSocketSession] | None:
        """When keepalive Pings are due: shared by the loop's sessions (``None``: off)."""
        interval = self._limits.ping_interval
        if interval is None or self._loop is None:
            return None
        return Deadlines.shared(self._loop, interval, WebSocketSession._send_keepalive_ping)

    def _pongs(self) -> Deadlines[WebSocketSession] | None:
        """When unanswered keepalive Pings time out, likewise (``None``: never)."""
        timeout = self._limits.ping_timeout
        if timeout is None or self._loop is None:
            return None
        return Deadlines.shared(self._loop, timeout, WebSocketSession._keepalive_timed_out)

    def _send_keepalive_ping(self) -> None:
        """Ping the peer, unless an earlier keepalive Ping is still unanswered; re-arm."""
        if self.connection.state is not State.OPEN or self._stage is not Stage.OPEN:
            return
        if self._ping_payload is None:
            # RFC 6455 §5.5.3: the Pong echoes the Ping's "Application data"; a random
            # payload tells the answer apart from unsolicited Pongs.
            self._ping_payload = os.urandom(4)
            self.connection.send_ping(self._ping_payload)
            self._flush()
            pongs = self._pongs()
            if pongs is not None:
                pongs.add(self)
        pings = self._pings()
        assert pings is not None
        pings.add(self)

    def _keepalive_timed_out(self) -> None:
        """No Pong in time: close with 1011, unless a hook holds up reading the Pong."""
        if self.connection.state is not State.OPEN or self._stage is not Stage.OPEN:
            return
        if self._hooks_waiting > self._draining:
            # A hook is awaiting something other than the peer: the Pong may be sitting
            # unread behind the message it is handling. Judge again later.
            pongs = self._pongs()
            assert pongs is not None
            pongs.add(self)
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


if compiled is not None:
    WebSocketSession.buffer_updated = compiled.server_read(  # type: ignore[method-assign]
        WebSocketSession, Stage.OPEN, State.OPEN, Shell.buffer_updated
    )
