"""``Ending``: why a connection ended abnormally, noted as it happens and logged as one line.

Invariants:
- The I/O shells (``session`` for the server, ``client``) create one only when a connection
  starts to end other than by a completed closing handshake: a protocol error, the peer's
  EOF or reset, a timeout, a limit, a hook's exception, a shutdown. Each later reason is
  appended ("...; then ..."), so a connection that ends abnormally logs exactly one line,
  once it is over, with every reason in order.
- The line names the connection (peer address or URL), the state the connection was in when
  the first reason arose, the reasons, and the close code. Its level is INFO (the peer's
  doing, routine for a server facing the internet) or WARNING (our own code raised); the
  testees (``python -m rfc6455 serve`` / ``client-testee``) log INFO to stderr.
"""

from __future__ import annotations

import logging

from .connection import State
from .errors import ProtocolError

__all__ = ["Ending", "failure_level", "note", "protocol_failure"]


class Ending:
    """The reasons one connection ended abnormally, and the state it was in at the first."""

    __slots__ = ("level", "reasons", "state")

    def __init__(self, reason: str, state: State, level: int = logging.INFO) -> None:
        self.reasons = [reason]
        self.state = state
        self.level = level

    def add(self, reason: str, level: int = logging.INFO) -> None:
        self.reasons.append(reason)
        self.level = max(self.level, level)

    def log(self, logger: logging.Logger, connection: str, close_code: int | None) -> None:
        """The one line for this connection."""
        logger.log(
            self.level,
            "WebSocket %s ended abnormally in state %s: %s (close code %s)",
            connection,
            self.state.value,
            "; then ".join(self.reasons),
            close_code,
        )


def note(ending: Ending | None, reason: str, state: State, level: int = logging.INFO) -> Ending:
    """``ending`` with ``reason`` added, or a new one starting with it."""
    if ending is None:
        return Ending(reason, state, level)
    ending.add(reason, level)
    return ending


def protocol_failure(failure: Exception, close_code: int | None) -> str:
    """The reason for a connection that failed on the peer's protocol error, or on an
    internal error of ours (``Connection.failure``)."""
    detail = failure.reason if isinstance(failure, ProtocolError) else str(failure)
    return f"{type(failure).__name__}: {detail}; sent Close {close_code}"


def failure_level(failure: Exception) -> int:
    """INFO for the peer's protocol error (routine), WARNING for our own code's."""
    return logging.INFO if isinstance(failure, ProtocolError) else logging.WARNING
