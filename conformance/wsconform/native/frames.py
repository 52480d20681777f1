"""The frame writer: any frame the cases need, valid or not, masked with seeded random keys.

Invariants:
- ``encode`` writes exactly what it is told (reserved opcodes, RSV bits, fragmented control
  frames, oversized control payloads are all allowed: the cases send them on purpose); the
  only choice it makes is the shortest length encoding, as the fuzzer does.
- Every frame the engine sends is masked (we are a client, RFC 6455 §5.3) with a key drawn
  from ``MaskKeys``; a key is never all zero, because a zero key would hide a testee that
  forgets to unmask.
- ``MaskKeys`` is deterministic for a seed, so a run's wire log can be replayed.
- Masking is compiled (``_masking``, built with the package) where it could be built, else
  Python; both give the same octets (``mask_frames`` and ``_mask_frames_python``; a whole
  fragmented message: ``encode_message`` and ``_encode_message_python``).
"""

from __future__ import annotations

import functools
import math
import random
import struct
from collections.abc import Callable
from types import ModuleType


def _compiled_masking() -> ModuleType | None:
    """``_masking``, or None where the package was built without a compiler."""
    try:
        from wsconform.native import _masking
    except ImportError:
        return None
    return _masking


_masking = _compiled_masking()
_compiled: Callable[[bytes, bytes, int], bytes] | None = _masking.mask if _masking else None
_compiled_encode: Callable[[bytes, bytes, int, int], bytes] | None = (
    _masking.encode_message if _masking else None
)

__all__ = [
    "MaskKeys",
    "apply_mask",
    "encode",
    "encode_message",
    "fragment_bounds",
    "frame_count",
    "header",
    "mask_frames",
    "masked_repeat",
    "repeat_to",
]

# RFC 6455 §5.2: 7-bit length up to 125, 126 + 16-bit length, 127 + 64-bit length.
_LEN_7_MAX = 125
_LEN_16_MAX = 0xFFFF


class MaskKeys:
    """Random 4-byte masking keys (and other random bytes) from one seeded generator."""

    def __init__(self, seed: int | str) -> None:
        self._random = random.Random(seed)

    def key(self) -> bytes:
        """A masking key that is never ``b"\\0\\0\\0\\0"``."""
        while True:
            value = self._random.getrandbits(32)
            if value:
                return value.to_bytes(4, "big")

    def keys(self, count: int) -> list[bytes]:
        """``count`` masking keys at once: ``joined_keys`` cut into keys."""
        raw = self.joined_keys(count)
        return [raw[i : i + 4] for i in range(0, 4 * count, 4)]

    def joined_keys(self, count: int) -> bytes:
        """``count`` masking keys end to end (one draw for all; zero keys replaced, in order)."""
        raw = self._random.getrandbits(32 * count).to_bytes(4 * count, "big")
        if b"\0\0\0\0" not in raw:  # (four zero octets across two keys land here too)
            return raw
        drawn = [raw[i : i + 4] for i in range(0, 4 * count, 4)]
        return b"".join(k if k != b"\0\0\0\0" else self.key() for k in drawn)

    def octets(self, count: int) -> bytes:
        """``count`` random bytes (the handshake's Sec-WebSocket-Key nonce)."""
        return self._random.getrandbits(8 * count).to_bytes(count, "big")


# Above this size, masking by byte translation of the four interleaved slices is faster than
# one big-integer XOR (measured here: 16 MiB in 80 ms instead of 215 ms; at 64 KiB the XOR
# is faster, 0.30 ms against 0.36 ms).
_TRANSLATE_FROM = 256 * 1024


