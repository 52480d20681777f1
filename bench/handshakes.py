"""Handshakes per second: opening handshake (RFC 6455 §4) then closing handshake (§7).

``client.py handshakes`` runs 8 concurrent workers, each connecting, upgrading, exchanging
Close frames and closing TCP, in a loop; the same client drives every server.
Goal (issue 7): at least aiohttp's.
"""

from __future__ import annotations

from measure import Comparison
from processes import available_servers, fresh_runs

WORKERS = 8


def run(repeats: int, duration: float) -> list[Comparison]:
    servers = available_servers()
    baseline = "aiohttp" if "aiohttp" in servers else "rfc6455"
    comparison = Comparison(
        f"Handshakes/s (open + close, {WORKERS} concurrent clients, loopback)",
        "handshakes/s",
        baseline,
        {name: [] for name in servers},
    )
    comparison.values = fresh_runs(
        servers, repeats, "handshakes", "--workers", str(WORKERS), "--duration", str(duration)
    )
    return [comparison]
