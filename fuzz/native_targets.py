"""Coverage-guided targets for the compiled accelerator's entry points, one per function.

Invariants:
- Each target calls a function of ``rfc6455._speedups`` directly and holds its answer to its
  pure-Python twin (the reference, which never calls the accelerator): a difference is a
  finding, like a crash. ``server_read``'s twin is a whole server session: one whose read
  is this build's against one that takes every event in turn (``sessions``), on the
  package's pure-Python codec when ``RFC6455_NO_SPEEDUPS=1`` (as ``make fuzz`` runs it).
  Inputs a twin refuses must be refused alike (the same exception type, or ``False`` where
  the twin raises the connection's error).
- The module under test is the one ``RFC6455_FUZZ_SPEEDUPS`` names (``make fuzz`` builds it
  with AddressSanitizer and libFuzzer's coverage instrumentation into ``build/fuzz-asan``);
  without it, the accelerator the package itself imports. It is loaded under its own name,
  so the package keeps importing its own build: only these targets exercise this one.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from types import ModuleType

from sessions import ACTIONS, run_session

from rfc6455 import frame, speedups, utf8
from rfc6455.connection import State
from rfc6455.errors import MessageTooBig, ProtocolError
from rfc6455.events import BinaryMessage, TextMessage
from rfc6455.session import WebSocketSession
from rfc6455.shell import Shell, Stage

#: The path of an extension module built for fuzzing (``make fuzz`` sets it).
BUILD_ENV = "RFC6455_FUZZ_SPEEDUPS"


class Mismatch(AssertionError):
    """The compiled function and its pure-Python twin answered differently."""


def load_native() -> ModuleType:
    """The accelerator to fuzz: the build ``RFC6455_FUZZ_SPEEDUPS`` names, or the package's."""
    path = os.environ.get(BUILD_ENV)
    if not path:
        if speedups.compiled is None:
            raise SystemExit(f"no compiled accelerator to fuzz: build one and set {BUILD_ENV}")
        return speedups.compiled
    # The file's init function is PyInit__speedups, so the module is named _speedups.
    spec = importlib.util.spec_from_file_location("_speedups", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path} is not an extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(function: Callable[..., object], *args: object) -> object:
    """The result, or for a refusal the exception type (``False`` for a protocol error,
    as the compiled header parsers answer a header the connection must fail on)."""
    try:
        return function(*args)
    except (ProtocolError, MessageTooBig):
        return False
    except Exception as exc:
        return type(exc)


def _same(compiled: object, python: object, what: str) -> None:
    if compiled != python or type(compiled) is not type(python):
        raise Mismatch(f"{what}: compiled {compiled!r}, pure Python {python!r}")


def _limit(byte: int) -> int | None:
    """A frame size limit around the length encodings' edges, or none."""
    return (None, 0, 125, 126, 65535, 65536, 2**63 - 1, 2**64)[byte % 8]


#: What the fuzzed ``on_message`` does with a message: its reply, or "raise" / "close".
_ANSWERS: tuple[object, ...] = (
    None,
    "echo",
    "κόσμε",  # text that is not ASCII
    b"m" * 300,  # a 16-bit length
    "a\ud800",  # a str UTF-8 cannot encode: handed back
    bytearray(b"ba"),  # bytes-like, not bytes: handed back
    "raise",
    "close",  # the connection leaves the open state: no reply from here on
)


class _Connection:
    """The stand-in connection ``answer_messages`` reads ``state`` from."""

    def __init__(self) -> None:
        self.state = "open"


class _Hook:
    """An ``on_message`` following a script of ``_ANSWERS``, three bits per message."""

    def __init__(self, script: int, connection: _Connection) -> None:
        self.script = script
        self.connection = connection
        self.seen: list[str | bytes] = []

    def on_message(self, environ: object, message: str | bytes) -> object:
        answer = _ANSWERS[(self.script >> (3 * (len(self.seen) % 5))) & 7]
        self.seen.append(message)
        if answer == "raise":
            raise ValueError("the hook failed")
        if answer == "close":
            self.connection.state = "closing"
            return message
        return message if answer == "echo" else answer


