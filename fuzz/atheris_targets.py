"""Coverage-guided fuzz targets for rfc6455 (atheris, libFuzzer): parser, handshake, inflation.

Usage::

    python fuzz/atheris_targets.py TARGET [libFuzzer flags] [CORPUS_DIR ...]
    python fuzz/atheris_targets.py frame -max_total_time=60

Targets (each input is one byte string; its first bytes choose the configuration):

- ``frame``: ``FrameParser`` for either role, any negotiated RSV bits and a frame size limit,
  fed in arbitrary chunks. Only ``ProtocolError`` may escape; every frame it returns obeys
  RFC 6455 §5.2/§5.5 and survives a round trip through ``build_frame``.
- ``handshake``: the input read as an HTTP request head, turned into a WSGI environ the way a
  server would, then ``server_handshake`` with subprotocols and permessage-deflate. Only
  ``HandshakeError`` may escape; an accepted handshake answers with the right
  ``Sec-WebSocket-Accept`` and headers that can go on the wire.
- ``inflate``: ``PerMessageDeflate.decode`` over fragments with or without RSV1, with a
  message size limit; the fragments are raw bytes or real deflate output, flipped in
  places. Only ``ProtocolError`` may escape, no message inflates past the limit, and
  untouched compressed messages come back as they were.
- ``connection``: a server or client ``Connection`` (permessage-deflate or not) fed the input
  in chunks: no exception escapes, nothing follows ``Closed``, a failure closes with its
  code.
- ``native-mask``, ``native-read-header``, ``native-parse-frames``,
  ``native-parse-messages``, ``native-answer-messages``, ``native-server-read``,
  ``native-utf8``, ``native-wire-frame``: each function of the compiled accelerator against
  its pure-Python twin (``native_targets``), meant to run on a build with
  AddressSanitizer: ``make fuzz`` builds one into ``build/fuzz-asan`` and runs each for
  ``FUZZ_RUNS`` executions with the ASan runtime preloaded.

Without a corpus directory on the command line each target keeps its corpus in
``reports/fuzz/TARGET/corpus`` (seeded with a few valid inputs, grown by every run); crashes
are written next to it as ``crash-*``, and replay with ``python fuzz/atheris_targets.py
TARGET reports/fuzz/TARGET/crash-...``. libFuzzer prints ``Done N runs in T second(s)``.
atheris is an optional extra: ``pip install atheris``.
"""

from __future__ import annotations

import base64
import importlib
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import native_targets

from rfc6455.connection import Connection, State
from rfc6455.errors import HandshakeError, ProtocolError, close_code_for
from rfc6455.events import BinaryMessage, Closed, CloseReceived, TextMessage
from rfc6455.extensions import (
    PerMessageDeflate,
    ServerPerMessageDeflate,
    parse_extensions_header,
)
from rfc6455.frame import MAX_CONTROL_PAYLOAD, Frame, FrameParser, Opcode, Role
from rfc6455.handshake import accept_key, server_handshake

# Small limits: big enough for real messages, small enough that the fuzzer crosses them.
MAX_FRAME_SIZE = 4096
MAX_MESSAGE_SIZE = 8192
SUBPROTOCOLS = ("chat", "superchat", "v2.json")
_EMPTY_BLOCK_TAIL = b"\x00\x00\xff\xff"
#: Where corpora and crash inputs go (ignored by git, like every run's output).
REPORTS = Path(__file__).resolve().parent.parent / "reports" / "fuzz"


