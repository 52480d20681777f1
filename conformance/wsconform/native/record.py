"""What a case saw: the events it received and the wire log of everything sent and received.

Invariants:
- Events are the fuzzer's: a complete message (payload, binary or not), a pong, or a case's
  own named timeout (6.4.x record that their wait passed with the connection still open).
  Pings from the testee are answered by the connection and are not events (the fuzzer
  records none).
- The wire log is append-only, in the order things happened, each entry stamped with the
  seconds since the TCP connection was made; frames carry their masking key in hex.
- While ``quiet`` (9.x, until their echo is judged: the fuzzer turns its wire log off for
  them), frames and octets are not logged; timers and notes still are.
- Payloads are shown as the fuzzer's reports show them (``shown``), so the ``received`` and
  ``expected`` lists of the two engines' reports can be compared as text.
"""

from __future__ import annotations

import binascii
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "Message", "Pong", "Timeout", "WireLog", "shown", "shown_event"]

_SHOWN_MAX = 64
_ELLIPSIS = " ..."


@dataclass(frozen=True, slots=True)
class Message:
    """A complete data message from the testee."""

    payload: bytes
    binary: bool


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong from the testee."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Timeout:
    """A case's wait named ``name`` ran out while the connection was still open."""

    name: str


Event = Message | Pong | Timeout


def _hex(data: bytes) -> str:
    if len(data) > _SHOWN_MAX - len(_ELLIPSIS):
        return binascii.hexlify(data[:_SHOWN_MAX]).decode() + _ELLIPSIS
    return binascii.hexlify(data).decode()


def shown(data: bytes) -> str:
    """A payload as the fuzzer's reports show it: UTF-8 text (cut at 64 bytes), else 0x-hex."""
    cut = data[:_SHOWN_MAX] + _ELLIPSIS.encode() if len(data) > _SHOWN_MAX - 4 else data
    try:
        return cut.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + _hex(data)


def shown_event(event: Event) -> list[Any]:
    """An event as a report lists it: ``["message", text, binary]``, ``["pong", text]`` or
    ``["timeout", name]``."""
    if isinstance(event, Message):
        return ["message", shown(event.payload), event.binary]
    if isinstance(event, Timeout):
        return ["timeout", event.name]
    return ["pong", shown(event.payload)]


class WireLog:
    """Every frame sent and received, the handshake, and the timers, with their times."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self.entries: list[dict[str, Any]] = []
        self.quiet = False

    def _add(self, kind: str, **fields: Any) -> None:
        self.entries.append({"t": round(time.monotonic() - self._start, 6), "kind": kind, **fields})

    def frame(
        self,
        direction: str,
        opcode: int,
        payload: bytes,
        *,
        fin: bool,
        rsv: int,
        mask: bytes | None,
        chop: int | None = None,
        sync: bool = False,
    ) -> None:
        """A frame sent (``"tx"``) or received (``"rx"``), with its masking key."""
        if self.quiet:
            return
        fields: dict[str, Any] = {
            "opcode": opcode,
            "fin": fin,
            "rsv": rsv,
            "length": len(payload),
            "payload": shown(payload),
            "mask": mask.hex() if mask is not None else None,
        }
        if direction == "tx":
            fields.update(chop=chop, sync=sync)
        self._add(f"{direction}-frame", **fields)

    def octets(self, direction: str, data: bytes) -> None:
        """Bytes written to or read from TCP (the handshake, and every chop of a chopped write)."""
        if self.quiet:
            return
        self._add(f"{direction}-octets", length=len(data), hex=_hex(data))

    def timer(self, name: str, delay: float) -> None:
        """A case or protocol timer armed."""
        self._add("timer", name=name, delay=delay)

    def fired(self, name: str) -> None:
        """A timer that fired while the connection was still up."""
        self._add("fired", name=name)

    def note(self, text: str) -> None:
        """Something the connection did on its own: failing, dropping TCP, a lost connection."""
        self._add("note", text=text)
