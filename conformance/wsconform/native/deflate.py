"""permessage-deflate (RFC 7692) as the fuzzer's client negotiates and runs it.

Invariants:
- Offers are written as the fuzzer writes them: the extension name, then
  ``client_no_context_takeover`` and ``client_max_window_bits`` (the fuzzer always says it
  accepts both), then what it requests of the server; several offers are joined by ", ".
- The server's answer is parsed with the fuzzer's rules and refused with its words: one
  compression extension at most, each parameter at most once, windows 8-15, flags without
  values, nothing unknown. The fuzzer checks nothing else against its offer: whatever the server
  answers within those rules is what both sides then use.
- The testee's messages are inflated with exactly the window it agreed to
  (``server_max_window_bits``, 15 when absent) and a fresh inflater per message when it agreed
  to ``server_no_context_takeover``: a testee that reaches further back fails to inflate, as it
  does in the fuzzer (whose reader then raises and the connection is dropped).
- zlib checks a back-reference against the agreed window only across its calls (within one
  call it may reach anything that call produced), so where the calls split a message decides
  whether an overrun is caught. The fuzzer inflates each read (Twisted reads up to 64 KiB) in
  Python 2.7's calls: output room 16 KiB, 16 KiB, 32 KiB, then doubling. ``inflate`` makes the
  same calls up to 32 KiB and then 32 KiB at a time (Python 3's zlib never gives one call more),
  so it splits at least where the fuzzer does: it catches every overrun the fuzzer catches, and
  could catch one the fuzzer misses only past 64 KiB of output from one read.
- We compress with the window the testee allows us and a fresh compressor per message when it
  asked for ``client_no_context_takeover``; the compressor and its level are ours (verdicts do
  not depend on them): zlib-ng at level 2, which makes streams about as small as zlib's level 1
  (the testee gets as many frames to read in the fragmented cases) in half the time. Inflation
  stays on the standard library's zlib, whose window check is the one described above. The
  fuzzer cannot create a compressor with an 8-bit window (zlib >= 1.2.9 refuses raw deflate
  with windowBits 8): ``CompressorRefused`` marks that, whatever zlib runs here.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from zlib_ng import zlib_ng

__all__ = [
    "EXTENSION",
    "LEVEL",
    "Agreed",
    "CompressorRefused",
    "MessageDeflate",
    "Offer",
    "compress_with",
    "offers_header",
    "parse_extensions",
    "response_refusal",
]

EXTENSION = "permessage-deflate"
# Extensions the fuzzer knows as compression (its Python 2.7 has bz2, not snappy): it parses
# them, then its deflate-only cases refuse a bzip2 answer.
_COMPRESSION_EXTENSIONS = (EXTENSION, "permessage-bzip2")
_WINDOWS = range(8, 16)  # RFC 7692 §7.1.2: 8..15
_DEFAULT_WINDOW = 15
# Our zlib-ng level. Level 2 makes real LZ77 + Huffman streams (the testee's inflater and its
# window are exercised) at a fraction of the default level's cost; zlib-ng's level 1 is faster
# still but barely compresses binary data (the bitmap to 99 %), which costs the testee frames.
LEVEL = 2
# Python 2.7's zlib: the output room of its first inflate call in a decompress(); it then
# doubles the buffer, so the following calls get 16 KiB, 32 KiB, 64 KiB, ...
_PY2_FIRST_ROOM = 16 * 1024
_PY3_MAX_ROOM = 32 * 1024  # the largest room Python 3's zlib gives a single inflate call
# RFC 7692 §7.2.1: the sender strips this empty stored block's tail; the reader restores it.
_TAIL = b"\x00\x00\xff\xff"


class CompressorRefused(Exception):
    """The fuzzer's zlib cannot create the compressor the testee asked for."""


@dataclass(frozen=True, slots=True)
class Offer:
    """One offer; ``request_max_window_bits`` 0 means none requested."""

    request_no_context_takeover: bool = False
    request_max_window_bits: int = 0

    def header(self) -> str:
        """This offer as the fuzzer writes it."""
        parts = [EXTENSION, "client_no_context_takeover", "client_max_window_bits"]
        if self.request_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.request_max_window_bits:
            parts.append(f"server_max_window_bits={self.request_max_window_bits}")
        return "; ".join(parts)


def offers_header(offers: Sequence[Offer]) -> str:
    """The ``Sec-WebSocket-Extensions`` value for ``offers``."""
    return ", ".join(offer.header() for offer in offers)


@dataclass(frozen=True, slots=True)
class Agreed:
    """What the server's answer settled, windows already defaulted to 15."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = _DEFAULT_WINDOW
    client_max_window_bits: int = _DEFAULT_WINDOW

    def describe(self) -> str:
        """For the wire log and reports."""
        return (
            f"server_no_context_takeover={self.server_no_context_takeover}, "
            f"client_no_context_takeover={self.client_no_context_takeover}, "
            f"server_max_window_bits={self.server_max_window_bits}, "
            f"client_max_window_bits={self.client_max_window_bits}"
        )


Param = str | bool  # a value, or True for a parameter without one


def parse_extensions(value: str) -> list[tuple[str, dict[str, list[Param]]]]:
    """Split a ``Sec-WebSocket-Extensions`` value the fuzzer's way: names lower-cased, values
    stripped of one pair of quotes, repeated parameters kept."""
    parsed: list[tuple[str, dict[str, list[Param]]]] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, *raw_params = (part.strip() for part in item.split(";"))
        params: dict[str, list[Param]] = {}
        for raw in raw_params:
            key, *rest = (piece.strip() for piece in raw.split("="))
            found: Param = True
            if rest:
                text = "=".join(rest)
                if text.startswith('"'):
                    text = text[1:]
                if text.endswith('"'):
                    text = text[:-1]
                found = text
            params.setdefault(key.lower(), []).append(found)
        parsed.append((name.lower(), params))
    return parsed


def _py2_int(value: Param) -> int | None:
    """``int(value)`` as the fuzzer's Python 2 computes it (a bare flag counts as 1)."""
    if value is True:
        return 1
    assert isinstance(value, str)
    if "_" in value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _illegal_value(value: Param | int, name: str) -> str:
    return (
        f"illegal extension parameter value '{value}' for parameter '{name}' "
        f"of extension '{EXTENSION}'"
    )


