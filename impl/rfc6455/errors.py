"""Every error rfc6455 raises, and the one place that maps them to close codes.

The tree::

    WebSocketError
    ├── ProtocolError            the peer broke RFC 6455/7692; carries the close code we send
    │   ├── InvalidPayload       1007: text that is not UTF-8, a close reason that is not UTF-8
    │   ├── MessageTooBig        1009: a frame or message over the configured limit
    │   └── ExtensionError       1002 (negotiated extension data is malformed, e.g. bad deflate)
    ├── HandshakeError           the opening handshake failed; carries an HTTP status and reason
    │   └── VersionMismatch      426 with ``Sec-WebSocket-Version: 13``
    ├── InvalidState             *we* misused the connection (send after close, ...)
    └── ConnectionClosed         the connection is closed; carries the close code and reason

Remote errors (the peer's fault) carry the close code to answer with; local errors do not.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """Close status codes, RFC 6455 §7.4.1."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never sent on the wire
    ABNORMAL = 1006  # never sent on the wire
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never sent on the wire


# RFC 6455 §7.4.1/§7.4.2 and the IANA registry: codes an endpoint may put in a Close frame.
# 1005, 1006 and 1015 are reserved for reporting and must never appear on the wire.
SENDABLE_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a Close frame (RFC 6455 §7.4)."""
    # RFC 6455 §7.4.2: 3000-3999 are registered with IANA, 4000-4999 are private use.
    return code in SENDABLE_CLOSE_CODES or 3000 <= code <= 4999


class WebSocketError(Exception):
    """Base of every error this package raises."""


class ProtocolError(WebSocketError):
    """The peer violated the protocol: the connection must fail with ``close_code``."""

    close_code: int = CloseCode.PROTOCOL_ERROR

    def __init__(self, reason: str, close_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if close_code is not None:
            self.close_code = close_code


class InvalidPayload(ProtocolError):
    """Text or a close reason that is not valid UTF-8 (RFC 6455 §8.1)."""

    close_code = CloseCode.INVALID_PAYLOAD


class MessageTooBig(ProtocolError):
    """A frame or message larger than the configured maximum."""

    close_code = CloseCode.MESSAGE_TOO_BIG


class ExtensionError(ProtocolError):
    """Data of a negotiated extension is malformed (for example a corrupt deflate stream)."""

    close_code = CloseCode.PROTOCOL_ERROR


class HandshakeError(WebSocketError):
    """The opening handshake failed; ``status`` is the HTTP status to answer with."""

    status: int = 400

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        self.headers: list[tuple[str, str]] = list(headers or [])


class VersionMismatch(HandshakeError):
    """Sec-WebSocket-Version is not 13: 426 Upgrade Required (RFC 6455 §4.2.2)."""

    status = 426

    def __init__(self, reason: str) -> None:
        super().__init__(reason, headers=[("Sec-WebSocket-Version", "13")])


class InvalidState(WebSocketError):
    """This side used the connection in a way its state does not allow."""


class ConnectionClosed(WebSocketError):
    """The connection is closed; ``code`` and ``reason`` say how."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


def close_code_for(exc: BaseException) -> int:
    """The close code to send when ``exc`` ends a connection.

    The single mapping from exceptions to close codes: protocol errors carry their own,
    anything else is an internal error (1011) whose details are not sent to the peer.
    """
    if isinstance(exc, ProtocolError):
        return exc.close_code
    if isinstance(exc, ConnectionClosed):
        return exc.code
    return CloseCode.INTERNAL_ERROR
