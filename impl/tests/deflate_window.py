"""Checks of a deflate stream against an exact window, shared by the tests of both trees
(the reference's compressor in impl/tests, the native engine's in conformance/tests).

zlib resolves a back-reference from its window *or* from the output of the current call, so
only an inflate one output byte per call checks every distance against the window alone.
"""

from __future__ import annotations

import zlib

from wsconform.native import testdata


def inflate_stepwise(stream: bytes, wbits: int) -> bytes:
    """Inflate with zlib one output byte per call, so that every back-reference has to come
    from zlib's window of ``2**-wbits`` bytes: within a single call zlib would also resolve
    references into that call's own output, whatever the window. The input goes in 64-byte
    pieces, so that each call's unconsumed tail (a copy) stays short."""
    decompressor = zlib.decompressobj(wbits)
    out = bytearray()
    for start in range(0, len(stream), 64):
        pending = stream[start : start + 64]
        while True:
            chunk = decompressor.decompress(pending, 1)
            pending = decompressor.unconsumed_tail
            out += chunk
            if not chunk and not pending:
                break
    return bytes(out)


def fuzzer_messages() -> list[bytes]:
    """Four consecutive 8 KiB slices of each of the fuzzer's five test files (12.x/13.x)."""
    messages = []
    for data_set in testdata.DATA_SETS:
        data = testdata.load(data_set.name)
        messages += [data[start : start + 8192] for start in range(0, 4 * 8192, 8192)]
    return messages
