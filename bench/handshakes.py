"""Handshakes per second: opening handshake (RFC 6455 §4) then closing handshake (§7).

``client.py handshakes`` runs 8 concurrent workers, each connecting, upgrading, exchanging
Close frames and closing TCP, in a loop; the same client drives every server.
Goal (issue 7): at least aiohttp's.
"""

from __future__ import annotations

import contextlib

from measure import Comparison
from processes import available_servers, run_client, running

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
    with contextlib.ExitStack() as stack:
        ports = {
            name: stack.enter_context(running(name, cmd)).port for name, cmd in servers.items()
        }
        names = list(servers)
        for repeat in range(repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                result = run_client(
                    "handshakes",
                    ports[name],
                    "--workers", str(WORKERS),
                    "--duration", str(duration),
                )  # fmt: skip
                comparison.values[name].append(result["rate"])
    return [comparison]
