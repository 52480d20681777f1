"""WebSocket extensions: the interface, and ``Sec-WebSocket-Extensions`` negotiation.

Invariants:
- Negotiation is data in, data out: offers are parsed from header values, factories decide,
  and the chosen ``Extension`` objects are handed to the connection. No I/O.
- An ``Extension`` sees data frames only (RFC 7692 §6.1: control frames are never
  transformed), inbound in the reverse order of negotiation and outbound in order.
- A malformed header or an offer a factory cannot parse is a ``HandshakeError`` (400 for a
  request; the client fails the connection for a response).
- permessage-deflate (RFC 7692), at the end of this module, is stricter about its own
  parameters in the other direction: a well-formed header whose permessage-deflate offer has
  bad parameters is *declined* (RFC 7692 §7: "A server MUST decline an extension negotiation
  offer ..."), not a 400; a bad response is a ``HandshakeError`` for the client.
"""

from __future__ import annotations

import logging
import re
import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from zlib_ng import zlib_ng

from .errors import ExtensionError, HandshakeError, MessageTooBig, ProtocolError
from .frame import Frame, Opcode, parsed_frame

__all__ = [
    "ClientExtensionFactory",
    "ClientPerMessageDeflate",
    "Extension",
    "ExtensionParams",
    "PerMessageDeflate",
    "ServerExtensionFactory",
    "ServerPerMessageDeflate",
    "negotiate_client",
    "negotiate_server",
    "parse_extensions_header",
    "serialize_extensions_header",
]

# One extension's parameters, in the order given; a parameter without "=" has the value None.
ExtensionParams = list[tuple[str, str | None]]


class Extension(ABC):
    """A negotiated extension, one instance per connection."""

    name: str
    #: The RSV bits this extension claims on data frames (0b100 = RSV1, 0b010 = RSV2, ...).
    rsv_mask: int = 0

    @abstractmethod
    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Transform one received data frame (text, binary or continuation).

        ``max_size`` is how many payload bytes the message in progress may still grow by;
        an extension that expands data (inflation) must stop and raise ``MessageTooBig``
        rather than produce more. Malformed extension data raises ``ProtocolError``.
        """

    @abstractmethod
    def encode(self, frame: Frame) -> Frame:
        """Transform one data frame about to be sent."""


class ServerExtensionFactory(ABC):
    """Decides, on the server, whether and how to accept a client's offers of one extension."""

    name: str

    @abstractmethod
    def accept(self, offers: Sequence[ExtensionParams]) -> tuple[ExtensionParams, Extension] | None:
        """Pick the first acceptable offer (RFC 7692 §5: offers are in preference order).

        Returns the parameters for the response and the extension, or ``None`` to decline
        every offer. An offer with invalid parameters is declined (RFC 7692 §7: the server
        "MUST decline" it); only a header that breaks RFC 6455 §9.1's grammar is a 400.
        """


class ClientExtensionFactory(ABC):
    """Offers one extension from the client, and checks the server's answer."""

    name: str

    @abstractmethod
    def offer(self) -> ExtensionParams:
        """Parameters of this client's offer."""

    @abstractmethod
    def accept_response(self, params: ExtensionParams) -> Extension:
        """The extension for the server's response; ``HandshakeError`` if it is invalid."""


# RFC 7230 §3.2.6 token characters, and RFC 6455 §9.1's grammar on top of them.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_OWS = re.compile(r"[ \t]*")


