"""Differential properties: the compiled masker equals the pure-Python one (RFC 6455 §5.3),
and so do the compiled frame header parser and batch frame parser (§5.2, with whole text
messages decoded or not), the whole-message parser (where its run of messages stops) and
the incremental UTF-8 validator (§8.1), down to the close code a connection fails with when
a frame breaks several rules at once, read one event or one list of events at a time.

Both are called directly (not through ``rfc6455.frame.mask``), so these run the same with
or without ``RFC6455_NO_SPEEDUPS``; they are skipped only when the extension is not built,
unless ``RFC6455_REQUIRE_SPEEDUPS=1`` demands it. Inputs cover arbitrary data, keys, lengths
around the 8-byte word and 32-byte vector widths, unaligned views at every offset, and the
error cases, which must raise the same exception type from both.
"""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    UTF8_EDGES,
    chunked,
    doubly_broken_text,
    hostile_streams,
    masking_keys,
    utf8ish_bytes,
    whole_message_runs,
    whole_messages,
)

from rfc6455 import frame, utf8
from rfc6455.connection import Connection
from rfc6455.errors import MessageTooBig, ProtocolError
from rfc6455.events import BinaryMessage, TextMessage

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
compiled_read_header = _speedups.read_header
python_read_header = frame._read_header_python
compiled_parse_frames = _speedups.parse_frames
python_parse_frames = frame._parse_frames_python
compiled_parse_messages = _speedups.parse_messages
python_parse_messages = frame._parse_messages_python
compiled_utf8_check = _speedups.utf8_check
python_utf8_check = utf8._utf8_check_python

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


# First bytes that pass (data and control frames, with and without FIN and RSV1) beside any.
FIRST_BYTES = st.one_of(
    st.sampled_from([0x00, 0x01, 0x02, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8A, 0xC1, 0x41, 0x08]),
    st.integers(0, 255),
)


def encode_header(first: int, masked: bool, length: int, width: int, key: bytes, cut: int) -> bytes:
    """A frame header with ``length`` in the 7-bit, 16-bit or 64-bit field (``width`` 0, 2
    or 8: a 7-bit field takes the low bits; RFC 6455 §5.2), cut after ``cut`` bytes."""
    code = {0: length & 0x7F, 2: 126, 8: 127}[width]
    extended = (length % 2 ** (8 * width)).to_bytes(width, "big") if width else b""
    header = bytes([first, (0x80 if masked else 0) | code]) + extended + (key if masked else b"")
    return header[:cut]


# Headers as the wire has them: every first byte, both mask bits, every length encoding at
# its edges (125/126, 65535/65536, the 64-bit top bit), with or without the key, cut short.
headers = st.one_of(
    st.binary(max_size=16),
    st.builds(
        encode_header,
        FIRST_BYTES,
        st.booleans(),
        st.one_of(
            st.sampled_from([0, 125, 126, 127, 2**16 - 1, 2**16, 2**63 - 1, 2**63, 2**64 - 1]),
            st.integers(0, 2**64 - 1),
        ),
        st.sampled_from([0, 2, 8]),
        st.binary(min_size=4, max_size=4),
        st.integers(0, 14),
    ),
)
frame_limits = st.one_of(
    st.none(),
    st.integers(0, 2**16 + 1),
    st.sampled_from([125, 126, 2**63 - 1, 2**63, 2**64, 2**70]),
)


def header_outcome(function: object, *args: object) -> object:
    """``outcome``, with a header the connection must fail on as ``False``, which is how the
    compiled parser answers it (the parser then asks the Python one why)."""
    try:
        return function(*args)  # type: ignore[operator]
    except (ProtocolError, MessageTooBig):
        return False
    except Exception as exc:
        return type(exc)


@settings(max_examples=1000)
@given(
    prefix=st.binary(max_size=4),
    header=headers,
    expect_masked=st.booleans(),
    max_frame_size=frame_limits,
    rsv_mask=st.integers(0, 7),
)
def test_compiled_read_header_equals_python(
    prefix: bytes, header: bytes, expect_masked: bool, max_frame_size: int | None, rsv_mask: int
) -> None:
    # Both answer alike: the header, None while it is incomplete, or False (Python: an
    # error) for a header the connection must fail on.
    buffer = bytearray(prefix + header)
    args = (buffer, len(prefix), expect_masked, max_frame_size, rsv_mask)
    assert compiled_read_header(*args) == header_outcome(python_read_header, *args)


