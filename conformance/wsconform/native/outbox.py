"""How the fuzzer's bytes leave: as its Twisted reactor writes them, not as asyncio would.

Invariants:
- While a read is handled (between ``hold`` and ``release``), writes are held and then leave
  as one TCP write; ``discard`` drops them unsent (the fuzzer's reader raised).
- Chopped and ``sync`` writes, and any write made while some are queued, go one per loop
  turn, and no sooner than ``gap`` seconds after the queued write before them. The fuzzer
  asks its reactor for a 10 µs pause, but one turn of its Python 2 reactor takes 80-170 µs
  here, and that is the pace a testee's reads race against (``loop.chop_gap``). The gap is
  kept by waiting in the turn itself, as the reactor is busy in its own: what the testee
  sends meanwhile is read at the next turn, once per queued write. What a read held while
  the queue is under way leaves together with the next queued write (the reactor runs its
  due timers before it flushes), or alone once the queue is empty.
- Nothing is written before the transport is attached or once it is closing; a queued write
  whose turn comes after the connection is closed is skipped. Every byte written is passed
  to ``wrote`` (the wire log), nothing else.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Outbox"]

# Linux lets a sleeping thread's timer fire up to 50 µs late (its default timer slack): the
# last 50 µs of a gap are waited out awake.
_SLACK = 50e-6


class Outbox:
    """The write side of one fuzzer-side connection: holding, queueing and pacing writes."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        wrote: Callable[[bytes], None],
        closed: Callable[[], bool],
        gap: float = 0.0,
    ) -> None:
        self.transport: asyncio.Transport | None = None
        self._gap = gap
        self._next_at = 0.0  # perf_counter time before which no queued write leaves
        self._loop = loop
        self._wrote = wrote
        self._closed = closed
        self._queue: deque[bytes] = deque()
        self._sending = False
        self._held: list[bytes] | None = None
        self._carried = b""  # held writes waiting for the next queued write

    @property
    def holding(self) -> bool:
        """Is a read being handled (so that writes are held)?"""
        return self._held is not None

    def hold(self) -> None:
        """A read begins: hold what is written until ``release``."""
        self._held = []

    def discard(self) -> None:
        """The read ended in the fuzzer's reader raising: what it wrote is never sent."""
        self._held = None

    def release(self) -> None:
        """The read is handled: what it wrote leaves as one write (or with the next queued)."""
        held, self._held = self._held, None
        if held and self._sending:
            self._carried += b"".join(held)
        elif held:
            self.write(b"".join(held))

    def write(self, data: bytes) -> None:
        """One TCP write now, or held when a read is being handled."""
        if self._held is not None:
            self._held.append(data)
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self._wrote(data)

    def drop(self, *, abort: bool) -> None:
        """Close TCP: at once (``abort``), or once what asyncio buffers is written."""
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def send(self, data: bytes, sync: bool, chop: int | None) -> None:
        """Write ``data`` now, or queue it (``chop``-byte pieces, ``sync``, or behind others)."""
        if chop:
            self._queue.extend(data[i : i + chop] for i in range(0, len(data), chop))
        elif sync or self._queue:
            self._queue.append(data)
        else:
            self.write(data)
            return
        if not self._sending:
            self._sending = True
            self._send_next()

    def _send_next(self) -> None:
        carried, self._carried = self._carried, b""
        if not self._queue:
            self._sending = False
            if carried:
                self.write(carried)
            return
        chunk = self._queue.popleft()
        if not self._closed():
            if self._gap:
                self._wait_for_turn()
            self.write(carried + chunk)
            # Counted from the end of this write, as the reactor arms its timer after it.
            self._next_at = time.perf_counter() + self._gap
        self._loop.call_soon(self._send_next)

    def _wait_for_turn(self) -> None:
        """Wait out what is left of ``gap`` since the last queued write (the reactor's turn
        is busy too: neither reads nor timers run meanwhile)."""
        left = self._next_at - time.perf_counter()
        if left > _SLACK:
            time.sleep(left - _SLACK)  # the CPU is the testee's meanwhile
        while time.perf_counter() < self._next_at:  # the rest, which a sleep would overshoot
            pass
