"""The fuzzer's own WebSocket client layer (autobahn 0.10.9 semantics), as an asyncio protocol.

The fuzzer is not a passive recorder: this layer checks every frame the testee sends, fails
the connection on a violation, answers pings and Closes, and runs its own timers. Those
reactions decide who closed, whether the close was clean and who dropped TCP, so they are
reproduced here rule for rule, including the ones that look accidental:

- Options as the fuzzer runs them: fail by Close, not by drop; masked server frames refused;
  UTF-8 of text messages validated; no size limits; the opening handshake times out after
  5 s, our closing handshake after 1 s, and after a clean close we wait 1 s for the server
  to drop TCP before we drop it ourselves.
- Failing the connection while open sends a Close (we become the closing side); failing it
  again while closing drops TCP. A violation never stops parsing: later checks of the same
  header run, and each may fail again.
- Header checks run each time a header is looked at, even when it is still incomplete.
- After failing, no further message is delivered, but pongs still are.
- A Close from the testee is answered with 1000 (its code is not echoed); an invalid code
  (RFC 6455 §7.4) fails with 1002, an invalid UTF-8 reason with 1007. A reason the fuzzer's
  Python 2 cannot decode crashes its reader: the connection is aborted on the spot and
  anything written while handling that read is never sent.
- permessage-deflate, when the case offers it and the testee agrees (``deflate``): RSV1 is
  then allowed on the first frame of a data message (never on control or continuation frames),
  such messages are inflated frame by frame with the agreed window before UTF-8 validation,
  and ours are compressed and then auto-fragmented as the fuzzer does (an exact multiple of
  the fragment size ends with an empty final frame). An inflate error, or a compressor the
  fuzzer's zlib cannot create, is its reader raising: the connection is aborted as below.
- ``log_traffic(False)`` stops logging frames and octets (the fuzzer's own wire log is off
  during the 12.x/13.x exchanges); frames are still counted.
- Writes made while handling a read are held until the read is handled and then leave as
  one TCP write (the fuzzer's reactor buffers them and sends them together at its next turn);
  chopped and ``sync`` writes go one per loop turn (the fuzzer pauses 10 µs). The reactor
  runs its due timers before it flushes, so when queued writes are under way, what was held
  leaves together with the next queued one: a case's first two queued writes always share
  one TCP write (3.3's text frame and its bad frame arrive together).

States: CONNECTING -> OPEN -> CLOSING -> CLOSED, and CONNECTING/OPEN -> CLOSED on a drop.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import struct
import zlib
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from wsconform.native import deflate, frames, handshake
from wsconform.native.record import WireLog
from wsconform.native.utf8 import Utf8Validator

__all__ = ["CloseState", "Connection", "Listener", "State", "Timeouts"]

GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007
NORMAL = 1000
# RFC 6455 §7.4.1 codes the fuzzer accepts below 3000 (1012-1014 were registered later).
_ALLOWED_BELOW_3000 = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})
_CONTROL_MAX = 125  # RFC 6455 §5.5
# The fuzzer re-enters its reactor for 10 µs between queued writes; asyncio's call_later rounds
# that up to the selector's 1 ms, 15 times slower than the fuzzer's measured pace (about 70 µs
# per write here), which lets a testee answer between bytes it would otherwise see together.
# One loop turn (call_soon) is the closest asyncio comes.
_REASON_MAX = 123  # 125 minus the two code bytes
_TWISTED_READ_SIZE = 65536  # twisted.internet.tcp.Connection.bufferSize


class State(enum.Enum):
    """Where the connection is in its life."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The fuzzer's protocol timers, in seconds."""

    open_handshake: float = 5.0
    close_handshake: float = 1.0
    server_drop: float = 1.0


@dataclass
class CloseState:
    """The fuzzer-side flags its verdicts read, plus what its reports show."""

    was_open: bool = False
    closed_by_me: bool = False
    failed_by_me: bool = False
    dropped_by_me: bool = False
    was_clean: bool = False
    not_clean_reason: str | None = None
    server_drop_timeout: bool = False
    open_handshake_timeout: bool = False
    close_handshake_timeout: bool = False
    local_code: int | None = None
    local_reason: bytes | None = None
    remote_code: int | None = None
    remote_reason: str | None = None
    handshake_failure: str | None = None
    tx_frames: Counter[int] = field(default_factory=Counter)
    rx_frames: Counter[int] = field(default_factory=Counter)


