"""Hypothesis strategies for WebSocket frames, byte streams, chunkings, UTF-8 and close codes,
and ``wsproto_parse``: what wsproto makes of a byte stream, for differential properties.

Two kinds of frame strategies live here:
- ``Frame`` objects the reference builds (always well-formed: they feed round-trip properties);
- ``WireFrame`` descriptions of frames as raw header fields, any of which may break RFC 6455
  (reserved opcode, RSV bits, wrong masking direction, non-minimal or top-bit lengths,
  oversized or fragmented control frames). They feed the "only documented exceptions escape"
  and differential properties, where the point is to reach every rejection path.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, ParseFailed
from wsproto.frame_protocol import Opcode as WsprotoOpcode

from rfc6455.errors import SENDABLE_CLOSE_CODES, is_valid_close_code
from rfc6455.frame import Frame, Opcode, Role, wire_frame

DATA_OPCODES = (Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY)
CONTROL_OPCODES = (Opcode.CLOSE, Opcode.PING, Opcode.PONG)
# RFC 6455 §5.2: %x3-7 are reserved for further non-control frames, %xB-F for control frames.
RESERVED_OPCODES = (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)
# Payload lengths at the edges of the three length encodings of RFC 6455 §5.2.
BOUNDARY_LENGTHS = (0, 125, 126, 127, 65535, 65536)

masking_keys = st.binary(min_size=4, max_size=4)


def _repeat_to(pattern: bytes, length: int) -> bytes:
    return (pattern * (length // len(pattern) + 1))[:length]


def payloads(max_size: int = 300) -> st.SearchStrategy[bytes]:
    """Payloads: mostly small and random, sometimes exactly at a length-encoding boundary."""
    boundary = st.builds(
        _repeat_to, st.binary(min_size=1, max_size=8), st.sampled_from(BOUNDARY_LENGTHS)
    )
    return st.one_of(st.binary(max_size=max_size), boundary)


def control_payloads() -> st.SearchStrategy[bytes]:
    """RFC 6455 §5.5: at most 125 bytes."""
    return st.binary(max_size=125)


@st.composite
def frames(draw: st.DrawFn, *, masked: bool, rsv_mask: int = 0, max_size: int = 300) -> Frame:
    """A well-formed frame of any opcode; data frames may carry the RSV bits in ``rsv_mask``."""
    opcode = draw(st.sampled_from(DATA_OPCODES + CONTROL_OPCODES))
    key = draw(masking_keys) if masked else None
    if opcode.is_control:
        return Frame(draw(control_payloads()), opcode, masking_key=key, final=True)
    rsv = draw(st.integers(0, 7)) & rsv_mask
    return Frame(
        draw(payloads(max_size)),
        opcode,
        masking_key=key,
        final=draw(st.booleans()),
        rsv1=(rsv >> 2) & 1,
        rsv2=(rsv >> 1) & 1,
        rsv3=rsv & 1,
    )


def frames_for(role: Role, *, rsv_mask: int = 0, max_size: int = 300) -> st.SearchStrategy[Frame]:
    """Frames a parser of ``role`` accepts: masked when it is a server (RFC 6455 §5.1)."""
    return frames(masked=role == Role.SERVER, rsv_mask=rsv_mask, max_size=max_size)


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` split at the offsets in ``cuts`` (clamped to its length, in any order)."""
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def cut_points(draw: st.DrawFn, length: int) -> list[int]:
    """Offsets to cut ``length`` bytes at; sometimes every offset (one byte per read)."""
    if 0 < length <= 2000 and draw(st.integers(0, 9)) == 0:
        return list(range(1, length))
    return draw(st.lists(st.integers(0, length), max_size=12))


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points (empty chunks included: a read may return nothing)."""
    return cut(data, draw(cut_points(len(data))))


# -- UTF-8 ----------------------------------------------------------------------------------
# Byte sequences at the edges of RFC 3629 §4's table: valid ones next to overlong forms,
# surrogates, code points above U+10FFFF, truncated sequences and stray continuation bytes.
UTF8_EDGES = (
    b"\x7f",
    b"\xc2\x80",
    b"\xdf\xbf",
    b"\xe0\xa0\x80",
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
    b"\xef\xbf\xbf",
    b"\xf0\x90\x80\x80",
    b"\xf4\x8f\xbf\xbf",
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",  # "κόσμε", Autobahn's favourite
    b"\xc0\xaf",  # overlong "/"
    b"\xc1\xbf",
    b"\xe0\x80\xaf",  # overlong
    b"\xe0\x9f\xbf",
    b"\xed\xa0\x80",  # U+D800, a surrogate
    b"\xed\xbf\xbf",
    b"\xf0\x8f\xbf\xbf",  # overlong
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xbf",
    b"\xc2",  # truncated
    b"\xe1\x80",
    b"\xf1\x80\x80",
    b"\xed",
    b"\xf4",
)


def utf8ish_bytes(max_segments: int = 8) -> st.SearchStrategy[bytes]:
    """Bytes that are often valid UTF-8 and, when not, fail in interesting places."""
    segment = st.one_of(
        st.text(max_size=10).map(lambda s: s.encode("utf-8")),
        st.sampled_from(UTF8_EDGES),
        st.binary(max_size=4),
    )
    return st.one_of(
        st.lists(segment, max_size=max_segments).map(b"".join),
        st.binary(max_size=40),
    )


def valid_utf8_bytes(max_size: int = 200) -> st.SearchStrategy[bytes]:
    return st.text(max_size=max_size).map(lambda s: s.encode("utf-8"))


# -- close payloads (RFC 6455 §5.5.1, §7.4) --------------------------------------------------
def valid_close_codes() -> st.SearchStrategy[int]:
    """Codes that may appear in a Close frame: the sendable §7.4.1 codes, 3000-4999."""
    return st.one_of(st.sampled_from(sorted(SENDABLE_CLOSE_CODES)), st.integers(3000, 4999))


def invalid_close_codes() -> st.SearchStrategy[int]:
    """Every other 16-bit value, with the near misses weighted in."""
    near = st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
    return st.one_of(near, st.integers(0, 65535)).filter(lambda c: not is_valid_close_code(c))


def close_reasons() -> st.SearchStrategy[str]:
    """Reasons whose UTF-8 encoding fits a Close frame: at most 123 bytes (125 - 2 for code)."""
    long_ascii = st.text(st.characters(max_codepoint=127), min_size=100, max_size=123)
    any_text = st.text(max_size=123).map(
        lambda s: s.encode("utf-8")[:123].decode("utf-8", "ignore")
    )
    return st.one_of(any_text, long_ascii)


# -- raw wire frames -------------------------------------------------------------------------
LENGTH_FORMS = ("minimal", "16", "64", "top-bit")


@dataclass(frozen=True)
class WireFrame:
    """A frame as header fields, not necessarily valid; ``to_bytes`` writes it verbatim.

    ``length_form`` is how the payload length is written: ``minimal`` (RFC 6455 §5.2's MUST
    for senders), ``16``/``64`` (the 16- or 64-bit form even when a shorter one fits) or
    ``top-bit`` (the 64-bit form with its most significant bit set, which §5.2 forbids).
    """

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    key: bytes
    payload: bytes
    length_form: str = "minimal"

    def to_bytes(self) -> bytes:
        first = (0x80 if self.fin else 0) | (self.rsv << 4) | self.opcode
        mask_bit = 0x80 if self.masked else 0
        length = len(self.payload)
        form = self.length_form
        if form == "16" and length > 0xFFFF:
            form = "64"
        if form == "minimal":
            form = "7" if length < 126 else "16" if length < 0x10000 else "64"
        if form == "7":
            header = bytes((first, mask_bit | length))
        elif form == "16":
            header = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
        elif form == "64":
            header = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
        else:
            header = bytes((first, mask_bit | 127)) + ((1 << 63) | length).to_bytes(8, "big")
        if not self.masked:
            return header + self.payload
        key_stream = _repeat_to(self.key, length)
        return (
            header + self.key + bytes(a ^ b for a, b in zip(self.payload, key_stream, strict=True))
        )

    @property
    def non_minimal_length(self) -> bool:
        """The length is written in a longer form than RFC 6455 §5.2 lets a sender use."""
        length = len(self.payload)
        if self.length_form == "16":
            return length < 126
        if self.length_form == "64":
            return length < 0x10000
        return False


@st.composite
def messages_as_wire_frames(draw: st.DrawFn, masked: bool) -> list[WireFrame]:
    """One data message cut into fragments (RFC 6455 §5.4), with control frames in between."""
    opcode = draw(st.sampled_from((Opcode.TEXT, Opcode.BINARY)))
    if opcode == Opcode.TEXT:
        data = draw(st.one_of(valid_utf8_bytes(60), utf8ish_bytes(4)))
    else:
        data = draw(st.binary(max_size=60))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    bounds = [0, *cuts, len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    out: list[WireFrame] = []
    for index, piece in enumerate(pieces):
        if index and draw(st.integers(0, 3)) == 0:
            out.append(draw(control_wire_frames(masked)))
        out.append(
            WireFrame(
                fin=index == len(pieces) - 1,
                rsv=0,
                opcode=opcode if index == 0 else Opcode.CONTINUATION,
                masked=masked,
                key=draw(masking_keys),
                payload=piece,
            )
        )
    return out


@st.composite
def close_payloads(draw: st.DrawFn) -> bytes:
    """Close payloads, valid or not: empty, one byte, any code, a reason that may be bad UTF-8."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return b""
    if kind == 1:
        return draw(st.binary(min_size=1, max_size=1))
    code = draw(st.one_of(valid_close_codes(), invalid_close_codes()))
    reason = draw(st.one_of(close_reasons().map(lambda s: s.encode("utf-8")), utf8ish_bytes(3)))
    return code.to_bytes(2, "big") + reason[:123]


