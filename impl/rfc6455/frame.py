"""The RFC 6455 §5 codec: frames, masking, and an incremental frame parser.

Invariants:
- No I/O here. ``FrameParser`` takes bytes in any chunking and hands out whole frames; it
  never drops bytes that follow a frame in the same chunk, and it yields every valid frame
  that precedes a bad one before raising for the bad one.
- A parsed frame's payload is unmasked; the parser checks the frame header (RSV bits no
  extension claims, reserved opcodes, control-frame rules, masking direction, the 64-bit
  length's top bit, the size limit) as soon as the header bytes are there, before the payload.
- ``FrameParser.next_frames`` parses every complete frame in the buffer in one call (compiled
  when the accelerator is built), flat as first header byte and payload, no object per frame;
  ``parse_from`` does the same straight out of a read when nothing is buffered.
- Fragment sequencing, UTF-8 and close-payload semantics belong to the connection, which
  knows the message in progress; helpers for close payloads live here so both roles share them.
  The one exception: asked to, ``next_frames`` decodes a final TEXT frame without RSV bits
  (the common whole message) in the same pass; one that is not UTF-8 stays bytes, so the
  connection still decides which error a bad frame fails with.
- ``FrameParser.next_messages`` goes further for the common case: each whole message in one
  frame (FIN, no RSV bit, TEXT or BINARY, valid UTF-8 for text) becomes its message, or the
  event holding it, in one call (compiled when the accelerator is built); it stops, without
  consuming it, at the first frame that is anything else, so it decides no error.
  ``FrameParser.answer_from`` is the server's read in the same pass, with each message
  handed to the handler's ``on_message`` and its reply framed as it comes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import Any, Literal, NoReturn, Protocol

from . import speedups
from .errors import (
    InvalidPayload,
    MessageTooBig,
    ProtocolError,
    is_valid_close_code,
)

__all__ = [
    "MAX_CONTROL_PAYLOAD",
    "Frame",
    "FrameParser",
    "Opcode",
    "Role",
    "build_close_payload",
    "mask",
    "parse_close_payload",
    "parsed_frame",
    "unmask",
    "wire_frame",
]


class Opcode(IntEnum):
    """Frame opcodes, RFC 6455 §5.2; every other value is reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA

    @property
    def is_control(self) -> bool:
        return self >= 0x8


class Role(IntEnum):
    """Which side of the connection we are; the pulsar API spells it ``kind=0`` or ``1``."""

    SERVER = 0  # parses masked client frames, sends unmasked frames
    CLIENT = 1  # parses unmasked server frames, sends masked frames


# RFC 6455 §5.5: all control frames MUST have a payload length of 125 bytes or less.
MAX_CONTROL_PAYLOAD = 125
_KNOWN_OPCODES = frozenset(int(op) for op in Opcode)
# Opcode members by value, for the parser's hot path (calling the enum is slower).
_OPCODES: dict[int, Opcode] = {int(op): op for op in Opcode}
_new_frame = object.__new__
# Versions whose framing is the one of RFC 6455 (hybi-07, hybi-08 and 13 share it).
_SUPPORTED_VERSIONS = frozenset({None, 7, 8, 13})


