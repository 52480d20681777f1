"""``WS``: the hooks a WebSocket application overrides (the ``pulsar.apps.ws`` shape).

Invariants:
- A ``WS`` instance is shared by every connection it serves: per-connection state lives in
  the WSGI ``environ`` of the upgrade request, which every hook receives. The live
  connection is ``environ[WEBSOCKET_KEY]`` (``"rfc6455.websocket"``): a ``LiveWebSocket``
  (the server's ``rfc6455.session.WebSocketSession`` or the client's
  ``rfc6455.client.ClientConnection``, both on ``rfc6455.shell``). This module knows
  neither: it imports nothing but errors.
- Hooks run on the server's event loop, one event at a time per connection and in the order
  the frames arrived; a hook may be a coroutine function, and the next event of that
  connection waits for it.
- An exception escaping a hook is logged and closes the connection with 1011 (RFC 6455
  §7.4.1: "an unexpected condition that prevented it from fulfilling the request"); its
  details never reach the peer.

The hooks, in the order they run::

    match(environ)                     is this request mine? (False: fall through)
    on_handshake(environ, headers)     edit the 101's headers, or raise HandshakeError to refuse
    on_open(environ)                   the 101 was sent; the connection is open
    on_message(environ, message)       a whole text (str) or binary (bytes) message
    on_ping / on_pong(environ, data)   control frames (the Pong answer is already queued)
    on_close(environ)                  the connection is over (called exactly once)

Sending at any time, from any code running on the server's event loop::

    ws = environ["rfc6455.websocket"]     # or WS.websocket(environ)
    ws.send("text")                       # str -> text message, bytes -> binary message
    ws.ping(b"payload")
    ws.close(1000, "bye")                 # starts the closing handshake
    await ws.drain()                      # optional: wait while the peer is slow to read
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, MutableMapping, Sequence
from typing import Any, Protocol

from .errors import CloseCode

__all__ = ["WEBSOCKET_KEY", "WS", "Headers", "HookResult", "LiveWebSocket", "MessageReply"]

#: The environ key under which the middleware places the live connection.
WEBSOCKET_KEY = "rfc6455.websocket"

#: The 101 response's headers, as (name, value) pairs.
Headers = list[tuple[str, str]]

#: What ``on_message`` may return: a reply (``str`` sent as text, ``bytes`` as binary), no
#: reply (``None``), or an awaitable of either.
MessageReply = str | bytes | bytearray | memoryview | None

#: What the other hooks may return: nothing, or an awaitable that the server waits for.
HookResult = Awaitable[None] | None


class LiveWebSocket(Protocol):
    """What a hook can call on its connection, on the server's side and the client's alike.

    ``send``, ``ping`` and ``close`` act at once; what they return may be awaited (the
    client's ``ping`` gives the round trip) or ignored.
    """

    @property
    def close_code(self) -> int | None: ...
    @property
    def close_reason(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def send(self, data: str | bytes | bytearray | memoryview) -> object: ...
    def ping(self, payload: bytes = ...) -> object: ...
    def close(self, code: int = ..., reason: str = ...) -> object: ...
    async def drain(self) -> None: ...


class WS:
    """Base class of WebSocket handlers; every hook has a do-nothing default.

    ``subprotocols`` lists the subprotocols this handler speaks, in order of preference;
    negotiation picks the first one the client also offers (RFC 6455 §4.2.2 step 5.5: the
    server selects "one or none of the acceptable protocols").
    """

    subprotocols: Sequence[str] = ()

    def match(self, environ: Mapping[str, Any]) -> bool:
        """Whether this handler serves the request; ``False`` lets it fall through.

        The default serves every path. Override to route, for example on
        ``environ["PATH_INFO"]``.
        """
        return True

    def on_handshake(self, environ: MutableMapping[str, Any], headers: Headers) -> Headers | None:
        """Called once the upgrade request is valid, before the 101 is sent.

        ``headers`` are the 101's headers; edit the list in place or return a new one
        (``None`` keeps ``headers``). To refuse the connection raise
        :class:`rfc6455.errors.HandshakeError` with the HTTP status and a reason, e.g.
        ``HandshakeError("origin not allowed", status=403)``.
        """
        return headers

    def on_open(self, environ: MutableMapping[str, Any]) -> HookResult:
        """The 101 was sent and the connection is open."""
        return None

    def on_message(
        self, environ: MutableMapping[str, Any], message: str | bytes
    ) -> MessageReply | Awaitable[MessageReply]:
        """A whole message arrived: ``str`` for text, ``bytes`` for binary.

        A return value other than ``None`` is sent back (``str`` as text, bytes-like as
        binary); a coroutine is awaited first. The default ignores the message.
        """
        return None

    def on_ping(self, environ: MutableMapping[str, Any], payload: bytes) -> HookResult:
        """A Ping arrived; the Pong answer (RFC 6455 §5.5.3) is already queued."""
        return None

    def on_pong(self, environ: MutableMapping[str, Any], payload: bytes) -> HookResult:
        """A Pong arrived (an answer to our Ping, or an unsolicited heartbeat)."""
        return None

    def on_close(self, environ: MutableMapping[str, Any]) -> HookResult:
        """The connection is over; ``WS.websocket(environ).close_code`` says how."""
        return None

    # -- acting on a connection from anywhere on the event loop ------------------------------

    @staticmethod
    def websocket(environ: Mapping[str, Any]) -> LiveWebSocket:
        """The live connection of the request ``environ`` (``KeyError`` if there is none)."""
        live: LiveWebSocket = environ[WEBSOCKET_KEY]
        return live

    def send(self, environ: Mapping[str, Any], data: str | bytes) -> None:
        """Send a message on ``environ``'s connection: ``str`` as text, ``bytes`` as binary."""
        self.websocket(environ).send(data)

    def ping(self, environ: Mapping[str, Any], payload: bytes = b"") -> None:
        """Send a Ping (at most 125 bytes, RFC 6455 §5.5) on ``environ``'s connection."""
        self.websocket(environ).ping(payload)

    def close(
        self,
        environ: Mapping[str, Any],
        msg: str | None = None,
        code: int = CloseCode.NORMAL,
    ) -> None:
        """Start the closing handshake of ``environ``'s connection; ``msg`` is the reason.

        Idempotent: closing a connection that is already closing does nothing.
        """
        self.websocket(environ).close(code, msg or "")