class Listener(Protocol):
    """What the case playing on this connection is told."""

    def opened(self) -> None: ...

    def message(self, payload: bytes, binary: bool) -> None: ...

    def pong(self, payload: bytes) -> None: ...

    def lost(self) -> None: ...


@dataclass(slots=True)
class _Frame:
    opcode: int
    fin: bool
    rsv: int
    length: int
    mask: bytes | None
    got: int = 0
    parts: list[bytes] = field(default_factory=list)


def _invalid_close_code(code: int) -> bool:
    """RFC 6455 §7.4: the codes the fuzzer refuses in a received Close."""
    return code < 1000 or (code <= 2999 and code not in _ALLOWED_BELOW_3000) or code >= 5000


def _py2_decodes(raw: bytes) -> bool:
    """Would the fuzzer's Python 2 decode this as UTF-8? (It lets surrogates through.)"""
    try:
        raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


class Connection(asyncio.Protocol):
    """One fuzzer-side WebSocket connection; ``done`` resolves when TCP is gone."""

    def __init__(
        self,
        where: handshake.Target,
        keys: frames.MaskKeys,
        log: WireLog,
        listener: Listener,
        timeouts: Timeouts = Timeouts(),
        offers: Sequence[deflate.Offer] = (),
    ) -> None:
        self.state = State.CONNECTING
        self.deflate: deflate.MessageDeflate | None = None
        self.reader_error: str | None = None  # why the fuzzer's own reader would have raised
        self.flags = CloseState()
        self.http_request = b""
        self.http_response = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._where = where
        self._keys = keys
        self._log = log
        self._listener = listener
        self._timeouts = timeouts
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._key = ""
        self._data = bytearray()
        self._frame: _Frame | None = None
        self._inside_message = False
        self._message_binary = False
        self._message_parts: list[bytes] = []
        self._utf8: Utf8Validator | None = None
        self._utf8_last = (True, True)
        self._queue: deque[bytes] = deque()
        self._sending = False
        self._held: list[bytes] | None = None
        self._streamed: tuple[bytes, int] | None = None
        self._carried = b""  # held writes waiting for the next queued write
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._offers = tuple(offers)
        self._compressed = False
        self._log_traffic = True

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.http_request, self._key = handshake.request(
            self._where, self._keys.octets(16), self._offers
        )
        self._write(self.http_request)
        self._arm("open-handshake", self._timeouts.open_handshake, self._open_handshake_timeout)

    def data_received(self, data: bytes) -> None:
        if self._log_traffic:
            self._log.octets("rx", data)
        self._data += data
        self._held = []
        try:
            if self.state is State.CONNECTING:
                self._read_handshake()
            elif self.state in (State.OPEN, State.CLOSING):
                self._consume()
        except _Crash:
            self._held = None
            if self._transport is not None:
                self._transport.abort()
            return
        held, self._held = self._held, None
        if held and self._sending:
            self._carried += b"".join(held)
        elif held:
            self._write(b"".join(held))

    def eof_received(self) -> bool:
        # The fuzzer's protocol does not half-close: on the peer's EOF its reactor closes the
        # socket at once, discarding what it had not yet written (asyncio would flush it first,
        # waiting on a peer that may have stopped reading).
        self._log.note("the testee closed its side: the connection is lost")
        if self._transport is not None:
            self._transport.abort()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.state = State.CLOSED
        flags = self.flags
        if not flags.was_clean and not flags.dropped_by_me and flags.not_clean_reason is None:
            flags.not_clean_reason = (
                "peer dropped the TCP connection without previous WebSocket closing handshake"
            )
        self._log.note("TCP connection lost")
        self._listener.lost()
        if not self.done.done():
            self.done.set_result(None)

    # ------------------------------------------------------------------ sending

    def _write(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
            return
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
            if self._log_traffic:
                self._log.octets("tx", data)

    def log_traffic(self, enabled: bool) -> None:
        """Log frames and octets (the default), or stop logging them."""
        if enabled != self._log_traffic:
            self._log_traffic = enabled
            self._log.note(f"wire log {'resumed' if enabled else 'paused'}")

    def _reader_raised(self, why: str) -> None:
        """The fuzzer's reader would raise here: abort, dropping what this read wrote."""
        self.reader_error = why
        self._log.note(f"the fuzzer's reader raises: {why}")
        if self._held is not None:
            raise _Crash
        if self._transport is not None:
            self._transport.abort()

    def _send_next(self) -> None:
        carried, self._carried = self._carried, b""
        if not self._queue:
            self._sending = False
            if carried:
                self._write(carried)
            return
        chunk = self._queue.popleft()
        if self.state is not State.CLOSED:
            self._write(carried + chunk)
        self._loop.call_soon(self._send_next)

    def _send_data(self, data: bytes, sync: bool, chop: int | None) -> None:
        if chop:
            self._queue.extend(data[i : i + chop] for i in range(0, len(data), chop))
        elif sync or self._queue:
            self._queue.append(data)
        else:
            self._write(data)
            return
        if not self._sending:
            self._sending = True
            self._send_next()

    def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        length: int | None = None,
        chop: int | None = None,
        sync: bool = False,
    ) -> None:
        """Any frame, masked with a fresh key; ``length`` repeats ``payload`` to that size."""
        body = frames.repeat_to(payload, length) if length is not None else payload
        frame = self._encode_frame(opcode, body, fin=fin, rsv=rsv, chop=chop, sync=sync)
        self._send_data(frame, sync, chop)

    def _encode_frame(
        self,
        opcode: int,
        body: bytes,
        *,
        fin: bool = True,
        rsv: int = 0,
        chop: int | None = None,
        sync: bool = False,
    ) -> bytes:
        mask = self._keys.key()
        self.flags.tx_frames[opcode] += 1
        if self._log_traffic:
            self._log.frame("tx", opcode, body, fin=fin, rsv=rsv, mask=mask, chop=chop, sync=sync)
        return frames.encode(opcode, body, fin=fin, rsv=rsv, mask=mask)

    def send_message(
        self, payload: bytes, binary: bool, fragment: int, *, compressed: bytes | None = None
    ) -> None:
        """A message, compressed when deflate was agreed (``compressed``: its payload already
        compressed by the caller), then split into ``fragment``-byte frames when longer
        (0: one frame); all of it leaves in one write."""
        if self.state is not State.OPEN:
            return
        opcode = 2 if binary else 1
        rsv = 0
        if self.deflate is not None:
            rsv = 4
            if compressed is None:
                try:
                    compressed = self.deflate.compress(payload)
                except deflate.CompressorRefused as exc:
                    self._reader_raised(str(exc))
                    return
            payload = compressed
        bounds = frames.fragment_bounds(len(payload), fragment)
        keys = self._keys.keys(len(bounds))
        stats = self.flags.tx_frames
        stats[opcode] += 1
        if len(bounds) > 1:
            stats[0] += len(bounds) - 1
        if self._log_traffic:
            last = len(bounds) - 1
            for index, ((start, end), key) in enumerate(zip(bounds, keys, strict=True)):
                self._log.frame(
                    "tx",
                    opcode if index == 0 else 0,
                    payload[start:end],
                    fin=index == last,
                    rsv=rsv if index == 0 else 0,
                    mask=key,
                )
        self._send_data(frames.encode_message(opcode, payload, bounds, keys, rsv=rsv), False, None)

    def begin_frame(self, opcode: int, length: int) -> None:
        """A frame header alone (FIN clear) with a fresh key; ``frame_data`` sends the payload
        in parts, masked as one. Only while open (the fuzzer's streaming API)."""
        if self.state is not State.OPEN:
            return
        mask = self._keys.key()
        self._streamed = (mask, 0)
        self._log.note(f"frame header: opcode {opcode}, {length} octets, mask {mask.hex()}")
        self._send_data(frames.header(opcode, length, fin=False, mask=mask), False, None)

    def frame_data(self, payload: bytes) -> None:
        """The next part of the frame ``begin_frame`` opened; only while open."""
        if self.state is not State.OPEN or self._streamed is None:
            return
        mask, offset = self._streamed
        self._streamed = (mask, offset + len(payload))
        turn = offset % 4
        self._send_data(frames.apply_mask(payload, mask[turn:] + mask[:turn]), False, None)

    def send_close_frame(
        self, code: int | None = None, reason: bytes | None = None, *, reply: bool = False
    ) -> None:
        """Our Close with any code and raw reason; only while open (later: nothing)."""
        if self.state is not State.OPEN:
            return
        payload = (struct.pack("!H", code) if code is not None else b"") + (reason or b"")
        self.send_frame(8, payload)
        self.state = State.CLOSING
        self.flags.closed_by_me = not reply
        self.flags.local_code = code
        self.flags.local_reason = reason
        if not reply:
            self._arm("close-handshake", self._timeouts.close_handshake, self._close_timeout)

    def send_close(self, code: int | None = None, reason: str | None = None) -> None:
        """The checked API: 1000 or 3000-4999, a reason only with a code, cut to fit."""
        if code is not None and code != NORMAL and not 3000 <= code <= 4999:
            raise ValueError(f"invalid close code {code}")
        if reason is not None and code is None:
            raise ValueError("close reason without close code")
        raw = None
        if reason is not None:
            raw = reason.encode("utf-8")
            if len(raw) > _REASON_MAX:
                raw = raw[:120] + b"..."
        self.send_close_frame(code, raw)

    def fail(self, code: int = GOING_AWAY, reason: str = "Going Away") -> None:
        """Fail the connection: a Close while open, a TCP drop while closing."""
        if self.state is State.CLOSED:
            return
        self._log.note(f"failing the connection: {code} {reason}")
        self.flags.failed_by_me = True
        if self.state is State.CLOSING:
            self.drop(abort=False)
        else:
            self.send_close_frame(code, reason.encode("utf-8")[:_REASON_MAX])

    def drop(self, *, abort: bool) -> None:
        """Drop TCP ourselves (``abort``: without flushing what is buffered)."""
        if self.state is State.CLOSED:
            return
        self._log.note("dropping the TCP connection")
        self.flags.dropped_by_me = True
        self.state = State.CLOSED
        if self._transport is not None:
            if abort:
                self._transport.abort()
            else:
                self._transport.close()

    # ------------------------------------------------------------------ timers

    def _arm(self, name: str, delay: float, action: Callable[[], None]) -> None:
        self._log.timer(name, delay)
        self._timers[name] = self._loop.call_later(delay, action)

    def _disarm(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _open_handshake_timeout(self) -> None:
        if self.state is State.CONNECTING:
            self._log.fired("open-handshake")
            self.flags.was_clean = False
            self.flags.not_clean_reason = "peer did not finish (in time) the opening handshake"
            self.flags.open_handshake_timeout = True
            self.drop(abort=True)

    def _close_timeout(self) -> None:
        if self.state is not State.CLOSED:
            self._log.fired("close-handshake")
            self.flags.was_clean = False
            self.flags.not_clean_reason = "peer did not respond (in time) in closing handshake"
            self.flags.close_handshake_timeout = True
            self.drop(abort=True)

    def _server_drop_timeout(self) -> None:
        if self.state is not State.CLOSED:
            self._log.fired("server-drop")
            self.flags.was_clean = False
            self.flags.not_clean_reason = "server did not drop TCP connection (in time)"
            self.flags.server_drop_timeout = True
            self.drop(abort=True)

    # ------------------------------------------------------------------ receiving

    def _read_handshake(self) -> None:
        end = self._data.find(handshake.END_OF_HEAD)
        if end < 0:
            return
        self.http_response = bytes(self._data[: end + 4])
        refusal, agreed = handshake.check_response(
            self.http_response, self._key, self._where.protocols, offered=bool(self._offers)
        )
        if refusal is not None:
            self._log.note(f"opening handshake refused: {refusal}")
            self.flags.handshake_failure = refusal
            self.flags.not_clean_reason = refusal
            self.drop(abort=True)
            return
        del self._data[: end + 4]
        if agreed is not None:
            self.deflate = deflate.MessageDeflate(agreed)
            self._log.note(f"permessage-deflate agreed: {agreed.describe()}")
            # Read as Twisted reads (64 KiB at most): where reads split a compressed message
            # decides, as in the fuzzer, whether a testee's window overrun is caught.
            if self._transport is not None and hasattr(self._transport, "max_size"):
                self._transport.max_size = _TWISTED_READ_SIZE
        self.state = State.OPEN
        self._disarm("open-handshake")
        self.flags.was_open = True
        self._listener.opened()
        if self._data:
            self._consume()

    def _consume(self) -> None:
        while self._process() and self.state is not State.CLOSED:
            pass

    def _violation(self, reason: str) -> None:
        self.fail(PROTOCOL_ERROR, reason)

    def _process(self) -> bool:
        if self._frame is None:
            return self._header()
        frame = self._frame
        take = bytes(self._data[: frame.length - frame.got])
        del self._data[: len(take)]
        if frame.mask is not None and take:
            offset = frame.got % 4
            take = frames.apply_mask(take, frame.mask[offset:] + frame.mask[:offset])
        frame.got += len(take)
        self._frame_data(frame, take)
        if frame.got == frame.length:
            self._frame_end(frame)
        return len(self._data) > 0

    def _header(self) -> bool:
        data = self._data
        if len(data) < 2:
            return False
        fin, rsv, opcode = bool(data[0] & 0x80), (data[0] >> 4) & 0x7, data[0] & 0x0F
        masked, short = bool(data[1] & 0x80), data[1] & 0x7F
        # RFC 6455 §5.2: RSV bits need an extension; RFC 7692 §6: permessage-deflate owns RSV1.
        compressing = self.deflate is not None
        if rsv and not (compressing and rsv == 4):
            self._violation(f"RSV = {rsv} and no extension negotiated")
        # RFC 6455 §5.1: a server must not mask.
        if masked:
            self._violation("masked server-to-client frame")
        if opcode > 7:
            # RFC 6455 §5.5: control frames are never fragmented and carry at most 125 bytes.
            if not fin:
                self._violation("fragmented control frame")
            if short > _CONTROL_MAX:
                self._violation("control frame with payload length > 125 octets")
            if opcode not in (8, 9, 10):
                self._violation(f"control frame using reserved opcode {opcode}")
            if opcode == 8 and short == 1:
                self._violation("received close control frame with payload len 1")
            # RFC 7692 §6.1: control frames are never compressed.
            if compressing and rsv == 4:
                self._violation(f"received compressed control frame [{deflate.EXTENSION}]")
        else:
            if opcode not in (0, 1, 2):
                self._violation(f"data frame using reserved opcode {opcode}")
            # RFC 6455 §5.4: continuation frames only inside a fragmented message.
            if not self._inside_message and opcode == 0:
                self._violation("received continuation data frame outside fragmented message")
            if self._inside_message and opcode != 0:
                self._violation(
                    "received non-continuation data frame while inside fragmented message"
                )
            # RFC 7692 §6.1: RSV1 only on the first frame of a message.
            if compressing and rsv == 4 and self._inside_message:
                self._violation(
                    f"received continuation data frame with compress bit set [{deflate.EXTENSION}]"
                )
        extra = {126: 2, 127: 8}.get(short, 0)
        size = 2 + extra + (4 if masked else 0)
        if len(data) < size:
            return False
        if short == 126:
            length = struct.unpack_from("!H", data, 2)[0]
            if length < 126:
                self._violation("invalid data frame length (not using minimal length encoding)")
        elif short == 127:
            length = struct.unpack_from("!Q", data, 2)[0]
            if length > 0x7FFFFFFFFFFFFFFF:
                self._violation("invalid data frame length (>2^63)")
            if length < 65536:
                self._violation("invalid data frame length (not using minimal length encoding)")
        else:
            length = short
        mask = bytes(data[2 + extra : size]) if masked else None
        del data[:size]
        frame = _Frame(opcode, fin, rsv, length, mask)
        self._frame = frame
        self._frame_begin(frame)
        return length == 0 or len(data) > 0

    def _frame_begin(self, frame: _Frame) -> None:
        if frame.opcode > 7 or self._inside_message:
            return
        self._inside_message = True
        self._message_binary = frame.opcode == 2
        self._message_parts = []
        self._compressed = self.deflate is not None and frame.rsv == 4
        if self._compressed:
            assert self.deflate is not None
            self.deflate.begin_inflate()
        if frame.opcode == 1:
            self._utf8 = Utf8Validator()
            self._utf8_last = (True, True)
        else:
            self._utf8 = None

    def _inflate(self, payload: bytes, last: bool) -> bytes:
        assert self.deflate is not None
        try:
            if last:
                self.deflate.end_inflate()
                return b""
            return self.deflate.inflate(payload)
        except zlib.error as exc:
            self._reader_raised(
                "the testee's message does not inflate with the agreed "
                f"{self.deflate.agreed.server_max_window_bits}-bit window ({exc})"
            )
            return b""

    def _frame_data(self, frame: _Frame, payload: bytes) -> None:
        if frame.opcode > 7 or self._log_traffic:
            frame.parts.append(payload)
        if frame.opcode > 7:
            return
        if self._compressed:
            payload = self._inflate(payload, last=False)
        if self._utf8 is not None:
            self._utf8_last = self._utf8.validate(payload)
            if not self._utf8_last[0]:
                self.fail(
                    INVALID_PAYLOAD, "encountered invalid UTF-8 while processing text message"
                )
        if not self.flags.failed_by_me:
            self._message_parts.append(payload)

    def _frame_end(self, frame: _Frame) -> None:
        self._frame = None
        payload = b"".join(frame.parts)
        self.flags.rx_frames[frame.opcode] += 1
        if self._log_traffic:
            self._log.frame(
                "rx", frame.opcode, payload, fin=frame.fin, rsv=frame.rsv, mask=frame.mask
            )
        if frame.opcode > 7:
            self._control_frame(frame.opcode, payload)
            return
        if not frame.fin:
            return
        if self._compressed:
            self._inflate(b"", last=True)
        if self._utf8 is not None and not self._utf8_last[1]:
            self.fail(INVALID_PAYLOAD, "UTF-8 text message payload ended within Unicode code point")
        self._inside_message = False
        if not self.flags.failed_by_me:
            self._listener.message(b"".join(self._message_parts), self._message_binary)

    def _control_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 8:
            code = struct.unpack_from("!H", payload)[0] if len(payload) > 1 else None
            reason = payload[2:] if len(payload) > 2 else None
            self._close_frame(code, reason)
        elif opcode == 9:
            if self.state is State.OPEN:
                self.send_frame(10, payload)
        elif opcode == 10:
            self._listener.pong(payload)

    def _close_frame(self, code: int | None, reason: bytes | None) -> None:
        self.flags.remote_code = code
        if code is not None and _invalid_close_code(code):
            self._violation(f"invalid close code {code}")
        if reason is None:
            self.flags.remote_reason = None
        else:
            if not Utf8Validator().validate(reason)[0]:
                self.fail(INVALID_PAYLOAD, "invalid close reason (non-UTF-8 payload)")
            if not _py2_decodes(reason):
                self._log.note("the fuzzer's reader crashes on this close reason")
                raise _Crash
            self.flags.remote_reason = reason.decode("utf-8", "surrogatepass")
        if self.state is State.CLOSING:
            self._disarm("close-handshake")
            self.flags.was_clean = True
            self._arm("server-drop", self._timeouts.server_drop, self._server_drop_timeout)
        elif self.state is State.OPEN:
            self.flags.was_clean = True
            self.send_close_frame(NORMAL, reply=True)
        else:
            self.flags.was_clean = False


class _Crash(Exception):
    """The fuzzer's reader raised: the connection is aborted, held writes discarded."""
