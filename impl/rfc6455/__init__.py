"""rfc6455: a strict reference implementation of RFC 6455 (WebSocket) and RFC 7692
(permessage-deflate), shaped after the ``pulsar.apps.ws`` API.

Layers, bottom up: ``frame`` (codec), ``utf8``, ``extensions`` (negotiation and
permessage-deflate), ``handshake``, ``limits``, ``connection`` (sans-I/O state machine),
``handler`` (``WS`` hooks), ``wsgi`` (environ and responses as data), ``shell`` (the one
asyncio shell) with its two roles ``session`` (server) and ``client``, ``middleware``
(``WebSocket`` WSGI middleware), ``http11`` and ``server`` (asyncio on h11). Nothing below
``handler`` does I/O.

A server in a few lines::

    from rfc6455 import WS, WebSocket, WsgiHandler, run

    class Echo(WS):
        def on_message(self, environ, message):
            return message          # str goes back as text, bytes as binary

    run(WsgiHandler(middleware=[WebSocket(handle=Echo())]), port=8000)
"""

from .client import ClientConnection, connect
from .connection import Connection, State
from .errors import (
    CloseCode,
    ConnectionClosed,
    HandshakeError,
    InvalidPayload,
    InvalidState,
    MessageTooBig,
    ProtocolError,
    WebSocketError,
)
from .events import BinaryMessage, Closed, CloseReceived, Ping, Pong, TextMessage
from .extensions import ClientPerMessageDeflate, ServerPerMessageDeflate
from .frame import Frame, FrameParser, Opcode, Role, mask, unmask
from .handler import WS
from .middleware import WebSocket
from .server import Server, WsgiHandler, run, serve
from .version import __version__ as __version__

__all__ = [
    "WS",
    "BinaryMessage",
    "ClientConnection",
    "ClientPerMessageDeflate",
    "CloseCode",
    "CloseReceived",
    "Closed",
    "Connection",
    "ConnectionClosed",
    "Frame",
    "FrameParser",
    "HandshakeError",
    "InvalidPayload",
    "InvalidState",
    "MessageTooBig",
    "Opcode",
    "Ping",
    "Pong",
    "ProtocolError",
    "Role",
    "Server",
    "ServerPerMessageDeflate",
    "State",
    "TextMessage",
    "WebSocket",
    "WebSocketError",
    "WsgiHandler",
    "connect",
    "mask",
    "run",
    "serve",
    "unmask",
]
