"""What the fuzzer's own WebSocket layer refuses in what the testee sends, as pure functions.

Invariants:
- No state and no I/O: each function maps what was received to the reasons it is refused,
  worded as the fuzzer words them; the connection fails once per reason, in the order given.
- Every check of a header runs, whatever an earlier one found (a violation never stops the
  fuzzer's parsing), and the header checks need only its first two bytes.
- The close code rules are RFC 6455 §7.4 as the fuzzer knew them (1012-1014 are refused).
"""

from __future__ import annotations

from wsconform.native import deflate

__all__ = [
    "CONTROL_MAX",
    "header_refusals",
    "invalid_close_code",
    "length_refusals",
    "py2_decodes",
]

# RFC 6455 §7.4.1 codes the fuzzer accepts below 3000 (1012-1014 were registered later).
_ALLOWED_BELOW_3000 = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})
CONTROL_MAX = 125  # RFC 6455 §5.5
_NOT_MINIMAL = "invalid data frame length (not using minimal length encoding)"


def header_refusals(
    fin: bool,
    rsv: int,
    opcode: int,
    masked: bool,
    short: int,
    *,
    compressing: bool,
    inside_message: bool,
) -> list[str]:
    """The reasons a frame header is refused (``short``: its 7-bit length field)."""
    found: list[str] = []
    # RFC 6455 §5.2: RSV bits need an extension; RFC 7692 §6: permessage-deflate owns RSV1.
    if rsv and not (compressing and rsv == 4):
        found.append(f"RSV = {rsv} and no extension negotiated")
    # RFC 6455 §5.1: a server must not mask.
    if masked:
        found.append("masked server-to-client frame")
    if opcode > 7:
        # RFC 6455 §5.5: control frames are never fragmented and carry at most 125 bytes.
        if not fin:
            found.append("fragmented control frame")
        if short > CONTROL_MAX:
            found.append("control frame with payload length > 125 octets")
        if opcode not in (8, 9, 10):
            found.append(f"control frame using reserved opcode {opcode}")
        if opcode == 8 and short == 1:
            found.append("received close control frame with payload len 1")
        # RFC 7692 §6.1: control frames are never compressed.
        if compressing and rsv == 4:
            found.append(f"received compressed control frame [{deflate.EXTENSION}]")
        return found
    if opcode not in (0, 1, 2):
        found.append(f"data frame using reserved opcode {opcode}")
    # RFC 6455 §5.4: continuation frames only inside a fragmented message.
    if not inside_message and opcode == 0:
        found.append("received continuation data frame outside fragmented message")
    if inside_message and opcode != 0:
        found.append("received non-continuation data frame while inside fragmented message")
    # RFC 7692 §6.1: RSV1 only on the first frame of a message.
    if compressing and rsv == 4 and inside_message:
        found.append(
            f"received continuation data frame with compress bit set [{deflate.EXTENSION}]"
        )
    return found


def length_refusals(short: int, length: int) -> list[str]:
    """The reasons an extended payload length is refused (RFC 6455 §5.2: minimal encoding)."""
    if short == 126:
        return [_NOT_MINIMAL] if length < 126 else []
    if short == 127:
        found = ["invalid data frame length (>2^63)"] if length > 0x7FFFFFFFFFFFFFFF else []
        return found + ([_NOT_MINIMAL] if length < 65536 else [])
    return []


def invalid_close_code(code: int) -> bool:
    """RFC 6455 §7.4: the codes the fuzzer refuses in a received Close."""
    return code < 1000 or (code <= 2999 and code not in _ALLOWED_BELOW_3000) or code >= 5000


def py2_decodes(raw: bytes) -> bool:
    """Would the fuzzer's Python 2 decode this as UTF-8? (It lets surrogates through.)"""
    try:
        raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True
