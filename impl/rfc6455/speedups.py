"""Chooses, once at import, between the compiled ``_speedups`` module and pure Python.

Invariants:
- Importing this module never fails: when the extension was not built (no compiler at
  install time) or ``RFC6455_NO_SPEEDUPS=1`` is set, ``compiled`` is ``None`` and ``choose``
  hands back the pure-Python function it is given.
- A compiled function and its pure-Python twin give the same result for every input (RFC
  6455 §5.3 masking, §5.2 frame headers), with one convention: where the Python header
  parser raises the error the connection fails with, the compiled one returns ``False``
  (the batch parser ``parse_frames`` stops there and says so) and the parser asks the
  Python header parser for the error. The Hypothesis differential tests in
  ``fuzz/test_speedups_properties.py`` hold them to it, and CI runs the whole test suite
  once per path.
- This module imports nothing from ``rfc6455``: the codec (``rfc6455.frame``) owns the
  pure-Python functions and asks this module which one to bind, so there is no import cycle.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TypeVar

__all__ = ["ACCELERATED", "DISABLE_ENV", "choose", "compiled"]

#: Set to ``1`` to force the pure-Python codec (CI runs the tests once this way).
DISABLE_ENV = "RFC6455_NO_SPEEDUPS"

F = TypeVar("F")


def _load_compiled() -> ModuleType | None:
    """The compiled module, unless the environment disables it or it was not built."""
    if os.environ.get(DISABLE_ENV, "").strip() not in ("", "0"):
        return None
    try:
        from . import _speedups  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    module: ModuleType = _speedups
    return module


#: The compiled module in use, or ``None`` when the pure-Python codec is.
compiled: ModuleType | None = _load_compiled()
#: Whether the compiled accelerator is in use.
ACCELERATED: bool = compiled is not None


def choose(name: str, fallback: F) -> F:
    """The compiled function ``name`` when the accelerator is in use, else ``fallback``.

    ``fallback`` is the pure-Python reference; the compiled twin must accept the same
    positional arguments and return the same values.
    """
    if compiled is None:
        return fallback
    function: F = getattr(compiled, name)
    return function
