"""The event loop the engine runs on: asyncio's own, or uvloop's when asked for.

Invariants:
- asyncio's loop is the default because its pace is the fuzzer's: chopped writes leave one per
  loop turn (``outbox``), and a turn of asyncio's loop (tens of µs) keeps them apart about as
  the fuzzer's reactor does. uvloop's turns take a few µs, so a testee that races its reads
  sees chops together that Autobahn delivers apart: broken_echo's ``no-echo-before-fail``
  got NON-STRICT on 3.4 twice under uvloop, where Autobahn gave OK (on asyncio's loop the
  case races too: NON-STRICT once, OK once; reports/agreement.md, 2026-11-28).
- ``WSCONFORM_EVENT_LOOP=uvloop`` runs on uvloop (ImportError without it): about a fifth less
  engine CPU per round trip, for runs where those races do not matter. Everything else is
  the same on both loops: what the engine sends, its timers, and where it splits what it
  reads once deflate is agreed (``connection.READ_SIZE``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["ENV", "factory", "name", "run"]

ENV = "WSCONFORM_EVENT_LOOP"

T = TypeVar("T")


def factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when ``WSCONFORM_EVENT_LOOP=uvloop``, else None (asyncio's)."""
    if _wanted() != "uvloop":
        return None
    import uvloop

    return uvloop.new_event_loop


def _wanted() -> str:
    return os.environ.get(ENV, "").strip().lower()


def name() -> str:
    """The loop ``run`` uses, as the reports name it."""
    return "uvloop" if _wanted() == "uvloop" else "asyncio"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=factory()) as runner:
        return runner.run(coro)