def parse_extensions_header(values: Iterable[str]) -> list[tuple[str, ExtensionParams]]:
    """Parse ``Sec-WebSocket-Extensions`` header values into (name, params), in order.

    RFC 6455 §9.1: ``extension = token *( ";" param )``; ``param = token [ "=" (token |
    quoted-string) ]``, where a quoted value must itself be a token once unquoted.
    """
    parsed: list[tuple[str, ExtensionParams]] = []
    for value in values:
        pos = 0
        end = len(value)
        while pos < end:
            pos = _OWS.match(value, pos).end()  # type: ignore[union-attr]
            if pos < end and value[pos] == ",":  # empty list elements are allowed (RFC 7230 §7)
                pos += 1
                continue
            if pos >= end:
                break
            name, pos = _expect_token(value, pos, "an extension name")
            params: ExtensionParams = []
            while True:
                pos = _OWS.match(value, pos).end()  # type: ignore[union-attr]
                if pos >= end or value[pos] == ",":
                    pos += 1
                    break
                if value[pos] != ";":
                    raise HandshakeError(f"unexpected {value[pos]!r} in extension {name!r}")
                pos = _OWS.match(value, pos + 1).end()  # type: ignore[union-attr]
                param, pos = _expect_token(value, pos, f"a parameter name of {name!r}")
                pos = _OWS.match(value, pos).end()  # type: ignore[union-attr]
                param_value: str | None = None
                if pos < end and value[pos] == "=":
                    pos = _OWS.match(value, pos + 1).end()  # type: ignore[union-attr]
                    quoted = _QUOTED_RE.match(value, pos)
                    if quoted:
                        param_value = re.sub(r"\\(.)", r"\1", quoted.group(1))
                        if not _TOKEN_RE.fullmatch(param_value):
                            raise HandshakeError(
                                f"the quoted value of {param!r} is not a token (RFC 6455 §9.1)"
                            )
                        pos = quoted.end()
                    else:
                        param_value, pos = _expect_token(value, pos, f"a value for {param!r}")
                params.append((param, param_value))
            parsed.append((name, params))
    return parsed


def _expect_token(value: str, pos: int, what: str) -> tuple[str, int]:
    match = _TOKEN_RE.match(value, pos)
    if not match:
        raise HandshakeError(f"expected {what} at position {pos} of {value!r}")
    return match.group(0), match.end()


def serialize_extensions_header(extensions: Iterable[tuple[str, ExtensionParams]]) -> str:
    """The header value for a list of (name, params)."""
    parts = []
    for name, params in extensions:
        items = [name] + [key if val is None else f"{key}={val}" for key, val in params]
        parts.append("; ".join(items))
    return ", ".join(parts)


def negotiate_server(
    factories: Sequence[ServerExtensionFactory], header_values: Iterable[str]
) -> tuple[str | None, list[Extension]]:
    """Server side of extension negotiation.

    Each factory, in the server's order, sees the client's offers of its extension. Returns
    the ``Sec-WebSocket-Extensions`` response value (``None`` when nothing was accepted) and
    the extensions in negotiated order. Extensions nobody here knows are ignored (RFC 6455
    §9.1: the server picks what it supports).
    """
    offers = parse_extensions_header(header_values)
    accepted: list[tuple[str, ExtensionParams]] = []
    extensions: list[Extension] = []
    claimed_rsv = 0
    for factory in factories:
        mine = [params for name, params in offers if name.lower() == factory.name.lower()]
        if not mine:
            continue
        result = factory.accept(mine)
        if result is None:
            continue
        params, extension = result
        if extension.rsv_mask & claimed_rsv:
            continue  # two extensions cannot share an RSV bit; the first one keeps it
        claimed_rsv |= extension.rsv_mask
        accepted.append((factory.name, params))
        extensions.append(extension)
    header = serialize_extensions_header(accepted) if accepted else None
    return header, extensions


def negotiate_client(
    factories: Sequence[ClientExtensionFactory], header_values: Iterable[str]
) -> list[Extension]:
    """Client side: check the server's ``Sec-WebSocket-Extensions`` against what we offered.

    RFC 6455 §4.1: the client fails the connection if the server uses an extension that was
    not offered, or answers one offer twice.
    """
    by_name = {factory.name.lower(): factory for factory in factories}
    seen: set[str] = set()
    extensions: list[Extension] = []
    for name, params in parse_extensions_header(header_values):
        key = name.lower()
        if key not in by_name:
            raise HandshakeError(f"the server accepted extension {name!r}, which was not offered")
        if key in seen:
            raise HandshakeError(f"the server accepted extension {name!r} twice")
        seen.add(key)
        extensions.append(by_name[key].accept_response(params))
    return extensions


