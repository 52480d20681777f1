"""The fuzzer's JSON layout: ``reportjson.dumps`` writes exactly what ``json.dumps`` does."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsconform import reportjson


def _reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=3, separators=(",", ": "))


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # any code point, lone surrogates included: escaped as json escapes them
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=500)
@given(_values)
def test_the_layout_is_json_dumps_with_sorted_keys_and_three_spaces(value: Any) -> None:
    assert reportjson.dumps(value) == _reference(value)


def test_a_case_report_is_laid_out_as_the_fuzzer_lays_it_out() -> None:
    report = {
        "id": "6.4.1",
        "wirelog": [{"t": 0.000125, "kind": "tx-frame", "payload": "κόσμε", "mask": None}],
        "txFrameStats": {"1": 2, "8": 1},
        "expected": {"OK": [["message", "", False]]},
        "received": [],
        "remoteCloseCode": 1000,
    }
    text = reportjson.dumps(report)
    assert text == _reference(report)
    assert text.startswith('{\n   "expected": {\n      "OK": [\n         [\n')
    assert "\\u03ba" in text  # non-ASCII escaped, as the fuzzer's reports have it


class _Code(int):
    """An int subclass with a repr of its own (as an IntEnum has)."""

    def __repr__(self) -> str:
        return "Code(1000)"


def test_what_the_layout_leaves_to_json_comes_out_as_json_writes_it() -> None:
    for odd in ({1: "one", 10: {2.5: [True]}, 2: math.inf}, {"code": _Code(1000)}):
        assert reportjson.dumps(odd) == _reference(odd)


def test_what_json_refuses_is_refused_the_same_way() -> None:
    for bad in ({"a": 1, 2: "b"}, {"when": object()}):
        with pytest.raises(TypeError):
            _reference(bad)
        with pytest.raises(TypeError):
            reportjson.dumps(bad)
