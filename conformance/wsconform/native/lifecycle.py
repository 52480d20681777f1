"""A fuzzer-side connection's life: its states, its protocol timers and the flags it leaves.

Invariants:
- States: CONNECTING -> OPEN -> CLOSING -> CLOSED, and CONNECTING/OPEN -> CLOSED on a drop;
  the connection makes every transition, this module only names them.
- ``CloseState`` holds what the fuzzer's verdicts and reports read, nothing else.
- A protocol timer has a name and is logged when armed; the last one armed under each name
  is cancelled by ``disarm`` or when TCP is gone (``cancel_all``), and every action checks
  the state itself (one re-armed under its name may still fire, and then does nothing).
- Every timer of a case waits at least its delay on the monotonic clock (``Deadline``), the
  clock of the wire log: uvloop reads its own clock once per loop turn, in whole
  milliseconds, so a timer armed late in a turn would fire up to that turn early.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from wsconform.native.record import WireLog

__all__ = ["CloseState", "Deadline", "State", "Timeouts", "Timers"]


class State(enum.Enum):
    """Where the connection is in its life."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The fuzzer's protocol timers, in seconds."""

    open_handshake: float = 5.0
    close_handshake: float = 1.0
    server_drop: float = 1.0


@dataclass
class CloseState:
    """The fuzzer-side flags its verdicts read, plus what its reports show."""

    was_open: bool = False
    closed_by_me: bool = False
    failed_by_me: bool = False
    dropped_by_me: bool = False
    was_clean: bool = False
    not_clean_reason: str | None = None
    server_drop_timeout: bool = False
    open_handshake_timeout: bool = False
    close_handshake_timeout: bool = False
    local_code: int | None = None
    local_reason: bytes | None = None
    remote_code: int | None = None
    remote_reason: str | None = None
    handshake_failure: str | None = None
    tx_frames: Counter[int] = field(default_factory=Counter)
    rx_frames: Counter[int] = field(default_factory=Counter)


class Deadline:
    """Runs ``action`` once ``delay`` seconds have passed on the monotonic clock, never sooner
    (one that the loop's clock fires early waits out the rest), unless cancelled first."""

    __slots__ = ("_action", "_due", "_handle", "_loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, delay: float, action: Callable[[], None]
    ) -> None:
        self._loop, self._action = loop, action
        self._due = time.monotonic() + delay
        self._handle = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        left = self._due - time.monotonic()
        if left > 0:
            self._handle = self._loop.call_later(left, self._fire)
            return
        self._action()

    def cancel(self) -> None:
        self._handle.cancel()


class Timers:
    """The connection's named protocol timers (open handshake, close handshake, server drop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, log: WireLog) -> None:
        self._loop = loop
        self._log = log
        self._armed: dict[str, Deadline] = {}

    def arm(self, name: str, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` seconds unless ``disarm(name)`` comes first."""
        self._log.timer(name, delay)
        self._armed[name] = Deadline(self._loop, delay, action)

    def disarm(self, name: str) -> None:
        """Cancel the timer ``name`` if it is armed."""
        timer = self._armed.pop(name, None)
        if timer is not None:
            timer.cancel()

    def cancel_all(self) -> None:
        """TCP is gone: no protocol timer fires after this."""
        for timer in self._armed.values():
            timer.cancel()
        self._armed.clear()
