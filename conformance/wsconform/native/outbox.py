"""How the fuzzer's bytes leave: as its Twisted reactor writes them, not as asyncio would.

Invariants:
- While a read is handled (between ``hold`` and ``release``), writes are held and then leave
  as one TCP write; ``discard`` drops them unsent (the fuzzer's reader raised).
- Chopped and ``sync`` writes, and any write made while some are queued, go one per reactor
  turn. Such a turn is modelled on the fuzzer's: its timer puts the next queued write in the
  transport's buffer, then the testee's bytes that arrived meanwhile are read (what that
  read writes goes in behind), then the buffer leaves as one TCP write. The first queued
  write goes in the buffer at once: made while a read is handled, it leaves with the second.
- ``gap`` (``loop.chop_gap``) is the least time from one such TCP write to the next. The
  fuzzer asks its reactor for a 10 µs pause, but a turn of its Python 2 reactor takes 50 µs
  of CPU and 70-170 µs here, and that is the pace a testee's reads race against. The gap is
  spent turning the loop (reads are handled as they come, their writes wait for the next
  flush as the reactor's do) before the timer's part of the turn. With no gap a turn is one
  loop turn, the timer's part and the write together (the pace 9.5/9.6 are measured at).
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
        self._sending = False  # queued writes are under way
        self._held: list[bytes] | None = None
        self._buffered: list[bytes] = []  # in the reactor's buffer, for its next flush

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
        """The read is handled: what it wrote leaves as one write (or at the queue's next)."""
        held, self._held = self._held, None
        if held and self._sending:
            self._buffered += held
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
            self._buffer_next()
            self._flush_and_go_on()

    def _buffer_next(self) -> None:
        """The timer's part of a turn: the next queued write goes in the buffer."""
        chunk = self._queue.popleft()
        if not self._closed():
            self._buffered.append(chunk)

    def _flush_and_go_on(self) -> None:
        """The buffer leaves as one write; the next turn is due ``gap`` later."""
        data, self._buffered = b"".join(self._buffered), []
        if data:
            self.write(data)
        # Counted from the end of this write, as the reactor arms its timer after it.
        self._next_at = time.perf_counter() + self._gap
        self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        if not self._queue:
            self._sending = False
            if self._buffered:  # what reads wrote since the last queued write
                self.write(b"".join(self._buffered))
                self._buffered = []
            return
        if not self._gap:
            self._buffer_next()
            self._flush_and_go_on()
            return
        if time.perf_counter() < self._next_at:
            # The reactor's turn is not over: the loop turns meanwhile, reading what comes
            # (and, like the reactor, never sleeping: a sleeper waits a scheduler slice to
            # run again on a busy machine, and the pace a testee races against is gone).
            self._loop.call_soon(self._turn)
            return
        self._buffer_next()
        # What the testee sent meanwhile is read first. (A testee that failed the connection
        # and closed TCP answers our write with a reset, and asyncio then drops what it had
        # received but not read: its Close too.)
        self._loop.call_soon(self._after_reads)

    def _after_reads(self) -> None:
        """A hop of one loop turn: asyncio's loop runs the callbacks queued before its select
        ahead of the reads that select found, so only the next turn comes after them."""
        self._loop.call_soon(self._flush_and_go_on)
