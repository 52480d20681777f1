"""Memory per idle connection: server RSS growth over 1,000 idle WebSocket connections.

A fresh server per measurement; ``client.py idle`` first opens 10 connections (so lazy
imports and first-use caches are paid before the baseline), the server's RSS is read, then
1,000 more are opened and held; the growth divided by 1,000 is the cost of one connection.
Lower is better, so the ratio columns are the peer's bytes over ours' inverse: a ratio above
1 means the row uses less memory than the baseline. Goal (issue 7): at most 8 KiB.
"""

from __future__ import annotations

import time

from measure import Comparison, Table
from processes import IdleClient, available_servers, running

WARM = 10
IDLE = 1000
SETTLE = 0.5  # seconds for the server to finish accepting before RSS is read


def per_connection(name: str, command: list[str]) -> float:
    """Bytes of server RSS per idle connection."""
    with running(name, command) as server:
        client = IdleClient(server.port, [WARM, WARM + IDLE])
        try:
            client.wait_stage()
            time.sleep(SETTLE)
            before = server.rss()
            client.next_stage()
            client.wait_stage()
            time.sleep(SETTLE)
            after = server.rss()
        finally:
            client.close()
    return (after - before) / IDLE


def run(repeats: int) -> list[Comparison]:
    servers = available_servers()
    baseline = "aiohttp" if "aiohttp" in servers else "rfc6455"
    # Stored as connections per MiB so that, as in every other table, higher is better.
    comparison = Comparison(
        f"Idle connections per MiB of server RSS ({IDLE} idle connections)",
        "connections/MiB",
        baseline,
        {name: [] for name in servers},
    )
    names = list(servers)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            cost = per_connection(name, servers[name])
            comparison.values[name].append(2**20 / max(cost, 1.0))
    return [comparison]


def kib_table(comparison: Comparison) -> Table:
    """The same numbers as KiB per connection (median and range), the unit of the goal."""
    table = Table(
        f"Server RSS per idle connection ({IDLE} idle connections)",
        ["server", "median KiB", "range KiB"],
    )
    for name, values in comparison.values.items():
        costs = sorted(1024 / value for value in values)  # KiB per connection
        middle = (
            costs[len(costs) // 2]
            if len(costs) % 2
            else sum(costs[len(costs) // 2 - 1 : len(costs) // 2 + 1]) / 2
        )
        table.rows.append([name, f"{middle:.1f}", f"{costs[0]:.1f}-{costs[-1]:.1f}"])
    return table
