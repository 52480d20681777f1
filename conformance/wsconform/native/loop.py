"""The event loop the engine runs on: uvloop's where installed, else asyncio's own.

Invariants:
- uvloop is the default: a round trip costs the engine about a third less CPU than on
  asyncio's loop (9.7/9.8 are 12,000 of them), and the testee shares the machine's CPUs
  with the engine. ``WSCONFORM_EVENT_LOOP=asyncio`` runs on asyncio's own loop;
  ``=uvloop`` insists on uvloop (ImportError without it).
- Everything the cases see is the same on both loops: what the engine sends, its timers, the
  pace of chopped writes (``outbox.CHOP_GAP``: uvloop's turns are faster than asyncio's, and
  a testee that races its reads must see chops as far apart as on asyncio's loop, where the
  agreement suite measured them), and where it splits what it reads once deflate is agreed
  (``connection.READ_SIZE``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["ENV", "factory", "name", "run"]

ENV = "WSCONFORM_EVENT_LOOP"

T = TypeVar("T")


def factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory unless asyncio's loop is asked for (or uvloop is missing and
    not insisted on); None means asyncio's."""
    if name() != "uvloop":
        return None
    import uvloop

    return uvloop.new_event_loop


def _wanted() -> str:
    return os.environ.get(ENV, "").strip().lower()


def name() -> str:
    """The loop ``run`` uses, as the reports name it."""
    wanted = _wanted()
    if wanted in ("asyncio", "uvloop"):
        return wanted
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=factory()) as runner:
        return runner.run(coro)
