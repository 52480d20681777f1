"""The native engine's full run of the reference: wall time, testee CPU and engine CPU.

Issue 16: ``wsconform run --engine native`` (the full profile, 517 cases) on the reference in
at most 180 s of wall time on a 2-core machine, the engine's own CPU at most half the
testee's. ``runs`` measures that, sequentially and with ``--jobs``; ``breakdown`` says where
each side's CPU goes on a few cases, so an optimisation starts from a profile.

Invariants:
- ``runs``: each configuration is one ``wsconform run --engine native --agent reference
  --gate strict`` (the venv's entry point, its own fresh reference server per job), the
  configurations alternating repeat after repeat, so their ratio compares runs under the
  same load. The load average (``/proc/loadavg``) is printed before and after each run.
- CPU is read from ``/proc``: every descendant of the run is sampled every
  ``SAMPLE_INTERVAL`` seconds while it lives; the testee's share is the processes running
  the reference server (``-m rfc6455 serve``), the total is what the run's process tree used
  (``RUSAGE_CHILDREN`` before and after: every descendant was waited for), the engine's is
  the rest (the harness and its ``--jobs`` children). The testee is idle after its last case,
  so its samples miss almost nothing; what they miss counts as the engine's.
- A run's time counts only when its verdicts are the reference's (514 OK and 3
  INFORMATIONAL on the full profile) and the strict gate passes; otherwise the row says so
  and the script exits 1. Numbers are printed, never asserted.
- ``breakdown``: one in-process native run of the given cases against a reference server,
  both under cProfile with a CPU clock (``time.process_time``), each function's own time put
  in one bucket (deflate, inflate, masking, socket calls, the event loop's wait, the rest).
  The profiler inflates the "Python" bucket (every profiled call costs a clock read); the
  zlib buckets are C calls it times whole.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import process_cpu
from measure import Table

from wsconform import catalog
from wsconform.engines.native import NativeEngine

WSCONFORM = Path(sys.executable).parent / "wsconform"
SAMPLE_INTERVAL = 0.25
TESTEE_MARK = ("-m", "rfc6455", "serve")
#: (OK, INFORMATIONAL) of a correct run of the reference, per profile.
EXPECTED = {"no-deflate": (298, 3), "full": (514, 3)}
#: The 12.x/13.x cases a breakdown plays by default: the heaviest data sets and shapes.
HEAVY = "12.3.10,12.5.18,13.3.10,13.7.18"


# --- runs: wall and CPU of whole runs ---------------------------------------------------------


def _children(pid: int) -> Iterator[int]:
    """Every live descendant of ``pid`` (one pass over /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            yield child
            todo.append(child)


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of one live process (None once it is gone)."""
    try:
        return process_cpu(pid)
    except OSError:
        return None


def _is_testee(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return False
    return any(tuple(argv[i : i + 3]) == TESTEE_MARK for i in range(len(argv)))


@dataclass
class _Sampler:
    """The testee processes' CPU under ``root``, sampled until ``stop`` is set."""

    root: int
    testee: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for pid in _children(self.root):
                if pid in self.testee or _is_testee(pid):
                    cpu = _cpu_seconds(pid)
                    if cpu is not None:
                        self.testee[pid] = max(cpu, self.testee.get(pid, 0.0))
            self.stop.wait(SAMPLE_INTERVAL)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Measured:
    """One run: wall, CPU split, load, whether its verdicts were right."""

    config: str
    wall: float
    testee: float
    engine: float
    load_before: str
    load_after: str
    problem: str = ""
    job_seconds: list[float] = field(default_factory=list)  # the case time each job spent
    testees: list[float] = field(default_factory=list)  # each testee process's CPU


def measure_run(profile: str, jobs: int, outdir: Path) -> Measured:
    """One ``wsconform run --engine native`` of the reference, timed and sampled."""
    command = [str(WSCONFORM), "run", "--engine", "native", "--agent", "reference", "-q"]
    command += ["--gate", "strict", "--profile", profile, "--outdir", str(outdir)]
    command += ["--jobs", str(jobs)]
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    name = "native" + (f" --jobs {jobs}" if jobs > 1 else "")
    load_before, cpu_before, started = _load(), _children_cpu(), time.monotonic()
    with open(outdir.parent / f"{outdir.name}.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        sampler = _Sampler(process.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        status = process.wait()
    wall = time.monotonic() - started
    sampler.stop.set()
    thread.join()
    total = _children_cpu() - cpu_before
    testee = sum(sampler.testee.values())
    measured = Measured(name, wall, testee, total - testee, load_before, _load())
    measured.problem = _verdict_problem(outdir, profile, status)
    measured.job_seconds = _job_seconds(outdir, jobs)
    measured.testees = sorted(sampler.testee.values())
    return measured


def _job_seconds(outdir: Path, jobs: int) -> list[float]:
    """The summed case durations of each job's slice, cut as the run cut them (the native
    engine's split): how evenly the split shared the work."""
    index = json.loads((outdir / "raw" / "index.json").read_text())["reference"]
    cases = sorted(index, key=catalog.case_sort_key)
    parts = [part for part in NativeEngine().slices(cases, jobs) if part]
    return [sum(index[case]["duration"] for case in part) / 1000 for part in parts]


def _verdict_problem(outdir: Path, profile: str, status: int) -> str:
    """Why the run's verdicts are not the reference's, or ""."""
    if status != 0:
        return f"exit status {status}"
    summary = json.loads((outdir / "summary.json").read_text())
    behaviors = [case.get("behavior") for case in summary["cases"]]
    counts = (behaviors.count("OK"), behaviors.count("INFORMATIONAL"))
    expected = EXPECTED.get(profile)
    if expected is not None and counts != expected:
        return f"OK/INFORMATIONAL {counts[0]}/{counts[1]}, expected {expected[0]}/{expected[1]}"
    return ""


def runs_table(results: list[Measured]) -> Table:
    table = Table(
        "Native engine, full runs of the reference (CPU from /proc)",
        [
            "run",
            "wall s",
            "testee CPU s",
            "engine CPU s",
            "engine/testee",
            "case time per job s",
            "load before/after",
        ],
    )
    for run in results:
        ratio = f"{run.engine / run.testee:.2f}" if run.testee else "-"
        wall = f"{run.wall:.1f}" + (f" ({run.problem})" if run.problem else "")
        table.rows.append(
            [
                run.config,
                wall,
                f"{run.testee:.1f}",
                f"{run.engine:.1f}",
                ratio,
                " + ".join(f"{seconds:.0f}" for seconds in run.job_seconds),
                f"{run.load_before} / {run.load_after}",
            ]
        )
    return table


def runs(args: argparse.Namespace) -> int:
    root = args.outdir or Path(tempfile.mkdtemp(prefix="wsconform-engine-walltime-"))
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for repeat in range(args.repeats):
        order = args.jobs if repeat % 2 == 0 else list(reversed(args.jobs))
        for jobs in order:
            measured = measure_run(args.profile, jobs, root / f"jobs-{jobs}-{repeat + 1}")
            print(
                f"{measured.config}: wall {measured.wall:.1f} s, testee {measured.testee:.1f} s, "
                f"engine {measured.engine:.1f} s, load {measured.load_before} -> "
                f"{measured.load_after}; per testee {measured.testees}, case time per job "
                f"{measured.job_seconds} {measured.problem}",
                flush=True,
            )
            results.append(measured)
    print(runs_table(results).render())
    print(f"runs kept in {root}")
    return 1 if any(run.problem for run in results) else 0


# --- breakdown: where each side's CPU goes -----------------------------------------------------

BUCKETS = ("deflate", "inflate", "masking", "socket calls", "event loop wait", "Python and rest")


def bucket(function: str) -> str:
    """The bucket of one profiled function, by cProfile's name for it."""
    # stdlib zlib's objects are zlib.Compress/Decompress, zlib-ng's zlib_ng._Compress/...;
    # inflate first: "decompressobj" contains "compressobj".
    if any(name in function for name in ("Decompress", "decompressobj")):
        return "inflate"
    if any(name in function for name in ("Compress", "compressobj")):
        return "deflate"
    if any(word in function for word in ("mask", "from_bytes", "to_bytes")):
        return "masking"  # ours, or the big-integer XOR of the engine's
    if "_socket.socket" in function:
        return "socket calls"
    if "select.epoll" in function:
        return "event loop wait"
    return "Python and rest"


def buckets(stats_file: Path) -> dict[str, float]:
    """CPU seconds per bucket of one cProfile dump."""
    stats = pstats.Stats(str(stats_file))
    totals = dict.fromkeys(BUCKETS, 0.0)
    for (_, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        totals[bucket(function)] += own
    return totals


def serve_profiled(out: Path, port: int) -> None:
    """The reference server under cProfile (CPU clock) until SIGTERM; the profile to ``out``."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profile = cProfile.Profile(time.process_time)
    # asyncio's own loop: its selector and socket calls are Python, so the buckets see them.
    sys.argv = ["rfc6455", "serve", "--host", "127.0.0.1", "--port", str(port), "--loop", "asyncio"]
    profile.enable()
    try:
        runpy.run_module("rfc6455", run_name="__main__", alter_sys=True)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        profile.disable()
        profile.dump_stats(str(out))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def breakdown(args: argparse.Namespace) -> int:
    from wsconform import native  # the engine runs in this process, as in `wsconform run`

    root = Path(tempfile.mkdtemp(prefix="wsconform-breakdown-"))
    port = _free_port()
    testee_stats = root / "testee.prof"
    server = subprocess.Popen(
        [sys.executable, __file__, "serve-profiled", str(testee_stats), str(port)],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "serving on ..."
        cases = args.cases.split(",")
        profile = cProfile.Profile(time.process_time)
        started, cpu = time.monotonic(), time.process_time()
        profile.enable()
        native.run(f"ws://127.0.0.1:{port}", "reference", cases, root / "run", seed=1)
        profile.disable()
        wall, engine_cpu = time.monotonic() - started, time.process_time() - cpu
    finally:
        server.terminate()
        server.wait(30)
    engine_stats = root / "engine.prof"
    profile.dump_stats(str(engine_stats))
    sides = {"testee": buckets(testee_stats), "engine": buckets(engine_stats)}
    table = Table(
        f"CPU seconds by bucket, {args.cases} (cProfile, CPU clock)",
        ["bucket", "testee", "engine"],
    )
    for name in BUCKETS:
        table.rows.append([name, f"{sides['testee'][name]:.2f}", f"{sides['engine'][name]:.2f}"])
    table.rows.append(
        ["total", f"{sum(sides['testee'].values()):.2f}", f"{sum(sides['engine'].values()):.2f}"]
    )
    print(table.render())
    print(f"wall {wall:.1f} s, engine CPU {engine_cpu:.1f} s, load {_load()}; profiles in {root}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("runs", help="full runs, sequential and with --jobs")
    run_parser.add_argument("--profile", default="full", choices=sorted(EXPECTED))
    run_parser.add_argument(
        "--jobs", type=int, nargs="+", default=[1, 2], help="the job counts compared"
    )
    run_parser.add_argument("--repeats", type=int, default=1)
    run_parser.add_argument("--outdir", type=Path, help="keep the runs here")
    split = sub.add_parser("breakdown", help="where the CPU goes on a few cases")
    split.add_argument("--cases", default=HEAVY)
    serve = sub.add_parser("serve-profiled", help=argparse.SUPPRESS)
    serve.add_argument("out", type=Path)
    serve.add_argument("port", type=int)
    args = parser.parse_args()
    if args.command == "serve-profiled":
        serve_profiled(args.out, args.port)
        return 0
    return runs(args) if args.command == "runs" else breakdown(args)


if __name__ == "__main__":
    sys.exit(main())
