"""Serialising one binary frame of 10 B and 1 KiB, frames per second.

Server frames go out unmasked; client frames are masked with a fresh random key each (RFC
6455 §5.3), which every candidate draws from ``os.urandom``. Candidates: ``rfc6455.Frame``
and ``rfc6455.Connection`` (message level: ``send_binary`` then ``data_to_send``),
websockets' ``Frame.serialize`` (the baseline) and wsproto's ``FrameProtocol.send_data``.
aiohttp's writer only writes to a live transport from a coroutine, so it is left out.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from measure import Comparison, compare

from rfc6455.connection import Connection
from rfc6455.frame import Frame, Opcode, Role

SIZES = (10, 1024)
BASELINE = "websockets Frame.serialize"


def candidates(size: int, masked: bool) -> dict[str, Callable[[], object]]:
    payload = os.urandom(size)
    found: dict[str, Callable[[], object]] = {}
    if masked:
        found["rfc6455 Frame"] = lambda: Frame(
            payload, Opcode.BINARY, masking_key=os.urandom(4), final=True
        ).build_frame()
    else:
        found["rfc6455 Frame"] = lambda: Frame(payload, Opcode.BINARY, final=True).build_frame()
    connection = Connection(Role.CLIENT if masked else Role.SERVER)

    def send() -> bytes:
        connection.send_binary(payload)
        data: bytes = connection.data_to_send()
        return data

    found["rfc6455 Connection"] = send
    try:
        from websockets.frames import Frame as WsFrame
        from websockets.frames import Opcode as WsOpcode
    except ImportError:
        pass
    else:
        found[BASELINE] = lambda: WsFrame(WsOpcode.BINARY, payload).serialize(mask=masked)
    try:
        from wsproto.frame_protocol import FrameProtocol
    except ImportError:
        pass
    else:
        protocol = FrameProtocol(client=masked, extensions=[])
        found["wsproto FrameProtocol"] = lambda: protocol.send_data(payload, fin=True)
    return found


def run(repeats: int, budget: float) -> list[Comparison]:
    results = []
    for masked in (False, True):
        for size in SIZES:
            side = "client (masked)" if masked else "server (unmasked)"
            found = candidates(size, masked)
            results.append(
                compare(
                    f"Serialising {size} B {side} frames (frames/s)",
                    found,
                    baseline=BASELINE if BASELINE in found else "rfc6455 Frame",
                    unit="frames/s",
                    repeats=repeats,
                    budget=budget,
                )
            )
    return results
