"""The 12.x/13.x exchange: 1,000 compressed messages, each sent once the previous echo is back.

Invariants (the fuzzer's case code, as it behaves):
- On open, without an agreed permessage-deflate the case is UNIMPLEMENTED and we close (1000).
  Otherwise it is FAILED "Case did not finish within N seconds." until it settles, and a timer
  closes the connection after N seconds.
- Message k is the next ``length`` units of the data set, wrapping around at its end: bytes
  for binary data, characters for text (sent UTF-8 encoded).
- An echo is checked for type, then length (characters for text), then SHA-1, and the first
  mismatch fails the case with the fuzzer's words and closes (1000). Every echo is checked,
  also after the case settled; past the last message the case is OK and closes.
- Our wire log is paused during the exchange, as the fuzzer's is, and resumed when it settles.
- Compressed bodies depend only on the message sequence and the agreed client-side parameters,
  so ``_SEQUENCES`` keeps them across cases (the same slices recur in up to 40 cases); a
  sequence sent with context takeover keeps its compressor next to its bodies.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zlib_ng import zlib_ng

from wsconform.native import casedef, testdata
from wsconform.native.connection import Connection, State
from wsconform.native.deflate import Agreed, MessageDeflate, compress_with
from wsconform.native.verdict import DIFFERED, FAILED, OK, UNIMPLEMENTED

__all__ = ["EchoStream", "prepare"]

NORMAL = 1000
ALL_ECHOED = "Ok, received all echo'ed messages in time."

Later = Callable[[str, float, Callable[[], None]], None]


@functools.cache
def _payload(name: str) -> tuple[bytes | str, bool]:
    """The data set as the fuzzer slices it (text as characters, unless it is all ASCII,
    where bytes and characters coincide), and whether it is binary."""
    data_set = next(d for d in testdata.DATA_SETS if d.name == name)
    raw = testdata.load(name)
    if data_set.binary or raw.isascii():
        return raw, data_set.binary
    return raw.decode("utf-8"), data_set.binary


def prepare(step: casedef.EchoStream) -> None:
    """Load (fetch once) the step's data before any connection is made."""
    _payload(step.data)


@dataclass
class _Sequence:
    """The compressed bodies of one message sequence so far."""

    bodies: list[bytes] = field(default_factory=list)
    size: int = 0
    compressor: zlib_ng._Compress | None = None  # the running one of a context-takeover sequence


