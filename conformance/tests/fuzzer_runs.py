"""Real fuzzer runs shared by test_results, test_gate, test_render and test_report_browser.

wstest (the console script of the local backend's provisioned testsuite, run as a user runs it)
against websockets echo servers on loopback. ``real_run`` makes each named run once per test
session; ``native_run`` likewise runs the native engine against the reference server.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from wsconform import testee
from wsconform.backends import LocalBackend
from wsconform.native import engine


@contextmanager
def echo_server(compression: str | None) -> Iterator[int]:
    """A websockets echo server on a free loopback port, in a thread; yields the port."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []
    started = threading.Event()
    stop = asyncio.Event()

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async def main() -> None:
        async with serve(
            echo, "127.0.0.1", 0, compression=compression, max_size=2**25, ping_interval=None
        ) as server:
            ready.append(next(iter(server.sockets)).getsockname()[1])
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30), "echo server did not start"
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# name -> (compression of the echo server, [(agent, reachable)], cases, exclude)
RUNS: dict[str, tuple[str | None, list[tuple[str, bool]], list[str], list[str]]] = {
    # "2.1*" and "7.1*" exercise wstest's start-anchored patterns (2.1, 2.10, 2.11; 7.1.x and
    # 7.13.x); the agent has characters the fuzzer removes from report file names.
    "websockets": (
        "deflate",
        [("ws echo/1.0 (deflate)", True)],
        ["1.1.1", "2.1*", "3.2", "7.1*", "12.1.1"],
        ["2.10"],
    ),
    # No permessage-deflate: 12.x/13.x are UNIMPLEMENTED. Two agents in one index.json.
    "plain": (None, [("plain-a", True), ("plain-b", True)], ["1.1.1", "12.1.1", "13.1.1"], []),
    # Two agents with one 9.x case, for a comparison matrix with a speed table.
    "speed": (None, [("speed-a", True), ("speed-b", True)], ["9.1.1", "12.1.1"], []),
    # Nothing listens: the fuzzer writes an index without any result.
    "dead": (None, [("nobody", False)], ["1.1.1"], []),
}
_MADE: dict[str, Path] = {}


def real_run(factory: pytest.TempPathFactory, name: str, fuzzer: LocalBackend) -> Path:
    """The fuzzer's output directory for run ``name`` (made on first use in the session)."""
    if name in _MADE:
        return _MADE[name]
    assert fuzzer.venv is not None
    wstest = fuzzer.venv / "bin" / "wstest"
    compression, agents, cases, exclude = RUNS[name]
    workdir = factory.mktemp(f"run-{name}")
    outdir = workdir / "out"
    with echo_server(compression) as port:
        spec = {
            "outdir": str(outdir),
            "servers": [
                {"agent": agent, "url": f"ws://127.0.0.1:{port if up else unused_port()}"}
                for agent, up in agents
            ],
            "cases": cases,
            "exclude-cases": exclude,
        }
        (workdir / "spec.json").write_text(json.dumps(spec))
        proc = subprocess.run(
            [str(wstest), "-m", "fuzzingclient", "-s", "spec.json"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert (outdir / "index.json").exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    _MADE[name] = outdir
    return outdir


# name -> the cases the native engine runs against the reference server: a fragmented ping
# (5.1), a ping answered by a pong (2.3), ten pings in chopped writes (2.11), a chopped
# invalid UTF-8 text (6.4.1), a close racing a 256 KiB echo (7.1.6, INFORMATIONAL).
NATIVE_RUNS: dict[str, list[str]] = {
    "reference": ["1.1.1", "2.3", "2.11", "5.1", "6.4.1", "7.1.6"],
}
NATIVE_SEED = 6455  # recorded in every report; fixes the masking keys


def native_run(factory: pytest.TempPathFactory, name: str) -> Path:
    """The native engine's output directory for run ``name`` (made on first use)."""
    key = f"native:{name}"
    if key in _MADE:
        return _MADE[key]
    workdir = factory.mktemp(f"native-{name}")
    with testee.start(testee.reference_command(), workdir / "logs") as server:
        server.wait_ready()
        engine.run(server.url, name, NATIVE_RUNS[name], workdir / "raw", seed=NATIVE_SEED)
    _MADE[key] = workdir / "raw"
    return _MADE[key]
