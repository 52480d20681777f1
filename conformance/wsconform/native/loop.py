"""The event loops the engine plays its cases on: asyncio's own for paced writes, uvloop's
for the rest.

Invariants:
- A case whose script paces its writes (chopped or ``sync`` frames leave one TCP write per
  loop turn, ``outbox``) and whose verdict hangs on events plays on asyncio's own loop, its
  queued writes at least ``CHOP_GAP`` apart: one turn of the fuzzer's reactor. Testees
  that race against that pace (websockets and broken_echo's ``no-echo-before-fail`` in 3.4,
  4.1.5, 4.2.5: is the echo out before the bad frame is read?) read chops that leave faster
  together, and then get NON-STRICT where Autobahn mostly gives OK (reports/agreement.md).
- Every other case plays on uvloop where it is installed: a round trip costs the engine
  less CPU there (9.7/9.8 are 12,000 of them), and the testee shares the
  machine's CPUs with the engine. So do 9.5/9.6, chopped as they are: their verdict is the
  echo within a time limit, which no race of the testee's reads decides, and their 64,512
  chops leave about twice as fast (1.0 s instead of 1.4 s here). What the engine sends and
  its timers are the same on both loops.
- ``WSCONFORM_EVENT_LOOP=asyncio`` plays every case on asyncio's loop, ``=uvloop`` every case
  on uvloop, paced ones too (ImportError without it).
- The loops share one thread and take turns (an ``asyncio.Runner`` each): a case plays on one
  loop from its connection to its end, and no loop runs while the other does.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable

from wsconform.native import casedef
from wsconform.native.verdict import EchoCheck

__all__ = ["CHOP_GAP", "ENV", "Lanes", "chop_gap", "name", "paced"]

ENV = "WSCONFORM_EVENT_LOOP"

#: Seconds from one queued TCP write of a case whose verdict their pace can change to the
#: next (``outbox``): about one turn of the fuzzer's reactor. At the receiving end on this
#: machine (3.4, 4.1.5, 4.2.5 against a testee that only reads, load 1-3, 2026-11-28),
#: Autobahn's octet-wise chops arrived 68-129 µs apart (medians of six runs); at one asyncio
#: turn each, ours arrived 25-77 µs apart, and websockets and broken_echo's
#: ``no-echo-before-fail`` then answered NON-STRICT where Autobahn mostly gave OK. With this
#: gap and the two loop turns after it, they leave 90-140 µs apart. The gap is spent
#: turning the loop, never sleeping, as the reactor does: asleep, the engine left the testee
#: CPU that Autobahn's busy reactor does not. At load 4 (websockets and no-echo-before-fail,
#: 3.3/3.4/4.1.5/4.2.5, four runs each), asleep it got NON-STRICT 10 times in 32 where
#: Autobahn got it 30 times; turning the loop, 25 times where Autobahn got it 27.
CHOP_GAP = 80e-6


def _wanted() -> str:
    return os.environ.get(ENV, "").strip().lower()


def _fast_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory of the unpaced cases: uvloop's unless asyncio's is asked for or
    uvloop is missing (and not insisted on); None means asyncio's."""
    wanted = _wanted()
    if wanted == "asyncio":
        return None
    if wanted != "uvloop" and importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    return uvloop.new_event_loop


def _paced_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory of the paced cases: asyncio's, unless uvloop is insisted on."""
    return _fast_factory() if _wanted() == "uvloop" else None


def name() -> str:
    """The loops the cases play on, as the reports name them."""
    fast = "uvloop" if _fast_factory() is not None else "asyncio"
    paced = "uvloop" if _paced_factory() is not None else "asyncio"
    return fast if fast == paced else f"{fast}; paced writes on {paced}"


def paced(steps: tuple[casedef.Step, ...]) -> bool:
    """Does a script pace any of its writes (a chopped or ``sync`` frame, now or later)?"""
    for step in steps:
        if isinstance(step, casedef.SendFrame) and (step.chop or step.sync):
            return True
        if isinstance(step, casedef.ContinueLater) and paced(step.steps):
            return True
    return False


def _pace_matters(spec: casedef.CaseSpec) -> bool:
    """Can the pace of the case's writes change its verdict (not so for a 9.x echo check)?"""
    return paced(spec.script) and not isinstance(spec.rule, EchoCheck)


def chop_gap(spec: casedef.CaseSpec) -> float:
    """The least time between ``spec``'s queued writes (0: one loop turn, as fast as it goes)."""
    return CHOP_GAP if _pace_matters(spec) else 0.0


class Lanes:
    """The runners cases play on: one for paced scripts whose pace can change the verdict,
    one for the rest (the same one when both are asyncio's, or both uvloop's)."""

    def __init__(self) -> None:
        self._paced = asyncio.Runner(loop_factory=_paced_factory())
        same = _fast_factory() is _paced_factory()
        self._fast = self._paced if same else asyncio.Runner(loop_factory=_fast_factory())

    def runner(self, spec: casedef.CaseSpec) -> asyncio.Runner:
        """Where ``spec`` plays."""
        return self._paced if _pace_matters(spec) else self._fast

    def close(self) -> None:
        """Close both loops (``contextlib.closing`` makes a ``with`` of it)."""
        self._fast.close()
        self._paced.close()