class _SequenceCache:
    """Compressed bodies by (data, length, agreed client side, level), least recently used
    evicted beyond ``budget`` bytes."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._size = 0
        self._entries: OrderedDict[tuple[Any, ...], _Sequence] = OrderedDict()

    def body(
        self, key: tuple[Any, ...], index: int, message: bytes, codec: MessageDeflate
    ) -> bytes:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Sequence()
        self._entries.move_to_end(key)
        if index < len(entry.bodies):
            return entry.bodies[index]
        assert index == len(entry.bodies), "sequences are sent in order"
        compressor = entry.compressor
        if compressor is None or codec.agreed.client_no_context_takeover:
            compressor = entry.compressor = codec.new_compressor()
        body = compress_with(compressor, message)
        entry.bodies.append(body)
        entry.size += len(body)
        self._size += len(body)
        while self._size > self._budget and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            self._size -= evicted.size
        return body


# Data sets no level shrinks much (zlib-ng level 2: the bitmap to 89 %, the PDF to 97 %;
# level 1: 101 %, 102 %): sent at level 1, which compresses them in 55-60 % of level 2's time.
_BARELY_COMPRESSIBLE = frozenset({"lena512", "ooms"})

# Enough for every distinct sequence of one data set at our level (the largest, the bitmap,
# is about 225 MB); the JSON sequences of 12.1 and 13.x together are about 15 MB.
_SEQUENCES = _SequenceCache(budget=256 * 1024 * 1024)


class EchoStream:
    """One exchange on an open connection; ``verdict`` is the case's own (behavior, result)."""

    def __init__(self, step: casedef.EchoStream, connection: Connection, later: Later) -> None:
        self._step = step
        self._connection = connection
        self._later = later
        self._payload, self._binary = _payload(step.data)
        self._pointer = 0
        self._count = 0
        self._expected = b""
        self._settled: tuple[str, str] = (FAILED, DIFFERED)
        self._agreed: Agreed | None = None

    # ------------------------------------------------------------------ the case

    def start(self) -> None:
        """The connection opened: check the extension, arm the time limit, send message 1."""
        connection = self._connection
        if connection.deflate is None:
            self._settled = (UNIMPLEMENTED, DIFFERED)
            connection.send_close(NORMAL)
            return
        self._agreed = connection.deflate.agreed
        if self._step.data in _BARELY_COMPRESSIBLE:
            connection.deflate.level = 1
        connection.log_traffic(False)
        seconds = self._step.seconds
        self._settled = (FAILED, f"Case did not finish within {seconds:g} seconds.")
        self._later("close", seconds, self._time_is_up)
        self._send_next()

    def message(self, payload: bytes, binary: bool) -> None:
        """An echo arrived."""
        mismatch = self._mismatch(payload, binary)
        if mismatch is not None:
            self._settle(FAILED, mismatch)
        elif self._count < self._step.count:
            self._send_next()
        else:
            self._settle(OK, ALL_ECHOED)

    def verdict(self) -> tuple[str, str]:
        """(behavior, result), saying so where the fuzzer's own reader failed."""
        behavior, result = self._settled
        why = self._connection.reader_error
        if why is not None:
            result += (
                f" [{why}: Autobahn's own reader raises here and its connection drops, "
                "so the case ends as Autobahn reports it]"
            )
        return behavior, result

    def report(self) -> dict[str, Any]:
        """Report keys of these cases: the fuzzer's, plus the data's origin and the agreement."""
        agreed = self._agreed
        return {
            "reportTime": True,
            "reportCompressionRatio": True,
            "testData": testdata.origin(self._step.data),
            "permessageDeflate": None if agreed is None else agreed.describe(),
        }

    # ------------------------------------------------------------------ steps

    def _settle(self, behavior: str, result: str) -> None:
        self._settled = (behavior, result)
        self._connection.log_traffic(True)
        self._connection.send_close(NORMAL)

    def _time_is_up(self) -> None:
        self._connection.log_traffic(True)
        self._connection.send_close()

    def _next_slice(self) -> bytes:
        payload, length = self._payload, self._step.length
        start = self._pointer
        end = (start + length) % len(payload)
        self._pointer = end
        if isinstance(payload, bytes):
            return payload[start:end] if end > start else payload[start:] + payload[:end]
        text = payload[start:end] if end > start else payload[start:] + payload[:end]
        return text.encode("utf-8")

    def _send_next(self) -> None:
        message = self._next_slice()
        self._expected = message
        index = self._count
        self._count += 1
        connection = self._connection
        codec = connection.deflate
        if connection.state is not State.OPEN or codec is None:
            return  # the fuzzer's sendMessage returns early; the count still moves on
        compressed = None
        if not codec.compressor_refused():
            step, agreed = self._step, codec.agreed
            key = (
                step.data,
                step.length,
                agreed.client_max_window_bits,
                agreed.client_no_context_takeover,
                codec.level,
            )
            compressed = _SEQUENCES.body(key, index, message, codec)
        connection.send_message(message, self._binary, self._step.fragment, compressed=compressed)

    def _mismatch(self, payload: bytes, binary: bool) -> str | None:
        """The fuzzer's words for the first check the echo fails, or None."""
        if binary == self._binary and payload == self._expected:
            return None
        if binary != self._binary:
            return (
                "Echo'ed message type differs from what I sent "
                f"(got binary {binary}, expected binary {self._binary})."
            )
        length = len(payload) if self._binary else len(payload.decode("utf-8", "surrogatepass"))
        if length != self._step.length:
            return (
                "Echo'ed message length differs from what I sent "
                f"(got length {length}, expected length {self._step.length})."
            )
        got = binascii.hexlify(hashlib.sha1(payload).digest()).decode()
        want = binascii.hexlify(hashlib.sha1(self._expected).digest()).decode()
        return (
            "Echo'ed message contents differs from what I sent "
            f"(got SHA1 {got}, expected SHA1 {want})."
        )
