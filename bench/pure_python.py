"""The pure-Python path (``RFC6455_NO_SPEEDUPS=1``) against an earlier commit's, side by side.

``python bench/pure_python.py --baseline REV [--repeats 9] [--write bench/RESULTS.md]``
checks ``REV`` out into a temporary git worktree and measures both trees in the same session
(issue 18: the compiled paths must not make the pure-Python one slower). Each repeat
measures each tree once, in rotating order, each in fresh processes with its ``impl`` first
on ``PYTHONPATH`` and the accelerator off:

- parsing: masked client frames (10 B and 1 KiB, binary and text, in reads of up to 64 KiB)
  into messages through ``Connection.receive_data`` and ``events()``, the API both trees
  have, in frames/s. Both trees are timed in the same process (the baseline's package
  loaded under another name), alternating, the best of five passes each: one process of
  the same code runs up to twice as fast as another here, so rates from separate
  processes do not pair;
- echo: ``python -m rfc6455 serve`` on asyncio's own loop (a tree's only loop before
  uvloop was added; a tree that has ``--loop`` is given ``--loop asyncio``) under
  ``client.py echo`` (16 connections, 32 B), with the server's CPU per round trip from
  ``/proc``.

Ratios are this tree's over the baseline's, paired by repeat (by process, for parsing).
``--write`` puts the tables between this bench's markers in the file, above the part
``bench/run.py --write`` owns.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from echo import CONNECTIONS, SIZE
from measure import Comparison, write_section
from processes import BENCH, PYTHON, fresh_runs

from rfc6455.speedups import DISABLE_ENV

ROOT = BENCH.parent
#: Timed passes of each tree per row in one process, alternating (the best is kept).
PASSES = 5
#: (payload size, kind) of the parsing rows, as ``parsing.py`` has them.
ROWS = ((10, "binary"), (10, "text"), (1024, "binary"), (1024, "text"))
BEGIN = "<!-- pure-python: begin (written by bench/pure_python.py --write) -->"
END = "<!-- pure-python: end -->"


def tree_env(tree: Path) -> dict[str, str]:
    """The environment a measurement of ``tree`` runs in: its ``impl`` first, pure Python."""
    path = os.pathsep.join([str(tree / "impl"), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path.rstrip(os.pathsep), **{DISABLE_ENV: "1"})


def parse_rates(baseline: Path) -> dict[str, dict[str, float]]:
    """Frames/s per row and tree, measured in one fresh process running both packages."""
    result = subprocess.run(
        [PYTHON, str(BENCH / "pure_python.py"), "--child-parse", str(baseline)],
        env=tree_env(ROOT),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"parsing against {baseline} failed: {result.stderr.strip()[-2000:]}")
    rates: dict[str, dict[str, float]] = json.loads(result.stdout.strip().splitlines()[-1])
    return rates


def _package(name: str, directory: Path) -> ModuleType:
    """The package in ``directory`` imported as ``name`` (its imports are relative)."""
    spec = importlib.util.spec_from_file_location(
        name, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"no package in {directory}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def child_parse(baseline: Path) -> None:
    """In the child: this tree's package and the baseline's, both pure Python, timed
    alternately on the same frames; print the best rate of each as JSON."""
    from parsing import chunked, masked_frames

    import rfc6455

    trees = {"this tree": "rfc6455", "baseline": "rfc6455_baseline"}
    _package(trees["baseline"], baseline / "impl" / "rfc6455")
    for name, package in trees.items():
        where = Path(sys.modules[package].__file__ or "").resolve()
        accelerated = importlib.import_module(f"{package}.speedups").ACCELERATED
        expected = (ROOT if name == "this tree" else baseline).resolve()
        if not where.is_relative_to(expected) or accelerated:
            raise SystemExit(f"{name}: measuring {where} (accelerated: {accelerated})")
    assert Path(rfc6455.__file__ or "").resolve().is_relative_to(ROOT.resolve())
    rates: dict[str, dict[str, float]] = {}
    for size, kind in ROWS:
        count = 2000 if size < 100 else 400
        chunks = chunked(masked_frames(size, count, kind))
        parsers = {name: _parser(package, chunks) for name, package in trees.items()}
        best = dict.fromkeys(trees, float("inf"))
        for turn in range(PASSES):
            order = list(trees) if turn % 2 == 0 else list(reversed(trees))
            for name in order:
                best[name] = min(best[name], _timed(parsers[name], count))
        rates[f"{size} B {kind}"] = {name: count / seconds for name, seconds in best.items()}
    print(json.dumps(rates))


def _parser(package: str, chunks: list[bytes]) -> Callable[[], int]:
    """One pass of ``package``'s server ``Connection`` over ``chunks``: messages seen."""
    connection_module = importlib.import_module(f"{package}.connection")
    role = importlib.import_module(f"{package}.frame").Role.SERVER

    def parse() -> int:
        connection = connection_module.Connection(role, max_message_size=None)
        seen = 0
        for chunk in chunks:
            connection.receive_data(chunk)
            for _ in connection.events():
                seen += 1
        return seen

    return parse


