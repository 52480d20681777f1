"""Incremental, fail-fast UTF-8 validation of text messages (RFC 6455 §8.1).

Invariants:
- Bytes may arrive in any chunking (fragments, or parts of one frame's payload); the
  validator raises ``InvalidPayload`` (1007) as soon as the bytes seen so far cannot begin a
  valid UTF-8 sequence, not at the end of the message.
- The reported offset is the one Python's own decoder reports for the whole message.
- The state carried between chunks is the incomplete sequence the last one ended in (at
  most 3 bytes). ``utf8_check`` is compiled when the accelerator is built; its pure-Python
  twin ``_utf8_check_python`` is the reference, and the one asked why a chunk is invalid.
- ``feed`` hands out the text of the complete characters fed so far, decoded once the
  chunk is known to be valid.

CPython's decoder is fail-fast for every invalid prefix but one: a lone ``ED`` followed by
``A0``-``BF`` (the start of an encoded surrogate) is kept pending until the third byte
arrives. That case is checked here by hand.
"""

from __future__ import annotations

import codecs
from typing import NoReturn

from . import speedups
from .errors import InvalidPayload

__all__ = ["Utf8Validator", "decode_text", "utf8_check"]

_decode = codecs.utf_8_decode


def _pending_after(data: bytes, pending: bytes, final: bool) -> bytes:
    """The incomplete sequence ``pending + data`` ends in; raises ``UnicodeDecodeError``
    (positions counted from the start of ``pending``) where it stops being UTF-8."""
    if type(pending) is not bytes:
        pending = memoryview(pending).tobytes()  # any bytes-like object, as the compiled twin
    if len(pending) > 3:
        raise ValueError("at most 3 bytes of UTF-8 can be pending")
    joined = pending + data if pending else data
    _, consumed = _decode(joined, "strict", final)
    rest = bytes(joined[consumed:])
    # RFC 3629 §4: ED must be followed by 80-9F; A0-BF would encode a surrogate.
    if len(rest) >= 2 and rest[0] == 0xED and rest[1] >= 0xA0:
        raise UnicodeDecodeError(
            "utf-8", bytes(joined), consumed, consumed + 1, "invalid continuation byte"
        )
    return rest


def _utf8_check_python(data: bytes, pending: bytes, final: bool) -> bytes | None:
    """What ``pending + data`` leaves pending (``b""`` at a character boundary), or ``None``
    when it can no longer be UTF-8 (``final``: when it is not)."""
    try:
        return _pending_after(data, pending, final)
    except UnicodeDecodeError:
        return None


#: ``utf8_check(data, pending, final) -> bytes | None``: compiled, or ``_utf8_check_python``.
utf8_check = speedups.choose("utf8_check", _utf8_check_python)


class Utf8Validator:
    """Validates (and decodes) one text message fed in chunks."""

    __slots__ = ("_fed", "_pending")

    def __init__(self) -> None:
        self._pending = b""  # the incomplete sequence the bytes fed so far end in
        self._fed = 0  # bytes fed before the current chunk

    def feed(self, data: bytes, final: bool = False) -> str:
        """Decode ``data``; ``final`` marks the message's last bytes. Raises ``InvalidPayload``."""
        before = self._pending
        pending = utf8_check(data, before, final)
        if pending is None:
            self._refuse(data, final)
        self._pending = pending
        self._fed += len(data)
        joined = before + data if before else data
        if pending:
            joined = joined[: len(joined) - len(pending)]
        return str(joined, "utf-8")  # whole characters, just validated: this cannot fail

    def _refuse(self, data: bytes, final: bool) -> NoReturn:
        """Raise the error for the chunk ``utf8_check`` refused: the reference says where."""
        try:
            _pending_after(data, self._pending, final)
        except UnicodeDecodeError as exc:
            offset = self._fed - len(self._pending) + exc.start
            raise InvalidPayload(
                f"text is not valid UTF-8 at byte {offset} of the message ({exc.reason})"
            ) from None
        raise AssertionError("the compiled UTF-8 validator refused valid text")

    @property
    def offset(self) -> int:
        """How many bytes have been fed so far."""
        return self._fed


def decode_text(data: bytes) -> str:
    """Decode a complete text message, raising ``InvalidPayload`` (1007) if it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(
            f"text is not valid UTF-8 at byte {exc.start} of the message ({exc.reason})"
        ) from None