class Violation(AssertionError):
    """An invariant of the target did not hold: a finding, like an uncaught exception."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise Violation(message)


def _chunks(data: bytes, pattern: bytes) -> Iterator[bytes]:
    """``data`` cut into reads whose sizes cycle through ``pattern``.

    A pattern byte below 128 is a small read (0: an empty one), from 128 a large one.
    """
    sizes = [b % 23 if b < 128 else (b - 127) * 1024 for b in pattern] or [len(data) or 1]
    pos = 0
    index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        index += 1
        if size == 0:
            yield b""
            size = 1
        yield data[pos : pos + size]
        pos += size


# -- frame -----------------------------------------------------------------------------------


def fuzz_frame(data: bytes) -> None:
    """Byte 0: role (bit 0), RSV mask (bits 1-3), limit on (bit 4); bytes 1-2: chunking."""
    if len(data) < 3:
        return
    config = data[0]
    role = Role.CLIENT if config & 1 else Role.SERVER
    rsv_mask = (config >> 1) & 0b111
    limit = MAX_FRAME_SIZE if config & 0x10 else None
    parser = FrameParser(13, role, max_frame_size=limit, rsv_mask=rsv_mask)
    frames: list[Frame] = []
    try:
        for chunk in _chunks(data[3:], data[1:3]):
            parser.feed(chunk)
            while (frame := parser.next_frame()) is not None:
                frames.append(frame)
    except ProtocolError as exc:
        _check(1000 <= exc.close_code <= 1011, f"close code {exc.close_code} for {exc!r}")
    for frame in frames:
        _check_frame(frame, role, rsv_mask, limit)


def _check_frame(frame: Frame, role: Role, rsv_mask: int, limit: int | None) -> None:
    rsv = frame.rsv1 << 2 | frame.rsv2 << 1 | frame.rsv3
    _check(rsv & ~rsv_mask == 0, f"RSV bits {rsv:03b} outside {rsv_mask:03b} accepted")
    # RFC 6455 §5.1: clients mask, servers do not.
    _check((frame.masking_key is not None) == (role == Role.SERVER), "wrong masking accepted")
    if limit is not None:
        _check(len(frame.payload) <= limit, "a frame over the size limit accepted")
    if frame.opcode.is_control:
        # RFC 6455 §5.5: control frames are short and never fragmented.
        _check(frame.final and len(frame.payload) <= MAX_CONTROL_PAYLOAD, "bad control frame")
    again = FrameParser(13, role, rsv_mask=rsv_mask)
    again.feed(frame.build_frame())
    copy = again.next_frame()
    _check(copy == frame and again.buffered == 0, f"{frame!r} does not survive a round trip")


# -- handshake -------------------------------------------------------------------------------


def environ_from_request(head: bytes) -> dict[str, Any]:
    """The WSGI environ a server builds from a request head (PEP 3333; values are latin-1)."""
    text = head.decode("latin-1")
    request_line, _, rest = text.partition("\r\n")
    method, _, remainder = request_line.partition(" ")
    target, _, protocol = remainder.rpartition(" ")
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": protocol,
        "wsgi.url_scheme": "http",
    }
    for line in rest.split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not name or "_" in name:
            continue
        key = "HTTP_" + name.strip().upper().replace("-", "_")
        value = value.strip(" \t")
        # RFC 7230 §3.2.2: repeated fields combine as one comma-separated list.
        environ[key] = f"{environ[key]}, {value}" if key in environ else value
    return environ


def fuzz_handshake(data: bytes) -> None:
    """Byte 0 picks the deflate factory's options; the rest is the request head."""
    if not data:
        return
    config = data[0]
    factory = ServerPerMessageDeflate(
        server_no_context_takeover=bool(config & 1),
        client_no_context_takeover=bool(config & 2),
        server_max_window_bits=8 + (config >> 2) % 8 if config & 0x20 else None,
        client_max_window_bits=8 + (config >> 5) % 8 if config & 0x40 else None,
    )
    environ = environ_from_request(data[1:])
    try:
        handshake = server_handshake(environ, SUBPROTOCOLS, [factory])
    except HandshakeError as exc:
        _check(400 <= exc.status < 600, f"HTTP status {exc.status} for {exc!r}")
        return
    headers = dict((name.lower(), value) for name, value in handshake.headers)
    key = environ["HTTP_SEC_WEBSOCKET_KEY"].strip(" \t")
    _check(headers["sec-websocket-accept"] == accept_key(key), "wrong Sec-WebSocket-Accept")
    _check(len(base64.b64decode(key, validate=True)) == 16, f"key {key!r} accepted")
    for name, value in handshake.headers:
        _check(not any(c in value for c in "\r\n\0"), f"header {name} would split the response")
        value.encode("latin-1")
    if handshake.subprotocol is not None:
        _check(handshake.subprotocol in SUBPROTOCOLS, "a subprotocol we do not speak")
    if "sec-websocket-extensions" in headers:
        parse_extensions_header([headers["sec-websocket-extensions"]])
        _check(len(handshake.extensions) == 1, "an extension header without the extension")


