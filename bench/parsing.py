"""Parsing masked client frames (what a server reads) of 10 B and 1 KiB, frames per second.

Every candidate parses the same frames, handed over in reads of up to 64 KiB as a socket
would, into a fresh parser per pass. Binary frames, and text frames (valid UTF-8, mostly
ASCII with some multi-byte characters, as chat-like text is), which a message-level parser
must also validate and decode (RFC 6455 §8.1). Two levels are compared:
- frame level: ``rfc6455.FrameParser``, websockets' ``Frame.parse`` generator over its
  ``StreamReader`` (the parser its protocol runs), wsproto's ``FrameProtocol``;
- message level (frames become messages, as a server needs): ``rfc6455.Connection``
  (``events_received``, its batch API), websockets' sans-I/O ``Protocol``, aiohttp's
  compiled ``WebSocketReader``. Each is read as its docs write it.
Goal (issue 7): at least 2 times websockets' parser, aiming for aiohttp's compiled reader.
"""

from __future__ import annotations

import asyncio
import os
import types
from collections.abc import Callable, Iterator

from measure import Comparison, compare

from rfc6455.connection import Connection
from rfc6455.frame import Frame, FrameParser, Opcode, Role

SIZES = (10, 1024)
KINDS = ("binary", "text")
CHUNK = 64 * 1024
BASELINE = "websockets Frame.parse"
# Text to cut messages from: ASCII with a two-byte and a three-byte character now and then.
_TEXT = ("The quick brown fox jumps over the lazy dog; naïve café, 5 € each. " * 64).encode()


def _text_payload(size: int) -> bytes:
    """``size`` bytes of valid UTF-8 from a random place in ``_TEXT`` (whole characters)."""
    start = int.from_bytes(os.urandom(2), "big") % (len(_TEXT) - size - 4)
    while _TEXT[start] & 0xC0 == 0x80:  # not inside a character
        start += 1
    end = start + size
    while _TEXT[end] & 0xC0 == 0x80:
        end -= 1
    return _TEXT[start:end].ljust(size, b" ")


def masked_frames(size: int, count: int, kind: str = "binary") -> list[bytes]:
    """``count`` masked frames of ``size`` bytes, each with its own key: binary frames of
    random bytes, or text frames of valid UTF-8."""
    if kind == "text":
        return [
            Frame(_text_payload(size), Opcode.TEXT, masking_key=os.urandom(4), final=True).msg
            for _ in range(count)
        ]
    return [
        Frame(os.urandom(size), Opcode.BINARY, masking_key=os.urandom(4), final=True).msg
        for _ in range(count)
    ]


def chunked(frames: list[bytes]) -> list[bytes]:
    """The frames joined into reads of at most ``CHUNK`` bytes, each ending on a frame
    boundary, so that every pass parses exactly the same frames in every parser."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for frame in frames:
        if current and size + len(frame) > CHUNK:
            chunks.append(b"".join(current))
            current, size = [], 0
        current.append(frame)
        size += len(frame)
    chunks.append(b"".join(current))
    return chunks


def ours_frames(chunks: list[bytes], count: int) -> Callable[[], object]:
    def parse() -> None:
        parser = FrameParser(13, Role.SERVER)
        seen = 0
        for chunk in chunks:
            parser.feed(chunk)
            for _ in parser.frames():
                seen += 1
        assert seen == count

    return parse


def ours_messages(chunks: list[bytes], count: int) -> Callable[[], object]:
    def parse() -> None:
        connection = Connection(Role.SERVER, max_message_size=None)
        seen = 0
        for chunk in chunks:
            connection.receive_data(chunk)
            # The batch API its docs give as the fastest (a list of events per call).
            while events := connection.events_received():
                seen += len(events)
        assert seen == count

    return parse


def websockets_frames(chunks: list[bytes], count: int) -> Callable[[], object] | None:
    try:
        from websockets.frames import Frame as WsFrame
        from websockets.streams import StreamReader
    except ImportError:
        return None

    def parse() -> None:
        reader = StreamReader()
        pending: Iterator[None] | None = None
        seen = 0
        for chunk in chunks:
            reader.feed_data(chunk)
            while True:
                if pending is None:
                    pending = WsFrame.parse(reader.read_exact, mask=True, max_size=None)
                try:
                    next(pending)
                except StopIteration:
                    seen += 1
                    pending = None
                else:
                    break  # waiting for more bytes
        assert seen == count

    return parse


def websockets_messages(chunks: list[bytes], count: int) -> Callable[[], object] | None:
    try:
        from websockets.protocol import Protocol, Side
    except ImportError:
        return None

    def parse() -> None:
        protocol = Protocol(Side.SERVER, max_size=None)
        seen = 0
        for chunk in chunks:
            protocol.receive_data(chunk)
            seen += len(protocol.events_received())
        assert seen == count

    return parse


def wsproto_frames(chunks: list[bytes], count: int) -> Callable[[], object] | None:
    try:
        from wsproto.frame_protocol import FrameProtocol
    except ImportError:
        return None

    def parse() -> None:
        protocol = FrameProtocol(client=False, extensions=[])
        seen = 0
        for chunk in chunks:
            protocol.receive_bytes(chunk)
            for _ in protocol.received_frames():
                seen += 1
        assert seen == count

    return parse


def aiohttp_messages(chunks: list[bytes], count: int) -> Callable[[], object] | None:
    try:
        from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
    except ImportError:
        return None
    loop = asyncio.new_event_loop()  # only stored by the queue; never run
    flow = types.SimpleNamespace(
        _reading_paused=False, pause_reading=lambda: None, resume_reading=lambda: None
    )

    def parse() -> None:
        queue = WebSocketDataQueue(flow, 2**30, loop=loop)
        # (max_msg_size 0: no limit; no compression; text decoded and validated, as
        # aiohttp's WebSocketResponse does by default: a server must check it, §8.1.)
        reader = WebSocketReader(queue, 0, False, True)
        seen = 0
        for chunk in chunks:
            reader.feed_data(chunk)
            seen += len(queue._buffer)
            queue._buffer.clear()
        assert seen == count

    return parse


def run(repeats: int, budget: float) -> list[Comparison]:
    results = []
    for size, kind in ((size, kind) for size in SIZES for kind in KINDS):
        count = 2000 if size < 100 else 400
        chunks = chunked(masked_frames(size, count, kind))
        builders = {
            "rfc6455 FrameParser": ours_frames,
            BASELINE: websockets_frames,
            "wsproto FrameProtocol": wsproto_frames,
            "rfc6455 Connection": ours_messages,
            "websockets Protocol": websockets_messages,
            "aiohttp WebSocketReader (Cython)": aiohttp_messages,
        }
        candidates = {}
        for name, build in builders.items():
            function = build(chunks, count)
            if function is not None:
                candidates[name] = function
        results.append(
            compare(
                f"Parsing masked {size} B {kind} client frames (frames/s)",
                candidates,
                baseline=BASELINE,
                unit="frames/s",
                work=count,
                repeats=repeats,
                budget=budget,
            )
        )
    return results