# ---------------------------------------------------------------------------------------------
# permessage-deflate (RFC 7692)
#
# Choices, and why:
# - Deflation runs on zlib-ng (``zlib_ng``), inflation on the standard library's zlib. zlib-ng
#   makes the same raw deflate streams under the same contract (level, windowBits, memLevel,
#   strategy, sync flush; matches reach at most w_size - 262 bytes back, as in zlib), two to
#   three times faster at level 6; the tests walk its output and check every distance against
#   the agreed window. Inflation stays on stdlib zlib: it is the cheap side, and its window
#   check is the one every test here is written against.
# - Window bits 8 to 15 in both directions. zlib >= 1.2.9 refuses to *compress* raw deflate with
#   an 8-bit window (deflateInit2 rejects windowBits -8; with the zlib wrapper it silently uses
#   9). A 512-byte window could put back-references more than 256 bytes back, which a peer that
#   allocated the 256-byte window we agreed on cannot resolve. (zlib happens to stop matches at
#   w_size - 262 = 250 bytes back, but that is an implementation detail, not a contract.) So for
#   8 we compress with wbits -9 *and strategy Z_RLE*: zlib.h documents that Z_RLE limits match
#   distances to one, so every back-reference stays inside any window; the 9 only sizes our own
#   buffers. The ratio is lower than full LZ77 (runs still compress), the stream conformant.
# - Inflation uses the window the peer agreed to (256 bytes for 8 rather than 32 KiB): a
#   conformant peer never needs more. zlib reports a reference past both that window and the
#   output of the current call as "invalid distance too far back", which becomes a 1002; that
#   is a by-product, not a full validator of the peer's window.
# - Inflation is bounded while it runs: ``decompress(data, max_size + 1)`` stops as soon as the
#   message would exceed what it may still grow by, and ``MessageTooBig`` (1009) is raised. A
#   decompression bomb is refused after at most ``max_size + 1`` bytes of output.
# - Corrupt deflate data is an ``ExtensionError`` (1002): RFC 7692 defines no close code of
#   its own for it, RFC 6455 §7.4.1 gives 1002 to protocol errors (websockets and Autobahn's
#   own implementation do the same); Autobahn's 12.x/13.x cases only send valid streams.
# - Outgoing fragments are compressed on one stream with a sync flush each (the receiver can
#   inflate every fragment as it comes); only the final fragment loses the trailing
#   0x00 0x00 0xff 0xff (RFC 7692 §7.2.1).
# - A peer may end a message with a BFINAL block (RFC 7692 §7.2.3.3); the next message then
#   starts a new deflate stream, primed with the last window of output when context takeover
#   is on.
# ---------------------------------------------------------------------------------------------

_log = logging.getLogger(__name__)

#: RFC 7692 §7.2.1/§7.2.2: an empty stored block's LEN/NLEN, stripped by the sender and
#: appended by the receiver.
_EMPTY_BLOCK_TAIL = b"\x00\x00\xff\xff"
#: RFC 7692 §7.1.2.1/§7.1.2.2: "a decimal integer value without leading zeroes between 8 to 15,
#: inclusive".
_WINDOW_BITS_RE = re.compile(r"8|9|1[0-5]")
_DEFLATE_NAME = "permessage-deflate"
_MAX_WINDOW_BITS = 15


def _check_window_bits(name: str, bits: int | None) -> None:
    if bits is not None and not (isinstance(bits, int) and 8 <= bits <= _MAX_WINDOW_BITS):
        raise ValueError(f"{name} must be between 8 and 15 (RFC 7692 §7.1.2), not {bits!r}")


def _check_zlib_settings(compress_level: int, memory_level: int) -> None:
    # zlib's own ranges (zlib.h, deflateInit2): level -1 (default) to 9, memLevel 1 to 9.
    if not -1 <= compress_level <= 9:
        raise ValueError(f"compress_level is -1 to 9, not {compress_level}")
    if not 1 <= memory_level <= 9:
        raise ValueError(f"memory_level is 1 to 9, not {memory_level}")