def _timed(parse: Callable[[], int], count: int) -> float:
    """Seconds per pass, over passes adding up to at least 0.1 s (each seeing ``count``)."""
    passes, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < 0.1 or passes == 0:
        if parse() != count:
            raise SystemExit("a parser lost messages")
        passes += 1
    return elapsed / passes


def serve_command(tree: Path) -> list[str]:
    command = [PYTHON, "-m", "rfc6455", "serve", "--port", "0", "--no-deflate"]
    if "--loop" in (tree / "impl" / "rfc6455" / "__main__.py").read_text():
        command += ["--loop", "asyncio"]
    return command


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision`` checked out into a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="rfc6455-baseline-") as parent:
        path = Path(parent) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", "-q", str(path), revision], check=True)
        try:
            yield path
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(path)], check=False)


def measure(baseline: Path, repeats: int, duration: float) -> list[Comparison]:
    trees = {"this tree": ROOT, "baseline": baseline}
    parsing = {
        row: Comparison(
            f"Pure Python: parsing masked {row} frames into messages",
            "frames/s",
            "baseline",
            {name: [] for name in trees},
        )
        for row in (f"{size} B {kind}" for size, kind in ROWS)
    }
    for _ in range(repeats):
        for row, rates in parse_rates(baseline).items():
            for name, rate in rates.items():
                parsing[row].values[name].append(rate)
    echo = Comparison(
        f"Pure Python: echo round trips/s ({CONNECTIONS} connections, {SIZE}-byte messages, "
        "asyncio's loop)",
        "round trips/s",
        "baseline",
    )
    options = ["--connections", str(CONNECTIONS), "--size", str(SIZE), "--duration", str(duration)]
    servers = {name: serve_command(tree) for name, tree in trees.items()}
    envs = {name: tree_env(tree) for name, tree in trees.items()}
    echo.values, echo.cpu_per_op = fresh_runs(servers, repeats, "echo", *options, envs=envs)
    return [*parsing.values(), echo]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="the earlier commit (any git revision)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per echo run")
    parser.add_argument("--write", type=Path, help="also write the tables into this file")
    parser.add_argument("--child-parse", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_parse is not None:
        child_parse(args.child_parse)
        return 0
    if not args.baseline:
        parser.error("--baseline is required")
    started, load = datetime.datetime.now(datetime.UTC), os.getloadavg()[0]
    with worktree(args.baseline) as baseline:
        comparisons = measure(baseline, args.repeats, args.duration)
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    intro = (
        f"Pure Python (`{DISABLE_ENV}=1`), this tree ({head}) against {args.baseline}: "
        f"`bench/pure_python.py --baseline {args.baseline} --repeats {args.repeats}`, "
        f"{started:%Y-%m-%d %H:%M} UTC, load {load:.2f} at the start, "
        f"end {os.getloadavg()[0]:.2f}."
    )
    tables = [comparison.table([]).render() for comparison in comparisons]
    text = "\n\n".join([intro, *tables])
    print(text)
    if args.write:
        write_section(
            args.write, BEGIN, END, "## The pure-Python path against a baseline\n\n" + text
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