@given(
    buffer=st.one_of(st.binary(max_size=8), st.none(), st.integers()),
    pos=st.one_of(st.integers(-3, 12), st.none()),
)
def test_compiled_read_header_fails_like_python(buffer: object, pos: object) -> None:
    args = (buffer, pos, True, None, 0)
    assert header_outcome(compiled_read_header, *args) == header_outcome(python_read_header, *args)


# Streams as a peer may send them: conversations with broken fields, frames whose every header
# field is drawn freely (several rules broken at once), noise; for either masking direction.
any_streams = st.one_of(
    hostile_streams(masked=True),
    hostile_streams(masked=False),
    whole_message_runs(masked=True),
    whole_message_runs(masked=False),
)


#: What a batch parser reads: (buffer, position, expect_masked, max_frame_size, rsv_mask).
BatchInput = tuple[bytearray, int, bool, int | None, int]


@st.composite
def batch_inputs(draw: st.DrawFn) -> BatchInput:
    """A stream cut anywhere, after a few bytes the parse starts past, and the header rules."""
    prefix = draw(st.binary(max_size=4))
    stream = draw(any_streams)
    cut = draw(st.integers(0, len(stream)), label="cut")
    rules = (draw(st.booleans()), draw(frame_limits), draw(st.integers(0, 7)))
    return (bytearray(prefix + stream[:cut]), len(prefix), *rules)


@settings(max_examples=500)
@given(inputs=batch_inputs(), decode_text=st.booleans())
def test_compiled_parse_frames_equals_python(inputs: BatchInput, decode_text: bool) -> None:
    # The same frames (first byte, unmasked payload, of the same type: str for a valid
    # whole text message when decoding), the same stopping point, and the same verdict on
    # the frame there: incomplete, or refused.
    compiled = outcome(compiled_parse_frames, *inputs, decode_text)
    python = outcome(python_parse_frames, *inputs, decode_text)
    assert compiled == python
    if isinstance(compiled, tuple):
        assert [type(item) for item in compiled[0]] == [type(item) for item in python[0]]  # type: ignore[index]


# What the whole-message parser hands out: the data itself, or the event holding it.
MESSAGE_TYPES = st.sampled_from(
    [(None, None), (TextMessage, BinaryMessage), (TextMessage, None), (None, BinaryMessage)]
)


@settings(max_examples=500)
@given(inputs=batch_inputs(), types=MESSAGE_TYPES)
def test_compiled_parse_messages_equals_python(
    inputs: BatchInput, types: tuple[type | None, type | None]
) -> None:
    # The same messages (str or bytes, or the same events: equal, of the same types),
    # appended after what the list held, and the same stopping point: the first frame that
    # is not a whole message in one frame, is incomplete, refused, or not UTF-8.
    outs: dict[str, list[object]] = {"compiled": ["held"], "python": ["held"]}
    ends = {
        name: outcome(parse, *inputs, *types, outs[name])
        for name, parse in (
            ("compiled", compiled_parse_messages),
            ("python", python_parse_messages),
        )
    }
    assert ends["compiled"] == ends["python"]
    assert outs["compiled"] == outs["python"]
    assert [type(m) for m in outs["compiled"]] == [type(m) for m in outs["python"]]
    # Each message is the one the frame parser gives for its frame.
    if isinstance(ends["python"], int) and len(outs["python"]) > 1:
        items, _, _ = python_parse_frames(*inputs, True)
        datas = [getattr(m, "data", m) for m in outs["python"][1:]]
        assert datas == items[1 : 2 * len(datas) : 2]


# Arguments of the wrong type or range for a compiled entry point, which must refuse them as
# its Python twin does (a buffer, a position, an output list).
MALFORMED_CALL = {
    "buffer": st.one_of(st.binary(max_size=8), st.none()),
    "pos": st.one_of(st.integers(-3, 12), st.none()),
    "out": st.one_of(st.just([]), st.just(()), st.none()),
}


@given(**MALFORMED_CALL)
def test_compiled_parse_messages_fails_like_python(
    buffer: object, pos: object, out: object
) -> None:
    args = (buffer, pos, True, None, 0, TextMessage, BinaryMessage, out)
    assert outcome(compiled_parse_messages, *args) == outcome(python_parse_messages, *args)


def test_compiled_parse_messages_refuses_a_type_without_a_data_slot() -> None:
    # It makes instances without calling the type: only one whose instances hold ``data``
    # in a slot of their own layout will do.
    class Loose:
        data: object = None

    class Borrowed:
        __slots__ = ()
        data = TextMessage.data

    frame_bytes = frame.wire_frame(0x81, b"hi", None)
    for wrong in (Loose, Borrowed, str, 3):
        with pytest.raises(TypeError):
            compiled_parse_messages(frame_bytes, 0, False, None, 0, wrong, None, [])


