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
  Once deflate is agreed a read is handled ``READ_SIZE`` bytes at a time, as Twisted reads,
  whatever the event loop read at once.
- ``log_traffic(False)`` stops logging frames and octets (the fuzzer's own wire log is off
  during the 12.x/13.x exchanges); frames are still counted.
- Writes made while handling a read are held until the read is handled and then leave as
  one TCP write (the fuzzer's reactor buffers them and sends them together at its next turn);
  chopped and ``sync`` writes go one per loop turn, at least ``chop_gap`` apart (one turn of
  the fuzzer's reactor; ``outbox``). The reactor
  runs its due timers before it flushes, so when queued writes are under way, what was held
  leaves together with the next queued one: a case's first two queued writes always share
  one TCP write (3.3's text frame and its bad frame arrive together).

States: CONNECTING -> OPEN -> CLOSING -> CLOSED, and CONNECTING/OPEN -> CLOSED on a drop;
this class makes every transition. Its parts: ``refusals`` (what is refused, pure),
``frame_reader`` (frames and messages in), ``frame_writer`` (frames and messages out),
``outbox`` (how writes leave), ``lifecycle`` (states, timers, flags).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Sequence
from typing import Protocol, cast

from wsconform.native import deflate, frames, handshake, refusals
from wsconform.native.frame_reader import INVALID_PAYLOAD, PROTOCOL_ERROR, FrameReader
from wsconform.native.frame_writer import FrameWriter
from wsconform.native.lifecycle import CloseState, State, Timeouts, Timers
from wsconform.native.outbox import Outbox
from wsconform.native.record import WireLog
from wsconform.native.utf8 import Utf8Validator

__all__ = ["READ_SIZE", "CloseState", "Connection", "Listener", "State", "Timeouts"]

GOING_AWAY = 1001
NORMAL = 1000
_REASON_MAX = 123  # 125 minus the two code bytes
READ_SIZE = 65536  # twisted.internet.tcp.Connection.bufferSize: the fuzzer reads no more
_TIMEOUTS = Timeouts()  # the fuzzer's own


class Listener(Protocol):
    """What the case playing on this connection is told."""

    def opened(self) -> None: ...

    def message(self, payload: bytes, binary: bool) -> None: ...

    def pong(self, payload: bytes) -> None: ...

    def lost(self) -> None: ...


class Connection(asyncio.Protocol):
    """One fuzzer-side WebSocket connection; ``done`` resolves when TCP is gone."""

    def __init__(
        self,
        where: handshake.Target,
        keys: frames.MaskKeys,
        log: WireLog,
        listener: Listener,
        timeouts: Timeouts = _TIMEOUTS,
        offers: Sequence[deflate.Offer] = (),
        chop_gap: float = 0.0,
    ) -> None:
        self.state = State.CONNECTING
        self.deflate: deflate.MessageDeflate | None = None
        self.reader_error: str | None = None  # why the fuzzer's own reader would have raised
        self.flags = CloseState()
        self.http_request = b""
        self.http_response = b""
        self.traffic_logged = True  # frames and octets go to the wire log
        loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = loop.create_future()
        self._where = where
        self._keys = keys
        self._log = log
        self._listener = listener
        self._timeouts = timeouts
        self._key = ""
        self._reader = FrameReader(self, log, listener.message)
        self._out = Outbox(loop, self._wrote, lambda: self.state is State.CLOSED, chop_gap)
        self._timers = Timers(loop, log)
        self._writer = FrameWriter(self, keys, log, self._out)
        self._offers = tuple(offers)

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport implements asyncio.Transport without subclassing it.
        self._out.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.http_request, self._key = handshake.request(
            self._where, self._keys.octets(16), self._offers
        )
        self._out.write(self.http_request)
        self._timers.arm(
            "open-handshake", self._timeouts.open_handshake, self._open_handshake_timeout
        )

    def data_received(self, data: bytes) -> None:
        if self.deflate is None or len(data) <= READ_SIZE:
            self._received(data)
            return
        # Handled as Twisted reads it (64 KiB at a time): where reads split a compressed
        # message decides, as in the fuzzer, whether a testee's window overrun is caught.
        for start in range(0, len(data), READ_SIZE):
            if self._out.transport is None or self._out.transport.is_closing():
                return
            self._received(data[start : start + READ_SIZE])

    def _received(self, data: bytes) -> None:
        if self.traffic_logged:
            self._log.octets("rx", data)
        self._reader.buffer += data
        self._out.hold()
        try:
            if self.state is State.CONNECTING:
                self._read_handshake()
            elif self.state in (State.OPEN, State.CLOSING):
                self._consume()
        except _Crash:
            self._out.discard()
            self._out.drop(abort=True)
            return
        self._out.release()

    def eof_received(self) -> bool:
        # The fuzzer's protocol does not half-close: on the peer's EOF its reactor closes the
        # socket at once, discarding what it had not yet written (asyncio would flush it first,
        # waiting on a peer that may have stopped reading).
        self._log.note("the testee closed its side: the connection is lost")
        self._out.drop(abort=True)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._timers.cancel_all()
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

    def _wrote(self, data: bytes) -> None:
        if self.traffic_logged:
            self._log.octets("tx", data)

    def log_traffic(self, enabled: bool) -> None:
        """Log frames and octets (the default), or stop logging them."""
        if enabled != self.traffic_logged:
            self.traffic_logged = enabled
            self._log.note(f"wire log {'resumed' if enabled else 'paused'}")

    def reader_raised(self, why: str) -> None:
        """The fuzzer's reader would raise here: abort, dropping what this read wrote."""
        self.reader_error = why
        self._log.note(f"the fuzzer's reader raises: {why}")
        if self._out.holding:
            raise _Crash
        self._out.drop(abort=True)

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
        self._writer.frame(opcode, payload, fin=fin, rsv=rsv, length=length, chop=chop, sync=sync)

    def send_message(
        self, payload: bytes, binary: bool, fragment: int, *, compressed: bytes | None = None
    ) -> None:
        """A message, compressed when deflate was agreed (``compressed``: its payload already
        compressed by the caller), then split into ``fragment``-byte frames when longer
        (0: one frame); all of it leaves in one write. Only while open."""
        if self.state is State.OPEN:
            self._writer.message(payload, binary, fragment, compressed)

    def begin_frame(self, opcode: int, length: int) -> None:
        """A frame header alone (FIN clear) with a fresh key; ``frame_data`` sends the payload
        in parts, masked as one. Only while open (the fuzzer's streaming API)."""
        if self.state is State.OPEN:
            self._writer.begin(opcode, length)

    def frame_data(self, payload: bytes) -> None:
        """The next part of the frame ``begin_frame`` opened; only while open."""
        if self.state is State.OPEN:
            self._writer.data(payload)

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
            self._timers.arm("close-handshake", self._timeouts.close_handshake, self._close_timeout)

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
        self._out.drop(abort=abort)

    # ------------------------------------------------------------------ timers

    def _timed_out(self, name: str, why: str) -> None:
        self._log.fired(name)
        self.flags.was_clean = False
        self.flags.not_clean_reason = why
        self.drop(abort=True)

    def _open_handshake_timeout(self) -> None:
        if self.state is State.CONNECTING:
            self.flags.open_handshake_timeout = True
            self._timed_out("open-handshake", "peer did not finish (in time) the opening handshake")

    def _close_timeout(self) -> None:
        if self.state is not State.CLOSED:
            self.flags.close_handshake_timeout = True
            self._timed_out(
                "close-handshake", "peer did not respond (in time) in closing handshake"
            )

    def _server_drop_timeout(self) -> None:
        if self.state is not State.CLOSED:
            self.flags.server_drop_timeout = True
            self._timed_out("server-drop", "server did not drop TCP connection (in time)")

    # ------------------------------------------------------------------ receiving

    def _read_handshake(self) -> None:
        data = self._reader.buffer
        end = data.find(handshake.END_OF_HEAD)
        if end < 0:
            return
        self.http_response = bytes(data[: end + 4])
        refusal, agreed = handshake.check_response(
            self.http_response, self._key, self._where.protocols, offered=bool(self._offers)
        )
        if refusal is not None:
            self._log.note(f"opening handshake refused: {refusal}")
            self.flags.handshake_failure = refusal
            self.flags.not_clean_reason = refusal
            self.drop(abort=True)
            return
        del data[: end + 4]
        if agreed is not None:
            self.deflate = deflate.MessageDeflate(agreed)
            self._log.note(f"permessage-deflate agreed: {agreed.describe()}")
        self.state = State.OPEN
        self._timers.disarm("open-handshake")
        self.flags.was_open = True
        self._listener.opened()
        if data:
            self._consume()

    def _consume(self) -> None:
        while self._reader.process() and self.state is not State.CLOSED:
            pass

    def control_frame(self, opcode: int, payload: bytes) -> None:
        """A whole control frame from the testee: a Close, a ping answered, a pong passed on."""
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
        if code is not None and refusals.invalid_close_code(code):
            self.fail(PROTOCOL_ERROR, f"invalid close code {code}")
        if reason is None:
            self.flags.remote_reason = None
        else:
            if not Utf8Validator().validate(reason)[0]:
                self.fail(INVALID_PAYLOAD, "invalid close reason (non-UTF-8 payload)")
            if not refusals.py2_decodes(reason):
                self._log.note("the fuzzer's reader crashes on this close reason")
                raise _Crash
            self.flags.remote_reason = reason.decode("utf-8", "surrogatepass")
        if self.state is State.CLOSING:
            self._timers.disarm("close-handshake")
            self.flags.was_clean = True
            self._timers.arm("server-drop", self._timeouts.server_drop, self._server_drop_timeout)
        elif self.state is State.OPEN:
            self.flags.was_clean = True
            self.send_close_frame(NORMAL, reply=True)
        else:
            self.flags.was_clean = False


class _Crash(Exception):
    """The fuzzer's reader raised: the connection is aborted, held writes discarded."""