def apply_mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``key`` (RFC 6455 §5.3); its own inverse."""
    if not data:
        return b""
    if _compiled is not None:
        return _compiled(data, key, len(data))
    return _apply_mask_python(data, key)


def _apply_mask_python(data: bytes, key: bytes) -> bytes:
    size = len(data)
    if size >= _TRANSLATE_FROM:
        out = bytearray(size)
        for lane, octet in enumerate(key):
            out[lane::4] = data[lane::4].translate(bytes(b ^ octet for b in range(256)))
        return bytes(out)
    repeated = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")


def repeat_to(payload: bytes, length: int) -> bytes:
    """``payload`` repeated and cut to ``length`` bytes (the fuzzer's large generated payloads)."""
    if not payload:
        raise ValueError("cannot repeat an empty payload")
    whole, rest = divmod(length, len(payload))
    return payload * whole + payload[:rest]


def masked_repeat(payload: bytes, length: int, key: bytes) -> bytes:
    """``apply_mask(repeat_to(payload, length), key)`` without masking every byte: both
    repeat, so the result repeats every lcm(len(payload), 4) bytes; masking one such unit
    and repeating it costs a copy instead of an XOR over up to 16 MiB."""
    unit = math.lcm(len(payload), 4) if payload else 4
    if length <= unit:
        return apply_mask(repeat_to(payload, length), key)
    return repeat_to(apply_mask(repeat_to(payload, unit), key), length)


def header(
    opcode: int, length: int, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None
) -> bytes:
    """A frame header for a ``length``-byte payload, with its masking key if any."""
    first = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F)
    if mask is None:
        return _header(first, 0, length)
    return _header(first, 0x80, length) + mask


def encode(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
) -> bytes:
    """One frame on the wire: header, optional masking key, (masked) payload."""
    head = header(opcode, len(payload), fin=fin, rsv=rsv, mask=mask)
    return head + (payload if mask is None else apply_mask(payload, mask))


def frame_count(size: int, fragment: int) -> int:
    """How many frames ``fragment_bounds`` cuts a ``size``-byte message into."""
    if not fragment or size <= fragment:
        return 1
    return size // fragment + 1


def fragment_bounds(size: int, fragment: int) -> list[tuple[int, int]]:
    """Where the fuzzer cuts a message of ``size`` bytes into ``fragment``-byte frames: one
    frame when it fits (or ``fragment`` is 0), else pieces of ``fragment`` and the rest, which
    is empty when ``size`` is an exact multiple (the fuzzer's loop sends that empty frame)."""
    if not fragment or size <= fragment:
        return [(0, size)]
    # Every frame but the last ends where the next begins; the last ends at ``size``.
    ends = [*range(fragment, size + 1, fragment), size]
    return list(zip(range(0, size + 1, fragment), ends, strict=True))


def encode_message(
    opcode: int,
    payload: bytes,
    fragment: int,
    keys: bytes,
    *,
    rsv: int = 0,
) -> bytes:
    """All frames of one message cut as ``fragment_bounds`` cuts it, frame i masked with key
    i (octets 4i to 4i + 3 of ``keys``, from ``MaskKeys.joined_keys``): the first frame
    carries ``opcode`` and ``rsv``, the rest are continuations, the last has FIN. Compiled:
    one pass that writes each header, key and masked fragment in place (9.3.1 sends 65,536
    frames)."""
    first_byte = ((rsv & 0x7) << 4) | (opcode & 0x0F)
    if _compiled_encode is not None:
        return _compiled_encode(payload, keys, fragment, first_byte)
    return _encode_message_python(first_byte, payload, fragment, keys)


def _encode_message_python(first_byte: int, payload: bytes, fragment: int, keys: bytes) -> bytes:
    """``encode_message`` in Python (``first_byte``: opcode and RSV bits). The whole payload
    is masked in one pass, and the frames between the first and the last, all alike but for
    their key, are each one piece (key and payload) joined with their shared header (a
    per-frame loop of several pieces costs more than the XOR itself); no list of bounds or
    of keys is made."""
    if frame_count(len(payload), fragment) == 1:
        key = keys[:4]
        return _header(0x80 | first_byte, 0x80, len(payload)) + key + apply_mask(payload, key)
    full = len(payload) // fragment  # every frame but the last has ``fragment`` bytes
    rest = len(payload) - full * fragment
    if full > 2 and _one_octet_repeated(payload):
        return _encode_uniform(first_byte, payload, fragment, full, rest, keys)
    masked = mask_frames(payload, keys, fragment)
    middle = _header(0, 0x80, fragment)
    # The middle frames: each one's key and payload, their shared header joined between.
    keyed = [
        keys[4 * index : 4 * index + 4] + masked[index * fragment : (index + 1) * fragment]
        for index in range(1, full)
    ]
    return b"".join(
        [
            _header(first_byte, 0x80, fragment),
            keys[:4],
            masked[:fragment],
            middle if keyed else b"",
            middle.join(keyed),
            _header(0x80, 0x80, rest),
            keys[4 * full : 4 * full + 4],
            masked[full * fragment :],
        ]
    )