# Pending prefixes as a chunk may leave them (every proper prefix of the edge sequences),
# beside any few bytes, which both must judge alike too.
_PREFIXES = sorted({edge[:cut] for edge in UTF8_EDGES for cut in range(min(len(edge), 4))})
pendings = st.one_of(st.sampled_from(_PREFIXES), st.binary(max_size=4))


@settings(max_examples=1000)
@given(data=utf8ish_bytes(), pending=pendings, final=st.booleans(), offset=st.integers(0, 9))
def test_compiled_utf8_check_equals_python(
    data: bytes, pending: bytes, final: bool, offset: int
) -> None:
    # The same pending tail, None at the same chunk, ValueError for an impossible pending;
    # read through an unaligned view too (the ASCII loop reads eight bytes at a time).
    view = memoryview(bytes(offset) + data)[offset:]
    expected = outcome(python_utf8_check, data, pending, final)
    assert outcome(compiled_utf8_check, data, pending, final) == expected
    assert outcome(compiled_utf8_check, view, pending, final) == expected


@given(draw=st.data(), data=utf8ish_bytes())
def test_compiled_utf8_check_carries_state_like_python(draw: st.DataObject, data: bytes) -> None:
    # Fed chunk by chunk, each carrying the last one's pending tail: the same tails, and the
    # same chunk refused (fail fast), as the reference.
    chunks = draw.draw(chunked(data)) or [b""]
    states: dict[str, bytes | None] = {"compiled": b"", "python": b""}
    for index, chunk in enumerate(chunks):
        final = index == len(chunks) - 1
        for name, check in (("compiled", compiled_utf8_check), ("python", python_utf8_check)):
            state = states[name]
            states[name] = None if state is None else check(chunk, state, final)
        assert states["compiled"] == states["python"]


@given(
    data=st.one_of(st.binary(max_size=8), st.text(max_size=4), st.none(), st.integers()),
    pending=st.one_of(st.binary(max_size=5), st.text(max_size=2), st.none()),
)
def test_compiled_utf8_check_fails_like_python(data: object, pending: object) -> None:
    assert outcome(compiled_utf8_check, data, pending, False) == outcome(
        python_utf8_check, data, pending, False
    )


def sent_frames(role: frame.Role, data: bytes) -> list[frame.Frame]:
    """The frames a connection of ``role`` sent, unmasked: a client masks each with a fresh
    random key (RFC 6455 §5.3), so its wire bytes differ from run to run."""
    parser = frame.FrameParser(13, frame.Role(1 - role))
    parser.feed(data)
    return list(parser.frames())


#: The compiled codec's batch parsers and UTF-8 validator, and their pure-Python twins.
CODECS = {
    "compiled": (compiled_parse_frames, compiled_parse_messages, compiled_utf8_check),
    "python": (python_parse_frames, python_parse_messages, python_utf8_check),
}


def connection_outcome(
    codec: str, role: frame.Role, chunks: list[bytes], limit: int | None, batches: bool = False
) -> tuple[object, ...]:
    """Everything a connection reports for ``chunks`` when it parses with ``codec``: its
    events (from ``events()``, or with ``batches`` each list ``events_received`` gives), the
    bytes it sends (the Close and its code), and why it failed."""
    parse_frames, parse_messages, utf8_check = CODECS[codec]
    with (
        mock.patch.object(frame, "_parse_frames", parse_frames),
        mock.patch.object(frame, "_parse_messages", parse_messages),
        mock.patch.object(utf8, "utf8_check", utf8_check),
    ):
        connection = Connection(role, max_message_size=limit)
        events: list[object] = []
        for chunk in chunks:
            connection.receive_data(chunk)
            if batches:
                while batch := connection.events_received():
                    events.append(batch)
            else:
                events.extend(connection.events())
            events.extend(sent_frames(role, connection.data_to_send()))
        failure = connection.failure
    return events, connection.close_code, type(failure), str(failure)


roles = st.sampled_from([frame.Role.SERVER, frame.Role.CLIENT])
message_limits = st.one_of(st.none(), st.integers(0, 200))


@settings(max_examples=300)
@given(role=roles, stream=any_streams, data=st.data(), limit=message_limits)
def test_connection_fails_alike_with_either_codec(
    role: frame.Role, stream: bytes, data: st.DataObject, limit: int | None
) -> None:
    # Which rule a frame that breaks several is failed for decides the close code, and the
    # close code decides Autobahn's verdict: both codecs must pick the same one.
    chunks = data.draw(chunked(stream), label="chunks")
    batches = data.draw(st.booleans(), label="batches")
    compiled = connection_outcome("compiled", role, chunks, limit, batches)
    assert compiled == connection_outcome("python", role, chunks, limit, batches)


