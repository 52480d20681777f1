"""``Server``: an asyncio HTTP/1.1 server (on h11) that runs WSGI apps and upgraded WebSocket
connections; it listens, counts connections and shuts down, and nothing else.

Invariants:
- Each TCP connection is an ``rfc6455.http11.HTTPConnection``, which only moves bytes:
  h11 owns HTTP parsing and framing (keep-alive, chunked bodies, HEAD, ``Expect:
  100-continue``), ``rfc6455.wsgi`` builds environs and response heads, and
  ``rfc6455.limits.refusal`` decides what to refuse before the app is called.
- The WSGI app runs in the event loop's thread, so it must not block: the handshake it does
  is fast, and the ``WS`` hooks it sets up run on this same loop. Request bodies are read in
  full (up to ``max_body_size``) before the app is called.
- A response of status 101 is an upgrade only when the request proposed one and the app
  put a ``WebSocketSession`` at ``environ["rfc6455.websocket"]`` (the ``WebSocket``
  middleware does); any other 101 is answered with 500. The 101's head is written by the
  connection (its fields checked as h11 would); then the session becomes the transport's
  protocol, starting with the bytes h11 had already buffered (``trailing_data``), and the
  server tracks the session in place of the HTTP connection, which is let go.
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
  finish, sends Close 1001 ("going away", RFC 6455 §7.4.1) to every open WebSocket (and to
  one upgraded meanwhile), waits at most ``shutdown_timeout`` seconds for all of them to
  end, then drops whatever is left.
- ``run`` serves on uvloop where it is installed (``loop="auto"``), else on asyncio's own
  loop; the server's behaviour is the same on both (its tests and the conformance runs pass
  on either), only the CPU per event differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from .deadlines import Deadlines
from .http11 import HTTPConnection
from .limits import DEFAULT_LIMITS, Limits
from .session import WebSocketSession
from .wsgi import SERVER_SOFTWARE, WSGIApp, WsgiHandler

__all__ = [
    "SERVER_SOFTWARE",
    "Server",
    "WSGIApp",
    "WsgiHandler",
    "run",
    "serve",
]

logger = logging.getLogger("rfc6455.server")


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
        self._connections: set[HTTPConnection] = set()  # before (or without) an upgrade
        self._sessions: set[WebSocketSession] = set()  # upgraded, until they finish
        self._admitted = 0  # connections within max_connections, upgraded or not
        # Bound once: every session refers to this one object, not to a bound method each.
        self._session_finished: Callable[[WebSocketSession], None] = self._forget_session
        self._all_gone: asyncio.Event | None = None  # made by ``close`` if it must wait
        # The requests awaited (``handshake_timeout``), one timer for all, which outlives the
        # last of them (connections come many times a second): made by ``start``.
        self.request_deadlines: Deadlines[HTTPConnection] | None = None

    @property
    def url(self) -> str:
        """``ws://host:port`` of the listening socket."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def sessions(self) -> list[WebSocketSession]:
        """The WebSocket connections currently running."""
        return list(self._sessions)

    async def start(self) -> None:
        """Start listening; ``port`` is the bound port afterwards."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        loop = asyncio.get_running_loop()
        timeout = self.limits.handshake_timeout
        if timeout is not None:
            self.request_deadlines = Deadlines(loop, timeout, HTTPConnection._timed_out, lapse=True)
        self._server = await loop.create_server(lambda: HTTPConnection(self), self.host, self.port)
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
        for session in list(self._sessions):
            _going_away(session)
        if self._connections or self._sessions:
            self._all_gone = asyncio.Event()
            if not await _within(self._all_gone.wait(), self.shutdown_timeout):
                reason = f"the server shut down; still open after {self.shutdown_timeout:g} s"
                for conn in list(self._connections):
                    conn.abort()
                for session in list(self._sessions):
                    session.abort(reason)
                await _within(self._all_gone.wait(), 1.0)  # ``connection_lost`` callbacks
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _admit(self, conn: HTTPConnection) -> bool:
        """Count a new connection; ``False`` if it is over ``max_connections``."""
        limit = self.limits.max_connections
        admitted = limit is None or self._admitted < limit
        if admitted:
            self._admitted += 1
        self._connections.add(conn)
        return admitted

    def _release(self, conn: HTTPConnection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            if not conn.over_capacity:
                self._admitted -= 1
            self._check_all_gone()

    def _upgraded(self, conn: HTTPConnection, session: WebSocketSession, initial: bytes) -> None:
        """``conn`` wrote a 101: run ``session`` on its transport, tracked in its place (it
        was admitted: a connection over capacity is refused before the app)."""
        assert conn.transport is not None
        self._connections.discard(conn)
        self._sessions.add(session)
        session.start(
            conn.transport, initial, limits=self.limits, on_finished=self._session_finished
        )
        if self.closing:
            _going_away(session)

    def _forget_session(self, session: WebSocketSession) -> None:
        if session in self._sessions:
            self._sessions.discard(session)
            self._admitted -= 1
            self._check_all_gone()

    def _check_all_gone(self) -> None:
        if self._all_gone is not None and not self._connections and not self._sessions:
            self._all_gone.set()


def _going_away(session: WebSocketSession) -> None:
    """Close ``session`` with 1001: RFC 6455 §7.4.1, an endpoint "going away, such as a
    server going down"."""
    try:
        session.close(1001, "server shutting down")
    except Exception:
        logger.exception("closing the WebSocket of %s failed", session._name())


async def _within(waiting: Awaitable[Any], timeout: float) -> bool:
    """Await ``waiting`` for at most ``timeout`` seconds; whether it finished."""
    try:
        await asyncio.wait_for(waiting, timeout)
    except TimeoutError:
        return False
    return True


async def serve(app: WSGIApp, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Server:
    """Start a ``Server`` for ``app`` and return it (already listening)."""
    server = Server(app, host, port, **options)
    await server.start()
    return server


LOOPS = ("auto", "asyncio", "uvloop")


def loop_factory(loop: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory for ``"uvloop"`` (ImportError without it) and for ``"auto"``
    where uvloop is installed; None (asyncio's own loop) otherwise."""
    if loop not in LOOPS:
        raise ValueError(f"unknown event loop {loop!r}: one of {', '.join(LOOPS)}")
    if loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if loop == "uvloop":
            raise
        return None
    return uvloop.new_event_loop


def run(
    app: WSGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    ready: Callable[[Server], None] | None = None,
    loop: str = "auto",
    **options: Any,
) -> None:
    """Serve ``app`` on the ``loop`` chosen (see ``loop_factory``) until SIGINT or SIGTERM,
    then shut down gracefully.

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

    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        runner.run(main())