@dataclass(frozen=True, slots=True)
class _DeflateParameters:
    """The permessage-deflate parameters of one offer or response, validated.

    ``client_max_window_bits`` is ``True`` when it was given without a value (offers only).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | Literal[True] | None = None

    @classmethod
    def parse(cls, params: ExtensionParams, *, response: bool) -> _DeflateParameters:
        """Validate an offer's or a response's parameters; ``HandshakeError`` names the fault.

        RFC 7692 §7 (offers) and §7.1 (responses): an unknown parameter, an invalid value, or
        the same parameter twice makes the offer unacceptable and the response invalid.
        """
        seen: set[str] = set()
        found: dict[str, int | Literal[True] | None] = {}
        for name, value in params:
            if name in seen:
                raise HandshakeError(f"permessage-deflate parameter {name!r} appears twice")
            seen.add(name)
            if name in ("server_no_context_takeover", "client_no_context_takeover"):
                # RFC 7692 §7.1.1.1/§7.1.1.2: "This extension parameter has no value."
                if value is not None:
                    raise HandshakeError(f"{name} takes no value, got {value!r}")
                found[name] = True
            elif name == "server_max_window_bits":
                # RFC 7692 §7.1.2.1: it always has a value, in an offer and in a response.
                found[name] = cls._window_bits(name, value)
            elif name == "client_max_window_bits":
                # RFC 7692 §7.1.2.2: "This parameter has no value or a decimal integer value"
                # in an offer; a response's client_max_window_bits always has a value.
                if value is None and not response:
                    found[name] = True
                else:
                    found[name] = cls._window_bits(name, value)
            else:
                raise HandshakeError(f"unknown permessage-deflate parameter {name!r}")
        server_bits = found.get("server_max_window_bits")
        return cls(
            server_no_context_takeover="server_no_context_takeover" in found,
            client_no_context_takeover="client_no_context_takeover" in found,
            server_max_window_bits=server_bits if isinstance(server_bits, int) else None,
            client_max_window_bits=found.get("client_max_window_bits"),
        )

    @staticmethod
    def _window_bits(name: str, value: str | None) -> int:
        if value is None:
            raise HandshakeError(f"{name} needs a value here (RFC 7692 §7.1.2)")
        if not _WINDOW_BITS_RE.fullmatch(value):
            raise HandshakeError(
                f"{name}={value!r} is not a window size of 8 to 15 without leading zeros "
                "(RFC 7692 §7.1.2)"
            )
        return int(value)


class PerMessageDeflate(Extension):
    """The negotiated permessage-deflate of one connection (RFC 7692 §6, §7.2).

    "local" is this endpoint's sending direction, "remote" the peer's. RSV1 marks a compressed
    message on its first frame only. Messages received without RSV1 pass through untouched;
    every message sent is compressed.
    """

    name = _DEFLATE_NAME
    rsv_mask = 0b100

    def __init__(
        self,
        *,
        remote_no_context_takeover: bool = False,
        local_no_context_takeover: bool = False,
        remote_max_window_bits: int = _MAX_WINDOW_BITS,
        local_max_window_bits: int = _MAX_WINDOW_BITS,
        compress_level: int = 6,
        memory_level: int = 8,
    ) -> None:
        _check_window_bits("remote_max_window_bits", remote_max_window_bits)
        _check_window_bits("local_max_window_bits", local_max_window_bits)
        _check_zlib_settings(compress_level, memory_level)
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_level = compress_level
        self.memory_level = memory_level
        self._decompressor: zlib._Decompress | None = None
        self._inflating = False  # a compressed message is being received
        # The last output bytes (at least a window's worth once there are that many), kept only
        # with remote context takeover, to prime a new stream after a BFINAL block.
        self._history: deque[bytes] = deque()
        self._history_size = 0
        self._compressor: zlib_ng._Compress | None = None
        self._deflating = False  # a compressed message is being sent

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_max_window_bits={self.remote_max_window_bits}, "
            f"local_max_window_bits={self.local_max_window_bits})"
        )

    # -- receiving ---------------------------------------------------------------------------
    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Inflate one frame of a compressed message; other frames pass through."""
        if frame.opcode.is_control:
            return frame  # RFC 7692 §6.1: control frames are never compressed
        if frame.opcode == Opcode.CONTINUATION:
            # RFC 7692 §6.1: the "Per-Message Compressed" bit is set on the first frame of a
            # message only; RSV1 on a later fragment is a protocol error.
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a continuation frame (RFC 7692 §6.1)")
            if not self._inflating:
                return frame
        else:
            self._inflating = bool(frame.rsv1)
            if not self._inflating:
                return frame
            self._start_inflating()
        budget = None if max_size is None else max(0, max_size)
        data = self._inflate(frame.payload, budget)
        if frame.final:
            # RFC 7692 §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the
            # payload of the message", then inflate.
            rest = None if budget is None else budget - len(data)
            tail = self._inflate(_EMPTY_BLOCK_TAIL, rest)
            if tail:
                data += tail
            self._end_inflating()
        if data and not self.remote_no_context_takeover:
            self._remember(data)
        # The same header with RSV1 cleared, built without ``Frame``'s checks (the parser made
        # them already): once per received frame, so this counts with small fragments.
        first = (0x80 if frame.final else 0) | frame.rsv2 << 5 | frame.rsv3 << 4 | frame.opcode
        return parsed_frame(first, data, frame.version, frame.masking_key)

    def _start_inflating(self) -> None:
        # RFC 7692 §7.2.2: without context takeover every message starts a new stream.
        if self._decompressor is not None and not self.remote_no_context_takeover:
            return
        wbits = -self.remote_max_window_bits
        if self._history:
            window = b"".join(self._history)[-(1 << self.remote_max_window_bits) :]
            self._decompressor = zlib.decompressobj(wbits, zdict=window)
        else:
            self._decompressor = zlib.decompressobj(wbits)

    def _inflate(self, data: bytes, budget: int | None) -> bytes:
        decompressor = self._decompressor
        assert decompressor is not None  # set by _start_inflating for every compressed message
        if decompressor.eof:
            return decompressor.decompress(data)  # kept in unused_data, checked at message end
        try:
            if budget is None:
                return decompressor.decompress(data)
            output = decompressor.decompress(data, budget + 1)
        except zlib.error as exc:
            raise ExtensionError(f"invalid compressed data: {exc}") from exc
        if len(output) > budget:
            raise MessageTooBig(
                f"a compressed message inflates to more than the limit ({budget} "
                "more bytes allowed)"
            )
        return output

    def _end_inflating(self) -> None:
        self._inflating = False
        decompressor = self._decompressor
        assert decompressor is not None
        if not decompressor.eof:
            if self.remote_no_context_takeover:
                self._decompressor = None
            return
        # RFC 7692 §7.2.3.3: after a block with BFINAL set, the sender's empty stored block
        # (its header bits, maybe in one extra zero octet) and our appended tail may follow.
        trailing = decompressor.unused_data
        if trailing not in (_EMPTY_BLOCK_TAIL, b"\x00" + _EMPTY_BLOCK_TAIL):
            raise ExtensionError("data after the final block of a compressed message")
        self._decompressor = None  # the next message starts a new stream

    def _remember(self, data: bytes) -> None:
        window = 1 << self.remote_max_window_bits
        if len(data) > window:
            data = data[-window:]
        self._history.append(data)
        self._history_size += len(data)
        while self._history_size - len(self._history[0]) >= window:
            self._history_size -= len(self._history.popleft())

    # -- sending -----------------------------------------------------------------------------
    def encode(self, frame: Frame) -> Frame:
        """Compress one outgoing data frame; RSV1 goes on a message's first frame only."""
        if frame.opcode.is_control:
            return frame  # RFC 7692 §6.1: control frames are never compressed
        if frame.opcode == Opcode.CONTINUATION:
            if not self._deflating:
                return frame  # not a message this extension started
            rsv1 = 0
        else:
            # RFC 7692 §7.2.1: without context takeover every message starts a new stream.
            if self._compressor is None or self.local_no_context_takeover:
                self._compressor = self._new_compressor()
            self._deflating = True
            rsv1 = 1
        compressor = self._compressor
        assert compressor is not None
        # A sync flush per frame: each fragment can be inflated as soon as it arrives, and
        # zlib always ends the flush with an empty stored block (even with no new input).
        data = compressor.compress(frame.payload) + compressor.flush(zlib_ng.Z_SYNC_FLUSH)
        if frame.final:
            # RFC 7692 §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail
            # end." What is left ends with the stored block's header bits.
            data = data.removesuffix(_EMPTY_BLOCK_TAIL)
            self._deflating = False
        return Frame(
            data,
            frame.opcode,
            version=frame.version,
            masking_key=frame.masking_key,
            final=frame.final,
            rsv1=rsv1,
            rsv2=frame.rsv2,
            rsv3=frame.rsv3,
        )

    def _new_compressor(self) -> zlib_ng._Compress:
        bits = self.local_max_window_bits
        if bits == 8:
            # zlib (and zlib-ng) cannot deflate with a 256-byte window; Z_RLE only ever
            # references the previous byte, so the stream fits the 8-bit window the peer
            # allocated.
            return zlib_ng.compressobj(
                self.compress_level, zlib_ng.DEFLATED, -9, self.memory_level, zlib_ng.Z_RLE
            )
        return zlib_ng.compressobj(self.compress_level, zlib_ng.DEFLATED, -bits, self.memory_level)


