"""Running a WebSocket session on another WSGI server's raw socket (gunicorn, Werkzeug).

Invariants:
- Our own server writes the 101 and runs the session itself; other WSGI servers cannot, so
  the middleware takes the connection over from them when the environ exposes the client
  socket: ``environ["gunicorn.socket"]`` (gunicorn's sync and gthread workers) or
  ``environ["werkzeug.socket"]`` (Werkzeug's development server).
- The takeover runs in the server's worker thread and blocks it until the connection is
  over: it writes the 101 by hand, then runs the same ``WebSocketSession`` our server runs,
  on an event loop of that thread (``asyncio.run``), so hooks behave alike everywhere:
  coroutine hooks are awaited, a raising hook closes with 1011, the closing handshake is
  bounded by ``closing_timeout``.
- The session gets a duplicate of the socket's descriptor, so the server's socket object
  stays valid (servers inspect it after the app returns). Once the session ends, the socket
  is shut down both ways (the TCP FIN; RFC 6455 §7.1.1: the server closes first) and its
  blocking mode restored; the server then closes it.
- After the takeover the app still answers the server with the 101 it sent; the server's
  attempt to write it fails with ``EPIPE`` on the shut-down socket, which gunicorn and
  Werkzeug treat as a client that went away: nothing more reaches the peer and the socket
  is not reused for another request (no keep-alive).
- Bytes the server read past the request head are not recovered: RFC 6455 §4.1 says the
  client waits for the server's response before sending anything else, so there are none.
- The worker is busy for the connection's lifetime: prefer gunicorn's gthread worker (each
  connection holds one thread) to the sync worker, whose arbiter kills a worker that stays
  silent longer than ``--timeout``; run Werkzeug's server with ``threaded=True``.
- TLS sockets (``ssl.SSLSocket``) and non-standard socket objects (gevent, eventlet) cannot
  be handed to asyncio: they are refused before the handshake with 501.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Mapping
from typing import Any, cast

from .errors import HandshakeError
from .session import WebSocketSession
from .wsgi import response_head

__all__ = ["SOCKET_KEYS", "response_head", "server_socket", "take_over"]

#: Environ keys under which WSGI servers expose the client connection, in lookup order.
SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")


def server_socket(environ: Mapping[str, Any]) -> socket.socket | None:
    """The client socket the WSGI server exposes for a takeover; ``None`` under our server.

    Raises ``HandshakeError`` (501) when the server exposes a socket that cannot be taken
    over, so the client gets an HTTP answer rather than a 101 that leads nowhere.
    """
    for key in SOCKET_KEYS:
        sock = environ.get(key)
        if sock is not None:
            break
    else:
        return None
    if isinstance(sock, ssl.SSLSocket):
        raise HandshakeError(
            f"cannot run a WebSocket on the TLS socket of {key}; terminate TLS in front of "
            "this server or serve WebSockets with rfc6455's server",
            status=501,
        )
    if _event_loop_running():
        raise HandshakeError(
            "cannot take the connection over from a thread that runs an event loop", status=501
        )
    if type(sock) is not socket.socket:
        raise HandshakeError(
            f"cannot run a WebSocket on {key}, a {type(sock).__name__}; a plain socket is "
            "needed (gunicorn's sync or gthread workers, Werkzeug's threaded server)",
            status=501,
        )
    return sock


def _event_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def take_over(
    sock: socket.socket,
    head: bytes,
    session: WebSocketSession,
    *,
    closing_timeout: float = 5.0,
) -> None:
    """Write ``head`` (the 101) to ``sock``, run ``session`` on it, then shut ``sock`` down.

    Blocks the calling worker thread until the connection is over and ``on_close`` has
    run. Must not be called from a thread whose event loop is running.
    """
    timeout = sock.gettimeout()
    try:
        try:
            sock.sendall(head)
        except OSError:
            return  # the client left before the 101: there is no connection to run
        asyncio.run(_run(sock, session, closing_timeout))
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)  # the duplicate shared the descriptor's blocking mode
        with contextlib.suppress(OSError):  # ENOTCONN: the peer is already gone
            sock.shutdown(socket.SHUT_RDWR)


async def _run(sock: socket.socket, session: WebSocketSession, closing_timeout: float) -> None:
    """Run ``session`` as the protocol of a transport on a duplicate of ``sock``'s descriptor."""
    duplicate = sock.dup()
    loop = asyncio.get_running_loop()
    try:
        await loop.connect_accepted_socket(
            lambda: _Starter(session, closing_timeout), sock=duplicate
        )
    except BaseException:
        duplicate.close()
        raise
    await session.wait_closed()


class _Starter(asyncio.Protocol):
    """Starts the session as soon as the transport exists, before any byte is read."""

    def __init__(self, session: WebSocketSession, closing_timeout: float) -> None:
        self.session = session
        self.closing_timeout = closing_timeout

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop: not a subclass
        self.session.start(transport, closing_timeout=self.closing_timeout)
