"""An asyncio HTTP/1.1 server (on h11) that runs WSGI apps and upgraded WebSocket connections.

Invariants:
- h11 owns HTTP parsing and framing (keep-alive, chunked bodies, HEAD, ``Expect:
  100-continue``); this module only moves bytes between the transport and h11. Each
  connection is an ``asyncio.BufferedProtocol`` (no task, stream or future per connection
  or per read; the transport reads into the thread's one receive buffer,
  ``rfc6455.readbuffer``): a request is answered from the read that completes it, and a body
  the peer is slow to take resumes from ``resume_writing``. While a response is being
  written, pipelined requests are not read. One exception to h11 parsing: a plain upgrade
  request whole in a connection's first read is parsed by ``rfc6455.fastpath`` (httptools,
  held to h11's grammar); h11 still reads it before any answer other than a 101.
- The WSGI app runs in the event loop's thread, so it must not block: the handshake it does
  is fast, and the ``WS`` hooks it sets up run on this same loop. Request bodies are read in
  full (up to ``max_body_size``) before the app is called.
- A response of status 101 is an upgrade only when the request proposed one and the app
  put a ``WebSocketSession`` at ``environ["rfc6455.websocket"]`` (the ``WebSocket``
  middleware does); any other 101 is answered with 500. The 101's head is written here
  (its fields checked as h11 would); then the session becomes the transport's protocol,
  starting with the bytes h11 had already buffered (``trailing_data``).
- Every response carries ``Server: rfc6455/<version>`` and a ``Date`` (RFC 7231 §7.1.1.2).
- ``Limits`` bound what a peer costs (see ``rfc6455.limits``): a request head over
  ``max_head_size`` or with too many or too big header fields gets 431 (RFC 6585 §5); a
  request (head and body) not in within ``handshake_timeout`` gets 408 (RFC 7231 §6.5.7),
  an idle keep-alive connection is just closed then (slowloris cannot hold a connection
  longer than that). Beyond ``max_connections`` a connection is still accepted and its
  request read (within the same timeout), but it is answered ``503`` with ``Retry-After``
  and closed without reaching the app: the client learns why, and an excess connection
  costs one request head for at most ``handshake_timeout`` seconds. A client that leaves
  a response unread for ``send_timeout`` seconds is dropped.
- Answers to a peer's mistakes are 4xx with the reason as a plain-text body; the only 5xx
  are the app's own failures (500) and those h11 hints at (501 for a transfer coding it does
  not implement, RFC 7230 §3.3.1).
- ``close()`` stops listening, closes idle keep-alive connections, lets requests in progress
  finish, sends Close 1001 ("going away", RFC 6455 §7.4.1) to every open WebSocket, waits at
  most ``shutdown_timeout`` seconds, then drops whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import replace
from email.utils import formatdate
from typing import Any

import h11

from . import __version__
from .errors import HandshakeError
from .fastpath import UpgradeRequest, parse_upgrade_request
from .handler import WEBSOCKET_KEY
from .limits import DEFAULT_LIMITS, LIMITS_KEY, Limits
from .middleware import error_response
from .readbuffer import read_buffer
from .session import WebSocketSession
from .takeover import response_head

__all__ = [
    "SERVER_SOFTWARE",
    "Server",
    "WSGIApp",
    "WsgiHandler",
    "run",
    "serve",
]

logger = logging.getLogger("rfc6455.server")

#: The ``Server`` header of every response (RFC 7231 §7.4.2).
SERVER_SOFTWARE = f"rfc6455/{__version__}"

#: A WSGI application (PEP 3333), or a middleware of a ``WsgiHandler`` chain, which may
#: also return ``None`` to pass the request on.
WSGIApp = Callable[[MutableMapping[str, Any], Callable[..., Any]], Iterable[bytes] | None]

# The client's state after a request that proposed a protocol switch (h11 does not list it
# in ``__all__``): a 101 is only valid then.
_MIGHT_SWITCH: Any = h11.MIGHT_SWITCH_PROTOCOL  # type: ignore[attr-defined]

#: Seconds a client over ``max_connections`` is told to wait before retrying (RFC 7231
#: §7.1.3).
RETRY_AFTER = 1


#: A parsed request head: h11's, or the upgrade fast path's (``rfc6455.fastpath``).
_Request = h11.Request | UpgradeRequest


class WsgiHandler:
    """A chain of middleware, pulsar style: the first non-``None`` response wins, else 404.

    Each middleware is called as a WSGI app; it returns a response iterable to answer the
    request, or ``None`` to let the next one try.
    """

    def __init__(self, middleware: Sequence[WSGIApp] = ()) -> None:
        self.middleware: list[WSGIApp] = list(middleware)

    def __call__(
        self, environ: MutableMapping[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        for middleware in self.middleware:
            response = middleware(environ, start_response)
            if response is not None:
                return response
        return error_response(start_response, 404, f"nothing here: {environ.get('PATH_INFO')}")


class _Response:
    """What a WSGI app answered: status, headers, and the body still to iterate."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.written: list[bytes] = []  # PEP 3333's legacy ``write()`` callable

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Callable[[bytes], None]:
        # PEP 3333: a second call is only allowed with exc_info, and re-raises once the
        # headers are out.
        if exc_info is not None:
            if self.headers_sent:
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise RuntimeError("start_response was already called")
        self.status = status
        self.headers = list(headers)
        return self.written.append


