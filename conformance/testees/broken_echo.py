"""An echo testee that breaks RFC 6455 on purpose, one way per mode, for the agreement panel.

Usage: ``python conformance/testees/broken_echo.py PORT MODE`` (``MODE`` from ``MODES``).

Invariants:
- It stands on plain asyncio streams and its own small frame codec, never on a WebSocket
  library, so that a mode can break exactly the rule it names and nothing else.
- ``conformant`` follows RFC 6455 without extensions (no permessage-deflate offered back);
  every other mode is ``conformant`` with one field of ``Behaviour`` changed, and its docstring
  line in ``MODES`` says which rule that breaks.
- One connection at a time is enough: the fuzzer runs its cases one after another.
What the real fuzzer answers to each mode is recorded in ``broken_echo.md`` beside this file.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import contextlib
import dataclasses
import hashlib
import os
import struct
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

# RFC 6455 §1.3: the GUID the server appends to the client's key.
ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 2**25  # Autobahn 9.x sends 16 MiB messages; an echo server must take them
MAX_REQUEST_HEAD = 16 * 1024
CLOSE_WAIT = 5.0  # seconds the server waits for the client's EOF once it has closed its side
# How long ``no-tcp-close`` keeps a socket the client has not dropped: longer than any timer
# the fuzzer ends a connection with in cases 1-7, 9.7/9.8 and 10 (10.1.1 kills after 10 s).
# In 6.4.x the fuzzer has no timer left once the server's Close came, so this ends those cases.
HELD_OPEN = 15.0

TEXT, BINARY, CONTINUATION = 0x1, 0x2, 0x0
CLOSE, PING, PONG = 0x8, 0x9, 0xA
DATA_OPCODES = (CONTINUATION, TEXT, BINARY)
CONTROL_OPCODES = (CLOSE, PING, PONG)

# RFC 6455 §7.4.1/§7.4.2 and the IANA registry: codes a peer may put in a Close.
VALID_CLOSE_CODES = (
    frozenset(range(1000, 1004)) | frozenset(range(1007, 1012)) | frozenset(range(3000, 5000))
)
NORMAL, PROTOCOL_ERROR, INVALID_PAYLOAD, TOO_BIG = 1000, 1002, 1007, 1009


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the server acts where a mode departs from RFC 6455; the defaults conform."""

    utf8: Literal["fail-fast", "at-end", "never"] = "fail-fast"
    check_rsv: bool = True  # §5.2: RSV bits without a negotiated extension fail the connection
    check_opcodes: bool = True  # §5.2: reserved opcodes fail the connection
    answer_pings: bool = True  # §5.5.2: a Ping is answered by a Pong with its payload
    echo_before_fail: bool = True  # a valid message before a bad frame is processed first
    on_error: Literal["close", "drop"] = "close"  # §7.1.7: fail with a Close, then close TCP
    on_peer_close: Literal["reply", "drop", "ignore"] = "reply"  # §5.5.1: answer a Close
    reply_code: Literal["echo", "always-1000"] = "echo"  # the code a reply carries
    closes_tcp: bool = True  # §7.1.1: the server closes TCP once the handshake is done
    echo_opcode: Literal["same", "binary"] = "same"  # an echo keeps the message's type
    closes_first: bool = False  # start the closing handshake before the first echo
    masks_frames: bool = False  # §5.1: a server MUST NOT mask what it sends
    accept_key: Literal["right", "wrong"] = "right"  # §4.2.2: Sec-WebSocket-Accept