# -- inflate ---------------------------------------------------------------------------------


def _deflate(message: bytes, window_bits: int) -> bytes:
    """``message`` as a permessage-deflate sender writes it (RFC 7692 §7.2.1)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -max(window_bits, 9))
    out = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out.removesuffix(_EMPTY_BLOCK_TAIL)


def fuzz_inflate(data: bytes) -> None:
    """Byte 0: takeover (bit 0), window bits (bits 1-3), mode (bits 4-5); byte 1: limit.

    Mode 0 inflates the rest as raw fragments; otherwise the rest is a message compressed
    here, then cut into fragments (mode 2 also flips one byte, mode 3 appends garbage).
    """
    if len(data) < 3:
        return
    config, limit_byte = data[0], data[1]
    window_bits = 8 + ((config >> 1) & 0b111)
    extension = PerMessageDeflate(
        remote_no_context_takeover=bool(config & 1), remote_max_window_bits=window_bits
    )
    max_size = limit_byte * 64
    mode = (config >> 4) & 0b11
    body = data[2:]
    original: bytes | None = None
    if mode == 0:
        wire = body
    else:
        original = body
        wire = _deflate(body, window_bits)
        if mode == 2 and wire:
            spot = body[0] % len(wire) if body else 0
            wire = wire[:spot] + bytes([wire[spot] ^ 0xFF]) + wire[spot + 1 :]
            original = None
        elif mode == 3:
            wire += body[:8]
            original = None
    pieces = list(_chunks(wire, body[:3])) or [b""]
    output: list[bytes] = []
    try:
        for index, piece in enumerate(pieces):
            first = index == 0
            frame = Frame(
                piece,
                Opcode.BINARY if first else Opcode.CONTINUATION,
                final=index == len(pieces) - 1,
                rsv1=1 if first else 0,
            )
            remaining = max_size - sum(len(part) for part in output)
            output.append(extension.decode(frame, max_size=remaining).payload)
    except ProtocolError:
        return
    total = sum(len(part) for part in output)
    _check(total <= max_size, f"inflated {total} bytes past the limit of {max_size}")
    if original is not None and len(original) <= max_size:
        _check(b"".join(output) == original, "a compressed message came back different")


# -- connection ------------------------------------------------------------------------------


def fuzz_connection(data: bytes) -> None:
    """Byte 0: role (bit 0), deflate (bit 1), context takeover (bit 2); bytes 1-2: chunking."""
    if len(data) < 3:
        return
    config = data[0]
    role = Role.CLIENT if config & 1 else Role.SERVER
    extensions = (
        [PerMessageDeflate(remote_no_context_takeover=bool(config & 4))] if config & 2 else []
    )
    conn = Connection(role, extensions, max_message_size=MAX_MESSAGE_SIZE)
    closed = False
    for chunk in [*_chunks(data[3:], data[1:3]), None]:
        if chunk is None:
            conn.receive_eof()
        else:
            conn.receive_data(chunk)
        for event in conn.events():
            _check(not closed, f"{event!r} delivered after Closed")
            if isinstance(event, Closed):
                closed = True
                _check(event.code == conn.close_code, "Closed and close_code disagree")
            elif isinstance(event, TextMessage | BinaryMessage):
                _check(len(event.data) <= MAX_MESSAGE_SIZE, "a message over the limit")
            elif isinstance(event, CloseReceived):
                _check(1000 <= event.code <= 4999, f"close code {event.code} delivered")
        conn.data_to_send()
    _check(closed and conn.state is State.CLOSED, "the connection outlived EOF")
    if conn.failure is not None:
        _check(conn.close_code == close_code_for(conn.failure), "a failure's close code")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "frame": fuzz_frame,
    "handshake": fuzz_handshake,
    "inflate": fuzz_inflate,
    "connection": fuzz_connection,
}


# -- seeds -----------------------------------------------------------------------------------


def seeds(target: str) -> list[bytes]:
    """Valid inputs to start from, so the fuzzer mutates protocol rather than noise."""
    key = os.urandom(4)
    client_frames = b"".join(
        frame.build_frame()
        for frame in (
            Frame("héllo", Opcode.TEXT, masking_key=key, final=True),
            Frame(b"\x00" * 200, Opcode.BINARY, masking_key=key, final=False),
            Frame.ping(b"p", masking_key=key),
            Frame.continuation(b"end", final=True, masking_key=key),
            Frame.close(1000, "bye", masking_key=key),
        )
    )
    server_frames = b"".join(
        frame.build_frame()
        for frame in (
            Frame(b"x" * 70000, Opcode.BINARY, final=True),
            Frame.pong(b"q"),
            Frame.close(4000),
        )
    )
    compressed = Frame(_deflate(b"abcabc" * 50, 15), Opcode.TEXT, masking_key=key, final=True)
    compressed.rsv1 = 1
    if target in ("frame", "connection"):
        deflate = b"\x06" if target == "connection" else b"\x08"
        return [
            b"\x00\x05\x11" + client_frames,
            b"\x01\xa0\x03" + server_frames,
            deflate + b"\x03\x07" + compressed.build_frame() + client_frames,
        ]
    if target == "handshake":
        request = (
            "GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8000\r\nUpgrade: websocket\r\n"
            "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: superchat, chat\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; "
            "server_max_window_bits=10, permessage-deflate\r\nOrigin: http://example.com\r\n\r\n"
        ).encode("latin-1")
        return [b"\x00" + request, b"\x63" + request]
    return [b"\x30\x40" + b"hello hello hello " * 20, b"\x10\xff" + os.urandom(64), b"\x00\x10"]


#: The native targets' names; the accelerator they fuzz is loaded only when one is chosen
#: (an ASan build cannot load unless the ASan runtime was preloaded).
NATIVE_TARGETS = (
    "native-answer-messages",
    "native-mask",
    "native-read-header",
    "native-parse-frames",
    "native-parse-messages",
    "native-server-read",
    "native-utf8",
    "native-wire-frame",
)


def main(argv: list[str]) -> int:
    names = [*TARGETS, *NATIVE_TARGETS]
    if len(argv) < 2 or argv[1] not in names:
        print(f"usage: {argv[0]} {{{','.join(names)}}} [libFuzzer flags] [CORPUS_DIR ...]")
        return 2
    target = argv[1]
    if target in NATIVE_TARGETS:
        run = native_targets.targets(native_targets.load_native())[target]
        initial = native_targets.seeds()
    else:
        run, initial = TARGETS[target], seeds(target)
    try:
        atheris: Any = importlib.import_module("atheris")
    except ImportError:
        print("atheris is not installed: pip install atheris (Linux, CPython 3.8-3.11+)")
        return 2
    flags = argv[2:]
    workdir = REPORTS / target
    if not any(flag.startswith("-artifact_prefix=") for flag in flags):
        workdir.mkdir(parents=True, exist_ok=True)
        flags.insert(0, f"-artifact_prefix={workdir}{os.sep}")
    if not any(not flag.startswith("-") for flag in flags):
        corpus = workdir / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        for number, seed in enumerate(initial):
            (corpus / f"seed-{number}").write_bytes(seed)
        flags.append(str(corpus))
    if target not in NATIVE_TARGETS:
        # Python coverage for the Python targets; the native ones are guided by the
        # compiled module's own coverage instrumentation (and run many times faster).
        atheris.instrument_all()
    atheris.Setup([argv[0], *flags], run)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
