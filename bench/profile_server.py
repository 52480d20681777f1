"""Profile rfc6455's echo server in this process while the bench client loads it.

``python bench/profile_server.py cpu``: cProfile over an echo run (16 connections, 32-byte
messages), the top functions by own time; ``--load handshakes`` profiles opening and closing
handshakes (8 concurrent clients) instead. ``python bench/profile_server.py memory``:
tracemalloc over 1,000 idle connections, the allocation sites that grew, per connection.
Both run the server on the loop ``rfc6455 serve`` picks (uvloop where installed; ``--loop
asyncio`` for asyncio's own).
These are the profiles behind the server findings in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import subprocess
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import BENCH, PYTHON, IdleClient

from rfc6455.__main__ import echo_app
from rfc6455.server import LOOPS, Server, loop_factory


async def _with_server(body: str, options: argparse.Namespace) -> str:
    server = Server(echo_app(), "127.0.0.1", 0)
    await server.start()
    try:
        if body == "cpu":
            return await _cpu(server.port, options)
        return await _memory(server.port, options)
    finally:
        await server.close()


async def _cpu(port: int, options: argparse.Namespace) -> str:
    profile = cProfile.Profile()
    command = [PYTHON, str(BENCH / "client.py"), options.load, "--port", str(port)]
    command += ["--duration", str(options.duration), "--warmup", "0.2"]
    client = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    profile.enable()
    stdout, _ = await asyncio.wait_for(client.communicate(), options.duration + 60)
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(options.top)
    return f"client: {stdout.decode().strip()}\n{out.getvalue()}"


async def _memory(port: int, options: argparse.Namespace) -> str:
    loop = asyncio.get_running_loop()
    client = IdleClient(port, [10, 10 + options.connections])
    try:
        await loop.run_in_executor(None, client.wait_stage)
        await asyncio.sleep(0.5)
        tracemalloc.start(options.frames)
        before = tracemalloc.take_snapshot()
        client.next_stage()
        await loop.run_in_executor(None, client.wait_stage)
        await asyncio.sleep(0.5)
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
    finally:
        client.close()
    key = "traceback" if options.frames > 1 else "lineno"
    stats = after.compare_to(before, key)
    total = sum(stat.size_diff for stat in stats)
    lines = [f"traced growth: {total / options.connections:.0f} B per connection"]
    for stat in stats[: options.top]:
        where = "\n    ".join(stat.traceback.format()[-2 * options.frames :])
        per = stat.size_diff / options.connections
        lines.append(f"{per:8.0f} B/conn {stat.count_diff:+7d} blocks  {where}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["cpu", "memory"])
    parser.add_argument("--load", choices=["echo", "handshakes"], default="echo", help="(cpu)")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--frames", type=int, default=1, help="traceback depth (memory)")
    parser.add_argument("--loop", choices=LOOPS, default="auto", help="as `rfc6455 serve`")
    options = parser.parse_args()
    with asyncio.Runner(loop_factory=loop_factory(options.loop)) as runner:
        print(runner.run(_with_server(options.what, options)))


if __name__ == "__main__":
    main()
