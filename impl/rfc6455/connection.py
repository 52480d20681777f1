"""The sans-I/O WebSocket connection: bytes in, events out; sends produce bytes.

Invariants:
- No I/O, no clock. The shell feeds ``receive_data`` / ``receive_eof``, pulls
  ``next_event()`` (or the ``events()`` generator over it) and writes ``data_to_send()``;
  it closes TCP when ``close_transport`` says so and applies its own timeouts.
- ``next_event()`` makes events lazily, one at a time: a shell that handles each event (and
  writes its reply) before pulling the next keeps replies in order, so the echo of a valid
  message that precedes a bad frame goes out before the Close that fails the connection.
- ``events_received()`` is the batch API: a list of the events the bytes received so far
  give, oldest first. It keeps replies in order too: a call that returns events has queued
  no output for a frame after them (a Ping's Pong, the answer to a Close, the Close that
  fails the connection); such a frame is handled at the start of the next call, so a shell
  calls it until it returns ``[]``, replying to each list's events before the next call.
- Without an extension and with no message in progress, the whole messages in one frame at
  the start of the buffer are made in one pass (``FrameParser.next_messages``: compiled when
  the accelerator is built, for ``events_received`` their events too); the first frame it
  does not make a message of (a control frame, a fragment, a bad frame) is handled here one
  at a time, as every frame is on the reference path. That pass has no side effect and
  decides no error: which error a bad frame fails with is decided here alone.
- No error escapes ``next_event()``: a protocol violation queues a Close with its code
  (``errors.close_code_for``), records ``failure``, stops reading (RFC 6455 §7.1.7) and ends
  the connection; any other ``Exception`` raised while parsing (our own fault, in the codec,
  an extension or a validator) does the same with 1011, its details logged on
  ``rfc6455.connection`` and never sent to the peer. The shells hold no error policy of
  their own for input. Local misuse (sending after our Close) raises ``InvalidState``.
- Nothing is delivered after ``Closed``; ``Closed`` is delivered exactly once.
- Data messages are reassembled and validated by a ``reassembly.MessageReader``; a whole
  message in one frame, the common case, is delivered here without calling it. Without an
  extension, data frames reach it as parsed (``data_frames``: a run of fragments at once),
  never as ``Frame`` objects; control frames between fragments are handled in their turn.

States and transitions (the shell's view)::

    OPEN    --close() sends Close-------------------> CLOSING
    OPEN    --Close received, answer queued---------> CLOSED
    OPEN    --protocol violation, Close(code) sent--> CLOSED   (input discarded)
    CLOSING --Close received------------------------> CLOSED
    any     --EOF without a Close-------------------> CLOSED   (code 1006)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import suppress
from enum import Enum
from typing import Any

from .errors import CloseCode, InvalidState, ProtocolError, close_code_for
from .events import BinaryMessage, Closed, CloseReceived, Event, Ping, Pong, TextMessage
from .extensions import Extension
from .frame import (
    ANSWER_FAULT,
    ANSWER_STOPPED,
    Frame,
    FrameParser,
    Opcode,
    Role,
    build_close_payload,
    parse_close_payload,
    parsed_frame,
    wire_frame,
)
from .limits import MAX_MESSAGE_SIZE as DEFAULT_MAX_MESSAGE_SIZE
from .reassembly import MessageReader, whole_message

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Connection", "State"]

logger = logging.getLogger("rfc6455.connection")

_BINARY = Opcode.BINARY
_TEXT = Opcode.TEXT
_NO_FRAMES = ()
#: First header bytes of a whole message in one frame: FIN, no RSV bit, TEXT or BINARY.
_WHOLE_TEXT = 0x80 | _TEXT
_WHOLE_BINARY = 0x80 | _BINARY
_WHOLE_MESSAGE = (_WHOLE_BINARY, _WHOLE_TEXT)


class State(Enum):
    OPEN = "OPEN"
    CLOSING = "CLOSING"  # we sent Close and wait for the peer's
    CLOSED = "CLOSED"


# The members the per-message paths test, as module globals: on Python 3.11 an Enum member
# read off its class goes through the metaclass's ``__getattr__`` hook, about ten times the
# cost of a global.
_OPEN = State.OPEN


class Connection:
    """One WebSocket connection after its opening handshake, for either role."""

    # Slots: one per open connection, so no per-instance dict (memory, and attribute speed).
    __slots__ = (
        "_client",
        "_close_sent",
        "_event_index",
        "_events",
        "_frame_index",
        "_frames",
        "_messages",
        "_out",
        "_parser",
        "_plain_data",
        "_reading",
        "close_code",
        "close_reason",
        "close_transport",
        "extensions",
        "failed_in",
        "failure",
        "max_message_size",
        "role",
        "state",
        "subprotocol",
    )

    def __init__(
        self,
        role: int = Role.SERVER,
        extensions: Sequence[Extension] = (),
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        subprotocol: str | None = None,
        max_frame_size: int | None = None,
    ) -> None:
        """``max_frame_size`` bounds one frame's payload below what ``max_message_size``
        already implies (``None``: only that bound)."""
        self.role = role if type(role) is Role else Role(role)
        self._client = self.role == Role.CLIENT
        self.extensions = list(extensions)
        self.max_message_size = max_message_size
        self.subprotocol = subprotocol
        rsv_mask = 0
        for extension in self.extensions:
            rsv_mask |= extension.rsv_mask
        # Without an extension, a final TEXT frame is a whole message unless one is in
        # progress: the parser decodes it in the same pass (and leaves invalid text as bytes).
        self._parser = FrameParser(
            13,
            self.role,
            max_frame_size=_frame_limit(max_message_size, bool(self.extensions), max_frame_size),
            rsv_mask=rsv_mask,
            decode_text=not self.extensions,
        )
        self.state = State.OPEN
        self.close_code: int | None = None
        self.close_reason = ""
        # What failed the connection: the peer's ``ProtocolError``, or an exception of ours.
        self.failure: Exception | None = None
        self.failed_in: State | None = None  # the state ``fail`` found (for the shell's log)
        self.close_transport = False
        # Pending events, oldest first, read from ``_event_index``: an empty list costs 56
        # bytes where an empty deque costs 760, for every idle connection.
        # (A message is queued as its data: ``str`` or ``bytes``, see ``next_event``.)
        self._events: list[Event | str | bytes] = []
        self._event_index = 0
        self._out: list[bytes] = []
        self._reading = True  # False once a Close arrived or the connection failed
        self._close_sent = False
        self._messages = MessageReader(self.extensions, max_message_size)
        # Without an extension, data frames go to ``MessageReader.data_frames`` as parsed,
        # and whole messages in one frame come out of ``FrameParser.next_messages``; with
        # one (or when a test asks for the reference path), one ``Frame`` at a time.
        self._plain_data = not self.extensions
        # Frames parsed in one batch and not yet handled, flat (first byte, payload, ...),
        # from ``_frame_index``; handled one at a time, so replies keep their order.
        self._frames: list[Any] | tuple[()] = _NO_FRAMES
        self._frame_index = 0

    # -- input -------------------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray | memoryview, *, parse: bool = False) -> None:
        """Take bytes from the network; ``data`` need not outlive this call. They are parsed
        as ``next_event`` asks for events.

        ``parse=True`` is for a caller that pulls ``next_event`` at once: when no parsed frame
        is waiting, the complete frames in ``data`` are parsed now, straight out of it (no
        copy into the parser's buffer first), and only the rest is buffered. The frames are
        still handled, and a bad one failed, only as ``next_event`` reaches them (the whole
        messages in one frame at its start, which need no handling, are queued as they are).
        """
        if not self._reading or not data:
            return
        if parse and self._frame_index == len(self._frames):
            self._parse_now(data)
        else:
            self._parser.feed(data)

    def _parse_now(self, data: bytes | bytearray | memoryview) -> None:
        """``receive_data(data, parse=True)`` with no parsed frame waiting."""
        plain = self._plain_data and self._messages.passthrough
        try:
            frames = self._parser.parse_from(data, self._events if plain else None)
        except Exception:
            # Our own fault in the codec (nothing was consumed): buffered instead, the
            # same parse fails again in ``next_event``, which fails the connection.
            self._parser.feed(data)
            return
        if frames:
            self._frames = frames
            self._frame_index = 0

    def receive_answering(
        self, data: bytes | bytearray | memoryview, handler: Any, environ: Any
    ) -> bytes | tuple[int, Any] | None:
        """The server's fast read: ``receive_data(data, parse=True)`` with the whole messages
        in one frame at its start handed to ``handler.on_message(environ, message)`` as they
        are parsed and an exact ``str`` / ``bytes`` reply queued as its frame (what the shell
        does with each message ``next_event`` gives, without the event), in one pass
        (``FrameParser.answer_from``); the bytes after them are received as usual.

        ``None`` when this does not apply (not the server, an extension, a message or
        anything else pending), and nothing was taken: the caller receives ``data`` the
        usual way. When every byte was answered and the connection is still open with
        nothing pending, what ``data_to_send`` gives: all there is left to do is write it.
        Else (outcome, value): one of ``frame``'s ``ANSWER_*`` codes, with the reply the
        caller sends (``ANSWER_REPLY``) or the hook's exception (``ANSWER_RAISED``), and
        ``next_event`` has what is left.
        """
        if (
            self.state is not _OPEN
            or self._client
            or self._events
            or self._frames
            or not self._plain_data
            or not self._messages.passthrough
        ):
            return None
        answered = self._parser.answer_from(data, handler, environ, self, _OPEN, self._out)
        if answered is None:
            return None
        end, outcome, value = answered
        if end == len(data) and outcome == ANSWER_STOPPED and self.state is _OPEN:
            out = self._out  # (``data_to_send``, inline: once per read)
            if not out:
                return b""
            sent = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            return sent
        return self.answered_rest(data, end, outcome, value)

    def answered_rest(
        self, data: bytes | bytearray | memoryview, end: int, outcome: int, value: Any
    ) -> tuple[int, Any]:
        """``receive_answering`` after a pass (``FrameParser.answer_from``) that stopped at
        ``end`` on ``outcome`` short of answering every byte with the connection still open:
        the bytes after it received, and what the caller does next (the compiled server
        read, ``rfc6455._speedups.server_read``, comes here too)."""
        if end < len(data):
            # The rest as ``receive_data`` parses it, even after a hook closed or failed the
            # connection, and queued before what the hooks queued (``Closed``): as if the
            # whole read had been parsed before any hook ran, so its whole messages are
            # still handed out, and first.
            queued = self._events
            self._events = []
            self._parse_now(data[end:])
            self._events += queued
        if outcome == ANSWER_FAULT:
            # RFC 6455 §7.4.1: 1011, as for any fault of ours in ``next_event``.
            logger.error(
                "the server connection failed on an internal error; sending Close 1011",
                exc_info=value,
            )
            self._fail_on(value)
            return ANSWER_STOPPED, None
        return outcome, value

    def receive_eof(self) -> None:
        """The peer closed TCP."""
        self._reading = False
        if self.role == Role.CLIENT or self.state == State.CLOSED:
            self.close_transport = True
        if self.state != State.CLOSED:
            # RFC 6455 §7.1.5: no Close frame was received: the close code is 1006.
            self._finish(CloseCode.ABNORMAL, "the connection ended without a Close frame")
            self.close_transport = True

    def events(self) -> Iterator[Event]:
        """Yield events one at a time, parsing only as far as needed for the next one."""
        next_event = self.next_event
        while (event := next_event()) is not None:
            yield _as_event(event)

    def events_received(self) -> list[Event]:
        """The events the bytes received so far give, oldest first; ``[]`` when there are
        none until more bytes arrive (or after ``Closed``).

        A list at a time, the fastest way to read (the whole messages in one frame come out
        of one compiled pass, their events included). A call never queues output for a
        frame after the events it returns: a Ping, a Close or a bad frame after them is
        handled by the next call. Reply to each list's events, then call again::

            while events := connection.events_received():
                for event in events: ...
        """
        received: list[Event] = []
        queued = self._events
        while True:
            if queued:
                received += map(_as_event, queued[self._event_index :])
                queued.clear()
                self._event_index = 0
            if not self._reading:
                return received
            if self._plain_data and self._messages.passthrough:
                if self._frame_index < len(self._frames):
                    self._take_whole_messages(received)
                if self._frame_index == len(self._frames):
                    # (A fault of ours consumes nothing: ``next_event`` meets it, fails 1011.)
                    with suppress(Exception):
                        self._parser.next_messages(received, TextMessage, BinaryMessage)
            if received:
                return received
            # The next frame is one to handle here (or none is complete yet): nothing was
            # delivered before it, so its replies, or its failure, cannot overtake any.
            event = self.next_event()
            if event is None:
                return received
            received.append(_as_event(event))

    def next_event(self) -> Event | str | bytes | None:
        """The next event, parsing only as far as needed for it; ``None`` until more bytes
        arrive (or after ``Closed``).

        A complete message comes as its data, ``str`` for text and ``bytes`` for binary,
        not as a ``TextMessage`` / ``BinaryMessage``: this runs once per message, and the
        shells want the data (``events()`` wraps it).
        """
        while True:
            events = self._events
            if events:
                index = self._event_index
                event = events[index]
                if index + 1 == len(events):
                    events.clear()  # all taken: the list starts over, its index at 0
                    self._event_index = 0
                else:
                    self._event_index = index + 1
                return event
            if not self._reading:
                return None
            try:
                frames = self._frames
                index = self._frame_index
                if index == len(frames):
                    parser = self._parser
                    if not parser.buffered:
                        return None  # (every read ends here once its frames are handled)
                    if self._plain_data and self._messages.passthrough:
                        # The whole messages in one frame at the start, as their data; the
                        # first frame of any other kind is for ``next_frames``.
                        parser.next_messages(events)
                        if events:
                            continue
                    frames = parser.next_frames()
                    if not frames:
                        self._messages.check_pending(parser)
                        return None
                    self._frames = frames
                    index = 0
                first = frames[index]
                end = index + 2
                message: str | bytes | None = None
                if first in _WHOLE_MESSAGE and self._messages.passthrough:
                    # The common case, once per message: what ``MessageReader.data_frame``
                    # does with a whole message in one frame, without a ``Frame``.
                    message = whole_message(first & 0x0F, frames[index + 1], self.max_message_size)
                elif first & 0x08 or not self._plain_data:  # a control frame, or an extension
                    self._handle_frame(parsed_frame(first, frames[index + 1]))
                else:  # a data frame and the CONTINUATION frames after it, without a ``Frame``
                    message, end = self._messages.data_frames(frames, index)
                if end == len(frames):
                    # All taken: drop the batch, so an idle connection holds no payloads.
                    self._frames = _NO_FRAMES
                    self._frame_index = 0
                else:
                    self._frame_index = end
                if message is not None:
                    return message
            except ProtocolError as exc:
                self._fail_on(exc)
            except Exception as exc:
                # RFC 6455 §7.4.1: 1011, "an unexpected condition that prevented it from
                # fulfilling the request"; what went wrong is ours to log, not the peer's.
                logger.exception(
                    "the %s connection failed on an internal error; sending Close 1011",
                    self.role.name.lower(),
                )
                self._fail_on(exc)

    def _take_whole_messages(self, received: list[Event]) -> None:
        """Append the events of the whole messages in one frame at the start of the parsed
        batch (a valid text message's payload is its ``str`` there), and take them: nothing
        to check, as the parser's frame limit is within the message limit."""
        frames = self._frames
        index = self._frame_index
        while index < len(frames):
            first = frames[index]
            payload = frames[index + 1]
            if first == _WHOLE_BINARY:
                received.append(BinaryMessage(payload))
            elif first == _WHOLE_TEXT and type(payload) is str:
                received.append(TextMessage(payload))
            else:
                break
            index += 2
        if index == len(frames):
            self._frames = _NO_FRAMES
            self._frame_index = 0
        else:
            self._frame_index = index

    # -- output ------------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        """Bytes queued for the network since the last call."""
        if not self._out:
            return b""
        out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        return out

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send one message: ``str`` as text, bytes-like as binary."""
        if self.state is _OPEN and not self.extensions:
            # Once per message (every reply): the frame is built directly (RFC 6455 §5.2),
            # masked with a fresh unpredictable key by a client (§5.3).
            if isinstance(data, str):
                first, data = _WHOLE_TEXT, data.encode("utf-8")
            else:
                first = _WHOLE_BINARY
            self._out.append(wire_frame(first, data, os.urandom(4) if self._client else None))
        elif isinstance(data, str):
            self.send_text(data)
        else:
            self.send_binary(data)

    def send_text(self, text: str, fragment_size: int | None = None) -> None:
        self._send_message(Opcode.TEXT, text.encode("utf-8"), fragment_size)

    def send_binary(
        self, data: bytes | bytearray | memoryview, fragment_size: int | None = None
    ) -> None:
        if fragment_size is None and self.state is _OPEN and not self.extensions:
            # Once per message: the frame is built directly (RFC 6455 §5.2), masked with a
            # fresh unpredictable key by a client (§5.3).
            key = os.urandom(4) if self._client else None
            self._out.append(wire_frame(_WHOLE_BINARY, data, key))
            return
        self._send_message(_BINARY, bytes(data), fragment_size)

    def send_ping(self, payload: bytes | str = b"") -> None:
        self._check_can_send("a Ping")
        self._queue(Frame.ping(payload))

    def send_pong(self, payload: bytes | str = b"") -> None:
        self._check_can_send("a Pong")
        self._queue(Frame.pong(payload))

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 §7.1.2); a no-op once it has started."""
        if self.state != State.OPEN:
            return
        self._send_close(code, reason)
        self.state = State.CLOSING

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection (RFC 6455 §7.1.7): send Close with ``code`` and stop reading."""
        if self.state == State.CLOSED:
            return
        self.failed_in = self.state
        if not self._close_sent:
            self._send_close(code, reason)
        self._reading = False
        self.close_transport = True
        self._finish(code, reason)

    # -- frames ------------------------------------------------------------------------------
    def _handle_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode == Opcode.CLOSE:
            self._handle_close(frame.payload)
        elif opcode == Opcode.PING:
            if self.state == State.OPEN:
                # RFC 6455 §5.5.2/§5.5.3: answer with a Pong carrying the same payload.
                self._queue(Frame.pong(frame.payload))
            self._events.append(Ping(frame.payload))
        elif opcode == Opcode.PONG:
            self._events.append(Pong(frame.payload))
        elif (message := self._messages.data_frame(frame)) is not None:
            self._events.append(message)

    def _handle_close(self, payload: bytes) -> None:
        code, reason = parse_close_payload(payload)  # ProtocolError / InvalidPayload fail it
        received = CloseCode.NO_STATUS if code is None else code
        self._reading = False  # RFC 6455 §5.5.1: nothing is processed after a Close
        self._events.append(CloseReceived(int(received), reason))
        if not self._close_sent:
            # RFC 6455 §5.5.1: answer a Close with a Close, typically echoing its code.
            self._send_close(CloseCode.NORMAL if code is None else code, "")
        if self.role == Role.SERVER:
            # RFC 6455 §7.1.1: the server closes TCP first once the handshake is done.
            self.close_transport = True
        self._finish(received, reason)

    def _fail_on(self, exc: Exception) -> None:
        self.failure = exc
        self._frames = _NO_FRAMES  # the input is discarded
        self._frame_index = 0
        reason = _close_reason(exc.reason) if isinstance(exc, ProtocolError) else ""
        self.fail(close_code_for(exc), reason)

    def _finish(self, code: int, reason: str) -> None:
        if self.state == State.CLOSED:
            return
        self.state = State.CLOSED
        self.close_code = int(code)
        self.close_reason = reason
        self._events.append(Closed(int(code), reason))

    # -- sending -----------------------------------------------------------------------------
    def _check_can_send(self, what: str) -> None:
        if self.state is not _OPEN:
            raise InvalidState(
                f"cannot send {what}: the {self.role.name.lower()} connection is "
                f"{self.state.value} (RFC 6455 §5.5.1: nothing follows a Close)"
            )

    def _send_message(self, opcode: Opcode, payload: bytes, fragment_size: int | None) -> None:
        if self.state is not _OPEN:
            self._check_can_send(f"a {opcode.name.lower()} message")
        if fragment_size is None or len(payload) <= fragment_size:
            # Once per message: without an extension the frame is built directly.
            if self.extensions:
                self._queue(Frame(payload, opcode, final=True))
            else:
                key = os.urandom(4) if self._client else None
                self._out.append(wire_frame(0x80 | opcode, payload, key))
            return
        if fragment_size < 1:
            raise ValueError("fragment_size must be at least 1")
        last = len(payload) - fragment_size
        for start in range(0, len(payload), fragment_size):
            frame_opcode = opcode if start == 0 else Opcode.CONTINUATION
            chunk = payload[start : start + fragment_size]
            self._queue(Frame(chunk, frame_opcode, final=start >= last))

    def _send_close(self, code: int, reason: str) -> None:
        self._close_sent = True
        self._queue(Frame(build_close_payload(code, reason), Opcode.CLOSE, final=True))

    def _queue(self, frame: Frame) -> None:
        if not frame.opcode.is_control:
            for extension in self.extensions:
                frame = extension.encode(frame)
        if self._client:
            frame.masking_key = os.urandom(4)  # RFC 6455 §5.3: unpredictable, per frame
        self._out.append(frame.build_frame())


def _as_event(event: Event | str | bytes) -> Event:
    """The event for what ``next_event`` gives: a message's data wrapped, others as they are."""
    if isinstance(event, str):
        return TextMessage(event)
    if isinstance(event, bytes):
        return BinaryMessage(event)
    return event


def _frame_limit(
    max_message_size: int | None, extended: bool, max_frame_size: int | None
) -> int | None:
    """The bound on one frame's payload: ``max_frame_size``, or what the message limit
    implies (with an extension, what a compressed frame of an allowed message may take)."""
    frame_limit = max_message_size
    if max_message_size is not None and extended:
        # A compressed frame may be slightly larger than what it inflates to; deflate's
        # worst case is 5 bytes per 16 KiB stored block, far below this headroom.
        frame_limit = max_message_size + max_message_size // 8 + 1024
    if max_frame_size is not None and (frame_limit is None or max_frame_size < frame_limit):
        frame_limit = max_frame_size
    return frame_limit


def _close_reason(reason: str) -> str:
    """``reason`` cut to fit a Close frame (123 bytes of UTF-8, RFC 6455 §5.5)."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= 123:
        return reason
    return encoded[:123].decode("utf-8", "ignore")