CONFORMANT = Behaviour()
MODES: dict[str, Behaviour] = {
    "conformant": CONFORMANT,
    # Text checked only once the whole message is in (fail-fast is what §8.1 asks for).
    "late-utf8": dataclasses.replace(CONFORMANT, utf8="at-end"),
    # Text never checked: invalid UTF-8 is echoed back.
    "no-utf8": dataclasses.replace(CONFORMANT, utf8="never"),
    # Every Close answered with 1000, even one whose code is invalid (should be 1002).
    "wrong-close-code": dataclasses.replace(CONFORMANT, reply_code="always-1000"),
    # Protocol errors and the client's Close both end in a bare TCP close, never a Close.
    "drop-tcp": dataclasses.replace(CONFORMANT, on_error="drop", on_peer_close="drop"),
    # The closing handshake completes, but the server leaves closing TCP to the client.
    "no-tcp-close": dataclasses.replace(CONFORMANT, closes_tcp=False),
    # The client's Close is never answered, nor TCP closed: the client's timers must end it.
    "silent-close": dataclasses.replace(CONFORMANT, on_peer_close="ignore", closes_tcp=False),
    # Frames with RSV bits set are taken as if the bits were clear.
    "ignore-rsv": dataclasses.replace(CONFORMANT, check_rsv=False),
    # Pings are read and dropped.
    "no-pong": dataclasses.replace(CONFORMANT, answer_pings=False),
    # Echoes wait until everything received so far has been read; an error discards them.
    "no-echo-before-fail": dataclasses.replace(CONFORMANT, echo_before_fail=False),
    # Frames with reserved opcodes are skipped instead of failing the connection.
    "reserved-opcode-ok": dataclasses.replace(CONFORMANT, check_opcodes=False),
    # Every message is echoed as binary, text included.
    "echo-as-binary": dataclasses.replace(CONFORMANT, echo_opcode="binary"),
    # The server sends its own Close (1000) before its first echo, then the echo anyway.
    "server-closes-first": dataclasses.replace(CONFORMANT, closes_first=True),
    # Every frame the server sends is masked.
    "masked-frames": dataclasses.replace(CONFORMANT, masks_frames=True),
    # The opening handshake answers a wrong Sec-WebSocket-Accept.
    "bad-accept": dataclasses.replace(CONFORMANT, accept_key="wrong"),
}


class ProtocolError(Exception):
    """The client broke RFC 6455; `code` is the Close code that fails the connection."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class PeerGone(Exception):
    """The client closed or reset TCP."""


@dataclass(frozen=True, slots=True)
class Header:
    """One frame header as read (RFC 6455 §5.2), before any rule is applied to it."""

    fin: bool
    rsv: int
    opcode: int
    mask: bytes | None
    length: int


class Wire:
    """The read side: what arrived and was not yet consumed, so a mode can ask if any is left."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.buffer = bytearray()

    async def _fill(self) -> None:
        try:
            chunk = await self.reader.read(65536)
        except ConnectionError as exc:
            raise PeerGone from exc
        if not chunk:
            raise PeerGone
        self.buffer += chunk

    async def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._fill()
        taken = bytes(self.buffer[:n])
        del self.buffer[:n]
        return taken

    async def read_some(self, limit: int) -> bytes:
        """Up to `limit` bytes, as soon as any are there (so text is checked as it arrives)."""
        if not self.buffer:
            await self._fill()
        taken = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return taken

    def drained(self) -> bool:
        return not self.buffer

    async def until_eof(self) -> None:
        """Discard whatever the client still sends until it closes TCP."""
        with contextlib.suppress(PeerGone):
            while True:
                self.buffer.clear()
                await self._fill()