def _parse_deflate(params: dict[str, list[Param]]) -> Agreed | str:
    """The server's permessage-deflate answer, or why the fuzzer refuses it."""
    settled: dict[str, int | bool] = {}
    for name, values in params.items():
        if len(values) > 1:
            return (
                f"multiple occurrence of extension parameter '{name}' for extension '{EXTENSION}'"
            )
        value = values[0]
        if name in ("client_max_window_bits", "server_max_window_bits"):
            bits = _py2_int(value)
            if bits is None:
                return _illegal_value(value, name)
            if bits not in _WINDOWS:
                return _illegal_value(bits, name)
            settled[name] = bits
        elif name in ("client_no_context_takeover", "server_no_context_takeover"):
            if value is not True:
                return _illegal_value(value, name)
            settled[name] = True
        else:
            return f"illegal extension parameter '{name}' for extension '{EXTENSION}'"
    return Agreed(
        server_no_context_takeover=bool(settled.get("server_no_context_takeover", False)),
        client_no_context_takeover=bool(settled.get("client_no_context_takeover", False)),
        server_max_window_bits=int(settled.get("server_max_window_bits", _DEFAULT_WINDOW)),
        client_max_window_bits=int(settled.get("client_max_window_bits", _DEFAULT_WINDOW)),
    )


def response_refusal(value: str, offered: bool) -> tuple[str | None, Agreed | None]:
    """Judge the server's ``Sec-WebSocket-Extensions`` answer: (why the fuzzer fails the
    handshake, or None; what was agreed, or None). ``offered``: did we offer deflate?"""
    agreed: Agreed | None = None
    for name, params in parse_extensions(value):
        if name not in _COMPRESSION_EXTENSIONS:
            return (
                f"server wants to use extension '{name}' we did not request, "
                "haven't implemented or did not enable"
            ), None
        if agreed is not None:
            return "multiple occurrence of a permessage-compress extension", None
        parsed = _parse_deflate(params) if name == EXTENSION else None
        if isinstance(parsed, str):
            return parsed, None
        if parsed is None or not offered:
            return (
                "WebSocket permessage-compress extension response from server denied by client",
                None,
            )
        agreed = parsed
    return None, agreed


def compress_with(compressor: zlib_ng._Compress, message: bytes) -> bytes:
    """One message through ``compressor``, sync-flushed, tail stripped (RFC 7692 §7.2.1)."""
    return (compressor.compress(message) + compressor.flush(zlib_ng.Z_SYNC_FLUSH))[:-4]


class MessageDeflate:
    """The agreed extension at work on one connection (client side)."""

    def __init__(self, agreed: Agreed, level: int = LEVEL) -> None:
        self.agreed = agreed
        self.level = level
        self._compressor: zlib_ng._Compress | None = None
        self._inflater: zlib._Decompress | None = None

    def compressor_refused(self) -> bool:
        """Would the fuzzer fail to create its compressor (an 8-bit window)?"""
        return self.agreed.client_max_window_bits < 9

    def compress(self, message: bytes) -> bytes:
        """One message's compressed payload (RFC 7692 §7.2.1, tail stripped)."""
        if self.compressor_refused():
            bits = self.agreed.client_max_window_bits
            raise CompressorRefused(
                f"the fuzzer's zlib cannot create a compressor with the {bits}-bit window "
                f"the testee asked for (client_max_window_bits={bits})"
            )
        if self._compressor is None or self.agreed.client_no_context_takeover:
            self._compressor = self.new_compressor()
        return compress_with(self._compressor, message)

    def new_compressor(self) -> zlib_ng._Compress:
        """A compressor for the agreed client window, at our level."""
        return zlib_ng.compressobj(
            self.level, zlib_ng.DEFLATED, -self.agreed.client_max_window_bits
        )

    def begin_inflate(self) -> None:
        """A compressed message starts."""
        if self._inflater is None or self.agreed.server_no_context_takeover:
            self._inflater = zlib.decompressobj(-self.agreed.server_max_window_bits)

    def inflate(self, chunk: bytes) -> bytes:
        """Part of a compressed message, in the fuzzer's zlib calls (see the module doc);
        raises ``zlib.error`` where the fuzzer's reader does."""
        inflater = self._inflater
        assert inflater is not None, "begin_inflate() first"
        pieces = []
        produced = 0
        room = _PY2_FIRST_ROOM  # the room of the fuzzer's current inflate call
        while True:
            left = room
            while left:
                ask = min(left, _PY3_MAX_ROOM)
                piece = inflater.decompress(chunk, ask)
                chunk = inflater.unconsumed_tail
                pieces.append(piece)
                produced += len(piece)
                left -= len(piece)
                if len(piece) < ask:
                    return b"".join(pieces)
            room = produced  # Python 2.7 doubles its buffer: the next call gets as much again

    def end_inflate(self) -> None:
        """The compressed message ended: feed the stripped tail (its output is dropped, as
        the fuzzer drops it)."""
        assert self._inflater is not None, "begin_inflate() first"
        self._inflater.decompress(_TAIL)
