"""The masking accelerator and its pure-Python twin (RFC 6455 §5.3), and how one is chosen.

Every behavioural test runs on both implementations; ``RFC6455_REQUIRE_SPEEDUPS=1`` (set by
CI on the accelerated run) turns a missing compiled module into a failure, not a skip.
"""

from __future__ import annotations

import array
import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from rfc6455 import frame, speedups
from rfc6455.events import BinaryMessage, TextMessage
from rfc6455.frame import Frame, FrameParser, Opcode, Role

try:
    from rfc6455 import _speedups  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # not built: only the pure-Python twin is tested
    _speedups = None

REQUIRED = os.environ.get("RFC6455_REQUIRE_SPEEDUPS", "") == "1"

MASKS: list[Any] = [pytest.param(frame._mask_python, id="python")]
SLICES: list[Any] = [pytest.param(frame._mask_slice_python, id="python")]
if _speedups is not None:
    MASKS.append(pytest.param(_speedups.mask, id="compiled"))
    SLICES.append(pytest.param(_speedups.mask_slice, id="compiled"))

MaskFunction = Callable[[Any, Any], bytes]
SliceFunction = Callable[[Any, Any, int, int], bytes]

# RFC 6455 §5.7: a single-frame masked text message "Hello" with key 37 fa 21 3d.
KEY = bytes.fromhex("37fa213d")
HELLO_MASKED = bytes.fromhex("7f9f4d5158")


def naive_mask(data: bytes, key: bytes) -> bytes:
    """RFC 6455 §5.3 word for word: octet i XOR key octet i MOD 4."""
    return bytes(octet ^ key[index % 4] for index, octet in enumerate(data))


def test_compiled_module_is_built_when_required() -> None:
    if REQUIRED:
        assert _speedups is not None, "RFC6455_REQUIRE_SPEEDUPS=1 but rfc6455._speedups is missing"
    elif _speedups is None:
        pytest.skip("the compiled accelerator is not built here")
    assert _speedups is not None
    assert callable(_speedups.mask) and callable(_speedups.mask_slice)


def test_frame_mask_is_the_chosen_implementation() -> None:
    expected = speedups.compiled.mask if speedups.compiled is not None else frame._mask_python
    assert frame.mask is expected
    assert frame.unmask is frame.mask
    assert speedups.ACCELERATED is (speedups.compiled is not None)


def test_the_server_read_and_receive_buffer_are_the_chosen_implementation() -> None:
    # The server's read and the transports' ``get_buffer`` are compiled with the codec, or
    # both Python: a binding that silently failed would leave the echo path slow (or a
    # pure-Python run on compiled code).
    from rfc6455.readbuffer import ReceiveBuffer, receive_buffer
    from rfc6455.session import WebSocketSession
    from rfc6455.shell import Shell

    read = WebSocketSession.__dict__.get("buffer_updated")
    if speedups.compiled is None:
        assert read is None and WebSocketSession.buffer_updated is Shell.buffer_updated
        assert type(receive_buffer()) is ReceiveBuffer
    else:
        assert type(read).__name__ == "method_descriptor" and read.__objclass__ is WebSocketSession
        assert type(receive_buffer()) is speedups.compiled.ReceiveBuffer


@pytest.mark.skipif(_speedups is None, reason="the compiled accelerator is not built here")
def test_the_compiled_receive_buffer_gives_its_view_for_any_size_hint() -> None:
    view = memoryview(bytearray(16))
    buffer = _speedups.ReceiveBuffer(view)
    assert buffer(-1) is view and buffer(1 << 20) is view and buffer.view is view
    with pytest.raises(TypeError):
        buffer()
    with pytest.raises(TypeError):
        _speedups.ReceiveBuffer(b"not a memoryview")


@pytest.mark.skipif(_speedups is None, reason="the compiled accelerator is not built here")
def test_server_read_binds_only_to_a_class_with_a_function() -> None:
    with pytest.raises(TypeError):
        _speedups.server_read(object(), None, None, print)
    with pytest.raises(TypeError):
        _speedups.server_read(object, None, None)


def _chosen_in_subprocess(disable: str | None) -> str:
    env = dict(os.environ)
    env.pop(speedups.DISABLE_ENV, None)
    if disable is not None:
        env[speedups.DISABLE_ENV] = disable
    code = "import rfc6455.frame as f, rfc6455.speedups as s; print(s.ACCELERATED, f.mask.__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_environment_variable_forces_pure_python() -> None:
    assert _chosen_in_subprocess("1") == "False _mask_python"


def test_accelerator_is_chosen_by_default_when_built() -> None:
    if _speedups is None:
        pytest.skip("the compiled accelerator is not built here")
    assert _chosen_in_subprocess(None) == "True mask"
    assert _chosen_in_subprocess("0") == "True mask"


@pytest.mark.parametrize("mask", MASKS)
def test_mask_matches_the_rfc_example(mask: MaskFunction) -> None:
    assert mask(b"Hello", KEY) == HELLO_MASKED
    assert mask(HELLO_MASKED, KEY) == b"Hello"  # masking is its own inverse


@pytest.mark.parametrize("mask", MASKS)
def test_mask_matches_the_rfc_definition_at_every_length_around_a_word(
    mask: MaskFunction,
) -> None:
    data = bytes(range(251)) * 2
    key = bytes.fromhex("a1b2c3d4")
    for length in [*range(0, 40), 255, 256, 257, 501, 502]:
        assert mask(data[:length], key) == naive_mask(data[:length], key), length


