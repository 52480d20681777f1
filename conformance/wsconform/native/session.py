"""Playing one case on one connection: run its script, record events, close when it is done.

Invariants:
- The script runs when the opening handshake completes (never before); timers armed by it
  act only while the connection is up, as the fuzzer's do.
- Each event is recorded, then, if what was received equals *every* declared event list (the
  fuzzer's own test), the fuzzer starts the closing handshake with the first allowed code,
  unless the case expects the testee to close or suppresses it.
- A 9.x case (an ``EchoCheck`` rule) records no events: each message's type and length go
  to ``echoes`` and to an ``EchoTally``, which says whether to send the script's frames again
  (round trips) or to start the closing handshake (1000). Its wire log is quiet from the
  open until then, as the fuzzer's is.
- A ``ContinueLater`` with a mark acts only while the connection is open, and records its
  ``Timeout`` event without the closing check above (the fuzzer appends it directly).
- A case that the fuzzer itself would wait on for ever (the testee closed, then kept TCP
  open, and the case armed no timer) is ended by silence: ``GUARD`` seconds more than the
  case's longest timer (so a 9.x case's own limit, up to 1000 s, always acts first), after
  which we drop TCP and say so in the wire log. That is the one place the engine does not
  wait like Autobahn. Progress only moves the guard's deadline (a timestamp); its one timer,
  when it fires early, re-arms itself for the rest (a 9.7/9.8 case echoes 1,000 messages,
  and a timer armed and cancelled per message was a third of the session's work on each).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wsconform.native import casedef, deflate_echo
from wsconform.native.connection import Connection, State
from wsconform.native.lifecycle import Deadline
from wsconform.native.record import Event, Message, Pong, Timeout, WireLog
from wsconform.native.verdict import EchoCheck, EchoTally

__all__ = ["GUARD", "Session", "longest_timer"]

GUARD = 60.0


def longest_timer(steps: tuple[casedef.Step, ...]) -> float:
    """The longest wait a script can arm, counting waits nested in continuations."""
    longest = 0.0
    for step in steps:
        match step:
            case casedef.KillAfter() | casedef.CloseAfter() | casedef.EchoStream():
                longest = max(longest, step.seconds)
            case casedef.ContinueLater():
                longest = max(longest, step.seconds + longest_timer(step.steps))
    return longest


@dataclass
class _Clock:
    started: float = 0.0
    ended: float = 0.0


class Session:
    """The listener of one ``Connection``: the case's side of the exchange."""

    def __init__(self, spec: casedef.CaseSpec, log: WireLog) -> None:
        self.spec = spec
        self.received: list[Event] = []
        self.echoes: list[tuple[bool, int]] = []
        self.clock = _Clock()
        self._tally = EchoTally(spec.rule) if isinstance(spec.rule, EchoCheck) else None
        self.guard_delay = GUARD + longest_timer(spec.script)
        self._log = log
        self._connection: Connection | None = None
        self._guard: asyncio.TimerHandle | None = None
        self._progress = 0.0  # loop time of the last progress: the guard counts from here
        self._stream: deflate_echo.EchoStream | None = None
        # What a 9.x round trip sends again once its echo is back.
        self._resend = tuple(s for s in spec.script if isinstance(s, casedef.SendFrame))
        for step in spec.script:
            if isinstance(step, casedef.EchoStream):
                deflate_echo.prepare(step)  # fetch the test data before connecting

    def attach(self, connection: Connection) -> None:
        """The connection this session plays on (set before it connects)."""
        self._connection = connection

    @property
    def connection(self) -> Connection:
        assert self._connection is not None, "attach() first"
        return self._connection

    # ------------------------------------------------------------------ Listener

    def opened(self) -> None:
        self.clock.started = time.monotonic()
        loop = asyncio.get_running_loop()
        self._progress = loop.time()
        self._guard = loop.call_later(self.guard_delay, self._stuck)
        self._log.quiet = self._tally is not None
        self._run(self.spec.script)

    def message(self, payload: bytes, binary: bool) -> None:
        if self._stream is not None:  # the exchange checks its echoes; they are not events
            self._progressed()
            self._stream.message(payload, binary)
            return
        if self._tally is None:
            self._record(Message(payload, binary))
            return
        self.echoes.append((binary, len(payload)))
        self._progressed()
        if self._tally.add(binary, len(payload)):
            self._run(self._resend)
        else:
            self._log.quiet = False
            self.connection.send_close(casedef.NORMAL)

    def pong(self, payload: bytes) -> None:
        self._record(Pong(payload))

    @property
    def own_verdict(self) -> tuple[str, str] | None:
        """(behavior, result) settled by the case itself (12.x/13.x), else None."""
        return self._stream.verdict() if self._stream is not None else None

    def report_extra(self) -> dict[str, Any]:
        """What the case adds to its report (12.x/13.x: test data origin, agreed deflate)."""
        return self._stream.report() if self._stream is not None else {}

    def lost(self) -> None:
        self.clock.ended = time.monotonic()
        if self._guard is not None:
            self._guard.cancel()

    # ------------------------------------------------------------------ the script

    def _record(self, event: Event) -> None:
        self.received.append(event)
        self._progressed()
        # The fuzzer closes only when the events equal every declared list at once.
        if all(list(events) == self.received for events in self.spec.expected.values()):
            close = self.spec.close
            if close.closed_by_fuzzer and not self.spec.suppress_close:
                self.connection.send_close(close.codes[0])

    def _run(self, steps: tuple[casedef.Step, ...]) -> None:
        connection = self.connection
        for step in steps:
            match step:
                case casedef.SendFrame():
                    connection.send_frame(
                        step.opcode,
                        step.payload,
                        fin=step.fin,
                        rsv=step.rsv,
                        length=step.length,
                        chop=step.chop,
                        sync=step.sync,
                    )
                case casedef.SendClose():
                    connection.send_close(step.code, step.reason)
                case casedef.SendCloseFrame():
                    connection.send_close_frame(step.code, step.reason)
                case casedef.SendMessage():
                    connection.send_message(step.payload, step.binary, step.fragment)
                case casedef.BeginFrame():
                    connection.begin_frame(step.opcode, step.length)
                case casedef.FrameData():
                    connection.frame_data(step.payload)
                case casedef.KillAfter():
                    self._later("kill", step.seconds, connection.fail)
                case casedef.CloseAfter():
                    self._later("close", step.seconds, connection.send_close)
                case casedef.ContinueLater():
                    self._later("continue", step.seconds, functools.partial(self._continue, step))
                case casedef.EchoStream():
                    self._stream = deflate_echo.EchoStream(step, connection, self._later)
                    self._stream.start()

    def _continue(self, step: casedef.ContinueLater) -> None:
        if step.mark is not None:
            if self.connection.state is not State.OPEN:
                return
            self.received.append(Timeout(step.mark))
        self._run(step.steps)

    def _later(self, name: str, seconds: float, action: Callable[[], None]) -> None:
        self._log.timer(name, seconds)

        def fire() -> None:
            if self.connection.state is not State.CLOSED:
                self._log.fired(name)
                self._progressed()
                action()

        Deadline(asyncio.get_running_loop(), seconds, fire)

    def _progressed(self) -> None:
        self._progress = asyncio.get_running_loop().time()

    def _stuck(self) -> None:
        loop = asyncio.get_running_loop()
        left = self._progress + self.guard_delay - loop.time()
        if left > 0:  # progress since it was armed: wait out the rest
            self._guard = loop.call_later(left, self._stuck)
            return
        if self.connection.state is not State.CLOSED:
            self._log.note(
                f"no progress for {self.guard_delay:.0f} s: the engine drops TCP (guard)"
            )
            self.connection.drop(abort=True)
