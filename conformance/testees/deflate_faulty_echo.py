"""An echo testee whose permessage-deflate goes wrong on purpose, for the engines' agreement.

Usage: ``python conformance/testees/deflate_faulty_echo.py PORT MODE`` where MODE is

- ``honest``: accepts the first permessage-deflate offer as offered and compresses within it;
- ``overrun``: agrees to the window the client asks for (``server_max_window_bits``) but
  compresses with a 32 KiB window and keeps its context, so its back-references reach further
  than the client's inflater may look;
- ``takeover``: agrees to ``server_no_context_takeover`` but keeps its compression context from
  message to message anyway;
- ``window8``: asks the client to compress with an 8-bit window (``client_max_window_bits=8``,
  legal in RFC 7692 and refused by zlib 1.2.9 and later for raw deflate);
- ``plain``: never accepts the extension (12.x and 13.x are then UNIMPLEMENTED).

Standard library only, deliberately independent of every WebSocket library (the ways of
failing must not depend on one). Each connection echoes every message until the peer closes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import sys
import zlib

MODES = ("honest", "overrun", "takeover", "window8", "plain")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.1: stripped by the sender, appended by the reader


def _first_deflate_offer(header: str) -> dict[str, str] | None:
    for offer in header.split(","):
        parts = [p.strip() for p in offer.split(";")]
        if parts[0].lower() == "permessage-deflate":
            params: dict[str, str] = {}
            for part in parts[1:]:
                name, _, value = part.partition("=")
                params[name.strip().lower()] = value.strip().strip('"')
            return params
    return None


class Deflate:
    """The testee's side of the extension, with the fault of its mode built in."""

    def __init__(self, mode: str, offer: dict[str, str]) -> None:
        self.mode = mode
        self.reset_out = "server_no_context_takeover" in offer and mode != "takeover"
        asked = int(offer.get("server_max_window_bits") or 15)
        self.out_bits = 15 if mode == "overrun" else asked
        self.inflater = zlib.decompressobj(-15)
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -self.out_bits)
        params = ["permessage-deflate"]
        if "server_no_context_takeover" in offer:
            params.append("server_no_context_takeover")
        if "server_max_window_bits" in offer:
            params.append(f"server_max_window_bits={asked}")
        if mode == "window8":
            params.append("client_max_window_bits=8")
        self.response = "; ".join(params)

    def inflate(self, payload: bytes) -> bytes:
        return self.inflater.decompress(payload + _TAIL)

    def deflate(self, message: bytes) -> bytes:
        if self.reset_out:
            self.deflater = zlib.compressobj(6, zlib.DEFLATED, -self.out_bits)
        data = self.deflater.compress(message) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
        return data[:-4]


def _frame(opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
    first = 0x80 | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", first, size) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


async def _read_frame(reader: asyncio.StreamReader) -> tuple[bool, bool, int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(size)
    mask = int.from_bytes((key * (size // 4 + 1))[:size], "big")
    payload = (int.from_bytes(data, "big") ^ mask).to_bytes(size, "big") if size else b""
    return bool(first & 0x80), bool(first & 0x40), first & 0x0F, payload


async def _handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mode: str
) -> Deflate | None:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    headers = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + _GUID).digest())
    offer = _first_deflate_offer(headers.get("sec-websocket-extensions", ""))
    deflate = Deflate(mode, offer) if offer is not None and mode != "plain" else None
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept.decode()}",
    ]
    if deflate is not None:
        lines.append(f"Sec-WebSocket-Extensions: {deflate.response}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    return deflate


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mode: str) -> None:
    deflate = await _handshake(reader, writer, mode)
    parts: list[bytes] = []
    opcode = compressed = 0
    while True:
        fin, rsv1, frame_opcode, payload = await _read_frame(reader)
        if frame_opcode == 8:
            writer.write(_frame(8, payload[:2]))
            await writer.drain()
            return
        if frame_opcode == 9:
            writer.write(_frame(10, payload))
            continue
        if frame_opcode in (1, 2):
            opcode, compressed, parts = frame_opcode, rsv1, []
        parts.append(payload)
        if not fin or frame_opcode > 2:
            continue
        message = b"".join(parts)
        if compressed and deflate is not None:
            message = deflate.inflate(message)
        if deflate is not None:
            writer.write(_frame(opcode, deflate.deflate(message), rsv1=True))
        else:
            writer.write(_frame(opcode, message))
        await writer.drain()


async def main(port: int, mode: str) -> None:
    """Serve until terminated."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _echo(reader, writer, mode)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in MODES:
        sys.exit(f"usage: {sys.argv[0]} PORT {{{'|'.join(MODES)}}}")
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
