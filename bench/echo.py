"""Echo round trips per second: 16 connections, 32-byte binary messages, one load client.

Each server runs in its own process and ``client.py echo`` (the same client for all) in
another; each repeat measures every server once, in rotating order, for a fixed duration.
Goal (issue 7): at least aiohttp's server, aiming for picows'.
"""

from __future__ import annotations

from measure import Comparison
from processes import server_comparison

CONNECTIONS = 16
SIZE = 32


def run(repeats: int, duration: float) -> list[Comparison]:
    title = f"Echo round trips/s ({CONNECTIONS} connections, {SIZE}-byte messages, loopback)"
    options = ["--connections", str(CONNECTIONS), "--size", str(SIZE)]
    options += ["--duration", str(duration)]
    return [server_comparison(title, "round trips/s", repeats, "echo", *options)]
