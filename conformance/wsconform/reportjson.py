"""JSON text laid out as the Autobahn fuzzer writes its reports: sorted keys, three spaces.

Why: with ``indent`` set, ``json.dumps`` runs the pure-Python encoder (CPython's compiled
one writes only compact text before 3.14). A native run writes a report between two cases,
while the testee answers the next opening handshake; this writes the same text in about
two thirds of the time.

Invariants:
- ``dumps(value)`` is exactly ``json.dumps(value, sort_keys=True, indent=3,
  separators=(",", ": "))`` for every value: strings are escaped by the json module's own
  compiled ``encode_basestring_ascii``, numbers by ``int.__repr__`` / ``float.__repr__`` as
  json does; a value this layout does not handle itself (a key that is not a ``str``, a
  subclass, a type json refuses) is handed to ``json.dumps`` whole, which writes it or
  raises as it always does. A Hypothesis property (``conformance/tests/test_reportjson.py``)
  holds the two to the same text.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

__all__ = ["dumps"]

_INDENT = "   "
_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
_FLOAT_SPECIALS = {float("inf"): "Infinity", -float("inf"): "-Infinity"}


class _Unhandled(Exception):
    """A value this layout leaves to ``json.dumps``."""


def dumps(value: Any) -> str:
    """``value`` as the fuzzer lays out JSON: keys sorted, three spaces an indent level."""
    try:
        return _format(value, "\n")
    except (_Unhandled, TypeError):
        return json.dumps(value, sort_keys=True, indent=3, separators=(",", ": "))


def _format(value: Any, newline: str) -> str:
    """``value`` whose first line is already placed; ``newline`` starts each next line."""
    kind = type(value)
    if kind is str:
        return _quote(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = newline + _INDENT
        parts = []
        for key, item in sorted(value.items()):
            if type(key) is not str:
                raise _Unhandled
            parts.append(f"{_quote(key)}: {_format(item, inner)}")
        return "{" + inner + ("," + inner).join(parts) + newline + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        inner = newline + _INDENT
        items = ("," + inner).join([_format(item, inner) for item in value])
        return "[" + inner + items + newline + "]"
    if kind is float:
        if value != value:
            return "NaN"
        return _FLOAT_SPECIALS.get(value) or float.__repr__(value)
    raise _Unhandled