@st.composite
def control_wire_frames(draw: st.DrawFn, masked: bool) -> WireFrame:
    opcode = draw(st.sampled_from(CONTROL_OPCODES))
    payload = draw(close_payloads()) if opcode == Opcode.CLOSE else draw(control_payloads())
    return WireFrame(
        fin=True, rsv=0, opcode=opcode, masked=masked, key=draw(masking_keys), payload=payload
    )


@st.composite
def mutated(draw: st.DrawFn, frame: WireFrame) -> WireFrame:
    """``frame`` with one header field pushed somewhere RFC 6455 may forbid."""
    field = draw(st.sampled_from(("fin", "rsv", "opcode", "masked", "length", "payload")))
    if field == "fin":
        return replace(frame, fin=not frame.fin)
    if field == "rsv":
        return replace(frame, rsv=draw(st.integers(1, 7)))
    if field == "opcode":
        return replace(frame, opcode=draw(st.integers(0, 15)))
    if field == "masked":
        return replace(frame, masked=not frame.masked)
    if field == "length":
        return replace(frame, length_form=draw(st.sampled_from(LENGTH_FORMS[1:])))
    # A control frame grown past 125 bytes (RFC 6455 §5.5), or a data frame's payload swapped.
    return replace(frame, payload=draw(st.binary(min_size=126, max_size=200)))


