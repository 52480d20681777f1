"""The fuzzer's frame reader: the testee's bytes into checked frames and whole messages.

Invariants:
- Bytes are parsed as they arrive, a frame's payload in whatever parts the reads bring; a
  header is checked each time it is looked at, even while incomplete, and every refusal
  (``refusals``) fails the connection through the host, which never stops the parsing.
- A message begins with its first data frame: compressed when deflate was agreed and RSV1
  is set (then inflated frame by frame), text when opcode 1 (then validated as UTF-8 as it
  comes, 1007 on the first invalid byte or when it ends inside a code point).
- Control frames go to the host whole; a message goes to ``deliver`` whole, unless the
  connection has failed by then. Frames are counted always, logged only while the host's
  ``traffic_logged`` and the log is not ``quiet`` (data payloads are then not even kept).
- A header's refusals depend on its first two bytes and the message state alone, so they are
  worked out once per distinct header (9.x read thousands of identical ones).
- An inflate error is the fuzzer's reader raising (``Host.reader_raised``).
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from wsconform.native import deflate, frames, refusals
from wsconform.native.lifecycle import CloseState
from wsconform.native.record import WireLog
from wsconform.native.utf8 import Utf8Validator

__all__ = ["INVALID_PAYLOAD", "PROTOCOL_ERROR", "FrameReader", "Host"]

PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007


class Host(Protocol):
    """The connection a reader reads for: what it reads of it and how it reacts."""

    deflate: deflate.MessageDeflate | None
    flags: CloseState
    traffic_logged: bool

    def fail(self, code: int, reason: str) -> None: ...

    def reader_raised(self, why: str) -> None: ...

    def control_frame(self, opcode: int, payload: bytes) -> None: ...


@dataclass(slots=True)
class _Frame:
    opcode: int
    fin: bool
    rsv: int
    length: int
    mask: bytes | None
    got: int = 0
    parts: list[bytes] = field(default_factory=list)


@functools.lru_cache(maxsize=1024)
def _header_refusals(
    first: int, second: int, compressing: bool, inside_message: bool
) -> tuple[str, ...]:
    """``refusals.header_refusals`` of a header's first two bytes."""
    return tuple(
        refusals.header_refusals(
            bool(first & 0x80),
            (first >> 4) & 0x7,
            first & 0x0F,
            bool(second & 0x80),
            second & 0x7F,
            compressing=compressing,
            inside_message=inside_message,
        )
    )


class FrameReader:
    """The receiving side of one connection, from its opening handshake's end on."""

    def __init__(self, host: Host, log: WireLog, deliver: Callable[[bytes, bool], None]) -> None:
        self.buffer = bytearray()  # received and not yet parsed
        self._host = host
        self._log = log
        self._deliver = deliver
        self._frame: _Frame | None = None
        self._inside_message = False
        self._message_binary = False
        self._message_parts: list[bytes] = []
        self._utf8: Utf8Validator | None = None  # the current text message's, else None
        self._utf8_checker = Utf8Validator()  # reset for each text message
        self._utf8_last = (True, True)
        self._compressed = False

    def process(self) -> bool:
        """Parse one step (a header, or what has arrived of a payload); is there more?"""
        if self._frame is None:
            return self._header()
        frame = self._frame
        need = frame.length - frame.got
        if need >= len(self.buffer):  # all of it: one copy, not a slice and then a copy
            take = bytes(self.buffer)
            self.buffer.clear()
        else:
            take = bytes(self.buffer[:need])
            del self.buffer[:need]
        if frame.mask is not None and take:
            offset = frame.got % 4
            take = frames.apply_mask(take, frame.mask[offset:] + frame.mask[:offset])
        frame.got += len(take)
        self._frame_data(frame, take)
        if frame.got == frame.length:
            self._frame_end(frame)
        return len(self.buffer) > 0

    def _logged(self) -> bool:
        return self._host.traffic_logged and not self._log.quiet

    def _refuse(self, reasons: Sequence[str]) -> None:
        for reason in reasons:
            self._host.fail(PROTOCOL_ERROR, reason)

    def _header(self) -> bool:
        data = self.buffer
        if len(data) < 2:
            return False
        first, second = data[0], data[1]
        compressing = self._host.deflate is not None
        self._refuse(_header_refusals(first, second, compressing, self._inside_message))
        short = second & 0x7F
        extra = 0 if short < 126 else 2 if short == 126 else 8
        size = 2 + extra + (4 if second & 0x80 else 0)
        if len(data) < size:
            return False
        if short == 126:
            length = struct.unpack_from("!H", data, 2)[0]
        elif short == 127:
            length = struct.unpack_from("!Q", data, 2)[0]
        else:
            length = short
        if extra:
            self._refuse(refusals.length_refusals(short, length))
        mask = bytes(data[2 + extra : size]) if second & 0x80 else None
        del data[:size]
        frame = _Frame(first & 0x0F, bool(first & 0x80), (first >> 4) & 0x7, length, mask)
        self._frame = frame
        self._frame_begin(frame)
        return length == 0 or len(data) > 0

    def _frame_begin(self, frame: _Frame) -> None:
        if frame.opcode > 7 or self._inside_message:
            return
        codec = self._host.deflate
        self._inside_message = True
        self._message_binary = frame.opcode == 2
        self._message_parts = []
        self._compressed = codec is not None and frame.rsv == 4
        if self._compressed:
            assert codec is not None
            codec.begin_inflate()
        if frame.opcode == 1:
            self._utf8 = self._utf8_checker
            self._utf8.reset()
            self._utf8_last = (True, True)
        else:
            self._utf8 = None

    def _inflate(self, payload: bytes, last: bool) -> bytes:
        codec = self._host.deflate
        assert codec is not None
        try:
            if last:
                codec.end_inflate()
                return b""
            return codec.inflate(payload)
        except zlib.error as exc:
            self._host.reader_raised(
                "the testee's message does not inflate with the agreed "
                f"{codec.agreed.server_max_window_bits}-bit window ({exc})"
            )
            return b""

    def _frame_data(self, frame: _Frame, payload: bytes) -> None:
        if frame.opcode > 7 or self._logged():
            frame.parts.append(payload)
        if frame.opcode > 7:
            return
        if self._compressed:
            payload = self._inflate(payload, last=False)
        if self._utf8 is not None:
            self._utf8_last = self._utf8.validate(payload)
            if not self._utf8_last[0]:
                self._host.fail(
                    INVALID_PAYLOAD, "encountered invalid UTF-8 while processing text message"
                )
        if not self._host.flags.failed_by_me:
            self._message_parts.append(payload)

    def _frame_end(self, frame: _Frame) -> None:
        self._frame = None
        payload = b"".join(frame.parts)
        self._host.flags.rx_frames[frame.opcode] += 1
        if self._logged():
            self._log.frame(
                "rx", frame.opcode, payload, fin=frame.fin, rsv=frame.rsv, mask=frame.mask
            )
        if frame.opcode > 7:
            self._host.control_frame(frame.opcode, payload)
            return
        if not frame.fin:
            return
        if self._compressed:
            self._inflate(b"", last=True)
        if self._utf8 is not None and not self._utf8_last[1]:
            self._host.fail(
                INVALID_PAYLOAD, "UTF-8 text message payload ended within Unicode code point"
            )
        self._inside_message = False
        if not self._host.flags.failed_by_me:
            self._deliver(b"".join(self._message_parts), self._message_binary)