class Server:
    """The HTTP/1.1 + WebSocket server.

    ``app`` is any WSGI app or ``WsgiHandler`` chain; a chain returning ``None`` gets 404.
    ``port=0`` picks a free port (read ``port`` or ``url`` after ``start()``).
    ``limits`` bounds sizes, timeouts and connections (``rfc6455.limits.Limits``);
    ``closing_timeout`` and ``max_body_size``, when given, override those fields.
    ``shutdown_timeout`` bounds ``close()``. Use as ``async with Server(app) as server:
    ...`` or ``start()``/``close()``.
    """

    def __init__(
        self,
        app: WSGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: Limits = DEFAULT_LIMITS,
        closing_timeout: float | None = None,
        shutdown_timeout: float = 5.0,
        max_body_size: int | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        if closing_timeout is not None:
            limits = replace(limits, closing_timeout=closing_timeout)
        if max_body_size is not None:
            limits = replace(limits, max_body_size=max_body_size)
        self.limits = limits
        self.shutdown_timeout = shutdown_timeout
        self.closing = False
        self._server: asyncio.Server | None = None
        self._connections: set[_HTTPConnection] = set()
        self._admitted = 0  # connections within max_connections

    @property
    def url(self) -> str:
        """``ws://host:port`` of the listening socket."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def sessions(self) -> list[WebSocketSession]:
        """The WebSocket connections currently running."""
        return [conn.session for conn in self._connections if conn.session is not None]

    async def start(self) -> None:
        """Start listening; ``port`` is the bound port afterwards."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _HTTPConnection(self), self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        """Start if needed, then serve until cancelled or closed."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._server.serve_forever()

    async def close(self) -> None:
        """Shut down gracefully (see the module docstring); idempotent."""
        if self.closing:
            return
        self.closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.shut_down()
        waiters = [conn.finished() for conn in self._connections]
        if waiters:
            _done, pending = await asyncio.wait(waiters, timeout=self.shutdown_timeout)
            for conn in list(self._connections):
                conn.abort(f"the server shut down; still open after {self.shutdown_timeout:g} s")
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _admit(self, conn: _HTTPConnection) -> bool:
        """Count a new connection; ``False`` if it is over ``max_connections``."""
        limit = self.limits.max_connections
        admitted = limit is None or self._admitted < limit
        if admitted:
            self._admitted += 1
        self._connections.add(conn)
        return admitted

    def _release(self, conn: _HTTPConnection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            if not conn.over_capacity:
                self._admitted -= 1


class _PendingBody:
    """A response body that waits for the peer to read before the rest is written."""

    __slots__ = ("chunks", "request", "result")

    def __init__(self, request: _Request, result: Iterable[bytes], chunks: Iterator[bytes]):
        self.request = request
        self.result = result
        self.chunks = chunks


class _HTTPConnection(asyncio.BufferedProtocol):
    """One TCP connection: HTTP requests until it closes or is upgraded to a WebSocket.

    The transport's protocol until the upgrade: h11 parses what ``data_received`` brings,
    each complete request is answered from the callback (the WSGI app is synchronous), and
    a response body the peer is slow to take is resumed by ``resume_writing``. After the
    101 the ``WebSocketSession`` becomes the transport's protocol.
    """

    # Slots: one per open connection, so no per-instance dict (memory, and attribute speed).
    __slots__ = (
        "_body",
        "_done",
        "_first_read",
        "_lost",
        "_read_view",
        "_request",
        "_request_timer",
        "_send_timer",
        "_sending",
        "_stopped",
        "_writing_paused",
        "h11",
        "over_capacity",
        "peer",
        "received",
        "server",
        "session",
        "transport",
    )

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.session: WebSocketSession | None = None
        self.over_capacity = False  # beyond max_connections: answer 503
        self.h11: h11.Connection | None = h11.Connection(
            h11.SERVER, max_incomplete_event_size=server.limits.max_head_size
        )
        self.peer: Any = None
        self.received = 0  # bytes of the request being read, to tell idle from slow
        self._request: _Request | None = None
        self._body = bytearray()
        self._sending: _PendingBody | None = None
        self._stopped = False  # answered for the last time: ignore what else arrives
        self._writing_paused = False
        self._lost = False
        self._request_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[None] | None = None
        self._first_read = True  # the upgrade fast path looks at this read only
        self._read_view = read_buffer()  # made by the loop's thread: that thread's buffer

    # -- the server's side ---------------------------------------------------------------------

    def shut_down(self) -> None:
        """Begin this connection's part of a graceful server shutdown."""
        if self.session is not None:
            try:
                # RFC 6455 §7.4.1: 1001 "indicates that an endpoint is "going away", such
                # as a server going down".
                self.session.close(1001, "server shutting down")
            except Exception:
                logger.exception("closing the WebSocket of %s failed", self.peer)
        elif self._idle():
            self._close()

    def finished(self) -> asyncio.Future[None]:
        """A future done once this connection is over (TCP closed, ``on_close`` run)."""
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
            if self._lost:
                self._done.set_result(None)
        return self._done

    def abort(self, reason: str = "") -> None:
        """Drop TCP now; a WebSocket logs ``reason`` as how it ended."""
        if self.session is not None and reason:
            self.session.abort(reason)
        elif self.transport is not None:
            self.transport.abort()

    # -- asyncio.BufferedProtocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.over_capacity = not self.server._admit(self)
        # Above the high-water mark ``pause_writing`` is called: the bound on what a peer
        # that does not read can make the server buffer.
        transport.set_write_buffer_limits(high=self.server.limits.write_buffer_size)
        self.peer = transport.get_extra_info("peername")
        if self.server.closing:
            self._close()
            return
        self._start_request_timer()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        # Copied out at once: the buffer is the next connection's as soon as this returns.
        self.data_received(self._read_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        h = self.h11
        if h is None or self._stopped:
            return
        self.received += len(data)
        if self._first_read:
            self._first_read = False
            if self._fast_upgrade(data):
                return
        h.receive_data(data)
        self._process()

    def _fast_upgrade(self, data: bytes) -> bool:
        """Answer a plain upgrade request whole in ``data`` without h11; ``False`` if it is
        left to h11 (not such a request, or one to refuse), with nothing done yet."""
        request = parse_upgrade_request(data)
        if request is None or self._refusal(request) is not None:
            return False
        self._cancel_request_timer()
        if not self._handle_request(request, b"", received=data) and self._sending is None:
            self._after_response()
        return True

    def eof_received(self) -> bool:
        h = self.h11
        if h is not None and not self._stopped:
            h.receive_data(b"")
            if self._sending is None:
                self._process()
        return True  # close once the answer is written, not before

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.debug("connection from %s lost: %s", self.peer, exc)
        self._lost = True
        self._stopped = True
        self._cancel_timers()
        if self._sending is not None:
            _close_iterable(self._sending.result)
            self._sending = None
        self._finish()

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
        if self._sending is not None and not self._stopped and self._write_body():
            self._after_response()

    # -- requests -------------------------------------------------------------------------------

    def _process(self) -> None:
        """Handle the events h11 has, answering each request as soon as it is complete."""
        h = self.h11
        while h is not None and not self._stopped and self._sending is None:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                self._send_error(exc.error_status_hint, f"bad request: {exc}")
                return
            if event is h11.NEED_DATA:
                if h.they_are_waiting_for_100_continue:
                    self._write(
                        h.send(h11.InformationalResponse(status_code=100, headers=_base_headers()))
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
                self._body += event.data
                if len(self._body) > self.server.limits.max_body_size:
                    self._send_error(413, "request body too large")
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._cancel_request_timer()
                request, body = self._request, bytes(self._body)
                self._request, self._body = None, bytearray()
                assert request is not None
                if self._handle_request(request, body):
                    return  # upgraded: the session has the transport now
                if self._sending is None:
                    self._after_response()
            elif event is h11.PAUSED:
                return  # a pipelined request: it is read once the response is out
            else:
                self._close()  # ConnectionClosed: EOF between requests
                return

    def _after_response(self) -> None:
        """Start on the next request of a keep-alive connection, or close."""
        h = self.h11
        if h is None or self._stopped:
            return
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
        h = self.h11
        return (
            h is not None
            and h.their_state is h11.IDLE
            and self._sending is None
            and not h.trailing_data[0]
        )

    def _start_request_timer(self) -> None:
        timeout = self.server.limits.handshake_timeout
        if timeout is not None:
            loop = asyncio.get_running_loop()
            self._request_timer = loop.call_later(timeout, self._timed_out)

    def _cancel_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_request_timer()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _timed_out(self) -> None:
        """The request did not arrive within ``handshake_timeout``."""
        self._request_timer = None
        if self._stopped:
            return
        if self._idle():
            self._close()  # an idle keep-alive connection, or one that never spoke
            return
        timeout = self.server.limits.handshake_timeout
        logger.info("request from %s timed out after %s s", self.peer, timeout)
        # RFC 7231 §6.5.7: 408, the server "did not receive a complete request message
        # within the time that it was prepared to wait".
        self._send_error(408, f"request timeout: the request took longer than {timeout} s")

    def _send_timed_out(self) -> None:
        self._send_timer = None
        if self.transport is not None and self._writing_paused:
            timeout = self.server.limits.send_timeout
            logger.info("%s read nothing for %s s; dropping TCP", self.peer, timeout)
            self.transport.abort()

    def _refusal(self, request: _Request) -> tuple[int, str] | None:
        """The status and reason to refuse ``request`` with before reading its body, if any."""
        limits = self.server.limits
        if self.over_capacity:
            # RFC 7231 §6.6.4: 503, "temporarily overloaded"; Retry-After says when to retry.
            return 503, f"server at capacity ({limits.max_connections} connections); retry later"
        problem = _target_problem(request.method, request.target)
        if problem is not None:
            return 400, problem
        # RFC 6585 §5: 431 when "one or more of its header fields are too large". h11 only
        # bounds a head still arriving; one that came in a single read is measured here.
        items = request.headers.raw_items()
        if (
            self.received <= min(limits.max_head_size, limits.max_header_field_size)
            and len(items) <= limits.max_header_count
        ):
            # Fewer bytes arrived than either size limit: neither can be exceeded.
            return self._body_refusal(items)
        head_size = len(request.method) + len(request.target) + 12  # "M T HTTP/1.1\r\n"
        head_size += sum(len(name) + len(value) + 4 for name, value in items)  # "N: V\r\n"
        if head_size > limits.max_head_size:
            return 431, (
                f"request head too large: {head_size} bytes (at most {limits.max_head_size})"
            )
        if len(items) > limits.max_header_count:
            return 431, (
                f"too many header fields: {len(items)} (at most {limits.max_header_count})"
            )
        for name, value in items:
            if len(name) + len(value) > limits.max_header_field_size:
                shown = name.decode("latin-1")[:64]
                return 431, (
                    f"header field {shown!r} is too large: {len(name) + len(value)} bytes "
                    f"(at most {limits.max_header_field_size})"
                )
        return self._body_refusal(items)

    def _body_refusal(self, items: list[tuple[bytes, bytes]]) -> tuple[int, str] | None:
        """413 when the announced body is over ``max_body_size`` (RFC 7231 §6.5.11)."""
        limit = self.server.limits.max_body_size
        length = _header_value(items, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return 413, f"request body too large (at most {limit} bytes)"
        return None

    def _handle_request(
        self, request: _Request, body: bytes, *, received: bytes | None = None
    ) -> bool:
        """Answer one complete request; ``True`` if it was upgraded to a WebSocket.

        ``received`` is given for a request the fast path parsed (h11 has not seen it):
        the bytes h11 reads before any answer other than a 101.
        """
        environ = self._environ(request, body)
        response = _Response()
        try:
            result = self.server.app(environ, response.start_response)
            if result is None:  # a bare middleware passed the request on
                result = error_response(response.start_response, 404, "nothing here")
            chunks = _body_chunks(result, response)
        except Exception:
            logger.exception("the WSGI app failed on %s %s", request.method, request.target)
            if self._h11_reads(received):
                self._send_error(500, "internal server error", close=False)
            return False
        if response.status is not None and response.status.startswith("101"):
            _close_iterable(result)
            return self._upgrade(environ, response, request, received)
        if self._h11_reads(received):
            self._send_response(request, response, result, chunks)
        else:
            _close_iterable(result)
        return False

    def _h11_reads(self, received: bytes | None) -> bool:
        """Hand h11 a request the fast path parsed, so that it frames the answer (and reads
        what follows); ``False`` if h11 refused it (it has been answered then)."""
        h = self.h11
        if received is None or h is None:
            return h is not None
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
        response: _Response,
        request: _Request,
        received: bytes | None,
    ) -> bool:
        """Write the 101 and hand the transport to the session the middleware created."""
        session = environ.get(WEBSOCKET_KEY)
        h = self.h11
        assert h is not None and self.transport is not None
        proposed = isinstance(request, UpgradeRequest) or h.their_state is _MIGHT_SWITCH
        if not isinstance(session, WebSocketSession) or not proposed:
            logger.error("a 101 response without a WebSocket upgrade from rfc6455's middleware")
            if self._h11_reads(received):
                self._send_error(500, "internal server error", close=False)
            return False
        try:
            head = response_head(_with_server_headers(response.headers))
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
            trailing = bytes(h.trailing_data[0])
        self.h11 = None
        self.session = session
        self.transport.write(head)
        session.start(self.transport, trailing, limits=self.server.limits, on_finished=self._finish)
        return True

    def _send_response(
        self,
        request: _Request,
        response: _Response,
        result: Iterable[bytes],
        chunks: Iterator[bytes],
    ) -> None:
        h = self.h11
        assert h is not None and response.status is not None
        try:
            code, _, phrase = response.status.partition(" ")
            status_code = int(code)
            if status_code < 200:
                raise ValueError(f"a WSGI app may not answer with status {response.status}")
            headers = _encode_headers(response.headers)
            if self.server.closing:
                headers.append((b"Connection", b"close"))
            head = h.send(h11.Response(status_code=status_code, headers=headers, reason=phrase))
        except (h11.LocalProtocolError, ValueError, TypeError):
            logger.exception("the WSGI app's response to %s is invalid", request.target)
            _close_iterable(result)
            self._send_error(500, "internal server error", close=False)
            return
        response.headers_sent = True
        self._write(head)
        if request.method == b"HEAD":
            chunks = iter(())
        self._sending = _PendingBody(request, result, chunks)
        if self.transport is not None:
            self.transport.pause_reading()  # pipelined requests wait for this response
        if self._write_body():
            self._sending = None

    def _write_body(self) -> bool:
        """Write the body until the peer must read first; ``True`` once it is all out."""
        pending = self._sending
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
            self._sending = None
            _close_iterable(pending.result)
            self._stopped = True
            self.abort()  # the head is out: the peer can only learn of it this way
            return False
        self._sending = None
        _close_iterable(pending.result)
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
        h = self.h11
        if h is not None and h.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            response = _Response()
            body = error_response(response.start_response, status, reason, extra_headers)
            headers = _encode_headers(response.headers)
            if close:
                headers.append((b"Connection", b"close"))
            try:
                data = [h.send(h11.Response(status_code=status, headers=headers))]
                data += [h.send(h11.Data(data=chunk)) for chunk in body]
                data.append(h.send(h11.EndOfMessage()))
                self._write(b"".join(data))
            except h11.LocalProtocolError:
                close = True
        else:
            close = True
        if close:
            self._close()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self._lost:
            self.transport.write(data)

    def _close(self) -> None:
        """Close TCP once what is buffered is written; drop it if the peer stops reading."""
        self._stopped = True
        self._cancel_request_timer()
        transport = self.transport
        if transport is None or self._lost or transport.is_closing():
            return
        transport.close()
        if self._writing_paused and self._send_timer is None:
            self.pause_writing()  # arm the send timeout for what is left in the buffer

    def _finish(self) -> None:
        """The connection is over: the server forgets it."""
        self._lost = True
        self.server._release(self)
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _environ(self, request: _Request, body: bytes) -> dict[str, Any]:
        """The PEP 3333 environ of ``request``."""
        target = request.target.decode("latin-1")
        if target.startswith(("http://", "https://")):  # absolute-form, RFC 7230 §5.3.2
            parts = urllib.parse.urlsplit(target)
            path, query = parts.path or "/", parts.query
        else:
            path, _, query = target.partition("?")
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname") or ("", 0)
        peer = self.peer or ("", 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": _shared(request.method.decode("ascii")),
            "SCRIPT_NAME": "",
            # PEP 3333: the path is url-decoded and carried as latin-1 "bytes in a str".
            "PATH_INFO": urllib.parse.unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": _shared(str(sockname[0])),
            "SERVER_PORT": _shared(str(sockname[1])),
            "SERVER_PROTOCOL": _shared("HTTP/" + request.http_version.decode("ascii")),
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "REMOTE_ADDR": _shared(str(peer[0])),
            "REMOTE_PORT": str(peer[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            LIMITS_KEY: self.server.limits,
        }
        # ``raw_items()`` is a plain list: iterating h11's ``Headers`` itself goes through
        # ``Sequence.__iter__``, item by item, which showed in the handshake profile.
        for raw_name, raw_value in request.headers.raw_items():
            field = _fields.get(raw_name)
            if field is None:
                field = _field(raw_name)
            key, share = field
            if key is None:
                # "Sec_WebSocket_Key" would land on the same key as "Sec-WebSocket-Key":
                # such names are dropped rather than let them smuggle a header in.
                continue
            value = raw_value.decode("latin-1")
            if share:
                value = _shared(value)
            if key in environ:
                # RFC 7230 §3.2.2: repeated fields combine as a comma-separated list;
                # RFC 6265 §5.4: cookies with "; ".
                separator = "; " if key == "HTTP_COOKIE" else ", "
                environ[key] = f"{environ[key]}{separator}{value}"
            else:
                environ[key] = value
        return environ


#: Header fields whose values repeat from one connection to the next (``Sec-WebSocket-Key``
#: does not): their environ values are shared, not held once per open WebSocket.
_SHARED_VALUE_HEADERS = frozenset(
    (
        b"host",
        b"upgrade",
        b"connection",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"origin",
        b"user-agent",
        b"accept-encoding",
        b"accept-language",
        b"cache-control",
        b"pragma",
    )
)

#: Bound on each cache below, so that a peer sending ever new names or values cannot grow
#: them without limit; past it, strings are just not shared.
_CACHE_SIZE = 1024

_shared_values: dict[str, str] = {}
#: Header field name as received -> (environ key or ``None`` to drop it, share its value).
_fields: dict[bytes, tuple[str | None, bool]] = {}


def _field(raw_name: bytes) -> tuple[str | None, bool]:
    """How header field ``raw_name`` enters the environ: its key (``None``: dropped, the
    name has ``_``) and whether its value is shared; remembered, one string per name.

    Every open WebSocket keeps its environ: a shared key costs nothing per connection.
    """
    lowered = raw_name.lower()
    name = lowered.decode("latin-1")
    key: str | None
    if "_" in name:
        key = None
    elif name == "content-type":
        key = "CONTENT_TYPE"
    elif name == "content-length":
        key = "CONTENT_LENGTH"
    else:
        key = "HTTP_" + name.upper().replace("-", "_")
    field = (key, lowered in _SHARED_VALUE_HEADERS)
    if len(_fields) < _CACHE_SIZE:
        _fields[raw_name] = field
    return field


def _shared(value: str) -> str:
    """``value``, or an equal string already held, for environ values many connections share.

    Only for values that carry no secrets (not the target, cookies or credentials): the
    cache outlives the connections.
    """
    shared = _shared_values.get(value)
    if shared is not None:
        return shared
    if len(_shared_values) < _CACHE_SIZE and len(value) <= 256:
        _shared_values[value] = value
    return value


def _body_chunks(result: Iterable[bytes], response: _Response) -> Iterator[bytes]:
    """The body's chunks, with ``start_response`` guaranteed to have been called.

    PEP 3333 lets an app call ``start_response`` as late as its first yielded chunk, so
    that chunk is pulled here, before the headers are built.
    """
    iterator = iter(result)
    if response.status is not None:
        return _chain(response.written, iterator)
    first = next(iterator, None)
    if response.status is None:
        raise RuntimeError("the WSGI app returned without calling start_response")
    head = [*response.written, first] if first is not None else list(response.written)
    return _chain(head, iterator)


def _chain(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest


def _close_iterable(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            logger.exception("closing the WSGI response failed")


def _base_headers() -> list[tuple[bytes, bytes]]:
    return [(b"Server", SERVER_SOFTWARE.encode("ascii")), (b"Date", _http_date())]


def _http_date() -> bytes:
    """The ``Date`` header's value, formatted once per second rather than per response."""
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[:] = [now, formatdate(now, usegmt=True).encode("ascii")]
    date: bytes = _date_cache[1]
    return date


_date_cache: list[Any] = [0, b""]


def _with_server_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The app's headers plus ``Server`` and ``Date`` unless it set them (for the 101)."""
    present = {name.lower() for name, _ in headers}
    extra = []
    if "server" not in present:
        extra.append(("Server", SERVER_SOFTWARE))
    if "date" not in present:
        extra.append(("Date", _http_date().decode("ascii")))
    return [*headers, *extra]


def _encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """The app's headers as bytes, plus ``Server`` and ``Date`` unless it set them."""
    encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    present = {name.lower() for name, _ in encoded}
    if b"server" not in present:
        encoded.append((b"Server", SERVER_SOFTWARE.encode("ascii")))
    if b"date" not in present:
        encoded.append((b"Date", _http_date()))
    return encoded


# RFC 7230 §5.3.2: absolute-form starts with a scheme (RFC 3986 §3.1) and "://".
_ABSOLUTE_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://")


def _target_problem(method: bytes, target: bytes) -> str | None:
    """Why ``target`` is not a request-target for ``method`` (RFC 7230 §5.3), or ``None``."""
    shown = target.decode("latin-1")[:200]
    if b"#" in target:
        # RFC 7230 §5.1: the request-target carries no fragment (RFC 6455 §3: nor does a
        # WebSocket URI).
        return f"request target {shown!r} has a fragment ('#'), which is not allowed"
    if target.startswith(b"/") or _ABSOLUTE_FORM.match(target):
        return None  # origin-form or absolute-form
    if target == b"*" and method == b"OPTIONS":
        return None  # RFC 7230 §5.3.4: asterisk-form, for a server-wide OPTIONS only
    if method == b"CONNECT":
        return None  # RFC 7230 §5.3.3: authority-form, for CONNECT only
    return (
        f"request target {shown!r} is not a path starting with '/' or an absolute URI "
        "(RFC 7230 §5.3)"
    )


def _header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of the first field called ``name`` (lower case), in any case on the wire."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def serve(app: WSGIApp, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Server:
    """Start a ``Server`` for ``app`` and return it (already listening)."""
    server = Server(app, host, port, **options)
    await server.start()
    return server


def run(
    app: WSGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    ready: Callable[[Server], None] | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully.

    ``ready`` is called once the server listens (the CLI prints the URL there).
    """

    async def main() -> None:
        server = await serve(app, host, port, **options)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            if ready is not None:
                ready(server)
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await server.close()

    asyncio.run(main())