class ServerPerMessageDeflate(ServerExtensionFactory):
    """Accepts a client's permessage-deflate offer (RFC 7692 §5, §7).

    Options, each the server's own wish, applied to whatever the client offers:
    ``server_no_context_takeover`` / ``client_no_context_takeover`` put those parameters in
    every response (RFC 7692 §7.1.1.1/§7.1.1.2 allow it even when not offered);
    ``server_max_window_bits`` caps the server's window (in the response even when not
    offered); ``client_max_window_bits`` caps the client's window when the client's offer
    allows it (RFC 7692 §7.1.2.2: never in a response to an offer without it; such an offer
    is still accepted, with a 15-bit client window). ``compress_level`` and ``memory_level``
    tune zlib.

    The first acceptable offer wins (RFC 7692 §5: offers come in preference order). An offer
    with an unknown, duplicate or invalid parameter is declined, not failed (RFC 7692 §7: "A
    server MUST decline an extension negotiation offer for this extension if ...").
    """

    name = _DEFLATE_NAME

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        compress_level: int = 6,
        memory_level: int = 8,
    ) -> None:
        _check_window_bits("server_max_window_bits", server_max_window_bits)
        _check_window_bits("client_max_window_bits", client_max_window_bits)
        _check_zlib_settings(compress_level, memory_level)
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_level = compress_level
        self.memory_level = memory_level

    def accept(self, offers: Sequence[ExtensionParams]) -> tuple[ExtensionParams, Extension] | None:
        for params in offers:
            try:
                offer = _DeflateParameters.parse(params, response=False)
            except HandshakeError as exc:
                _log.debug("declining a permessage-deflate offer: %s", exc.reason)
                continue
            return self._respond(offer)
        return None

    def _respond(self, offer: _DeflateParameters) -> tuple[ExtensionParams, Extension]:
        response: ExtensionParams = []
        # RFC 7692 §7.1.1.1: accepting server_no_context_takeover means echoing it.
        server_no_takeover = offer.server_no_context_takeover or self.server_no_context_takeover
        if server_no_takeover:
            response.append(("server_no_context_takeover", None))
        # RFC 7692 §7.1.1.2: an offered client_no_context_takeover is the client's word that it
        # will not take over; echoing it lets us drop the inflater between messages.
        client_no_takeover = offer.client_no_context_takeover or self.client_no_context_takeover
        if client_no_takeover:
            response.append(("client_no_context_takeover", None))
        # RFC 7692 §7.1.2.1: accept an offered server_max_window_bits "with the same or smaller
        # value"; without one in the offer the server may still announce its own.
        server_bits = _MAX_WINDOW_BITS
        if offer.server_max_window_bits is not None or self.server_max_window_bits is not None:
            server_bits = min(
                offer.server_max_window_bits or _MAX_WINDOW_BITS,
                self.server_max_window_bits or _MAX_WINDOW_BITS,
            )
            response.append(("server_max_window_bits", str(server_bits)))
        # RFC 7692 §7.1.2.2: only when offered; a value in the offer is the client's promise,
        # echoed so that we allocate no larger a window than it needs.
        client_bits = _MAX_WINDOW_BITS
        if offer.client_max_window_bits is not None:
            hint = None if offer.client_max_window_bits is True else offer.client_max_window_bits
            limits = [bits for bits in (hint, self.client_max_window_bits) if bits is not None]
            if limits:
                client_bits = min(limits)
                response.append(("client_max_window_bits", str(client_bits)))
        extension = PerMessageDeflate(
            remote_no_context_takeover=client_no_takeover,
            local_no_context_takeover=server_no_takeover,
            remote_max_window_bits=client_bits,
            local_max_window_bits=server_bits,
            compress_level=self.compress_level,
            memory_level=self.memory_level,
        )
        return response, extension


