"""The receiving side of data messages: frames in, whole messages out (RFC 6455 §5.4, §8.1).

Invariants:
- No I/O and no events: a ``MessageReader`` hands a finished message back to its
  connection (``str`` for text, ``bytes`` for binary) and raises ``ProtocolError`` (or
  ``MessageTooBig``, ``InvalidPayload``) on the peer's fault; the connection turns that into
  its Close. It holds at most one message in progress, and none between messages.
- Fragments are kept in lists and joined once (a run of them taken together is joined
  first): reassembly is linear in the message size.
- Text is validated as it comes (fail fast, Autobahn 6.4.x): each fragment, and the part of
  a frame whose payload is still arriving (``check_pending``), before the rest of it.
- Without an extension the connection hands data frames over as parsed (``data_frames``,
  no ``Frame``): a run of consecutive fragments of one batch at once, checked and validated
  together. A run stops before a frame that would put the message over the limit, so every
  verdict (and which error wins) is the one ``data_frame`` gives frame by frame.
- ``passthrough`` is true exactly when a final TEXT or BINARY frame is a whole message as
  it stands (no message in progress, no text of its frame validated ahead, no extension):
  the connection then delivers it with ``whole_message`` and never calls the reader.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from .errors import MessageTooBig, ProtocolError
from .extensions import Extension
from .frame import Frame, FrameParser, Opcode
from .utf8 import Utf8Validator, decode_text

__all__ = ["MessageReader", "check_size", "whole_message"]

_BINARY = Opcode.BINARY
_TEXT = Opcode.TEXT
_CONTINUATION = Opcode.CONTINUATION


def check_size(size: int, limit: int | None, how: str) -> None:
    """Fail with 1009 when a message of ``size`` bytes is over ``limit`` (``None``: none)."""
    if limit is not None and size > limit:
        raise MessageTooBig(f"a message of more than {limit} bytes ({size} {how})")


def whole_message(opcode: int, payload: bytes | str, limit: int | None) -> str | bytes:
    """A message that came in one frame: nothing to reassemble or finish validating.

    A ``str`` is a text frame the parser decoded: valid UTF-8, and within the size limit
    (without an extension the parser's frame limit is at most the message limit).
    """
    if limit is not None and len(payload) > limit:  # (once per message: no call)
        check_size(len(payload), limit, "in one frame")
    if opcode == _BINARY:
        return payload  # (only text is decoded: a binary payload is bytes)
    if isinstance(payload, str):
        return payload
    return decode_text(payload)


#: How many frames of a batch ``_run_end`` looks at in one go.
_WINDOW = 256


def _run_end(frames: Sequence[Any], start: int) -> int:
    """The index after the CONTINUATION frames of the flat batch ``frames`` from ``start``, up
    to and including a final one (without an extension, a CONTINUATION frame's first byte is
    0x00, or 0x80 for the last). Their first bytes are scanned as ``bytes``, a window at a
    time: a batch of many short messages is still looked at once, not once per message."""
    end = start
    while True:
        firsts = bytes(frames[end : end + 2 * _WINDOW : 2])
        run = len(firsts) - len(firsts.lstrip(b"\x00"))
        end += 2 * run
        if run < len(firsts):
            return end + 2 if firsts[run] == 0x80 else end
        if run < _WINDOW:
            return end  # the end of the batch


class MessageReader:
    """Reassembles and validates the data messages of one connection's input."""

    # Slots: one per open connection, so no per-instance dict (memory, and attribute speed).
    __slots__ = (
        "_extensions",
        "_fragments",
        "_limit",
        "_opcode",
        "_size",
        "_text_parts",
        "_transformed",
        "_validated",
        "_validator",
        "passthrough",
    )

    def __init__(self, extensions: Sequence[Extension], limit: int | None) -> None:
        self._extensions = extensions
        self._limit = limit
        self.passthrough = not extensions
        # The message in progress: its opcode (``None``: none), whether its first frame had
        # RSV bits (an extension owns it), and its size so far.
        self._opcode: int | None = None
        self._transformed = False
        self._size = 0
        self._fragments: list[bytes] = []
        self._text_parts: list[str] = []
        self._validator: Utf8Validator | None = None
        self._validated = 0  # payload bytes of the pending frame already validated as UTF-8

    def data_frame(self, frame: Frame) -> str | bytes | None:
        """Take a TEXT, BINARY or CONTINUATION frame; the message once its last frame is in."""
        opcode = frame.opcode
        payload: bytes | str = frame.payload
        if isinstance(payload, str):  # a whole text frame the parser decoded, met in a message
            frame.payload = payload.encode("utf-8")
        self._start(opcode, bool(frame.rsv1 or frame.rsv2 or frame.rsv3))
        if self._extensions:
            remaining = None if self._limit is None else self._limit - self._size
            for extension in reversed(self._extensions):
                frame = extension.decode(frame, max_size=remaining)
        payload = frame.payload
        if frame.final and opcode != _CONTINUATION and not self._validated:
            return self._end(whole_message(opcode, payload, self._limit))
        return self._take([payload], len(payload), frame.final)

    def data_frames(self, frames: Sequence[Any], index: int) -> tuple[str | bytes | None, int]:
        """Take the data frame at ``frames[index]`` of a parsed batch (flat: first header
        byte, payload, ...; no extension) with the CONTINUATION frames right after it, up to
        the message's last frame; the message if it is in, and the index after them.

        What ``data_frame`` does with each of them in turn, without a ``Frame``: a frame that
        would put the message over the limit is left for the next call, alone, so an error in
        the frames before it (invalid text) wins as it would frame by frame.
        """
        first = frames[index]
        opcode = first & 0x0F
        payload = frames[index + 1]
        if isinstance(payload, str):  # a whole text frame the parser decoded, met in a message
            payload = payload.encode("utf-8")
        self._start(opcode, bool(first & 0x70))
        final = first >= 0x80
        if final and opcode != _CONTINUATION and not self._validated:
            return self._end(whole_message(opcode, payload, self._limit)), index + 2
        end = index + 2 if final else _run_end(frames, index + 2)
        payloads = [payload]
        payloads += frames[index + 3 : end : 2]
        size = sum(map(len, payloads))
        limit = self._limit
        if limit is not None and self._size + size > limit and len(payloads) > 1:
            # The frames before the one that puts the message over the limit; that one is
            # taken alone by the next call (and fails).
            sizes = list(accumulate(map(len, payloads), initial=self._size))
            kept = max(1, bisect_right(sizes, limit) - 1)
            del payloads[kept:]
            end = index + 2 * kept
            size = sizes[kept] - self._size
        return self._take(payloads, size, frames[end - 2] >= 0x80), end

    def check_pending(self, parser: FrameParser) -> None:
        """Judge the frame whose payload is still arriving, as far as it can be judged.

        Fail fast (Autobahn 6.4.3/6.4.4, 9.x): a text payload that is already invalid UTF-8
        or a message already over the limit is refused before the rest of it arrives.
        """
        pending = parser.pending_frame()
        if pending is None:
            return
        first, length = pending
        opcode = first & 0x0F
        if opcode >= 0x8:
            return
        if opcode == _CONTINUATION:
            if self._opcode is None or self._transformed:
                return  # the frame's own checks happen when it is complete
        elif self._opcode is not None or first & 0x70:
            return
        if not self._extensions:  # (a compressed frame's length says nothing of the message)
            check_size(self._size + length, self._limit, "announced")
        if opcode != _TEXT and self._opcode != _TEXT:
            return
        chunk = parser.partial_payload(self._validated)
        if chunk:
            self._validate(chunk, False)
            self._validated += len(chunk)
            self.passthrough = False

    def _start(self, opcode: int, transformed: bool) -> None:
        """RFC 6455 §5.4: a fragmented message is one TEXT/BINARY frame then CONTINUATION
        frames, the last with FIN; no other data frame may interleave (1002)."""
        if opcode == _CONTINUATION:
            if self._opcode is None:
                raise ProtocolError("a continuation frame with no message in progress")
        else:
            if self._opcode is not None:
                raise ProtocolError(
                    f"a new {Opcode(opcode).name} frame while a fragmented message is in progress"
                )
            self._opcode = opcode
            self._transformed = transformed  # (RSV bits: an extension owns the message)
            self.passthrough = False

    def _take(self, payloads: list[bytes], size: int, final: bool) -> str | bytes | None:
        """Add the payloads of consecutive frames of the message in progress (``size``
        bytes in all; ``final``: the last is its last frame): size checked (1009), then text
        validated as it comes (RFC 6455 §8.1, fail fast, 1007); the message once it is in."""
        self._size += size
        check_size(self._size, self._limit, "so far")
        chunk = payloads[0] if len(payloads) == 1 else b"".join(payloads)
        if self._opcode == _TEXT:
            validated, self._validated = self._validated, 0
            self._validate(chunk[validated:] if validated else chunk, final)
            return self._end("".join(self._text_parts)) if final else None
        self._fragments.append(chunk)
        return self._end(b"".join(self._fragments)) if final else None

    def _validate(self, chunk: bytes, final: bool) -> None:
        """Decode ``chunk`` of the text message, failing on invalid UTF-8 (1007)."""
        if self._validator is None:
            self._validator = Utf8Validator()
        text = self._validator.feed(chunk, final)
        if text:
            self._text_parts.append(text)

    def _end(self, message: str | bytes) -> str | bytes:
        """Forget the message just finished (so an idle connection holds none of it)."""
        self._opcode = None
        self._transformed = False
        self._size = 0
        self._fragments = []
        self._text_parts = []
        self._validator = None
        self.passthrough = not self._extensions
        return message
