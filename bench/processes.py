"""Servers under test and the load client, each in its own process, over loopback only.

Invariants:
- Every server is an echo server started from a command that prints ``serving on
  ws://HOST:PORT`` once it listens; ``--port 0`` lets the OS pick a free port.
- Every process started here is stopped here (SIGTERM, then SIGKILL after a grace period),
  by its own pid, even when a bench fails half-way.
- Every wait is bounded: a server that does not come up, or a client that hangs, raises.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measure import Comparison

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
START_TIMEOUT = 20.0

#: The servers compared by the network benches: ours first, then the peers.
SERVERS: dict[str, list[str]] = {
    # As `python -m rfc6455 serve` runs by default: on uvloop where it is installed.
    "rfc6455": [PYTHON, "-m", "rfc6455", "serve", "--port", "0"],
    "rfc6455 (asyncio)": [PYTHON, "-m", "rfc6455", "serve", "--port", "0", "--loop", "asyncio"],
    # The peers as their documentation writes an echo server: on asyncio's own loop.
    "aiohttp": [PYTHON, str(BENCH / "peers.py"), "aiohttp", "--port", "0"],
    "websockets": [PYTHON, str(BENCH / "peers.py"), "websockets", "--port", "0"],
    "picows": [PYTHON, str(BENCH / "peers.py"), "picows", "--port", "0"],
    # picows' own benchmarks run it on uvloop: the fastest way it runs.
    "picows (uvloop)": [PYTHON, str(BENCH / "peers.py"), "picows", "--port", "0", "--uvloop"],
}
#: What each server needs to import beyond the standard library.
_NEEDS = {
    "rfc6455 (asyncio)": ("rfc6455",),
    "picows (uvloop)": ("picows", "uvloop"),
}


def available_servers() -> dict[str, list[str]]:
    """The servers whose libraries import here (rfc6455 always does)."""
    found = {}
    for name, command in SERVERS.items():
        needs = _NEEDS.get(name, (name,))
        if needs == ("rfc6455",) or all(_importable(module) for module in needs):
            found[name] = command
    return found


def _importable(module: str) -> bool:
    result = subprocess.run(
        [PYTHON, "-c", f"import {module}"], capture_output=True, timeout=60, check=False
    )
    return result.returncode == 0


@dataclass
class RunningServer:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        """Resident set size in bytes, from ``/proc`` (Linux)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for {self.name} (pid {self.pid})")


@contextlib.contextmanager
def running(
    name: str, command: list[str], env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """Start a server (in ``env``, else this process's environment), wait until it
    listens, and stop it on exit."""
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        port = _wait_listening(name, process)
        yield RunningServer(name, process, port)
    finally:
        stop(process)


def _wait_listening(name: str, process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    buffered = b""
    while b"\n" not in buffered or not _listening_port(buffered):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"{name} server did not listen within {START_TIMEOUT:.0f} s")
        chunk = _read_some(process.stdout.fileno(), remaining)
        if chunk == b"" and process.poll() is not None:
            raise RuntimeError(f"{name} server exited with {process.returncode}")
        buffered += chunk
    port = _listening_port(buffered)
    assert port is not None
    return port


def _listening_port(output: bytes) -> int | None:
    for line in output.decode(errors="replace").splitlines():
        if line.startswith("serving on ws://"):
            return int(line.rsplit(":", 1)[1].split("/")[0])
    return None


def _read_some(fd: int, timeout: float) -> bytes:
    """What is readable on ``fd`` within ``timeout`` seconds (``b""`` at EOF or timeout)."""
    ready, _, _ = select.select([fd], [], [], min(timeout, 0.5))
    return os.read(fd, 65536) if ready else b""


def stop(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)


def run_client(mode: str, port: int, *options: str, timeout: float = 120.0) -> dict[str, Any]:
    """Run ``client.py`` once and return the JSON line it prints."""
    result = subprocess.run(
        [PYTHON, str(BENCH / "client.py"), mode, "--port", str(port), *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"client {mode} failed: {result.stderr.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def fresh_runs(
    servers: dict[str, list[str]],
    repeats: int,
    mode: str,
    *options: str,
    warmup_seconds: float = 1.0,
    envs: dict[str, dict[str, str]] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """``client.py MODE`` rates, and the server's CPU seconds per operation (from ``/proc``,
    over the same window): every repeat starts each server afresh (in its ``envs`` entry,
    if any), in rotating order.

    One server process can run 10-20% faster or slower than another of the same code for
    its whole life (measured on this machine: memory layout, CPU placement), and the first
    load after start is slower still; so each measurement gets its own process and a
    short warm-up run first, and the medians are taken over processes, not within one.
    """
    rates: dict[str, list[float]] = {name: [] for name in servers}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    names = list(servers)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            with running(name, servers[name], (envs or {}).get(name)) as server:
                run_client(mode, server.port, *options, "--duration", str(warmup_seconds))
                found = run_client(mode, server.port, *options, "--server-pid", str(server.pid))
                rates[name].append(found["rate"])
                operations = found["rate"] * found["seconds"]
                cpu[name].append(found["server_cpu"] / operations if operations else 0.0)
    return rates, cpu


class IdleClient:
    """``client.py idle``: opens connections stage by stage and holds them."""

    def __init__(self, port: int, stages: list[int]) -> None:
        stage_list = ",".join(str(stage) for stage in stages)
        self.process = subprocess.Popen(
            [PYTHON, str(BENCH / "client.py"), "idle", "--port", str(port), "--stages", stage_list],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._output = b""

    def wait_stage(self, timeout: float = 60.0) -> int:
        """Block until the next stage is open; the number of open connections."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError("idle client did not open its connections in time")
            chunk = _read_some(self.process.stdout.fileno(), remaining)
            if chunk == b"" and self.process.poll() is not None:
                error = self.process.stderr.read() if self.process.stderr else b""
                raise RuntimeError(f"idle client exited: {error.decode()[-2000:]}")
            self._output += chunk
        line, self._output = self._output.split(b"\n", 1)
        opened: int = json.loads(line)["open"]
        return opened

    def next_stage(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            stop(self.process)


def server_comparison(title: str, unit: str, repeats: int, mode: str, *options: str) -> Comparison:
    """``fresh_runs`` of every available server as one comparison, against aiohttp's (the
    issue's baseline for the network goals) when it is installed, else against ours."""
    servers = available_servers()
    baseline = "aiohttp" if "aiohttp" in servers else "rfc6455"
    comparison = Comparison(title, unit, baseline, {name: [] for name in servers})
    comparison.values, comparison.cpu_per_op = fresh_runs(servers, repeats, mode, *options)
    return comparison