def _answering(
    answer: Callable[..., object], buffer: bytearray, rules: tuple[object, ...], script: int
) -> object:
    """All ``answer`` does: its outcome (an exception as its type and message), the
    messages the hook saw, the frames it queued after what the list held."""
    connection = _Connection()
    hook = _Hook(script, connection)
    out: list[object] = [b"held"]
    result = _outcome(answer, buffer, *rules, hook, {}, connection, "open", out)
    if isinstance(result, tuple):
        end, code, value = result
        if isinstance(value, BaseException):
            value = (type(value), str(value))
        result = (end, code, value)
    return result, hook.seen, out


def targets(native: ModuleType) -> dict[str, Callable[[bytes], None]]:
    """One target per function the accelerator exports."""

    def fuzz_mask(data: bytes) -> None:
        """Bytes 0-3: the key; byte 4: slice bounds; the rest: the data (RFC 6455 §5.3)."""
        if len(data) < 5:
            return
        key, bounds, body = data[:4], data[4], bytearray(data[5:])
        masked = native.mask(body, key)
        _same(masked, frame._mask_python(body, key), "mask")
        _same(native.mask(masked, key), bytes(body), "mask twice")
        start, end = bounds & 0x0F, len(body) - (bounds >> 4) + 2
        _same(
            _outcome(native.mask_slice, body, key, start, end),
            _outcome(frame._mask_slice_python, body, key, start, end),
            f"mask_slice [{start}:{end}]",
        )

    def fuzz_read_header(data: bytes) -> None:
        """Byte 0: masking expected (bit 0), RSV mask (bits 1-3), limit (bits 4-6); byte 1:
        the header's position; the rest: the buffer (RFC 6455 §5.2)."""
        if len(data) < 2:
            return
        config = data[0]
        args = (data[2:], data[1] % 6, bool(config & 1), _limit(config >> 4), (config >> 1) & 7)
        _same(
            _outcome(native.read_header, *args),
            _outcome(frame._read_header_python, *args),
            "read_header",
        )

    def fuzz_parse_frames(data: bytes) -> None:
        """Byte 0 as for ``read_header``, bit 7: decode whole text messages; byte 1: the
        first frame's position; the rest: the buffer."""
        if len(data) < 2:
            return
        config = data[0]
        buffer = bytearray(data[2:])
        args = (
            buffer,
            data[1] % 6,
            bool(config & 1),
            _limit(config >> 4),
            (config >> 1) & 7,
            bool(config & 0x80),
        )
        compiled = _outcome(native.parse_frames, *args)
        python = _outcome(frame._parse_frames_python, *args)
        _same(compiled, python, "parse_frames")
        if isinstance(compiled, tuple) and isinstance(python, tuple):
            _same([type(x) for x in compiled[0]], [type(x) for x in python[0]], "payload types")

    def fuzz_parse_messages(data: bytes) -> None:
        """Byte 0 as for ``read_header``, bit 7: make events (else the data itself); byte 1:
        the first frame's position; the rest: the buffer. The same messages appended after
        what the list held, and the same stopping point, as the twin's."""
        if len(data) < 2:
            return
        config = data[0]
        types = (TextMessage, BinaryMessage) if config & 0x80 else (None, None)
        rules = (data[1] % 6, bool(config & 1), _limit(config >> 4), (config >> 1) & 7)
        compiled_out: list[object] = [b"held"]
        python_out: list[object] = [b"held"]
        compiled = _outcome(
            native.parse_messages, bytearray(data[2:]), *rules, *types, compiled_out
        )
        python = _outcome(
            frame._parse_messages_python, bytearray(data[2:]), *rules, *types, python_out
        )
        _same(compiled, python, "parse_messages")
        _same(compiled_out, python_out, "parse_messages' messages")
        _same([type(m) for m in compiled_out], [type(m) for m in python_out], "message types")

    def fuzz_utf8_check(data: bytes) -> None:
        """Byte 0: the chunk sizes (3 bits each, then the rest), the data after it, fed
        chunk by chunk with each call's pending tail carried to the next (RFC 6455 §8.1)."""
        if not data:
            return
        sizes, body = data[0], data[1:]
        cuts = sorted({(sizes & 7), (sizes >> 3 & 7) * 2, (sizes >> 6) * 5})
        bounds = [0, *(c for c in cuts if c < len(body)), len(body)]
        states: list[bytes | None] = [b"", b""]
        for index in range(len(bounds) - 1):
            chunk = body[bounds[index] : bounds[index + 1]]
            final = index == len(bounds) - 2
            compiled, python = states
            states = [
                None if compiled is None else native.utf8_check(chunk, compiled, final),
                None if python is None else utf8._utf8_check_python(chunk, python, final),
            ]
            _same(states[0], states[1], f"utf8_check of chunk {index}")
            if states[0] is None:
                return

    def fuzz_wire_frame(data: bytes) -> None:
        """Byte 0: the first header byte; byte 1: masked (bit 0), payload length class
        (bits 1-2: as given, 126, 65535 or 65536 bytes, around §5.2's length encodings); bytes
        2-5: the key; the rest: the payload, repeated to the chosen length."""
        if len(data) < 6:
            return
        first, config, key, body = data[0], data[1], data[2:6], data[6:]
        wanted = (len(body), 126, 0xFFFF, 0x10000)[(config >> 1) & 3]
        payload = (body * (wanted // max(len(body), 1) + 1))[:wanted] if body else b""
        masking_key = key if config & 1 else None
        _same(
            _outcome(native.wire_frame, first, payload, masking_key),
            _outcome(frame._wire_frame_python, first, payload, masking_key),
            "wire_frame",
        )

    def fuzz_answer_messages(data: bytes) -> None:
        """Byte 0 as for ``read_header``; bytes 1-2: what the hook does with each message
        (3 bits per message, five in turn: ``_ANSWERS``); the rest: the buffer. The same
        hook calls, reply frames, stopping point and outcome as the twin's."""
        if len(data) < 3:
            return
        config = data[0]
        rules = (0, bool(config & 1), _limit(config >> 4), (config >> 1) & 7)
        script = data[1] | data[2] << 8
        _same(
            _answering(native.answer_messages, bytearray(data[3:]), rules, script),
            _answering(frame._answer_messages_python, bytearray(data[3:]), rules, script),
            "answer_messages",
        )

    class NativeReadSession(WebSocketSession):
        """A server session whose read is this build's ``server_read``."""

        __slots__ = ()

    NativeReadSession.buffer_updated = native.server_read(  # type: ignore[method-assign]
        NativeReadSession, Stage.OPEN, State.OPEN, Shell.buffer_updated
    )

    def fuzz_server_read(data: bytes) -> None:
        """Bytes 0-1: what the hook does with each message, in turn (``sessions.ACTIONS``);
        byte 2: the read size (bits 0-5, 0 for the whole stream in one read) and the
        message size limit (bits 6-7); the rest: the client's stream. The same hook calls,
        bytes written, ending, close code, escaped exceptions and error lines as a session
        that takes every event in turn."""
        if len(data) < 3:
            return
        actions = [ACTIONS[byte % len(ACTIONS)] for byte in data[:2]]
        size, limit = data[2] & 0x3F, (None, 0, 125, 0x10000)[data[2] >> 6]
        stream = data[3:]
        step = size or max(len(stream), 1)
        chunks = [stream[at : at + step] for at in range(0, len(stream), step)]
        _same(
            run_session(NativeReadSession, chunks, actions, limit),
            run_session("reference", chunks, actions, limit),
            "server_read",
        )

    return {
        "native-answer-messages": fuzz_answer_messages,
        "native-mask": fuzz_mask,
        "native-read-header": fuzz_read_header,
        "native-parse-frames": fuzz_parse_frames,
        "native-parse-messages": fuzz_parse_messages,
        "native-server-read": fuzz_server_read,
        "native-utf8": fuzz_utf8_check,
        "native-wire-frame": fuzz_wire_frame,
    }


def seeds() -> list[bytes]:
    """A few valid inputs for every native target: masked frames, UTF-8 edges."""
    key = b"\x37\xfa\x21\x3d"
    text = frame.Frame("κόσμε héllo", frame.Opcode.TEXT, masking_key=key, final=True).msg
    binary = frame.Frame(b"\x00" * 130, frame.Opcode.BINARY, masking_key=key, final=True).msg
    ping = frame.Frame.ping(b"p", masking_key=key).msg
    return [
        b"\x01\x88\xc6" + text + binary + text + binary + text + ping + text,
        b"\x81\x00" + text + binary + ping,
        b"\x81\x00" + text + text + binary + text,
        b"\x01\x00" + binary + text,
        key + b"\x21" + bytes(range(64)),
        b"\x5b" + "κόσμε \U0001f600 ascii text".encode() + b"\xed\xa0\x80",
    ]
