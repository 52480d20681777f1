"""Echo round trips per second: 16 connections, 32-byte binary messages, one load client.

Each server runs in its own process and ``client.py echo`` (the same client for all) in
another; each repeat measures every server once, in rotating order, for a fixed duration.
Goal (issue 7): at least aiohttp's server, aiming for picows'.
"""

from __future__ import annotations

from measure import Comparison
from processes import available_servers, fresh_runs

CONNECTIONS = 16
SIZE = 32


def run(repeats: int, duration: float) -> list[Comparison]:
    servers = available_servers()
    baseline = "aiohttp" if "aiohttp" in servers else "rfc6455"
    comparison = Comparison(
        f"Echo round trips/s ({CONNECTIONS} connections, {SIZE}-byte messages, loopback)",
        "round trips/s",
        baseline,
        {name: [] for name in servers},
    )
    comparison.values = fresh_runs(
        servers,
        repeats,
        "echo",
        "--connections", str(CONNECTIONS),
        "--size", str(SIZE),
        "--duration", str(duration),
    )  # fmt: skip
    return [comparison]