def _one_octet_repeated(payload: bytes) -> bool:
    """Is ``payload`` one octet repeated (the 9.3/9.4 messages)? A compare, about 1 ms at 4 MiB."""
    return payload[:1] * len(payload) == payload


def _encode_uniform(
    first_byte: int, payload: bytes, fragment: int, full: int, rest: int, keys: bytes
) -> bytes:
    """``encode_message`` of a payload that is one octet repeated: frame i's masked payload is
    its key XOR that octet, repeated, so no payload byte is XORed one by one."""
    table = _xor_table(payload[0])
    unit = payload[:4]  # what each key masks, repeated through the frame
    middle = _uniform_run(_header(0, 0x80, fragment), keys[4 : 4 * full], fragment, table)
    last = keys[4 * full : 4 * full + 4]
    return b"".join(
        [
            _header(first_byte, 0x80, fragment),
            keys[:4],
            masked_repeat(unit, fragment, keys[:4]),
            middle,
            _header(0x80, 0x80, rest),
            last,
            masked_repeat(unit, rest, last) if rest else b"",
        ]
    )


def _uniform_run(head: bytes, keys: bytes, fragment: int, table: bytes) -> bytes:
    """Frames alike but for their key (``head``, key, ``fragment`` octets masked through
    ``table``), one per key of ``keys`` (joined). Many short frames are written column by
    column into one buffer (a strided copy per byte position of a frame: as many Python steps
    as a frame has bytes); fewer, longer ones frame by frame."""
    count = len(keys) // 4
    if fragment % 4 or fragment + len(head) >= count:
        pieces = []
        for at in range(0, len(keys), 4):
            key = keys[at : at + 4]
            masked = key.translate(table)
            pieces.append(key + (masked * (fragment // 4 + 1))[:fragment])
        return head + head.join(pieces) if pieces else b""
    size = len(head) + 4 + fragment
    out = bytearray(size * count)
    for at, octet in enumerate(head):
        out[at::size] = bytes((octet,)) * count
    for lane in range(4):
        column = keys[lane::4]
        out[len(head) + lane :: size] = column
        masked = column.translate(table)
        for at in range(len(head) + 4 + lane, size, 4):
            out[at::size] = masked
    return bytes(out)


@functools.cache
def _xor_table(octet: int) -> bytes:
    """The ``bytes.translate`` table of XOR with ``octet``."""
    return bytes(b ^ octet for b in range(256))


def mask_frames(payload: bytes, keys: bytes, fragment: int) -> bytes:
    """``payload`` masked frame by frame: frame f is ``fragment`` octets from f * fragment
    (the last maybe shorter), masked with key f (octets 4f to 4f + 3 of ``keys``)."""
    if not payload:
        return b""
    if _compiled is not None:
        return _compiled(payload, keys, fragment)
    return _mask_frames_python(payload, keys, fragment)


def _mask_frames_python(payload: bytes, keys: bytes, fragment: int) -> bytes:
    """``mask_frames`` in one big-integer XOR with the keys' stream."""
    size = len(payload)
    repeats = fragment // 4 + 1
    stream = b"".join(
        [(keys[at : at + 4] * repeats)[:fragment] for at in range(0, 4 * -(-size // fragment), 4)]
    )[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


def _header(first: int, mask_bit: int, size: int) -> bytes:
    """The first byte, the mask bit and the shortest length encoding of ``size``."""
    if size <= _LEN_7_MAX:
        return struct.pack("!BB", first, mask_bit | size)
    if size <= _LEN_16_MAX:
        return struct.pack("!BBH", first, mask_bit | 126, size)
    return struct.pack("!BBQ", first, mask_bit | 127, size)
