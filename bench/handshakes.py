"""Handshakes per second: opening handshake (RFC 6455 §4) then closing handshake (§7).

``client.py handshakes`` runs 8 concurrent workers, each connecting, upgrading, exchanging
Close frames and closing TCP, in a loop; the same client drives every server.
Goal (issue 7): at least aiohttp's.
"""

from __future__ import annotations

from measure import Comparison
from processes import server_comparison

WORKERS = 8


def run(repeats: int, duration: float) -> list[Comparison]:
    title = f"Handshakes/s (open + close, {WORKERS} concurrent clients, loopback)"
    options = ["--workers", str(WORKERS), "--duration", str(duration)]
    return [server_comparison(title, "handshakes/s", repeats, "handshakes", *options)]
