"""``make bench``: rfc6455 against its peers, measured side by side in one run.

Prints one Markdown table per measurement (median of repeats, spread, paired ratios) and a
goals summary for issue 7; ``--write bench/RESULTS.md`` also stores them with the machine
and versions they came from. Topics: masking, parsing, serialising (in this process), echo,
handshakes, memory (servers and the load client in their own processes, loopback only).
Nothing here is a test: numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import echo
import handshakes
import masking
import memory
import parsing
import serialising
from measure import RESULTS_MARKER, Comparison, Table

from rfc6455 import speedups

TOPICS = ("masking", "parsing", "serialising", "echo", "handshakes", "memory")
PEERS = ("websockets", "aiohttp", "wsproto", "picows")


def _versions() -> str:
    found = []
    for name in PEERS:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def _environment() -> list[str]:
    codec = "compiled accelerator" if speedups.ACCELERATED else "pure Python"
    return [
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- rfc6455 codec: {codec}",
        f"- peers: {_versions()}",
    ]


def _goal(label: str, value: str, target: str, met: bool) -> list[str]:
    return [label, value, target, "yes" if met else "NO"]


def goals(results: dict[str, list[Comparison]]) -> Table:
    """The issue's goals, each with its measured ratio (median, min-max)."""
    table = Table("Goals (issues 7 and 18)", ["goal", "measured", "target", "met"])

    def ratio(comparison: Comparison, name: str, against: str) -> tuple[str, float] | None:
        if name not in comparison.values or against not in comparison.values:
            return None
        middle, low, high = comparison.ratio(name, against)
        return f"{middle:.2f} ({low:.2f}-{high:.2f})", middle

    for comparison in results.get("masking", []):
        size = comparison.title.split(" (")[0].removeprefix("Masking ")
        if size not in ("64 KiB", "1 MiB"):
            continue  # smaller sizes are shown for information; the goal is at these two
        found = ratio(comparison, "rfc6455 (C)", masking.BASELINE)
        if found:
            table.rows.append(
                _goal(f"masking {size} vs plain copy", found[0], ">= 0.8", found[1] >= 0.8)
            )
    for comparison in results.get("parsing", []):
        size = comparison.title.removeprefix("Parsing masked ").split(" client")[0]
        found = ratio(comparison, "rfc6455 FrameParser", parsing.BASELINE)
        if found:
            table.rows.append(
                _goal(
                    f"parsing {size} frames vs websockets' parser", found[0], ">= 2", found[1] >= 2
                )
            )
        # Message level against message level: aiohttp's reader hands out messages, as
        # ``Connection`` does (issue 18).
        aim = ratio(comparison, "rfc6455 Connection", "aiohttp WebSocketReader (Cython)")
        if aim:
            table.rows.append(
                _goal(
                    f"parsing {size} frames into messages vs aiohttp's reader",
                    aim[0],
                    ">= 1",
                    aim[1] >= 1,
                )
            )
    for comparison in results.get("echo", []):
        found = ratio(comparison, "rfc6455", "aiohttp")
        if found:
            table.rows.append(_goal("echo round trips vs aiohttp", found[0], ">= 1", found[1] >= 1))
        for peer in ("picows", "picows (uvloop)"):
            found = ratio(comparison, "rfc6455", peer)
            if found:
                table.rows.append(
                    _goal(f"echo round trips vs {peer}", found[0], ">= 1", found[1] >= 1)
                )
            if "rfc6455" in comparison.cpu_per_op and peer in comparison.cpu_per_op:
                ours = statistics.median(comparison.cpu_per_op["rfc6455"])
                theirs = statistics.median(comparison.cpu_per_op[peer])
                table.rows.append(
                    _goal(
                        f"server CPU per round trip vs {peer}'s (µs)",
                        f"{ours * 1e6:.1f} vs {theirs * 1e6:.1f}",
                        "<=",
                        ours <= theirs,
                    )
                )
    for comparison in results.get("handshakes", []):
        found = ratio(comparison, "rfc6455", "aiohttp")
        if found:
            table.rows.append(_goal("handshakes/s vs aiohttp", found[0], ">= 1.3", found[1] >= 1.3))
    for comparison in results.get("memory", []):
        if "rfc6455" in comparison.values:
            kib = 1024 / comparison.median("rfc6455")
            table.rows.append(_goal("KiB per idle connection", f"{kib:.1f}", "<= 3.4", kib <= 3.4))
    return table


def write_results(path: Path, blocks: list[str]) -> None:
    """Replace the generated part of ``path``, keeping its hand-written introduction."""
    intro = "# Benchmark results\n\nReproduce with `make bench` (or `python bench/run.py`).\n\n"
    if path.exists() and RESULTS_MARKER in path.read_text():
        intro = path.read_text().split(RESULTS_MARKER)[0]
    path.write_text(intro + RESULTS_MARKER + "\n\n" + "\n\n".join(blocks) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("topics", nargs="*", help=f"any of {', '.join(TOPICS)} (default: all)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per codec measurement")
    parser.add_argument("--net-repeats", type=int, default=5, help="repeats per network bench")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per network run")
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per codec timing")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs (a smoke run)")
    parser.add_argument("--write", type=Path, help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)
    topics = args.topics or list(TOPICS)
    unknown = sorted(set(topics) - set(TOPICS))
    if unknown:
        parser.error(f"unknown topic {unknown[0]!r}; choose from {', '.join(TOPICS)}")
    if args.quick:
        args.repeats, args.net_repeats, args.duration, args.budget = 3, 1, 0.5, 0.01

    runners: dict[str, Callable[[], list[Comparison]]] = {
        "masking": lambda: masking.run(args.repeats, args.budget),
        "parsing": lambda: parsing.run(args.repeats, args.budget),
        "serialising": lambda: serialising.run(args.repeats, args.budget),
        "echo": lambda: echo.run(args.net_repeats, args.duration),
        "handshakes": lambda: handshakes.run(args.net_repeats, args.duration),
        "memory": lambda: memory.run(args.net_repeats),
    }
    extra_columns = {
        "parsing": ["aiohttp WebSocketReader (Cython)"],
        "echo": ["picows"],
    }
    results: dict[str, list[Comparison]] = {}
    sections: list[str] = []
    started = time.monotonic()
    for topic in topics:
        print(f"running {topic} ...", file=sys.stderr, flush=True)
        results[topic] = runners[topic]()
        for comparison in results[topic]:
            text = comparison.table(extra_columns.get(topic, [])).render()
            if topic == "memory":
                text += "\n\n" + memory.kib_table(comparison).render()
            print(text + "\n", flush=True)
            sections.append(text)
    summary = goals(results).render()
    print(summary)
    print(f"\n(took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    if args.write:
        write_results(args.write, ["\n".join(_environment()), summary, *sections])
    return 0


if __name__ == "__main__":
    sys.exit(main())