@st.composite
def wire_streams(draw: st.DrawFn, masked: bool, max_mutations: int = 2) -> list[WireFrame]:
    """A plausible conversation (messages and control frames), then a few broken fields."""
    items = draw(
        st.lists(
            st.one_of(
                messages_as_wire_frames(masked), control_wire_frames(masked).map(lambda f: [f])
            ),
            max_size=4,
        )
    )
    stream = [frame for item in items for frame in item]
    if stream:
        for _ in range(draw(st.integers(0, max_mutations))):
            index = draw(st.integers(0, len(stream) - 1))
            stream[index] = draw(mutated(stream[index]))
    return stream


@st.composite
def any_wire_frames(draw: st.DrawFn) -> WireFrame:
    """A frame with every header field drawn freely (short payloads)."""
    return WireFrame(
        fin=draw(st.booleans()),
        rsv=draw(st.one_of(st.just(0), st.integers(0, 7))),
        opcode=draw(st.integers(0, 15)),
        masked=draw(st.booleans()),
        key=draw(masking_keys),
        payload=draw(st.binary(max_size=140)),
        length_form=draw(st.sampled_from(LENGTH_FORMS)),
    )


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is UTF-8: only then does a lenient decode give it back unchanged."""
    return data.decode("utf-8", "replace").encode("utf-8") == data


# The edge sequences that are not UTF-8 on their own: inserted between characters of valid
# text, each makes it invalid (a truncated one is followed by a lead byte, or ends it).
INVALID_UTF8 = tuple(edge for edge in UTF8_EDGES if not _is_utf8(edge))


@st.composite
def doubly_broken_text(draw: st.DrawFn, masked: bool) -> bytes:
    """A conversation ending in a text message that is not UTF-8 and breaks one more rule:
    one of its frames gets a broken header field (RSV bits, opcode, FIN, masking, length
    form, a payload past 125 bytes), or it starts inside a fragmented message, or it opens
    with a continuation frame, or it is longer than a small message limit."""
    text = draw(valid_utf8_bytes(40))
    at = draw(st.sampled_from([i for i in range(len(text) + 1) if _is_utf8(text[:i])]))
    data = text[:at] + draw(st.sampled_from(INVALID_UTF8)) + text[at:]
    key = draw(masking_keys)
    frames = [WireFrame(True, 0, Opcode.TEXT, masked, key, data)]
    if draw(st.booleans()):  # the same bad text, fragmented
        cut = draw(st.integers(0, len(data)))
        frames = [
            WireFrame(False, 0, Opcode.TEXT, masked, key, data[:cut]),
            WireFrame(True, 0, Opcode.CONTINUATION, masked, key, data[cut:]),
        ]
    how = draw(st.sampled_from(("field", "inside", "orphan", "big")))
    if how == "field":
        index = draw(st.integers(0, len(frames) - 1))
        frames[index] = draw(mutated(frames[index]))
    elif how == "inside":  # RFC 6455 §5.4: no new message inside a fragmented one
        frames.insert(0, WireFrame(False, 0, Opcode.BINARY, masked, key, b"x"))
    elif how == "orphan":  # a continuation frame with no message in progress
        frames[0] = replace(frames[0], opcode=Opcode.CONTINUATION)
    else:  # past any message limit up to 200 bytes
        frames[-1] = replace(frames[-1], payload=frames[-1].payload + b"a" * 200)
    before = draw(st.lists(messages_as_wire_frames(masked), max_size=2))
    return b"".join(frame.to_bytes() for group in [*before, frames] for frame in group)


def hostile_streams(masked: bool) -> st.SearchStrategy[bytes]:
    """Byte streams for robustness properties: raw noise, broken conversations, loose frames."""
    return st.one_of(
        st.binary(max_size=300),
        wire_streams(masked, max_mutations=3).map(lambda fs: b"".join(f.to_bytes() for f in fs)),
        st.lists(any_wire_frames(), max_size=4).map(lambda fs: b"".join(f.to_bytes() for f in fs)),
    )


_RUN_OPCODES = (Opcode.TEXT, Opcode.BINARY) * 4 + (Opcode.CONTINUATION, Opcode.PING)


@st.composite
def whole_messages(draw: st.DrawFn, max_size: int = 6) -> bytes:
    """A server's common read: whole masked messages in one frame each, binary or text
    (valid UTF-8, or UTF-8-ish that may not be), several to a read."""
    messages = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just(0x82), payloads(120)),
                st.tuples(st.just(0x81), valid_utf8_bytes(40)),
                st.tuples(st.just(0x81), utf8ish_bytes()),
            ),
            max_size=max_size,
        )
    )
    return b"".join(wire_frame(first, data, draw(masking_keys)) for first, data in messages)


@st.composite
def whole_message_runs(draw: st.DrawFn, masked: bool) -> bytes:
    """A run of whole messages in one frame, the batch parsers' common case (text often
    valid UTF-8, lengths at the encodings' edges, now and then one with a header field
    broken), then any stream: where a run stops is what the batch parsers must agree on."""
    run: list[WireFrame] = []
    for _ in range(draw(st.integers(0, 6))):
        # Mostly whole messages, beside the frames a run stops at: a fragment, a final
        # CONTINUATION frame, a control frame.
        opcode = draw(st.sampled_from(_RUN_OPCODES))
        message = WireFrame(
            fin=draw(st.integers(0, 7)) > 0,
            rsv=0,
            opcode=opcode,
            masked=masked,
            key=draw(masking_keys),
            payload=draw(utf8ish_bytes() if opcode == Opcode.TEXT else payloads(120)),
        )
        if draw(st.integers(0, 5)) == 0:
            message = draw(mutated(message))
        run.append(message)
    return b"".join(f.to_bytes() for f in run) + draw(hostile_streams(masked))


@st.composite
def conversations(
    draw: st.DrawFn, max_mutations: int = 2
) -> tuple[Role, list[WireFrame], list[int]]:
    """A role, a (possibly broken) stream of frames sent to it, and where reads cut it."""
    role = draw(st.sampled_from([Role.SERVER, Role.CLIENT]))
    stream = draw(wire_streams(role == Role.SERVER, max_mutations))
    return role, stream, draw(cut_points(sum(len(f.to_bytes()) for f in stream)))


def two_frames_cut_inside_the_second(role: Role) -> tuple[Role, list[WireFrame], list[int]]:
    """The read pattern that once lost a frame: a whole frame, then the next one's header and
    part of its payload, then the rest."""
    masked = role == Role.SERVER
    frame = WireFrame(True, 0, Opcode.TEXT, masked, b"\x01\x02\x03\x04", b"abc")
    header = 6 if masked else 2
    return role, [frame, frame], [len(frame.to_bytes()) + header + 1]


# -- what a peer library makes of a stream (for differential properties) ---------------------
Unit = tuple[Any, ...]


def wsproto_parse(data: bytes, client: bool) -> tuple[list[Unit], int | None]:
    """wsproto's ``FrameProtocol`` over the whole of ``data``: (units, close code if it failed).

    Units are what wsproto reports: ``("message", opcode, str | bytes)`` once a message is
    complete, ``("ping" | "pong", payload)``, ``("close", code, reason)`` (parsing stops
    there). ``client`` is wsproto's role: True parses unmasked server frames.
    """
    protocol = FrameProtocol(client=client, extensions=[])
    protocol.receive_bytes(data)
    units: list[Unit] = []
    text: list[str] = []
    binary: list[bytes] = []
    try:
        for f in protocol.received_frames():
            payload = f.payload
            if isinstance(payload, tuple):  # a Close: wsproto parsed (code, reason)
                units.append(("close", int(payload[0]), payload[1]))
            elif isinstance(payload, str):
                text.append(payload)  # a piece of a text message, already decoded
            elif f.opcode in (WsprotoOpcode.PING, WsprotoOpcode.PONG):
                units.append((f.opcode.name.lower(), bytes(payload)))
            else:
                binary.append(bytes(payload))
            if not f.opcode.iscontrol() and f.message_finished:
                is_text = f.opcode == WsprotoOpcode.TEXT
                message = "".join(text) if is_text else b"".join(binary)
                units.append(("message", int(f.opcode), message))
                text, binary = [], []
    except ParseFailed as exc:
        return units, int(exc.code)
    return units, None
