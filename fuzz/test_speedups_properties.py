"""Differential properties: the compiled masker equals the pure-Python one (RFC 6455 §5.3).

Both are called directly (not through ``rfc6455.frame.mask``), so these run the same with
or without ``RFC6455_NO_SPEEDUPS``; they are skipped only when the extension is not built,
unless ``RFC6455_REQUIRE_SPEEDUPS=1`` demands it. Inputs cover arbitrary data, keys, lengths
around the 8-byte word and 32-byte vector widths, unaligned views at every offset, and the
error cases, which must raise the same exception type from both.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import masking_keys

from rfc6455 import frame

try:
    from rfc6455 import _speedups  # type: ignore[attr-defined,unused-ignore]
except ImportError:
    if os.environ.get("RFC6455_REQUIRE_SPEEDUPS", "") == "1":
        raise
    pytest.skip("the compiled accelerator is not built here", allow_module_level=True)

compiled_mask = _speedups.mask
compiled_mask_slice = _speedups.mask_slice
python_mask = frame._mask_python
python_mask_slice = frame._mask_slice_python

# Lengths that straddle the word loop's tail and the vector loop's (8, 16, 32 bytes).
EDGE_LENGTHS = st.sampled_from([0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65])
data_of_any_length = st.one_of(
    st.binary(max_size=2048),
    EDGE_LENGTHS.flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)


def outcome(function: object, *args: object) -> object:
    """The result, or the exception type, so that failures can be compared too."""
    try:
        return function(*args)  # type: ignore[operator]
    except Exception as exc:
        return type(exc)


@given(data=data_of_any_length, key=masking_keys)
def test_compiled_mask_equals_python(data: bytes, key: bytes) -> None:
    assert compiled_mask(data, key) == python_mask(data, key)


@given(data=data_of_any_length, key=masking_keys)
def test_compiled_mask_is_its_own_inverse(data: bytes, key: bytes) -> None:
    assert compiled_mask(compiled_mask(data, key), key) == data


@given(
    data=st.binary(min_size=1, max_size=600),
    key=masking_keys,
    offset=st.integers(0, 40),
    kind=st.sampled_from(["bytes", "bytearray", "memoryview"]),
)
def test_compiled_mask_equals_python_at_any_alignment(
    data: bytes, key: bytes, offset: int, kind: str
) -> None:
    # A view starting at ``offset`` in a larger buffer: loads and stores are unaligned.
    buffer = bytearray(os.urandom(offset)) + data + bytearray(b"\xaa" * 7)
    view = memoryview(buffer)[offset : offset + len(data)]
    argument: bytes | bytearray | memoryview = view
    if kind == "bytes":
        argument = view.tobytes()
    elif kind == "bytearray":
        argument = bytearray(view)
    assert compiled_mask(argument, key) == python_mask(argument, key)
    assert buffer[offset : offset + len(data)] == data  # never written through


@given(
    buffer=st.binary(max_size=700).map(bytearray),
    key=masking_keys,
    start=st.integers(-3, 710),
    end=st.integers(-3, 710),
)
def test_compiled_mask_slice_equals_python(
    buffer: bytearray, key: bytes, start: int, end: int
) -> None:
    compiled = outcome(compiled_mask_slice, buffer, key, start, end)
    assert compiled == outcome(python_mask_slice, buffer, key, start, end)
    if isinstance(compiled, bytes):
        assert compiled == python_mask(bytes(buffer[start:end]), key)
    else:
        assert compiled is ValueError


@given(
    data=st.one_of(st.binary(max_size=64), st.text(max_size=8), st.none(), st.integers()),
    key=st.one_of(st.binary(max_size=8), st.text(max_size=5), st.integers()),
)
def test_compiled_mask_fails_like_python(data: object, key: object) -> None:
    assert outcome(compiled_mask, data, key) == outcome(python_mask, data, key)
