"""What a ``Connection`` reports to the code that drives it: one frozen dataclass per event.

Invariant: ``TextMessage`` and ``BinaryMessage`` keep their one field, ``data``, in a slot
and do nothing else when made (no ``__post_init__``, no other field): the compiled parser
(``rfc6455._speedups.parse_messages``) makes them without calling ``__init__``, filling
that slot, and its instances must equal those ``__init__`` makes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BinaryMessage", "CloseReceived", "Closed", "Event", "Ping", "Pong", "TextMessage"]


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A complete, valid UTF-8 text message (fragments already reassembled)."""

    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    """A complete binary message (fragments already reassembled)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """The peer sent a Ping; the answering Pong is already queued."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """The peer sent a Pong."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer sent a Close frame (code 1005 when it carried none); our answer is queued."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is over; nothing is delivered after this.

    ``code`` is the peer's close code (1005 if it sent none), the code we failed the
    connection with after a protocol violation, or 1006 when TCP ended without a Close.
    """

    code: int
    reason: str


Event = TextMessage | BinaryMessage | Ping | Pong | CloseReceived | Closed