@settings(max_examples=300)
@given(role=roles, data=st.data(), limit=message_limits)
def test_invalid_text_that_breaks_another_rule_fails_alike_with_either_codec(
    role: frame.Role, data: st.DataObject, limit: int | None
) -> None:
    # Text that is not UTF-8 (1007) in a frame that also breaks a header, sequencing or size
    # rule (1002, 1009), fed in any chunking, so the fail-fast check of a frame still
    # arriving meets the same rules: the same close code, reason and events from both.
    stream = data.draw(doubly_broken_text(masked=role == frame.Role.SERVER), label="stream")
    chunks = data.draw(chunked(stream), label="chunks")
    batches = data.draw(st.booleans(), label="batches")
    compiled = connection_outcome("compiled", role, chunks, limit, batches)
    assert compiled == connection_outcome("python", role, chunks, limit, batches)


compiled_wire_frame = _speedups.wire_frame
python_wire_frame = frame._wire_frame_python
# Payload lengths at each length encoding's edges (RFC 6455 §5.2: 7 bits, 16 bits, 64 bits).
WIRE_LENGTHS = st.sampled_from([0, 1, 125, 126, 127, 0xFFFF, 0x10000, 0x10001])


@settings(max_examples=500)
@given(
    first=st.integers(min_value=0, max_value=0xFF),
    payload=st.one_of(
        st.binary(max_size=300), WIRE_LENGTHS.map(lambda n: bytes(range(256)) * (n // 256 + 1))
    ),
    length=st.one_of(st.none(), WIRE_LENGTHS),
    key=st.one_of(st.none(), masking_keys),
    kind=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_compiled_wire_frame_equals_python(
    first: int, payload: bytes, length: int | None, key: bytes | None, kind: type
) -> None:
    data = kind(payload if length is None else payload[:length])
    built = compiled_wire_frame(first, data, key)
    assert type(built) is bytes
    assert built == python_wire_frame(first, data, key)


@given(
    first=st.one_of(st.integers(min_value=-2, max_value=0x101), st.none()),
    payload=st.one_of(st.binary(max_size=4), st.text(max_size=2), st.none()),
    key=st.one_of(st.none(), st.binary(max_size=6), st.text(max_size=4)),
)
def test_compiled_wire_frame_refuses_what_python_refuses(
    first: object, payload: object, key: object
) -> None:
    # Only a caller of ours can pass these (never the peer), so the two need not agree on
    # which of several wrong arguments is reported: both refuse, or both build the same.
    compiled = outcome(compiled_wire_frame, first, payload, key)
    python = outcome(python_wire_frame, first, payload, key)
    if isinstance(python, bytes):
        assert compiled == python
    else:
        assert compiled in (TypeError, ValueError)
        assert python in (TypeError, ValueError)


compiled_answer_messages = _speedups.answer_messages
python_answer_messages = frame._answer_messages_python


class Stopped(BaseException):
    """Not an ``Exception``: a hook raising it is handed back, for the shell to re-raise."""


#: What a scripted ``on_message`` does, one action per message in turn.
HOOK_ACTIONS = (
    "none",  # no reply
    "echo",  # the message back (str: text, bytes: binary)
    "ascii",
    "text",  # non-ASCII text, encoded on the way out
    "medium",  # a 16-bit length
    "large",  # a 64-bit length
    "bytearray",  # bytes-like but not bytes: handed back
    "surrogate",  # a str UTF-8 cannot encode: handed back
    "raise",
    "stop",  # a BaseException
    "close",  # the connection leaves the open state, no reply
    "close-echo",  # ... and a reply, which is not sent
    "awaitable",  # handed back
    "fault",  # reading the connection's state then fails: a fault of ours after a hook ran
)
#: A reply the pass hands back as it is (a stand-in for a coroutine).
AWAITABLE = object()


class OpenFlag:
    """A stand-in connection: its ``state`` is all the pass reads; once ``broken``, reading
    it fails as running out of memory would."""

    def __init__(self) -> None:
        self.flag = "open"
        self.broken = False

    @property
    def state(self) -> str:
        if self.broken:
            raise MemoryError("no memory left to read the state")
        return self.flag


class ScriptedHandler:
    def __init__(self, actions: list[str], connection: OpenFlag) -> None:
        self.actions = actions
        self.connection = connection
        self.seen: list[tuple[object, str | bytes]] = []

    def on_message(self, environ: object, message: str | bytes) -> object:
        self.seen.append((environ, message))
        action = self.actions[(len(self.seen) - 1) % len(self.actions)]
        replies: dict[str, object] = {
            "none": None,
            "echo": message,
            "ascii": "pong",
            "text": "κόσμε",
            "medium": b"m" * 300,
            "large": b"L" * 70000,
            "bytearray": bytearray(b"ba"),
            "surrogate": "a\ud800",
            "awaitable": AWAITABLE,
        }
        if action == "raise":
            raise ValueError("the hook failed")
        if action == "stop":
            raise Stopped()
        if action.startswith("close"):
            self.connection.flag = "closing"
            return message if action == "close-echo" else None
        if action == "fault":
            self.connection.broken = True
            return message
        return replies[action]


def answered(answer: object, inputs: BatchInput, actions: list[str]) -> tuple[object, ...]:
    """Everything ``answer`` does with ``inputs`` and a handler following ``actions``: its
    result (an exception as its type and arguments), the hook calls, the frames queued."""
    connection = OpenFlag()
    handler = ScriptedHandler(actions, connection)
    out: list[object] = [b"held"]
    environ = {"PATH_INFO": "/"}
    result = outcome(answer, *inputs, handler, environ, connection, "open", out)
    if isinstance(result, tuple):
        end, code, value = result
        if isinstance(value, BaseException):
            value = (type(value), value.args, value.__traceback__ is not None)
        result = (end, code, value)
    return result, handler.seen, out, connection.flag


@st.composite
def server_reads(draw: st.DrawFn) -> BatchInput:
    """What the server's pass reads: mostly whole masked messages (binary, or text valid or
    not) under the server's rules, so hooks run, several per read, then any stream, cut
    anywhere in it; now and then any batch input."""
    if draw(st.integers(0, 4)) == 0:
        return draw(batch_inputs())
    stream = draw(whole_messages())
    stream += draw(st.one_of(st.just(b""), whole_message_runs(masked=True)))
    cut = draw(st.one_of(st.just(len(stream)), st.integers(0, len(stream))), label="cut")
    limit = draw(st.one_of(st.none(), st.none(), frame_limits))
    return (bytearray(stream[:cut]), 0, True, limit, 0)


@settings(max_examples=500)
@given(
    inputs=server_reads(),
    actions=st.lists(st.sampled_from(HOOK_ACTIONS), min_size=1, max_size=6),
)
def test_compiled_answer_messages_equals_python(inputs: BatchInput, actions: list[str]) -> None:
    # The same hook calls with the same messages, the same reply frames queued after what
    # the list held, the same stopping point, and the same thing handed back there (a
    # reply it does not send, the hook's exception with its traceback).
    compiled = answered(compiled_answer_messages, inputs, actions)
    assert compiled == answered(python_answer_messages, inputs, actions)
    # Each message answered is the one the whole-message parser gives for its frame.
    messages: list[object] = []
    python_parse_messages(*inputs, None, None, messages)
    seen = [message for _, message in compiled[1]]
    assert seen == messages[: len(seen)]


@pytest.mark.parametrize(
    "answer", [compiled_answer_messages, python_answer_messages], ids=["compiled", "python"]
)
def test_a_fault_after_a_hook_ran_keeps_what_was_handled(answer: Any) -> None:
    # Handed back as ANSWER_FAULT where the hook's frame ends: a second pass over the read
    # would call the hook again for the same message.
    first = frame.Frame(b"one", frame.Opcode.BINARY, masking_key=b"abcd", final=True).msg
    second = frame.Frame(b"two", frame.Opcode.BINARY, masking_key=b"abcd", final=True).msg
    connection = OpenFlag()
    handler = ScriptedHandler(["fault"], connection)
    out: list[object] = []
    end, code, value = answer(
        bytearray(first + second), 0, True, None, 0, handler, {}, connection, "open", out
    )
    assert (end, code, type(value)) == (len(first), frame.ANSWER_FAULT, MemoryError)
    assert handler.seen == [({}, b"one")] and out == []


@given(**MALFORMED_CALL)
def test_compiled_answer_messages_fails_like_python(
    buffer: object, pos: object, out: object
) -> None:
    # Refused before any hook runs, with the same exception type: nothing is consumed.
    connection = OpenFlag()
    handler = ScriptedHandler(["echo"], connection)
    args = (buffer, pos, True, None, 0, handler, {}, connection, "open", out)
    assert outcome(compiled_answer_messages, *args) == outcome(python_answer_messages, *args)
    assert handler.seen == []