def _mask_python(data: bytes | bytearray | memoryview, masking_key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``masking_key`` (RFC 6455 §5.3), in pure Python.

    Masking is its own inverse. The work is done on one big integer, not byte by byte: a
    per-byte Python loop is a hundred times slower on large payloads.
    """
    if not isinstance(masking_key, bytes):
        masking_key = memoryview(masking_key).tobytes()
    if len(masking_key) != 4:
        raise ValueError("a masking key is exactly 4 bytes")
    if not isinstance(data, bytes):
        # Any bytes-like object, as the compiled twin takes; a view's len() counts items, not
        # bytes, and int.from_bytes would copy it anyway.
        data = memoryview(data).tobytes()
    length = len(data)
    if length == 0:
        return b""
    repeats, rest = divmod(length, 4)
    key_stream = masking_key * repeats + masking_key[:rest]
    value = int.from_bytes(data, "little") ^ int.from_bytes(key_stream, "little")
    return value.to_bytes(length, "little")


def _mask_slice_python(
    buffer: bytearray | bytes | memoryview, masking_key: bytes, start: int, end: int
) -> bytes:
    """``buffer[start:end]`` masked from key octet 0, read through a view: the parser unmasks
    a payload straight out of its receive buffer without copying the slice first."""
    if not 0 <= start <= end <= len(buffer):
        raise ValueError(f"slice [{start}:{end}] is outside a buffer of {len(buffer)} bytes")
    with memoryview(buffer) as view:
        return _mask_python(view[start:end], masking_key)


#: ``mask(data, masking_key) -> bytes``: XOR ``data`` with the 4-byte ``masking_key``
#: (RFC 6455 §5.3); its own inverse. The compiled accelerator when it is built (about as fast
#: as a memory copy), else ``_mask_python``; ``RFC6455_NO_SPEEDUPS=1`` forces pure Python.
mask = speedups.choose("mask", _mask_python)
#: ``buffer[start:end]`` masked, as the parser needs it (compiled, or ``_mask_slice_python``).
_mask_slice = speedups.choose("mask_slice", _mask_slice_python)

unmask = mask

#: A validated frame header: (first byte, payload length, payload start, masking key).
_Header = tuple[int, int, int, bytes | None]


def _read_header_python(
    buf: bytearray | bytes | memoryview,
    pos: int,
    expect_masked: bool,
    max_frame_size: int | None,
    rsv_mask: int,
) -> _Header | Literal[False] | None:
    """The frame header at ``buf[pos:]`` (RFC 6455 §5.2): (first byte, payload length,
    payload start, masking key); ``None`` until all of it has arrived. Raises
    ``ProtocolError`` (or ``MessageTooBig``) for a header the connection must fail on; the
    compiled twin returns ``False`` there instead and the caller asks this one why.
    """
    if not 0 <= pos <= len(buf):
        raise ValueError(f"position {pos} is outside a buffer of {len(buf)} bytes")
    available = len(buf) - pos
    if available < 2:
        return None
    first, second = buf[pos], buf[pos + 1]
    opcode = first & 0x0F
    if first & 0x70 or opcode > 0x2:
        # The common data frame without RSV bits needs no further look at its first byte.
        _check_first_byte(first, rsv_mask)
    masked = second >= 0x80
    # RFC 6455 §5.1: a server MUST close the connection upon receiving an unmasked frame;
    # a client MUST close it upon receiving a masked frame.
    if masked is not expect_masked:
        if masked:
            raise ProtocolError("server frames must not be masked (RFC 6455 §5.1)")
        raise ProtocolError("client frames must be masked (RFC 6455 §5.1)")
    length = second & 0x7F
    header_size = 2
    if opcode >= 0x8 and length > MAX_CONTROL_PAYLOAD:
        raise ProtocolError("control frames carry at most 125 bytes (RFC 6455 §5.5)")
    if length == 126:
        header_size = 4
        if available < header_size:
            return None
        length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
    elif length == 127:
        header_size = 10
        if available < header_size:
            return None
        length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        # RFC 6455 §5.2: the most significant bit of the 64-bit length MUST be 0.
        if length >> 63:
            raise ProtocolError("the 64-bit payload length has its top bit set")
    if max_frame_size is not None and length > max_frame_size:
        raise MessageTooBig(f"a frame of {length} bytes is over the limit of {max_frame_size}")
    masking_key: bytes | None = None
    if masked:
        if available < header_size + 4:
            return None
        masking_key = bytes(buf[pos + header_size : pos + header_size + 4])
        header_size += 4
    return first, length, pos + header_size, masking_key


def _check_first_byte(first: int, rsv_mask: int) -> None:
    opcode = first & 0x0F
    if opcode not in _KNOWN_OPCODES:
        raise ProtocolError(f"opcode {opcode:#x} is reserved (RFC 6455 §5.2)")
    rsv = (first >> 4) & 0x07
    if opcode >= 0x8:
        # RFC 6455 §5.5: control frames MUST NOT be fragmented. No extension here defines
        # RSV bits on control frames (RFC 7692 §6.1 forbids compressing them).
        if not first & 0x80:
            raise ProtocolError("control frames must not be fragmented (RFC 6455 §5.5)")
        if rsv:
            raise ProtocolError("RSV bits set on a control frame")
    elif rsv & ~rsv_mask:
        # RFC 6455 §5.2: a nonzero RSV bit no negotiated extension defines fails the
        # connection.
        raise ProtocolError(f"RSV bits {rsv:03b} set without an extension that defines them")


#: The frame header parser the ``FrameParser`` uses: compiled, or ``_read_header_python``.
_read_header = speedups.choose("read_header", _read_header_python)

#: Frames parsed in one pass: (items, end, refused). ``items`` is flat, the first header
#: byte then the unmasked payload of each frame (bytes, or a whole text message's ``str``),
#: so no object is made per frame; ``end`` is where the first frame not returned starts;
#: ``refused`` says its header is a bad one.
_Batch = tuple[list[Any], int, bool]


def _parse_frames_python(
    buf: bytearray | bytes | memoryview,
    pos: int,
    expect_masked: bool,
    max_frame_size: int | None,
    rsv_mask: int,
    decode_text: bool = False,
) -> _Batch:
    """Every complete frame from ``buf[pos:]`` (RFC 6455 §5.2, §5.3) as a ``_Batch``: the
    reference for the compiled ``parse_frames``. It stops at the first frame that has not
    fully arrived or whose header ``_read_header_python`` raises for; the caller asks that
    function for the error, so which error wins is decided in one place for both paths.

    With ``decode_text``, a final TEXT frame without RSV bits (a whole message, unless one
    is in progress) comes out as its ``str`` when it is valid UTF-8 (§8.1); otherwise as
    bytes, and the connection judges it in its own order of checks.
    """
    items: list[Any] = []
    append = items.append
    while True:
        try:
            header = _read_header_python(buf, pos, expect_masked, max_frame_size, rsv_mask)
        except ProtocolError:
            return items, pos, True
        if header is None or header is False:  # (the annotation shares the compiled twin's)
            return items, pos, header is False
        first, length, start, masking_key = header
        end = start + length
        if len(buf) < end:
            return items, pos, False
        append(first)
        if masking_key is None:
            payload = bytes(buf[start:end])
        else:
            payload = _mask_slice_python(buf, masking_key, start, end)
        if decode_text and first == 0x81:
            try:
                append(payload.decode("utf-8"))
            except UnicodeDecodeError:
                append(payload)
        else:
            append(payload)
        pos = end


#: The batch frame parser the connection uses: compiled, or ``_parse_frames_python``.
_parse_frames = speedups.choose("parse_frames", _parse_frames_python)

#: First header bytes of a whole message in one frame: FIN, no RSV bit, TEXT or BINARY.
_WHOLE_TEXT = 0x80 | Opcode.TEXT
_WHOLE_BINARY = 0x80 | Opcode.BINARY


def _whole_message_at(
    buf: bytearray | bytes | memoryview,
    pos: int,
    expect_masked: bool,
    max_frame_size: int | None,
    rsv_mask: int,
) -> tuple[bytes | str, int] | None:
    """The whole message in one frame at ``buf[pos:]`` (FIN, no RSV bit, TEXT or BINARY,
    valid UTF-8 for text) as (its ``str`` for text, bytes for binary; the frame's end), or
    ``None`` when that frame is anything else, has not fully arrived or has a header
    ``_read_header_python`` raises for: the caller handles it."""
    try:
        header = _read_header_python(buf, pos, expect_masked, max_frame_size, rsv_mask)
    except ProtocolError:
        return None
    if not header:  # (``None``: incomplete; the annotation shares the compiled twin's)
        return None
    first, length, start, masking_key = header
    end = start + length
    if (first != _WHOLE_TEXT and first != _WHOLE_BINARY) or len(buf) < end:
        return None
    if masking_key is None:
        payload = bytes(buf[start:end])
    else:
        payload = _mask_slice_python(buf, masking_key, start, end)
    if first == _WHOLE_BINARY:
        return payload, end
    try:
        return payload.decode("utf-8"), end
    except UnicodeDecodeError:
        return None


def _parse_messages_python(
    buf: bytearray | bytes | memoryview,
    pos: int,
    expect_masked: bool,
    max_frame_size: int | None,
    rsv_mask: int,
    text_type: Callable[[str], Any] | None,
    binary_type: Callable[[bytes], Any] | None,
    out: list[Any],
) -> int:
    """Append to ``out`` each whole message in one frame from ``buf[pos:]`` (FIN, no RSV bit,
    TEXT or BINARY; RFC 6455 §5.2, §5.3): a text message's ``str`` (strict UTF-8, §8.1) or a
    binary message's bytes, or ``text_type(str)`` / ``binary_type(bytes)`` when the type is
    not ``None``. Stop at the first frame that is not such a message, has not fully arrived,
    has a header ``_read_header_python`` raises for or is not valid UTF-8, and return where
    it starts: the caller handles that frame. The reference for the compiled
    ``parse_messages``, which makes the instances without calling the types (the event
    dataclasses, whose ``__init__`` only stores ``data``).
    """
    if type(out) is not list:
        raise TypeError("parse_messages() appends to a list")
    while found := _whole_message_at(buf, pos, expect_masked, max_frame_size, rsv_mask):
        message, pos = found
        if isinstance(message, bytes):
            out.append(message if binary_type is None else binary_type(message))
        else:
            out.append(message if text_type is None else text_type(message))
    return pos


#: The whole-message batch parser: compiled, or ``_parse_messages_python``.
_parse_messages = speedups.choose("parse_messages", _parse_messages_python)


def parsed_frame(
    first: int, payload: bytes, version: int | None = 13, masking_key: bytes | None = None
) -> Frame:
    """The ``Frame`` for a parsed header's first byte and its unmasked payload, made without
    ``Frame.__init__``'s checks: the parser has already checked the header."""
    frame = _new_frame(Frame)
    frame.opcode = _OPCODES[first & 0x0F]
    frame.payload = payload
    frame.final = first >= 0x80
    frame.rsv1 = (first >> 6) & 1
    frame.rsv2 = (first >> 5) & 1
    frame.rsv3 = (first >> 4) & 1
    frame.masking_key = masking_key
    frame.version = version
    return frame


def _wire_frame_python(
    first: int, payload: bytes | bytearray | memoryview, masking_key: bytes | None
) -> bytes:
    """One frame's wire bytes (RFC 6455 §5.2): ``first`` as its first header byte, the
    payload length, then the masking key and the masked payload (§5.3), or the payload as it
    is when ``masking_key`` is ``None``. The reference for the compiled ``wire_frame``."""
    length = len(payload)
    masked = 0 if masking_key is None else 0x80
    # RFC 6455 §5.2: the minimal number of bytes MUST be used to encode the length.
    if length < 126:
        header = bytes((first, masked | length))
    elif length < 0x10000:
        header = bytes((first, masked | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, masked | 127)) + length.to_bytes(8, "big")
    if masking_key is None:
        return header + payload
    return header + masking_key + mask(payload, masking_key)


#: ``wire_frame(first, payload, masking_key) -> bytes``: what ``_wire_frame_python`` gives,
#: built in one allocation by the compiled accelerator when it is in use. What every message
#: without an extension is sent as, without a ``Frame`` object.
wire_frame = speedups.choose("wire_frame", _wire_frame_python)


#: What ``answer_messages`` stopped on, the second item of its result: a frame it does not
#: answer (or the end of the input);
#: a reply it does not send itself (the caller does); the hook's exception; an error of
#: ours met after a hook ran (the connection fails with 1011).
ANSWER_STOPPED, ANSWER_REPLY, ANSWER_RAISED, ANSWER_FAULT = 0, 1, 2, 3


class _Answering(Protocol):
    """What ``answer_messages`` calls: the server's ``WS`` handler (``rfc6455.handler``)."""

    def on_message(self, environ: Any, message: str | bytes) -> object: ...


def _answer_messages_python(
    buf: bytearray | bytes | memoryview,
    pos: int,
    expect_masked: bool,
    max_frame_size: int | None,
    rsv_mask: int,
    handler: _Answering,
    environ: Any,
    connection: Any,
    open_state: object,
    out: list[Any],
) -> tuple[int, int, Any]:
    """The server's read, answered: for each whole message in one frame from ``buf[pos:]``
    (what ``_parse_messages_python`` makes of it) call ``handler.on_message(environ,
    message)``, and append to ``out`` the unmasked frame (RFC 6455 §5.1) of an exact ``str``
    (text) or ``bytes`` (binary) reply while ``connection.state is open_state`` (§5.5.1:
    nothing follows our Close).

    Returns (end, outcome, value): ``end`` is where the first frame not handled starts; the
    outcome is one of the ``ANSWER_*`` codes, with the reply or the exception as ``value``.
    A hook that closes or fails the connection stops its replies, not the messages that
    came with its own (as ``Connection.next_event`` hands out what one read held). The
    reference for
    the compiled ``answer_messages``; neither decides an error: a frame that is not a whole
    valid message is left at ``end`` for the connection."""
    if type(out) is not list:
        raise TypeError("answer_messages() appends to a list")
    start = pos
    try:
        while found := _whole_message_at(buf, pos, expect_masked, max_frame_size, rsv_mask):
            message, pos = found
            try:
                reply = handler.on_message(environ, message)
            except BaseException as exc:  # (handed back: the caller re-raises what it must)
                return pos, ANSWER_RAISED, exc
            if reply is not None and type(reply) is not str and type(reply) is not bytes:
                return pos, ANSWER_REPLY, reply
            if connection.state is not open_state:
                continue  # (the messages that came with it are still handed out)
            if type(reply) is str:
                try:
                    encoded = reply.encode("utf-8")
                except UnicodeEncodeError:
                    return pos, ANSWER_REPLY, reply  # sent the caller's way, which raises
                out.append(_wire_frame_python(_WHOLE_TEXT, encoded, None))
            elif type(reply) is bytes:
                out.append(_wire_frame_python(_WHOLE_BINARY, reply, None))
    except BaseException as exc:
        if pos == start:
            raise  # before any hook ran: nothing consumed, the caller reads the usual way
        # A fault of ours (no memory) after a hook ran: what it handled stays handled (a
        # second pass would call the hooks again); the caller fails the connection, 1011.
        return pos, ANSWER_FAULT, exc
    return pos, ANSWER_STOPPED, None


#: The server's answering pass over a read: compiled, or ``_answer_messages_python``.
_answer_messages = speedups.choose("answer_messages", _answer_messages_python)


def unmasked_frame(opcode: int, payload: bytes) -> bytes:
    """The wire bytes of one final, unmasked frame without RSV bits (RFC 6455 §5.2): what a
    server sends for a message no extension transforms."""
    return wire_frame(0x80 | opcode, payload, None)


def masked_frame(opcode: int, payload: bytes, masking_key: bytes) -> bytes:
    """The wire bytes of one final frame without RSV bits, masked with ``masking_key`` (RFC
    6455 §5.2, §5.3): what a client sends for a message no extension transforms."""
    return wire_frame(0x80 | opcode, payload, masking_key)


def build_close_payload(code: int | None = None, reason: str = "") -> bytes:
    """The payload of a Close frame: a 2-byte code then a UTF-8 reason (RFC 6455 §5.5.1)."""
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"{code} is not a close code that may be sent")
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise ValueError("a close reason is at most 123 bytes of UTF-8")
    return payload


def parse_close_payload(payload: bytes) -> tuple[int | None, str]:
    """The code and reason of a received Close frame, validated (RFC 6455 §5.5.1, §7.4).

    An empty payload means no status (returned as ``None``; reported as 1005).
    """
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise ProtocolError("a close payload of one byte has no complete status code")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolError(f"close code {code} is not allowed on the wire")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload("the close reason is not valid UTF-8") from exc
    return code, reason


class Frame:
    """One WebSocket frame, pulsar-style.

    ``Frame(message, opcode=None, ...)``: ``message`` is ``str`` (text, encoded as UTF-8) or
    bytes-like (binary); with no ``opcode`` it is inferred from the message's type. ``final``
    defaults to ``False`` as in pulsar: a whole message is ``Frame(msg, final=True)``.
    ``masking_key`` (4 bytes) masks the frame on the wire, as a client must.
    ``build_frame(message=None)`` gives the wire bytes, of ``message`` when given.
    """

    __slots__ = ("final", "masking_key", "opcode", "payload", "rsv1", "rsv2", "rsv3", "version")

    def __init__(
        self,
        message: str | bytes | bytearray | memoryview | None = None,
        opcode: int | None = None,
        version: int | None = None,
        masking_key: bytes | None = None,
        final: bool = False,
        rsv1: int = 0,
        rsv2: int = 0,
        rsv3: int = 0,
    ) -> None:
        if version not in _SUPPORTED_VERSIONS:
            raise ValueError(f"WebSocket version {version} is not supported (13 is)")
        if isinstance(message, str):
            payload = message.encode("utf-8")
            inferred = Opcode.TEXT
        elif message is None:
            payload = b""
            inferred = Opcode.BINARY
        else:
            payload = bytes(message)
            inferred = Opcode.BINARY
        op = inferred if opcode is None else opcode
        member = _OPCODES.get(op)
        if member is None:
            raise ValueError(f"opcode {op:#x} is reserved (RFC 6455 §5.2)")
        self.opcode = member
        if member >= 0x8:
            if len(payload) > MAX_CONTROL_PAYLOAD:
                raise ValueError("control frames carry at most 125 bytes (RFC 6455 §5.5)")
            final = True  # RFC 6455 §5.5: control frames are never fragmented
        if masking_key is not None and len(masking_key) != 4:
            raise ValueError("a masking key is exactly 4 bytes")
        self.payload = payload
        self.final = bool(final)
        self.rsv1 = 1 if rsv1 else 0
        self.rsv2 = 1 if rsv2 else 0
        self.rsv3 = 1 if rsv3 else 0
        self.masking_key = masking_key
        self.version = version

    # -- constructors for the frames every endpoint sends ----------------------------------
    @classmethod
    def ping(cls, payload: bytes | str = b"", masking_key: bytes | None = None) -> Frame:
        return cls(_as_bytes(payload), Opcode.PING, masking_key=masking_key, final=True)

    @classmethod
    def pong(cls, payload: bytes | str = b"", masking_key: bytes | None = None) -> Frame:
        return cls(_as_bytes(payload), Opcode.PONG, masking_key=masking_key, final=True)

    @classmethod
    def close(
        cls, code: int | None = None, reason: str = "", masking_key: bytes | None = None
    ) -> Frame:
        payload = build_close_payload(code, reason)
        return cls(payload, Opcode.CLOSE, masking_key=masking_key, final=True)

    @classmethod
    def continuation(
        cls,
        data: bytes | str,
        final: bool = False,
        masking_key: bytes | None = None,
    ) -> Frame:
        return cls(_as_bytes(data), Opcode.CONTINUATION, masking_key=masking_key, final=final)

    # -- pulsar names ----------------------------------------------------------------------
    @property
    def body(self) -> bytes:
        """The (unmasked) payload."""
        return self.payload

    @property
    def msg(self) -> bytes:
        """The frame as it goes on the wire."""
        return self.build_frame()

    @property
    def is_control(self) -> bool:
        return self.opcode.is_control

    @property
    def is_close(self) -> bool:
        return self.opcode == Opcode.CLOSE

    @property
    def is_ping(self) -> bool:
        return self.opcode == Opcode.PING

    @property
    def is_pong(self) -> bool:
        return self.opcode == Opcode.PONG

    @property
    def is_message(self) -> bool:
        """A data frame (text, binary or continuation)."""
        return not self.opcode.is_control

    def mask(self, data: bytes) -> bytes:
        """``data`` XOR this frame's masking key (RFC 6455 §5.3)."""
        if self.masking_key is None:
            raise ValueError("this frame has no masking key")
        return mask(data, self.masking_key)

    unmask = mask

    def build_frame(self, message: str | bytes | bytearray | memoryview | None = None) -> bytes:
        """The wire bytes: header (RFC 6455 §5.2), optional masking key, (masked) payload.

        ``message``, when given, is the payload to send (pulsar's ``build_frame(message)``):
        it wins over the payload given to the constructor, and the header's length is its
        length, so the frame is well formed whichever was given (pulsar put the
        constructor's length in the header, a corrupt frame when the two differed). The
        opcode, FIN, RSV bits and masking key stay this frame's; ``str`` is UTF-8 encoded.
        The frame itself is not changed. A control frame's payload is still at most 125
        bytes (RFC 6455 §5.5), else ``ValueError``.
        """
        payload = self.payload if message is None else self._payload_for(message)
        length = len(payload)
        first = (
            (0x80 if self.final else 0)
            | (self.rsv1 << 6)
            | (self.rsv2 << 5)
            | (self.rsv3 << 4)
            | self.opcode
        )
        mask_bit = 0x80 if self.masking_key is not None else 0
        # RFC 6455 §5.2: the minimal number of bytes MUST be used to encode the length.
        if length < 126:
            header = bytes((first, mask_bit | length))
        elif length < 0x10000:
            header = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
        else:
            header = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
        if self.masking_key is None:
            return header + payload
        return header + self.masking_key + mask(payload, self.masking_key)

    def _payload_for(self, message: str | bytes | bytearray | memoryview) -> bytes:
        """``build_frame``'s ``message`` as payload bytes, held to this frame's opcode."""
        payload = _as_bytes(message)
        if self.opcode >= 0x8 and len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("control frames carry at most 125 bytes (RFC 6455 §5.5)")
        return payload

    def __bytes__(self) -> bytes:
        return self.build_frame()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (
            self.opcode == other.opcode
            and self.payload == other.payload
            and self.final == other.final
            and (self.rsv1, self.rsv2, self.rsv3) == (other.rsv1, other.rsv2, other.rsv3)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        rsv = f"{self.rsv1}{self.rsv2}{self.rsv3}"
        shown = self.payload[:32]
        more = "..." if len(self.payload) > 32 else ""
        return (
            f"Frame({self.opcode.name}, final={self.final}, rsv={rsv}, "
            f"len={len(self.payload)}, {shown!r}{more})"
        )


def _as_bytes(data: bytes | str | bytearray | memoryview) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


class FrameParser:
    """Incremental frame parser (and encoder) for one direction of one connection.

    ``kind=0`` (``Role.SERVER``) parses client frames, which must be masked, and encodes
    unmasked server frames; ``kind=1`` (``Role.CLIENT``) the reverse. ``rsv_mask`` holds the
    RSV bits negotiated extensions claim (0b100 for RSV1); frames using any other RSV bit are
    rejected. ``max_frame_size`` bounds a single frame's payload (``None``: no bound).
    ``decode_text``: ``next_frames`` hands out a final TEXT frame without RSV bits that is
    valid UTF-8 as its ``str`` (for a connection that negotiated no extension).

    Use: ``parser.feed(data)``, then ``for frame in parser.frames(): ...``.
    """

    # Slots: one per open connection, so no per-instance dict (memory, and attribute speed).
    __slots__ = (
        "_buffer",
        "_decode_text",
        "_expect_masked",
        "_pending_header",
        "_pos",
        "max_frame_size",
        "role",
        "rsv_mask",
        "version",
    )

    def __init__(
        self,
        version: int | None = None,
        kind: int = Role.SERVER,
        *,
        max_frame_size: int | None = None,
        rsv_mask: int = 0,
        decode_text: bool = False,
    ) -> None:
        if version not in _SUPPORTED_VERSIONS:
            raise ValueError(f"WebSocket version {version} is not supported (13 is)")
        self.version = version
        self._decode_text = decode_text
        self.role = kind if type(kind) is Role else Role(kind)
        self._expect_masked = self.role == Role.SERVER
        self.max_frame_size = max_frame_size
        self.rsv_mask = rsv_mask
        self._buffer = bytearray()
        self._pos = 0
        # A frame whose header passed validation but whose payload has not fully arrived.
        self._pending_header: _Header | None = None

    @property
    def kind(self) -> int:
        return int(self.role)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed out as frames."""
        return len(self._buffer) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes; nothing is parsed until frames are asked for."""
        if self._pos:
            consumed = self._pos
            del self._buffer[:consumed]
            self._pos = 0
            if self._pending_header is not None:
                # The pending frame's payload start is a buffer position: it moves too.
                first, length, start, masking_key = self._pending_header
                self._pending_header = (first, length, start - consumed, masking_key)
        self._buffer += data

    def frames(self) -> Iterator[Frame]:
        """Yield each complete frame in order; raise ``ProtocolError`` at the first bad one."""
        while True:
            frame = self.next_frame()
            if frame is None:
                return
            yield frame

    def decode(self, data: bytes = b"") -> Frame | None:
        """pulsar's call: feed ``data`` and return the next complete frame, or ``None``."""
        if data:
            self.feed(data)
        return self.next_frame()

    def next_frame(self) -> Frame | None:
        """The next complete frame, or ``None`` until more bytes arrive."""
        header = self._pending_header
        if header is None:
            if len(self._buffer) - self._pos < 2:
                return None  # asked once more after every read: answer it cheaply
            read = _read_header(
                self._buffer, self._pos, self._expect_masked, self.max_frame_size, self.rsv_mask
            )
            if read is None:
                return None
            if read is False:
                self._refuse_header()
            header = read
        first, length, start, masking_key = header
        end = start + length
        buffer = self._buffer
        if len(buffer) < end:
            self._pending_header = header
            return None
        self._pending_header = None
        if masking_key is not None:
            # RFC 6455 §5.3: unmask straight out of the receive buffer (one copy, not three).
            payload = _mask_slice(buffer, masking_key, start, end)
        else:
            payload = bytes(buffer[start:end])
        if len(buffer) == end:
            buffer.clear()
            self._pos = 0
        else:
            self._pos = end
        return parsed_frame(first, payload, self.version, masking_key)

    def next_frames(self) -> list[Any]:
        """Every complete frame in the buffer, consumed, flat as a ``_Batch``'s items: first
        header byte, then unmasked payload (``str`` for a valid whole text message when the
        parser decodes text), per frame; ``[]`` until one is complete.

        Raises for a bad header only when no valid frame precedes it in the batch: the
        frames before it are returned first, and the next call raises.
        """
        buffer = self._buffer
        pos = self._pos
        pending = self._pending_header
        if pending is not None and len(buffer) < pending[2] + pending[1]:
            return []  # the payload of a frame already judged is still arriving
        if len(buffer) - pos < 2:
            return []
        # A frame whose header was judged before its payload was complete may have had its
        # first bytes validated as text already: the connection finishes that one as bytes.
        decode_text = self._decode_text and pending is None
        items, end, refused = _parse_frames(
            buffer, pos, self._expect_masked, self.max_frame_size, self.rsv_mask, decode_text
        )
        if end != pos:
            self._consume(end)
        elif refused:
            self._refuse_header()
        return items

    def next_messages(
        self,
        out: list[Any],
        text_type: Callable[[str], Any] | None = None,
        binary_type: Callable[[bytes], Any] | None = None,
    ) -> None:
        """Append to ``out`` each whole message in one frame at the start of the buffer, and
        consume them (``_parse_messages_python`` says what is appended). The first frame
        that is anything else stays buffered, for ``next_frames``; nothing here raises for
        the peer's bytes, and if the parse itself fails (a fault of ours) nothing was
        appended or consumed."""
        buffer = self._buffer
        pos = self._pos
        if len(buffer) - pos < 2:
            return
        before = len(out)
        try:
            end = _parse_messages(
                buffer,
                pos,
                self._expect_masked,
                self.max_frame_size,
                self.rsv_mask,
                text_type,
                binary_type,
                out,
            )
        except BaseException:
            del out[before:]  # all or nothing: a fault of ours consumes and appends nothing
            raise
        if end != pos:
            self._consume(end)

    def _consume(self, end: int) -> None:
        """Drop the buffer's frames before ``end``, the start of the first frame not handed
        out (the frame judged ahead, if any, was among them)."""
        self._pending_header = None
        if end == len(self._buffer):
            self._buffer.clear()
            self._pos = 0
        else:
            self._pos = end

    def parse_from(
        self, data: bytes | bytearray | memoryview, messages: list[Any] | None = None
    ) -> list[Any]:
        """``feed(data)``, and when nothing was buffered before it, the complete frames at its
        start parsed straight out of ``data`` (no copy into the buffer first), as
        ``next_frames`` gives them; only the bytes after them are buffered. Never raises for
        a bad header: it stays buffered, and ``next_frames`` raises its error. If the parse
        itself fails (a fault of ours), nothing was buffered, consumed or appended.

        With ``messages``, the whole messages in one frame at the start of ``data`` are
        appended to it first, as ``next_messages`` gives them; the frames after them are
        returned."""
        if len(self._buffer) - self._pos:
            self.feed(data)
            return []
        rules = (self._expect_masked, self.max_frame_size, self.rsv_mask)
        start = 0
        before = 0 if messages is None else len(messages)
        try:
            if messages is not None:
                start = _parse_messages(data, 0, *rules, None, None, messages)
            decode_text = self._decode_text and self._pending_header is None
            items, end, _ = _parse_frames(data, start, *rules, decode_text)
        except BaseException:
            if messages is not None:
                del messages[before:]  # all or nothing, as ``next_messages``
            raise
        if end < len(data):
            self.feed(data[end:])
        return items

    def answer_from(
        self,
        data: bytes | bytearray | memoryview,
        handler: _Answering,
        environ: Any,
        connection: Any,
        open_state: object,
        out: list[Any],
    ) -> tuple[int, int, Any] | None:
        """The server's fast read: ``answer_messages`` over ``data`` (see
        ``_answer_messages_python``), when nothing is buffered; ``None`` when something is,
        or when the pass failed before any hook ran (a fault of ours: nothing consumed).
        The caller takes the bytes from ``end`` on the usual way."""
        if len(self._buffer) - self._pos or self._pending_header is not None:
            return None
        try:
            return _answer_messages(
                data,
                0,
                self._expect_masked,
                self.max_frame_size,
                self.rsv_mask,
                handler,
                environ,
                connection,
                open_state,
                out,
            )
        except Exception:
            return None

    def pending_frame(self) -> tuple[int, int] | None:
        """(first header byte, payload length) of a frame whose header has arrived and whose
        payload has not, validating that header now; ``None`` if there is no such frame.

        Lets the connection fail fast on a frame it can already judge (too big, or text
        that is already invalid) before the whole payload arrives.
        """
        if self._pending_header is None:
            header = self._read_header()
            if header is None:
                return None
            self._pending_header = header
        first, length, _, _ = self._pending_header
        return first, length

    def partial_payload(self, start: int) -> bytes:
        """The unmasked payload bytes of the pending frame that have arrived, from ``start``."""
        if self._pending_header is None:
            return b""
        _, length, payload_start, masking_key = self._pending_header
        end = min(len(self._buffer), payload_start + length)
        begin = payload_start + start
        if begin >= end:
            return b""
        if masking_key is None:
            return bytes(self._buffer[begin:end])
        # RFC 6455 §5.3: payload octet i uses key octet i MOD 4, so rotate the key to ``start``.
        shift = start % 4
        return _mask_slice(self._buffer, masking_key[shift:] + masking_key[:shift], begin, end)

    def _read_header(self) -> _Header | None:
        """Validate and consume a frame header: (first byte, length, payload start, key)."""
        header = _read_header(
            self._buffer, self._pos, self._expect_masked, self.max_frame_size, self.rsv_mask
        )
        if header is False:
            self._refuse_header()
        return header

    def _refuse_header(self) -> NoReturn:
        """Raise the error for the header the compiled parser refused: the pure-Python one
        says what is wrong with it."""
        _read_header_python(
            self._buffer, self._pos, self._expect_masked, self.max_frame_size, self.rsv_mask
        )
        raise AssertionError("the compiled frame header parser refused a valid header")

    # -- encoding ----------------------------------------------------------------------------
    def encode(
        self,
        message: str | bytes | bytearray | memoryview | None,
        opcode: int | None = None,
        final: bool = True,
        rsv1: int = 0,
        rsv2: int = 0,
        rsv3: int = 0,
    ) -> bytes:
        """Wire bytes of one outgoing frame, masked with a fresh random key when we are a
        client (RFC 6455 §5.3: the key must be unpredictable)."""
        masking_key = os.urandom(4) if self.role == Role.CLIENT else None
        return Frame(
            message,
            opcode,
            version=self.version,
            masking_key=masking_key,
            final=final,
            rsv1=rsv1,
            rsv2=rsv2,
            rsv3=rsv3,
        ).build_frame()
