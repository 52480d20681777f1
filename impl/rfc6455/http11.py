"""``HTTPConnection``: one TCP connection of the server, moving bytes between the transport,
h11 and the WSGI app, until it closes or is upgraded to a WebSocket.

Invariants:
- It only moves bytes: requests are parsed by h11 (or, for a plain upgrade whole in the first
  read, by ``rfc6455.fastpath``, held to h11's grammar, and h11 still reads it before any
  answer other than a 101); the environ and response heads come from ``rfc6455.wsgi``, the
  refusal rules from ``rfc6455.limits.refusal``; after a 101 the ``WebSocketSession`` is the
  transport's protocol.
- No task, stream, future or timer per connection or per read: it is the transport's
  ``asyncio.BufferedProtocol`` (reading into the thread's one receive buffer,
  ``rfc6455.readbuffer``); a request is answered from the read that completes it, and a body
  the peer is slow to take resumes from ``resume_writing``. While a response is being
  written, pipelined requests are not read. The request timeout is an entry in the
  server's one ``rfc6455.deadlines.Deadlines``; h11's state is made only once a request
  goes to h11 (an upgrade the fast path answers never needs it).
- A response of status 101 is an upgrade only when the request proposed one and the app put
  a ``WebSocketSession`` at ``environ["rfc6455.websocket"]`` (the ``WebSocket`` middleware
  does); any other 101 is answered with 500. Once the 101 is written the connection hands
  the transport to the session and the server forgets it (``Owner._upgraded``): nothing of
  it stays with an open WebSocket.
- It is a ``BufferedProtocol`` with no ``data_received``: uvloop keeps a protocol's
  ``data_received`` after ``set_protocol`` unless the new one has its own, which kept
  every upgraded connection alive.
- Its lifecycle is one ``Phase``; ``_enter`` is the only place it changes, and refuses a
  transition that is not drawn here::

    FIRST_READ --a plain upgrade whole in the first read, 101 written----> UPGRADED
    FIRST_READ --the first read, anything else---------------------------> READING
    READING    --a response body waits for the peer to read--------------> SENDING
    SENDING    --the body is out (``resume_writing``)---------------------> READING
    READING    --101 written, the session started------------------------> UPGRADED
    FIRST_READ, READING, SENDING --last answer, timeout, shutdown--------> STOPPED
    FIRST_READ, READING, SENDING, STOPPED --TCP lost---------------------> CLOSED
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from enum import Enum
from typing import Any, Protocol, cast

import h11

from .deadlines import Deadlines
from .errors import HandshakeError
from .fastpath import UpgradeRequest, parse_upgrade_request
from .handler import WEBSOCKET_KEY
from .limits import Limits, refusal
from .readbuffer import read_buffer
from .session import WebSocketSession
from .wsgi import (
    Response,
    WSGIApp,
    base_headers,
    body_chunks,
    close_iterable,
    encode_headers,
    environ_of,
    error_response,
    upgrade_head,
)

__all__ = ["RETRY_AFTER", "HTTPConnection", "Owner", "Phase"]

logger = logging.getLogger("rfc6455.server")

# The client's state after a request that proposed a protocol switch (h11 does not list it
# in ``__all__``): a 101 is only valid then.
_MIGHT_SWITCH: Any = h11.MIGHT_SWITCH_PROTOCOL  # type: ignore[attr-defined]

#: Seconds a client over ``max_connections`` is told to wait before retrying (RFC 7231
#: §7.1.3).
RETRY_AFTER = 1

#: A parsed request head: h11's, or the upgrade fast path's (``rfc6455.fastpath``).
_Request = h11.Request | UpgradeRequest


class Phase(Enum):
    FIRST_READ = "FIRST_READ"  # nothing read yet: the upgrade fast path may take the read
    READING = "READING"  # h11 reads requests; each is answered once complete
    SENDING = "SENDING"  # a response body waits for the peer; reading is paused
    UPGRADED = "UPGRADED"  # the WebSocket session owns the transport
    STOPPED = "STOPPED"  # answered for the last time: TCP closes, input is ignored
    CLOSED = "CLOSED"  # TCP is closed

    # Members are singletons: hash them by identity, in C (Enum's own hash runs Python code).
    __hash__ = object.__hash__


# The members the per-connection paths test, as module globals: on Python 3.11 an Enum member
# read off its class (``Phase.READING``) costs about ten times a global's read.
_FIRST_READ, _READING, _SENDING = Phase.FIRST_READ, Phase.READING, Phase.SENDING
_UPGRADED, _STOPPED, _CLOSED = Phase.UPGRADED, Phase.STOPPED, Phase.CLOSED

_TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.FIRST_READ: frozenset({Phase.READING, Phase.STOPPED, Phase.CLOSED}),
    Phase.READING: frozenset({Phase.SENDING, Phase.UPGRADED, Phase.STOPPED, Phase.CLOSED}),
    Phase.SENDING: frozenset({Phase.READING, Phase.STOPPED, Phase.CLOSED}),
    Phase.UPGRADED: frozenset(),  # the session has the transport; the server forgot us
    Phase.STOPPED: frozenset({Phase.STOPPED, Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}


class Owner(Protocol):
    """What a connection needs of its server (``rfc6455.server.Server``)."""

    app: WSGIApp
    limits: Limits
    closing: bool
    #: When each connection's request is due (``handshake_timeout``; ``None``: never): one
    #: timer for all of them, not one per connection. Its callback is
    #: ``HTTPConnection._timed_out``.
    request_deadlines: Deadlines[Any] | None

    def _admit(self, conn: HTTPConnection) -> bool: ...
    def _release(self, conn: HTTPConnection) -> None: ...
    def _upgraded(self, conn: HTTPConnection, ws: WebSocketSession, initial: bytes) -> None: ...


class _PendingBody:
    """A response body that waits for the peer to read before the rest is written."""

    __slots__ = ("chunks", "request", "result")

    def __init__(self, request: _Request, result: Iterable[bytes], chunks: Iterator[bytes]):
        self.request = request
        self.result = result
        self.chunks = chunks


class _Lifecycle(asyncio.BufferedProtocol):
    """The transport side of a server connection: its ``Phase``, its deadlines (the request
    timer, the send timeout), writing with backpressure, closing, and being forgotten."""

    # Slots: one per open connection, so no per-instance dict (memory, and attribute speed).
    __slots__ = (
        "_read_view",
        "_send_timer",
        "_writing_paused",
        "phase",
        "server",
        "transport",
    )

    def __init__(self, server: Owner) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.phase = _FIRST_READ
        self._writing_paused = False
        self._send_timer: asyncio.TimerHandle | None = None
        self._read_view = read_buffer()  # made by the loop's thread: that thread's buffer

    @property
    def peer(self) -> Any:
        """The peer's address, for the environ and the log; not held: on uvloop each look-up
        makes a new tuple, which every open WebSocket would keep."""
        transport = self.transport
        return None if transport is None else transport.get_extra_info("peername")

    def _received(self, data: bytes) -> None:
        """Bytes arrived (a subclass's business)."""
        raise NotImplementedError

    def _writable(self) -> None:
        """The peer took what was buffered: carry on writing (a subclass's business)."""

    def _timed_out(self) -> None:
        """The request did not arrive within ``handshake_timeout`` (a subclass's business)."""

    def _enter(self, phase: Phase) -> None:
        """The one place the phase changes (see the module's drawing)."""
        if phase not in _TRANSITIONS[self.phase]:
            raise RuntimeError(
                f"HTTP connection of {self.peer}: no transition from {self.phase.value} "
                f"to {phase.value}"
            )
        self.phase = phase

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        # Copied out at once: the buffer is the next connection's as soon as this returns.
        self._received(self._read_view[:nbytes].tobytes())

    def pause_writing(self) -> None:
        self._writing_paused = True
        timeout = self.server.limits.send_timeout
        if timeout is not None:
            loop = asyncio.get_running_loop()
            self._send_timer = loop.call_later(timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        self._writable()

    def _start_request_timer(self) -> None:
        deadlines = self.server.request_deadlines
        if deadlines is not None:
            deadlines.add(self)

    def _cancel_request_timer(self) -> None:
        deadlines = self.server.request_deadlines
        if deadlines is not None:
            deadlines.discard(self)

    def _cancel_timers(self) -> None:
        self._cancel_request_timer()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _send_timed_out(self) -> None:
        self._send_timer = None
        if self.transport is not None and self._writing_paused:
            timeout = self.server.limits.send_timeout
            logger.info("%s read nothing for %s s; dropping TCP", self.peer, timeout)
            self.transport.abort()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and self.phase is not _CLOSED:
            self.transport.write(data)

    def _close(self) -> None:
        """Close TCP once what is buffered is written; drop it if the peer stops reading."""
        if self.phase is not _CLOSED:
            self._enter(_STOPPED)
        self._cancel_request_timer()
        transport = self.transport
        if transport is None or self.phase is _CLOSED or transport.is_closing():
            return
        transport.close()
        if self._writing_paused and self._send_timer is None:
            self.pause_writing()  # arm the send timeout for what is left in the buffer


class HTTPConnection(_Lifecycle):
    """One TCP connection: HTTP requests until it closes or is upgraded to a WebSocket.

    The transport's protocol until the upgrade: h11 parses what ``_received`` brings,
    each complete request is answered from the callback (the WSGI app is synchronous), and
    a response body the peer is slow to take is resumed by ``resume_writing``. After the
    101 the ``WebSocketSession`` becomes the transport's protocol.
    """

    __slots__ = (
        "_body",
        "_pending",
        "_request",
        "h11",
        "over_capacity",
        "received",
    )

    def __init__(self, server: Owner) -> None:
        super().__init__(server)
        self.over_capacity = False  # beyond max_connections: answer 503
        # h11's side of the connection, made by ``_parser`` once needed (an upgrade the
        # fast path answers never needs it), let go once upgraded.
        self.h11: h11.Connection | None = None
        self.received = 0  # bytes of the request being read, to tell idle from slow
        self._request: _Request | None = None
        self._body: bytearray | None = None  # made by the first piece of a request body
        self._pending: _PendingBody | None = None  # the body being written while SENDING

    def _parser(self) -> h11.Connection:
        """h11's side of the connection, made on first use."""
        h = self.h11
        if h is None:
            limit = self.server.limits.max_head_size
            h = self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limit)
        return h

    def shut_down(self) -> None:
        """Begin this connection's part of a graceful server shutdown: close it if idle; a
        request in progress is answered first."""
        if self._idle():
            self._close()

    def abort(self) -> None:
        """Drop TCP now."""
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop: not a subclass
        self.transport = transport
        self.over_capacity = not self.server._admit(self)
        # Above the high-water mark ``pause_writing`` is called: the bound on what a peer
        # that does not read can make the server buffer.
        transport.set_write_buffer_limits(high=self.server.limits.write_buffer_size)
        if self.server.closing:
            self._close()
            return
        self._start_request_timer()

    def _received(self, data: bytes) -> None:
        phase = self.phase
        if phase is not _READING and phase is not _SENDING:
            if phase is not _FIRST_READ:
                return  # stopped, or closed: nothing more is read
            self._enter(_READING)
            self.received += len(data)
            if self._fast_upgrade(data):
                return
        else:
            self.received += len(data)
        self._parser().receive_data(data)
        self._process()

    def _fast_upgrade(self, data: bytes) -> bool:
        """Answer a plain upgrade request whole in ``data`` without h11; ``False`` if it is
        left to h11 (not such a request, or one to refuse), with nothing done yet."""
        request = parse_upgrade_request(data)
        if request is None or self._refusal(request) is not None:
            return False
        self._cancel_request_timer()
        if not self._handle_request(request, b"", received=data) and self.phase is _READING:
            self._after_response()
        return True

    def eof_received(self) -> bool:
        if self.phase is _READING or self.phase is _SENDING:
            self._parser().receive_data(b"")
            self._process()
        return True  # close once the answer is written, not before

    def _finish(self) -> None:
        """The connection is over: the server forgets it."""
        self._enter(_CLOSED)
        self.server._release(self)

    def _writable(self) -> None:
        if self.phase is _SENDING and self._write_body():
            self._after_response()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.debug("connection from %s lost: %s", self.peer, exc)
        self._cancel_timers()
        if self._pending is not None:
            close_iterable(self._pending.result)
            self._pending = None
        self._finish()

    def _process(self) -> None:
        """Handle the events h11 has, answering each request as soon as it is complete."""
        h = self._parser()
        while self.phase is _READING:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                self._send_error(exc.error_status_hint, f"bad request: {exc}")
                return
            if event is h11.NEED_DATA:
                if h.they_are_waiting_for_100_continue:
                    self._write(
                        h.send(h11.InformationalResponse(status_code=100, headers=base_headers()))
                    )
                if self.server.closing and self._idle():
                    self._close()
                return
            if isinstance(event, h11.Request):
                refusal = self._refusal(event)
                if refusal is not None:
                    status, reason = refusal
                    extra = [("Retry-After", str(RETRY_AFTER))] if status == 503 else []
                    self._send_error(status, reason, extra_headers=extra)
                    return
                self._request = event
            elif isinstance(event, h11.Data):
                if self._body is None:
                    self._body = bytearray()
                self._body += event.data
                if len(self._body) > self.server.limits.max_body_size:
                    self._send_error(413, "request body too large")
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._cancel_request_timer()
                request, body = self._request, bytes(self._body or b"")
                self._request, self._body = None, None
                assert request is not None
                if self._handle_request(request, body):
                    return  # upgraded: the session has the transport now
                if self.phase is _READING:
                    self._after_response()
            elif event is h11.PAUSED:
                return  # a pipelined request: it is read once the response is out
            else:
                self._close()  # ConnectionClosed: EOF between requests
                return

    def _after_response(self) -> None:
        """Start on the next request of a keep-alive connection, or close."""
        if self.phase is not _READING:
            return
        h = self._parser()
        if self.server.closing or h.our_state is not h11.DONE or h.their_state is not h11.DONE:
            self._close()
            return
        h.start_next_cycle()
        self.received = 0
        self._start_request_timer()
        if self.transport is not None and not self.transport.is_reading():
            self.transport.resume_reading()
        self._process()

    def _idle(self) -> bool:
        """Whether the connection waits for a request of which nothing has arrived."""
        if self.phase is _FIRST_READ:
            return True
        h = self.h11
        return (
            self.phase is _READING
            and h is not None
            and h.their_state is h11.IDLE
            and not h.trailing_data[0]
        )

    def _timed_out(self) -> None:
        """The request did not arrive within ``handshake_timeout``."""
        if self.phase is not _READING and self.phase is not _FIRST_READ:
            return
        if self._idle():
            self._close()  # an idle keep-alive connection, or one that never spoke
            return
        timeout = self.server.limits.handshake_timeout
        logger.info("request from %s timed out after %s s", self.peer, timeout)
        # RFC 7231 §6.5.7: 408, the server "did not receive a complete request message
        # within the time that it was prepared to wait".
        self._send_error(408, f"request timeout: the request took longer than {timeout} s")

    def _refusal(self, request: _Request) -> tuple[int, str] | None:
        """The status and reason to refuse ``request`` with before reading its body, if any."""
        items = request.headers.raw_items()
        return refusal(
            self.server.limits,
            request.method,
            request.target,
            items,
            self.received,
            over_capacity=self.over_capacity,
        )

    def _handle_request(
        self, request: _Request, body: bytes, *, received: bytes | None = None
    ) -> bool:
        """Answer one complete request; ``True`` if it was upgraded to a WebSocket.

        ``received`` is given for a request the fast path parsed (h11 has not seen it):
        the bytes h11 reads before any answer other than a 101.
        """
        transport = self.transport
        assert transport is not None
        sockname = transport.get_extra_info("sockname") or ("", 0)
        peer = transport.get_extra_info("peername") or ("", 0)
        environ = environ_of(request, body, sockname, peer, self.server.limits)
        response = Response()
        try:
            result = self.server.app(environ, response.start_response)
            if result is None:  # a bare middleware passed the request on
                result = error_response(response.start_response, 404, "nothing here")
            # A 101 is known at once (the middleware's); another answer may start late.
            chunks = None if _switching(response) else body_chunks(result, response)
        except Exception:
            logger.exception("the WSGI app failed on %s %s", request.method, request.target)
            if self._h11_reads(received):
                self._send_error(500, "internal server error", close=False)
            return False
        if chunks is None or _switching(response):
            close_iterable(result)
            return self._upgrade(environ, response, request, received)
        if self._h11_reads(received):
            self._send_response(request, response, result, chunks)
        else:
            close_iterable(result)
        return False

    def _h11_reads(self, received: bytes | None) -> bool:
        """Hand h11 a request the fast path parsed, so that it frames the answer (and reads
        what follows); ``False`` if h11 refused it (it has been answered then)."""
        if received is None:
            return self.h11 is not None  # h11 read it (unless upgraded meanwhile)
        h = self._parser()
        h.receive_data(received)
        try:
            request, end = h.next_event(), h.next_event()
        except h11.RemoteProtocolError as exc:
            self._send_error(exc.error_status_hint, f"bad request: {exc}")
            return False
        if not isinstance(request, h11.Request) or not isinstance(end, h11.EndOfMessage):
            self._send_error(400, "bad request: the request head is incomplete")
            return False
        return True

    def _upgrade(
        self,
        environ: MutableMapping[str, Any],
        response: Response,
        request: _Request,
        received: bytes | None,
    ) -> bool:
        """Write the 101 and hand the transport to the session the middleware created."""
        session = environ.get(WEBSOCKET_KEY)
        h = self.h11
        assert self.transport is not None
        proposed = isinstance(request, UpgradeRequest) or (
            h is not None and h.their_state is _MIGHT_SWITCH
        )
        if not isinstance(session, WebSocketSession) or not proposed:
            logger.error("a 101 response without a WebSocket upgrade from rfc6455's middleware")
            if self._h11_reads(received):
                self._send_error(500, "internal server error", close=False)
            return False
        try:
            head = upgrade_head(response.headers)
        except HandshakeError as exc:
            logger.error("the 101 response cannot be sent: %s", exc.reason)
            if self._h11_reads(received):
                self._send_error(500, "internal server error", close=False)
            return False
        # The bytes read past the request are the first bytes of the WebSocket stream.
        # Upgraded, the connection keeps neither h11 nor the request.
        if received is not None and isinstance(request, UpgradeRequest):
            trailing = received[request.head_end :]
        else:
            assert h is not None
            trailing = bytes(h.trailing_data[0])
        self.h11 = None
        self._enter(_UPGRADED)
        self.transport.write(head)
        self.server._upgraded(self, session, trailing)
        return True

    def _send_response(
        self,
        request: _Request,
        response: Response,
        result: Iterable[bytes],
        chunks: Iterator[bytes],
    ) -> None:
        h = self.h11
        assert h is not None
        try:
            head = _response_head(h, response, self.server.closing)
        except (h11.LocalProtocolError, ValueError, TypeError):
            logger.exception("the WSGI app's response to %s is invalid", request.target)
            close_iterable(result)
            self._send_error(500, "internal server error", close=False)
            return
        response.headers_sent = True
        self._write(head)
        if request.method == b"HEAD":
            chunks = iter(())
        self._pending = _PendingBody(request, result, chunks)
        self._enter(_SENDING)
        if self.transport is not None:
            self.transport.pause_reading()  # pipelined requests wait for this response
        self._write_body()

    def _write_body(self) -> bool:
        """Write the body until the peer must read first; ``True`` once it is all out."""
        pending = self._pending
        h = self.h11
        assert pending is not None and h is not None
        try:
            for chunk in pending.chunks:
                if chunk:
                    self._write(h.send(h11.Data(data=chunk)))
                    if self._writing_paused:
                        return False  # ``resume_writing`` comes back here
            self._write(h.send(h11.EndOfMessage()))
        except Exception:
            logger.exception("the WSGI app's response to %s failed", pending.request.target)
            self._pending = None
            close_iterable(pending.result)
            self._enter(_STOPPED)
            self.abort()  # the head is out: the peer can only learn of it this way
            return False
        self._pending = None
        close_iterable(pending.result)
        self._enter(_READING)
        return True

    def _send_error(
        self,
        status: int,
        reason: str,
        *,
        close: bool = True,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Answer with an error if a response can still be started; close if asked to."""
        phase = self.phase
        h = self._parser() if phase is _READING or phase is _FIRST_READ else self.h11
        if h is not None and h.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                self._write(_error_message(h, status, reason, close, extra_headers))
            except h11.LocalProtocolError:
                close = True
        else:
            close = True
        if close:
            self._close()


def _switching(response: Response) -> bool:
    """Whether the app answered ``101 Switching Protocols``."""
    status = response.status
    return status is not None and status.startswith("101")


def _response_head(h: h11.Connection, response: Response, closing: bool) -> bytes:
    """The head of the app's (final) response, framed by h11; ``ValueError`` for a 1xx."""
    assert response.status is not None
    code, _, phrase = response.status.partition(" ")
    status_code = int(code)
    if status_code < 200:
        raise ValueError(f"a WSGI app may not answer with status {response.status}")
    headers = encode_headers(response.headers)
    if closing:
        headers.append((b"Connection", b"close"))
    data: bytes = h.send(h11.Response(status_code=status_code, headers=headers, reason=phrase))
    return data


def _error_message(
    h: h11.Connection,
    status: int,
    reason: str,
    close: bool,
    extra_headers: Sequence[tuple[str, str]],
) -> bytes:
    """A whole error response (``error_response``'s), framed by h11."""
    response = Response()
    body = error_response(response.start_response, status, reason, extra_headers)
    headers = encode_headers(response.headers)
    if close:
        headers.append((b"Connection", b"close"))
    data = [h.send(h11.Response(status_code=status, headers=headers))]
    data += [h.send(h11.Data(data=chunk)) for chunk in body]
    data.append(h.send(h11.EndOfMessage()))
    return b"".join(data)