@pytest.mark.parametrize("mask", MASKS)
def test_mask_reads_any_bytes_like_object(mask: MaskFunction) -> None:
    data = bytes(range(40))
    expected = naive_mask(data, KEY)
    assert mask(bytearray(data), KEY) == expected
    assert mask(memoryview(data), KEY) == expected
    assert mask(memoryview(data)[3:], KEY) == naive_mask(data[3:], KEY)  # unaligned start
    assert mask(memoryview(data)[::2], KEY) == naive_mask(data[::2], KEY)  # strided
    words = array.array("I", range(10))
    assert mask(words, KEY) == naive_mask(words.tobytes(), KEY)  # counts bytes, not items
    assert mask(data, bytearray(KEY)) == expected
    assert mask(data, memoryview(KEY)) == expected


@pytest.mark.parametrize("mask", MASKS)
def test_mask_returns_new_bytes(mask: MaskFunction) -> None:
    source = bytearray(b"payload!")
    result = mask(source, KEY)
    assert type(result) is bytes
    assert source == bytearray(b"payload!")  # the input is never modified


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("key", [b"", b"abc", b"abcde", bytes(8)])
def test_mask_rejects_a_key_that_is_not_four_bytes(mask: MaskFunction, key: bytes) -> None:
    with pytest.raises(ValueError, match="exactly 4 bytes"):
        mask(b"data", key)


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("data", ["text", 1234, None])
def test_mask_rejects_data_that_is_not_bytes_like(mask: MaskFunction, data: object) -> None:
    with pytest.raises(TypeError):
        mask(data, KEY)


@pytest.mark.parametrize("mask_slice", SLICES)
def test_mask_slice_masks_from_key_octet_zero(mask_slice: SliceFunction) -> None:
    buffer = bytearray(os.urandom(100))
    for start, end in [(0, 0), (0, 100), (1, 9), (7, 8), (13, 77), (100, 100)]:
        expected = naive_mask(bytes(buffer[start:end]), KEY)
        assert mask_slice(buffer, KEY, start, end) == expected


@pytest.mark.parametrize("mask_slice", SLICES)
@pytest.mark.parametrize(("start", "end"), [(-1, 3), (5, 4), (0, 11), (11, 12), (2**70, 3)])
def test_mask_slice_rejects_a_slice_outside_the_buffer(
    mask_slice: SliceFunction, start: int, end: int
) -> None:
    with pytest.raises(ValueError, match="outside"):
        mask_slice(bytearray(10), KEY, start, end)


def test_server_parser_unmasks_each_frame_with_its_own_key() -> None:
    payloads = [b"", b"a", b"abcd", b"hello world", os.urandom(300), os.urandom(70_000)]
    wire = b"".join(
        Frame(payload, Opcode.BINARY, masking_key=os.urandom(4), final=True).build_frame()
        for payload in payloads
    )
    parser = FrameParser(13, Role.SERVER)
    parser.feed(wire)
    assert [f.payload for f in parser.frames()] == payloads


def test_client_frames_round_trip_through_the_server_parser() -> None:
    client = FrameParser(13, Role.CLIENT)
    wire = client.encode(b"\x00\xff" * 1000) + client.encode("Grüße")
    assert wire[1] & 0x80  # RFC 6455 §5.3: a client masks every frame
    server = FrameParser(13, Role.SERVER)
    server.feed(wire)
    assert [f.payload for f in server.frames()] == [b"\x00\xff" * 1000, "Grüße".encode()]


def test_pending_payload_is_unmasked_from_any_offset() -> None:
    # The connection validates a text payload while it arrives (partial_payload): each piece
    # must be unmasked with the key octet of its own offset, RFC 6455 §5.3's "i MOD 4".
    payload = "Grüße, Welt! ".encode() * 20
    wire = Frame(payload, Opcode.TEXT, masking_key=KEY, final=True).build_frame()
    header = len(wire) - len(payload)
    for cut in [header + 1, header + 5, header + 7, len(wire) - 1]:
        parser = FrameParser(13, Role.SERVER)
        parser.feed(wire[:cut])
        assert parser.next_frame() is None
        for start in range(0, cut - header):
            assert parser.partial_payload(start) == payload[start : cut - header]


MESSAGE_PARSERS: list[Any] = [pytest.param(frame._parse_messages_python, id="python")]
if _speedups is not None:
    MESSAGE_PARSERS.append(pytest.param(_speedups.parse_messages, id="compiled"))


@pytest.mark.parametrize("parse_messages", MESSAGE_PARSERS)
def test_parse_messages_makes_events_equal_to_those_init_makes(
    parse_messages: Callable[..., int],
) -> None:
    # RFC 6455 §5.7's masked "Hello", then a binary message, then a Ping it stops at.
    messages = bytes.fromhex("818537fa213d") + HELLO_MASKED + frame.wire_frame(0x82, b"ab", KEY)
    out: list[object] = []
    end = parse_messages(
        messages + b"\x89\x80" + KEY, 0, True, None, 0, TextMessage, BinaryMessage, out
    )
    assert end == len(messages)
    expected = [TextMessage("Hello"), BinaryMessage(b"ab")]
    assert out == expected
    assert list(map(hash, out)) == list(map(hash, expected))
    with pytest.raises(dataclasses.FrozenInstanceError):
        out[0].data = "changed"  # type: ignore[attr-defined]


def test_message_events_hold_only_their_data_in_a_slot() -> None:
    # What the compiled parser relies on to make them without calling ``__init__``.
    for event_type in (TextMessage, BinaryMessage):
        assert event_type.__slots__ == ("data",)
        assert [field.name for field in dataclasses.fields(event_type)] == ["data"]
        assert not hasattr(event_type, "__post_init__")
