"""Echo round trips per second: 16 connections, 32-byte binary messages, one load client.

Each server runs in its own process and ``client.py echo`` (the same client for all) in
another; each repeat measures every server once, in rotating order, for a fixed duration.
Goal (issue 7): at least aiohttp's server, aiming for picows'.
"""

from __future__ import annotations

import contextlib

from measure import Comparison
from processes import available_servers, run_client, running

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
    with contextlib.ExitStack() as stack:
        ports = {
            name: stack.enter_context(running(name, cmd)).port for name, cmd in servers.items()
        }
        names = list(servers)
        for repeat in range(repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                result = run_client(
                    "echo",
                    ports[name],
                    "--connections", str(CONNECTIONS),
                    "--size", str(SIZE),
                    "--duration", str(duration),
                )  # fmt: skip
                comparison.values[name].append(result["rate"])
    return [comparison]
