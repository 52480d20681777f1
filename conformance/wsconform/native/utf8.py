"""Incremental UTF-8 validation that fails on the very byte the fuzzer's validator fails on.

Invariants:
- Exactly the well-formed sequences of Unicode Table 3-7 are accepted: no overlong forms, no
  surrogates (U+D800..U+DFFF), nothing above U+10FFFF. A sequence is rejected at its first
  byte that cannot continue any well-formed sequence (``ED A0`` is rejected at ``A0``; Python's
  own incremental decoder would wait), because the fuzzer fails a connection chunk by chunk.
- Once rejected, a validator stays rejected until ``reset``; an empty chunk after a rejection
  counts as valid but not ending on a code point, as the fuzzer's does.
"""

from __future__ import annotations

__all__ = ["Utf8Validator"]

_ANY = (0x80, 0xBF)
# Lead byte -> (continuation bytes needed, allowed range of the first continuation byte).
_LEADS: dict[int, tuple[int, tuple[int, int]]] = {
    **{b: (1, _ANY) for b in range(0xC2, 0xE0)},
    0xE0: (2, (0xA0, 0xBF)),
    **{b: (2, _ANY) for b in range(0xE1, 0xED)},
    0xED: (2, (0x80, 0x9F)),
    0xEE: (2, _ANY),
    0xEF: (2, _ANY),
    0xF0: (3, (0x90, 0xBF)),
    0xF1: (3, _ANY),
    0xF2: (3, _ANY),
    0xF3: (3, _ANY),
    0xF4: (3, (0x80, 0x8F)),
}


class Utf8Validator:
    """Feed chunks with ``validate``; it answers (valid so far, ends on a code point)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start a new message."""
        self._needed = 0
        self._range = _ANY
        self._rejected = False

    def _step(self, byte: int) -> bool:
        if self._needed:
            low, high = self._range
            if not low <= byte <= high:
                return False
            self._needed -= 1
            self._range = _ANY
            return True
        if byte < 0x80:
            return True
        lead = _LEADS.get(byte)
        if lead is None:
            return False
        self._needed, self._range = lead
        return True

    def validate(self, chunk: bytes) -> tuple[bool, bool]:
        """Consume ``chunk``: is everything so far valid, and does it end on a code point?"""
        if self._rejected:
            return (not chunk), False
        start = 0
        while self._needed and start < len(chunk):
            if not self._step(chunk[start]):
                self._rejected = True
                return False, False
            start += 1
        body = chunk[start:]
        # Fast path: a strict decode accepts exactly the well-formed, complete sequences, so
        # everything before the last (possibly incomplete) sequence is decided at C speed.
        tail = max(len(body) - 3, 0)
        while tail and 0x80 <= body[tail] <= 0xBF:
            tail -= 1
        try:
            body[:tail].decode("utf-8")
        except UnicodeDecodeError:
            self._rejected = True
            return False, False
        for byte in body[tail:]:
            if not self._step(byte):
                self._rejected = True
                return False, False
        return True, self._needed == 0
