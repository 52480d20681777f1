"""Compressed messages that are slices of one data set, joined from pieces compressed once.

Invariants:
- The data set is cut at fixed offsets into ``PIECE``-byte pieces, and each piece is
  compressed alone (a fresh compressor, then a sync flush) the first time a message needs it,
  once per data set, window, level and kind. Its deflate blocks end byte-aligned on an empty
  stored block, so pieces joined in order are a valid deflate stream of the bytes they cover
  (RFC 1951 §3.2.3: a stream is a series of blocks).
- Two kinds of piece: one that refers to nothing before it, and one primed with the window's
  worth of data that precedes it in the (cyclic) data set, whose matches may reach back into
  that data. A message uses the primed kind only for a piece that starts at least a window
  into the message: what it refers to is then the message's own earlier bytes, which the
  receiver has inflated already. No back-reference is longer than the window.
- A message's body is its whole pieces from the cache, with the partial pieces at its two ends
  compressed as it is sent (never primed: priming a compressor costs more than compressing a
  partial piece), joined, less the final 0x00 0x00 0xff 0xff (RFC 7692 §7.2.1). It
  refers to no earlier message, so it is valid with and without context takeover.
- So a message costs at most two pieces of compression, whatever its length (the 12.x/13.x
  cases send about 11 GB cut from five files of 0.2-1 MB), and compresses about as well as one
  compressed whole.
"""

from __future__ import annotations

from wsconform.native.deflate import new_compressor, sync_flushed

__all__ = ["PIECE", "SlicedData"]

#: The piece size: small enough that the two partial pieces cost little, large enough that a
#: piece's own Huffman tables and flush cost little ratio.
PIECE = 8192


class SlicedData:
    """Bodies of messages cut from ``data``, compressed with a ``bits`` window at ``level``."""

    def __init__(self, data: bytes, bits: int, level: int) -> None:
        self._data = data
        self._bits = bits
        self._level = level
        self._window = 1 << bits
        # piece index and primed or not -> its compressed bytes
        self._pieces: dict[tuple[int, bool], bytes] = {}

    def body(self, start: int, end: int) -> bytes:
        """The compressed payload of ``data[start:end]``, or of ``data[start:] + data[:end]``
        when ``end <= start`` (the message wraps around the end of the data)."""
        if end > start:
            parts = self._cover(start, end, 0)
        else:
            size = len(self._data)
            parts = self._cover(start, size, 0) + self._cover(0, end, size - start)
        return b"".join(parts)[:-4]

    def _cover(self, start: int, end: int, into: int) -> list[bytes]:
        """Compressed blocks of ``data[start:end]``, each ending on a sync flush; ``into``:
        how many bytes of the message come before ``start``."""
        if end - start <= 2 * PIECE:
            return [self._compress(start, end)] if end > start else []
        first = -(-start // PIECE)  # the first whole piece
        last = end // PIECE  # one past the last whole piece
        parts = [self._compress(start, first * PIECE)] if start % PIECE else []
        base = into - start  # + an offset in the data = where it is in the message
        window = self._window
        parts += [
            self._piece(index, base + index * PIECE >= window) for index in range(first, last)
        ]
        if end % PIECE:
            parts.append(self._compress(last * PIECE, end))
        return parts

    def _piece(self, index: int, primed: bool) -> bytes:
        key = (index, primed)
        piece = self._pieces.get(key)
        if piece is None:
            start = index * PIECE
            piece = self._pieces[key] = self._compress(start, start + PIECE, primed)
        return piece

    def _compress(self, start: int, end: int, primed: bool = False) -> bytes:
        """``data[start:end]`` alone, sync-flushed (its 4-byte tail kept); ``primed``: with
        the window's worth of data that precedes it."""
        context = b""
        if primed and len(self._data) >= self._window:
            before = self._data[max(0, start - self._window) : start]
            if len(before) < self._window:  # the rest comes from the end (the data is cyclic)
                before = self._data[len(before) - self._window :] + before
            context = before
        return sync_flushed(new_compressor(self._level, self._bits, context), self._data[start:end])
