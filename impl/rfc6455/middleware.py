"""``WebSocket``: the WSGI middleware that performs the opening handshake for a ``WS`` handler.

Invariants:
- Middleware follows pulsar's chain protocol: called as a WSGI app, it returns a response
  iterable, or ``None`` to let the next middleware of the chain handle the request.
- A request that does not ask for the websocket upgrade, or that the handler does not
  ``match``, falls through (``None``). A request that asks for it is answered here: an HTTP
  error with the reason as a ``text/plain`` body when the handshake is invalid or refused
  (400, 405, 426, or what the handler chose), else ``101 Switching Protocols``.
- On a 101 the live connection, a ``WebSocketSession``, is placed at
  ``environ["rfc6455.websocket"]``; the server writes the 101, then runs that session on
  the raw connection. Under another WSGI server that exposes the client socket (gunicorn,
  Werkzeug) the middleware writes the 101 and runs the session itself, in the worker
  thread (``rfc6455.takeover``); otherwise it does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from enum import Enum
from typing import Any

from .errors import HandshakeError
from .extensions import ServerExtensionFactory
from .handler import WEBSOCKET_KEY, WS
from .handshake import accept_upgrade, is_websocket_request
from .limits import DEFAULT_LIMITS, LIMITS_KEY, MAX_MESSAGE_SIZE, Limits
from .session import WebSocketSession
from .takeover import server_socket, take_over
from .wsgi import StartResponse, error_response, response_head

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "WebSocket", "error_response"]

#: Largest message (after reassembly and decompression) a connection accepts by default;
#: a bigger one fails the connection with 1009 (RFC 6455 §7.4.1). It is the default
#: ``Limits``' (see there why); the Autobahn testee raises it (case 9.1.6 sends 16 MiB).
DEFAULT_MAX_MESSAGE_SIZE = MAX_MESSAGE_SIZE


class _FromLimits(Enum):
    LIMITS = "limits"


#: ``max_message_size``'s default: the running server's ``Limits.max_message_size``
#: (``environ["rfc6455.limits"]``), else ``DEFAULT_MAX_MESSAGE_SIZE``.
FROM_LIMITS = _FromLimits.LIMITS


class WebSocket:
    """WSGI middleware that upgrades matching requests and hands them to ``handle``.

    ``handle`` is the ``WS`` handler; ``extensions`` the server extension factories to
    negotiate, in order of preference (``None``: no extension); ``max_message_size`` the
    largest message accepted (``None``: no limit; by default the server's ``Limits``, which
    also give the frame limit). Subprotocols come from ``handle.subprotocols``.
    """

    def __init__(
        self,
        handle: WS,
        extensions: Sequence[ServerExtensionFactory] | None = None,
        *,
        max_message_size: int | _FromLimits | None = FROM_LIMITS,
    ) -> None:
        if not isinstance(handle, WS):
            raise TypeError(f"handle must be a WS instance, got {type(handle).__name__}")
        self.handle = handle
        self.extensions: list[ServerExtensionFactory] = list(extensions or ())
        self.max_message_size = max_message_size

    def __call__(
        self, environ: MutableMapping[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """Answer a WebSocket upgrade request, or return ``None`` to pass the request on."""
        if not is_websocket_request(environ) or not self.handle.match(environ):
            return None
        try:
            # Under gunicorn or Werkzeug the client socket, taken over below; None under ours.
            sock = server_socket(environ)
            handle = self.handle
            # (``server_handshake``'s fields, without building its object once per connection.)
            _, headers, _, extensions = accept_upgrade(
                environ, handle.subprotocols, self.extensions
            )
            edited = handle.on_handshake(environ, headers)  # may edit ``headers`` in place
            if edited is not None and edited is not headers:
                headers = list(edited)
            head = response_head(headers) if sock is not None else b""
        except HandshakeError as exc:
            return error_response(start_response, exc.status, exc.reason, exc.headers)
        limits = environ.get(LIMITS_KEY)
        if not isinstance(limits, Limits):
            limits = DEFAULT_LIMITS
        session = WebSocketSession(
            self.handle,
            environ,
            extensions=extensions,
            # The handler may have rewritten Sec-WebSocket-Protocol: what the 101 says wins.
            subprotocol=_header(headers, "sec-websocket-protocol"),
            max_message_size=(
                limits.max_message_size
                if self.max_message_size is FROM_LIMITS
                else self.max_message_size
            ),
            max_frame_size=limits.max_frame_size,
        )
        environ[WEBSOCKET_KEY] = session
        if sock is not None:
            # Blocks this worker until the connection is over; the server's own write of
            # the 101 below then fails on the shut-down socket (see rfc6455.takeover).
            take_over(sock, head, session)
        start_response("101 Switching Protocols", headers)
        return []


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
