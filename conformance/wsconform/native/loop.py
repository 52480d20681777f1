"""The event loop the engine runs on: uvloop's where it is installed, else asyncio's own.

Invariants:
- The loop changes no verdict: what the engine sends, its timers and where it splits what it
  reads (``connection.READ_SIZE``) are the same on both loops; only the engine's CPU per
  message differs (uvloop's transports and selector are C, asyncio's are Python).
- ``WSCONFORM_EVENT_LOOP=asyncio`` forces asyncio's loop (to compare the two, or where uvloop
  misbehaves); ``uvloop`` requires it.
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
    """uvloop's loop factory unless ``WSCONFORM_EVENT_LOOP`` says asyncio or it is missing."""
    wanted = os.environ.get(ENV, "").strip().lower()
    if wanted == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if wanted == "uvloop":
            raise
        return None
    return uvloop.new_event_loop


def name() -> str:
    """The loop ``run`` would use, as the reports name it (found, not imported: the run's
    start stays short)."""
    wanted = os.environ.get(ENV, "").strip().lower()
    if wanted == "asyncio" or importlib.util.find_spec("uvloop") is None:
        return "asyncio"
    return "uvloop"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=factory()) as runner:
        return runner.run(coro)
