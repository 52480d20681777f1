"""Every case the native engine defines, one module per category, looked up by id.

Invariants:
- A category module exports ``CASES``, a tuple of ``CaseSpec`` in the fuzzer's order; this
  package only collects them. Adding a category = one new module listed in ``_MODULES``.
- Every id defined is a catalog id (checked at import), and no id is defined twice.
"""

from __future__ import annotations

from types import MappingProxyType

from wsconform import catalog
from wsconform.native.casedef import CaseSpec
from wsconform.native.cases import (
    autofragment,
    close,
    deflate,
    fragmentation,
    framing,
    limits,
    opcodes,
    pingpong,
    reserved_bits,
    utf8_handling,
)

__all__ = ["DEFINED", "UnsupportedCase", "get", "supported"]

_MODULES = (
    framing,
    pingpong,
    reserved_bits,
    opcodes,
    fragmentation,
    utf8_handling,
    close,
    limits,
    autofragment,
    deflate,
)


class UnsupportedCase(ValueError):
    """A catalog case the native engine does not define (yet): a usage error."""


def _collect() -> dict[str, CaseSpec]:
    found: dict[str, CaseSpec] = {}
    for module in _MODULES:
        for spec in module.CASES:
            if spec.case_id not in catalog.ALL_CASES:
                raise AssertionError(f"{module.__name__} defines {spec.case_id}, not a catalog id")
            if spec.case_id in found:
                raise AssertionError(f"case {spec.case_id} is defined twice")
            found[spec.case_id] = spec
    return found


DEFINED = MappingProxyType(_collect())


def supported() -> list[str]:
    """The ids the engine can run, in the fuzzer's order."""
    return sorted(DEFINED, key=catalog.case_sort_key)


def get(case_id: str) -> CaseSpec:
    """The definition of ``case_id``."""
    try:
        return DEFINED[case_id]
    except KeyError:
        categories = sorted({catalog.category_of(c) for c in DEFINED}, key=int)
        raise UnsupportedCase(
            f"the native engine does not define case {case_id} "
            f"(categories defined: {', '.join(categories)}); run it with the Autobahn engine"
        ) from None