def unmask(data: bytes, mask: bytes, offset: int) -> bytes:
    """XOR `data` with the masking key, starting `offset` bytes into the payload (§5.3)."""
    key = (mask * (len(data) // 4 + 2))[offset % 4 : offset % 4 + len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


async def read_header(wire: Wire) -> Header:
    """Parse one frame header (§5.2): FIN, RSV, opcode, mask bit, 7/16/64-bit length, key."""
    first, second = await wire.read_exact(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await wire.read_exact(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await wire.read_exact(8))
    mask = await wire.read_exact(4) if second & 0x80 else None
    return Header(bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F, mask, length)


async def payload_pieces(wire: Wire, header: Header) -> AsyncIterator[bytes]:
    """The frame's unmasked payload, piece by piece as it comes off the wire."""
    offset = 0
    while offset < header.length:
        piece = await wire.read_some(header.length - offset)
        assert header.mask is not None  # checked by Session.check
        yield unmask(piece, header.mask, offset)
        offset += len(piece)


def frame(opcode: int, payload: bytes, masked: bool = False) -> bytes:
    """One unfragmented frame (FIN set, RSV clear); masked only when a mode says so."""
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, mask_bit | length)
    elif length < 2**16:
        head = struct.pack("!BBH", 0x80 | opcode, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, mask_bit | 127, length)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + unmask(payload, key, 0)


def close_payload(code: int | None) -> bytes:
    return b"" if code is None else struct.pack("!H", code)


class Session:
    """One upgraded connection: frames in, echoes out, closed the way the behaviour says."""

    def __init__(self, wire: Wire, writer: asyncio.StreamWriter, behaviour: Behaviour) -> None:
        self.wire = wire
        self.writer = writer
        self.behaviour = behaviour
        self.pending: list[bytes] = []  # frames held back until the input is read through
        self.message_opcode: int | None = None  # TEXT/BINARY while a message is open
        self.message = bytearray()
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.close_sent = False

    def send(self, opcode: int, payload: bytes) -> None:
        self.pending.append(frame(opcode, payload, self.behaviour.masks_frames))
        if self.behaviour.echo_before_fail or self.wire.drained():
            self.flush()

    def flush(self) -> None:
        self.writer.write(b"".join(self.pending))
        self.pending.clear()

    async def run(self) -> None:
        """Read frames until the closing handshake or a protocol error ends the connection."""
        try:
            while True:
                header = await read_header(self.wire)
                self.check(header)
                if header.opcode in CONTROL_OPCODES:
                    payload = b"".join([p async for p in payload_pieces(self.wire, header)])
                    if not await self.on_control(header.opcode, payload):
                        return
                elif header.opcode in DATA_OPCODES:
                    if not await self.on_data(header):
                        return
                else:  # a reserved opcode that the behaviour lets through: skip the frame
                    async for _ in payload_pieces(self.wire, header):
                        pass
                if self.wire.drained():
                    self.flush()
        except ProtocolError as error:
            await self.fail(error)
        except PeerGone:
            self.writer.close()

    def check(self, header: Header) -> None:
        """The header rules of §5.1-§5.5 (those the behaviour does not switch off)."""
        if header.mask is None:
            raise ProtocolError(PROTOCOL_ERROR, "client frames must be masked")
        if header.rsv and self.behaviour.check_rsv:
            raise ProtocolError(PROTOCOL_ERROR, "RSV bits set without an extension")
        reserved = header.opcode not in DATA_OPCODES + CONTROL_OPCODES
        if reserved and self.behaviour.check_opcodes:
            raise ProtocolError(PROTOCOL_ERROR, f"reserved opcode {header.opcode}")
        if header.opcode in CONTROL_OPCODES and (not header.fin or header.length > 125):
            raise ProtocolError(PROTOCOL_ERROR, "control frames are short and unfragmented")
        if header.opcode == CONTINUATION and self.message_opcode is None:
            raise ProtocolError(PROTOCOL_ERROR, "continuation frame outside a message")
        if header.opcode in (TEXT, BINARY) and self.message_opcode is not None:
            raise ProtocolError(PROTOCOL_ERROR, "new message before the last one ended")
        if header.opcode in DATA_OPCODES and len(self.message) + header.length > MAX_MESSAGE:
            raise ProtocolError(TOO_BIG, "message too big")

    async def on_data(self, header: Header) -> bool:
        """Collect a data frame into the current message and echo the message when it ends;
        False once the connection is over."""
        if header.opcode != CONTINUATION:
            self.message_opcode = header.opcode
            self.decoder.reset()
        text = self.message_opcode == TEXT
        async for piece in payload_pieces(self.wire, header):
            self.message += piece
            if text and self.behaviour.utf8 == "fail-fast":
                self.validate(piece, final=False)  # §8.1: fail as soon as it is invalid
        if not header.fin:
            return True
        if text and self.behaviour.utf8 == "fail-fast":
            self.validate(b"", final=True)
        elif text and self.behaviour.utf8 == "at-end":
            self.validate(bytes(self.message), final=True)
        assert self.message_opcode is not None
        if self.behaviour.closes_first and not self.close_sent:
            self.send(CLOSE, close_payload(NORMAL))
            self.close_sent = True
        opcode = BINARY if self.behaviour.echo_opcode == "binary" else self.message_opcode
        self.send(opcode, bytes(self.message))
        self.message_opcode = None
        self.message.clear()
        if not self.close_sent:
            return True
        self.flush()
        await self.close_tcp()
        return False

    def validate(self, data: bytes, final: bool) -> None:
        try:
            self.decoder.decode(data, final)
        except UnicodeDecodeError:
            raise ProtocolError(INVALID_PAYLOAD, "invalid UTF-8 in a text message") from None

    async def on_control(self, opcode: int, payload: bytes) -> bool:
        """Answer a Ping, ignore a Pong, handle a Close; False once the connection is over."""
        if opcode == PING and self.behaviour.answer_pings:
            self.send(PONG, payload)
        if opcode != CLOSE:
            return True
        code = self.close_reply(payload)
        if self.behaviour.on_peer_close == "drop":
            self.writer.close()
            return False
        if self.behaviour.on_peer_close == "reply":
            self.send(CLOSE, close_payload(code))
            self.flush()
        await self.close_tcp()
        return False

    def close_reply(self, payload: bytes) -> int | None:
        """The code that answers this Close (§5.5.1, §7.4); a bad Close raises instead."""
        if len(payload) == 1:
            raise ProtocolError(PROTOCOL_ERROR, "a Close payload of one byte")
        code = struct.unpack("!H", payload[:2])[0] if payload else None
        if self.behaviour.reply_code == "always-1000":
            return NORMAL
        if code is not None and code not in VALID_CLOSE_CODES:
            raise ProtocolError(PROTOCOL_ERROR, f"invalid close code {code}")
        try:
            payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(INVALID_PAYLOAD, "close reason is not UTF-8") from None
        return code

    async def fail(self, error: ProtocolError) -> None:
        """§7.1.7: fail the connection (send a Close with the error's code, then close TCP)."""
        if not self.behaviour.echo_before_fail:
            self.pending.clear()
        if self.behaviour.on_error == "drop":
            self.flush()
            self.writer.close()
            return
        if not self.close_sent:
            self.send(CLOSE, close_payload(error.code))
        self.flush()
        await self.close_tcp()

    async def close_tcp(self) -> None:
        """§7.1.1: the server closes TCP first (half-close), then waits for the client's EOF.

        ``no-tcp-close`` skips the half-close and waits for the client to drop the connection.
        """
        if self.behaviour.closes_tcp:
            with contextlib.suppress(ConnectionError, OSError):
                self.writer.write_eof()
        wait = CLOSE_WAIT if self.behaviour.closes_tcp else HELD_OPEN
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wire.until_eof(), wait)
        self.writer.close()


async def handshake(wire: Wire, writer: asyncio.StreamWriter, behaviour: Behaviour) -> bool:
    """§4.2: read the client's upgrade request and answer 101 (or 400); True once upgraded."""
    head = b""
    while b"\r\n\r\n" not in head:
        if len(head) > MAX_REQUEST_HEAD:
            return False
        head += await wire.read_some(MAX_REQUEST_HEAD)
    head, _, rest = head.partition(b"\r\n\r\n")
    wire.buffer[:0] = rest
    fields = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    key = fields.get("sec-websocket-key")
    if key is None or "websocket" not in fields.get("upgrade", "").lower():
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return False
    digest = hashlib.sha1(key.encode() + ACCEPT_GUID).digest()
    if behaviour.accept_key == "wrong":
        digest = hashlib.sha1(digest).digest()
    accept = base64.b64encode(digest).decode()
    writer.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\nServer: broken_echo\r\n\r\n".encode()
    )
    return True


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, behaviour: Behaviour
) -> None:
    wire = Wire(reader)
    try:
        if await handshake(wire, writer, behaviour):
            await Session(wire, writer, behaviour).run()
    except (PeerGone, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, behaviour: Behaviour) -> None:
    """Serve until terminated; print the address once listening."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(reader, writer, behaviour)

    server = await asyncio.start_server(accept, "127.0.0.1", port)
    print(f"serving on ws://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in MODES:
        sys.exit(f"usage: broken_echo.py PORT {{{'|'.join(MODES)}}}")
    asyncio.run(main(int(sys.argv[1]), MODES[sys.argv[2]]))
