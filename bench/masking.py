"""Masking throughput (RFC 6455 §5.3) against a plain copy of the same buffer.

Goal (issue 7): the compiled masker at 64 KiB and 1 MiB runs at least 0.8 of a plain copy,
i.e. ``bytes(bytearray)``: both allocate a new bytes object and write every byte once.
aiohttp's masker mutates a bytearray in place (no allocation), so it is shown for reference
but is not the same work; picows does not expose its masker.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from measure import Comparison, compare

from rfc6455 import frame, speedups

SIZES = (125, 64 * 1024, 2**20)
BASELINE = "plain copy"


def candidates(size: int) -> dict[str, Callable[[], object]]:
    data = bytearray(os.urandom(size))
    key = os.urandom(4)
    found: dict[str, Callable[[], object]] = {BASELINE: lambda: bytes(data)}
    if speedups.compiled is not None:
        compiled_mask = speedups.compiled.mask
        found["rfc6455 (C)"] = lambda: compiled_mask(data, key)
    python_mask = frame._mask_python
    found["rfc6455 (pure Python)"] = lambda: python_mask(data, key)
    try:
        from websockets.speedups import apply_mask
    except ImportError:
        pass
    else:
        found["websockets (C)"] = lambda: apply_mask(data, key)
    try:
        from aiohttp._websocket.mask import _websocket_mask_cython
    except ImportError:
        pass
    else:
        found["aiohttp (Cython, in place)"] = lambda: _websocket_mask_cython(key, data)
    try:
        from wsproto.frame_protocol import XorMaskerSimple
    except ImportError:
        pass
    else:
        found["wsproto (pure Python)"] = lambda: XorMaskerSimple(key).process(data)
    return found


def run(repeats: int, budget: float) -> list[Comparison]:
    results = []
    for size in SIZES:
        results.append(
            compare(
                f"Masking {_size_name(size)} (MB/s; ratio = throughput / plain copy's)",
                candidates(size),
                baseline=BASELINE,
                unit="MB/s",
                work=size / 1e6,
                repeats=repeats,
                budget=budget,
            )
        )
    return results


def _size_name(size: int) -> str:
    if size >= 2**20:
        return f"{size // 2**20} MiB"
    if size >= 1024:
        return f"{size // 1024} KiB"
    return f"{size} B"