class ClientPerMessageDeflate(ClientExtensionFactory):
    """Offers permessage-deflate and checks the server's response (RFC 7692 §5, §7).

    ``server_no_context_takeover`` / ``server_max_window_bits`` are requests the server must
    accept as asked (or with a smaller window); ``client_no_context_takeover`` announces that
    this client will not take over its context; ``client_max_window_bits`` is ``True`` to let
    the server cap our window (offered without a value), an int to promise that cap ourselves,
    or ``False`` not to offer it.
    """

    name = _DEFLATE_NAME

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | bool = True,
        compress_level: int = 6,
        memory_level: int = 8,
    ) -> None:
        _check_window_bits("server_max_window_bits", server_max_window_bits)
        if not isinstance(client_max_window_bits, bool):
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        _check_zlib_settings(compress_level, memory_level)
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_level = compress_level
        self.memory_level = memory_level

    def offer(self) -> ExtensionParams:
        params: ExtensionParams = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append(("client_max_window_bits", None))
        elif self.client_max_window_bits is not False:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params

    def accept_response(self, params: ExtensionParams) -> Extension:
        try:
            response = _DeflateParameters.parse(params, response=True)
        except HandshakeError as exc:
            raise HandshakeError(f"invalid permessage-deflate response: {exc.reason}") from exc
        # RFC 7692 §7.1.1.1: "A server accepts an extension negotiation offer that includes the
        # server_no_context_takeover extension parameter by including [it] in the response."
        if self.server_no_context_takeover and not response.server_no_context_takeover:
            raise HandshakeError(
                "the server ignored our server_no_context_takeover (RFC 7692 §7.1.1.1)"
            )
        # RFC 7692 §7.1.2.1: accepted "with the same or smaller value as the offer".
        server_bits = response.server_max_window_bits
        if self.server_max_window_bits is not None:
            if server_bits is None:
                raise HandshakeError(
                    "the server ignored our server_max_window_bits (RFC 7692 §7.1.2.1)"
                )
            if server_bits > self.server_max_window_bits:
                raise HandshakeError(
                    f"the server answered server_max_window_bits={server_bits}, over the "
                    f"{self.server_max_window_bits} we asked for (RFC 7692 §7.1.2.1)"
                )
        # RFC 7692 §7.1.2.2: a response to an offer without client_max_window_bits "MUST NOT
        # include the client_max_window_bits extension parameter".
        client_bits = (
            _MAX_WINDOW_BITS
            if isinstance(self.client_max_window_bits, bool)
            else self.client_max_window_bits
        )
        answered = response.client_max_window_bits
        if answered is not None:  # parse() gives a response's client_max_window_bits a value
            if self.client_max_window_bits is False:
                raise HandshakeError(
                    "the server sent client_max_window_bits, which we did not offer "
                    "(RFC 7692 §7.1.2.2)"
                )
            client_bits = min(client_bits, int(answered))
        return PerMessageDeflate(
            remote_no_context_takeover=response.server_no_context_takeover,
            local_no_context_takeover=(
                self.client_no_context_takeover or response.client_no_context_takeover
            ),
            remote_max_window_bits=server_bits or _MAX_WINDOW_BITS,
            local_max_window_bits=client_bits,
            compress_level=self.compress_level,
            memory_level=self.memory_level,
        )
