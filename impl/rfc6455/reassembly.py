"""The receiving side of data messages: frames in, whole messages out (RFC 6455 §5.4, §8.1).

Invariants:
- No I/O and no events: a ``MessageReader`` hands a finished message back to its
  connection (``str`` for text, ``bytes`` for binary) and raises ``ProtocolError`` (or
  ``MessageTooBig``, ``InvalidPayload``) on the peer's fault; the connection turns that into
  its Close. It holds at most one message in progress, and none between messages.
- Fragments are kept in lists and joined once: reassembly is linear in the message size.
- Text is validated as it comes (fail fast, Autobahn 6.4.x): each fragment, and the part of
  a frame whose payload is still arriving (``check_pending``), before the rest of it.
- ``passthrough`` is true exactly when a final TEXT or BINARY frame is a whole message as
  it stands (no message in progress, no text of its frame validated ahead, no extension):
  the connection then delivers it with ``whole_message`` and never calls the reader.
"""

from __future__ import annotations

from collections.abc import Sequence

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
        # RFC 6455 §5.4: a fragmented message is one TEXT/BINARY frame then CONTINUATION
        # frames, the last with FIN; no other data frame may interleave.
        if opcode == _CONTINUATION:
            if self._opcode is None:
                raise ProtocolError("a continuation frame with no message in progress")
        else:
            if self._opcode is not None:
                raise ProtocolError(
                    f"a new {opcode.name} frame while a fragmented message is in progress"
                )
            self._opcode = opcode
            self._transformed = bool(frame.rsv1 or frame.rsv2 or frame.rsv3)
            self.passthrough = False
        limit = self._limit
        if self._extensions:
            remaining = None if limit is None else limit - self._size
            for extension in reversed(self._extensions):
                frame = extension.decode(frame, max_size=remaining)
        payload = frame.payload
        if frame.final and opcode != _CONTINUATION and not self._validated:
            return self._end(whole_message(opcode, payload, limit))
        self._size += len(payload)
        check_size(self._size, limit, "so far")
        if self._opcode == _TEXT:
            # RFC 6455 §8.1: validated as it comes, fail fast.
            validated, self._validated = self._validated, 0
            self._validate(payload[validated:] if validated else payload, frame.final)
            return self._end("".join(self._text_parts)) if frame.final else None
        self._fragments.append(payload)
        return self._end(b"".join(self._fragments)) if frame.final else None

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
