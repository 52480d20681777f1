"""The fuzzer's frames out: masked, counted, logged, compressed and fragmented as it does.

Invariants:
- Every frame gets a fresh masking key from the case's ``MaskKeys``, in the order sent; a
  message's frames take theirs together, before any is written.
- Every frame is counted in ``flags.tx_frames`` (continuations under opcode 0) and logged
  only while the host's ``traffic_logged`` and the log is not ``quiet`` (what only a logged
  frame needs is not even built then); a streamed frame's header is always noted.
- A message is compressed when deflate was agreed (RSV1 on its first frame only), split into
  ``fragment``-byte frames (an exact multiple ends with an empty final frame) and leaves in
  one write; a compressor the fuzzer's zlib cannot create is its reader raising.
- This module decides bytes, never when they may be sent: the connection checks its state,
  the ``Outbox`` paces the writes.
"""

from __future__ import annotations

from typing import Protocol

from wsconform.native import deflate, frames
from wsconform.native.lifecycle import CloseState
from wsconform.native.outbox import Outbox
from wsconform.native.record import WireLog

__all__ = ["FrameWriter", "Sender"]


class Sender(Protocol):
    """The connection a writer writes for."""

    deflate: deflate.MessageDeflate | None
    flags: CloseState
    traffic_logged: bool

    def reader_raised(self, why: str) -> None: ...


class FrameWriter:
    """The sending side of one connection: frames and messages into bytes for the outbox."""

    def __init__(self, host: Sender, keys: frames.MaskKeys, log: WireLog, out: Outbox) -> None:
        self._host = host
        self._keys = keys
        self._log = log
        self._out = out
        self._streamed: tuple[bytes, int] | None = None  # key and offset of a streamed frame

    def _logged(self) -> bool:
        return self._host.traffic_logged and not self._log.quiet

    def frame(
        self,
        opcode: int,
        payload: bytes,
        *,
        fin: bool,
        rsv: int,
        length: int | None,
        chop: int | None,
        sync: bool,
    ) -> None:
        """Any frame; ``length`` repeats ``payload`` to that size."""
        mask = self._keys.key()
        self._host.flags.tx_frames[opcode] += 1
        if self._logged():
            body = frames.repeat_to(payload, length) if length is not None else payload
            self._log.frame("tx", opcode, body, fin=fin, rsv=rsv, mask=mask, chop=chop, sync=sync)
        if length is None:
            wire = frames.encode(opcode, payload, fin=fin, rsv=rsv, mask=mask)
        else:  # the fuzzer's generated payloads: masked a repeating unit at a time
            head = frames.header(opcode, length, fin=fin, rsv=rsv, mask=mask)
            wire = head + frames.masked_repeat(payload, length, mask)
        self._out.send(wire, sync, chop)

    def message(
        self, payload: bytes, binary: bool, fragment: int, compressed: bytes | None
    ) -> None:
        """A message (``compressed``: its payload already compressed by the caller)."""
        opcode = 2 if binary else 1
        rsv = 0
        codec = self._host.deflate
        if codec is not None:
            rsv = 4
            if compressed is None:
                try:
                    compressed = codec.compress(payload)
                except deflate.CompressorRefused as exc:
                    self._host.reader_raised(str(exc))
                    return
            payload = compressed
        count = frames.frame_count(len(payload), fragment)
        keys = self._keys.joined_keys(count)
        stats = self._host.flags.tx_frames
        stats[opcode] += 1
        if count > 1:
            stats[0] += count - 1
        if self._logged():
            bounds = frames.fragment_bounds(len(payload), fragment)
            for index, (start, end) in enumerate(bounds):
                self._log.frame(
                    "tx",
                    opcode if index == 0 else 0,
                    payload[start:end],
                    fin=index == count - 1,
                    rsv=rsv if index == 0 else 0,
                    mask=keys[4 * index : 4 * index + 4],
                )
        self._out.send(frames.encode_message(opcode, payload, fragment, keys, rsv=rsv), False, None)

    def begin(self, opcode: int, length: int) -> None:
        """A frame header alone (FIN clear); ``data`` sends the payload, masked as one."""
        mask = self._keys.key()
        self._streamed = (mask, 0)
        self._log.note(f"frame header: opcode {opcode}, {length} octets, mask {mask.hex()}")
        self._out.send(frames.header(opcode, length, fin=False, mask=mask), False, None)

    def data(self, payload: bytes) -> None:
        """The next part of the frame ``begin`` opened (nothing when none was)."""
        if self._streamed is None:
            return
        mask, offset = self._streamed
        self._streamed = (mask, offset + len(payload))
        turn = offset % 4
        self._out.send(frames.apply_mask(payload, mask[turn:] + mask[:turn]), False, None)
