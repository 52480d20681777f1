"""The two engines side by side: wall time and CPU of Autobahn and native runs of the reference.

Issue 15 wants the native engine's no-deflate run of the reference in at most half the wall
time of Autobahn's, with timers as long as Autobahn's; issue 16 wants the full profile's
ratios to Autobahn sequential and to Autobahn ``--jobs 2``, with testee and engine CPU. Each
run is ``wsconform run --agent reference --gate strict`` (the venv's entry point), which
starts its own fresh reference server; configurations alternate, their order rotating from
one repeat to the next, so every ratio compares runs made under the same machine load.

Invariants:
- A run's CPU is its process tree's: the total is what the bench's reaped children used
  (``RUSAGE_CHILDREN`` before and after, which includes every descendant its parent waited
  for: the harness, Autobahn's Python 2 fuzzer, ``--jobs`` child runs, the testees). The
  testee's share is read from ``/proc/PID/stat`` of each descendant running the reference
  server (its command line, `testee.reference_command`), sampled every ``SAMPLE_INTERVAL``
  seconds while it lives; the engine's is the rest. The testee is idle after the last case,
  so the samples miss almost nothing of it.
- A run's time is reported only when its verdicts are right (the profile's OK and
  INFORMATIONAL counts, the strict gate's exit 0); otherwise the row says what was wrong and
  the script exits 1. A configuration the CLI refuses (exit 2, e.g. ``--jobs`` on an engine
  that has none) is reported as not available.
- Numbers are printed, never asserted; ``--write FILE`` replaces this bench's section of
  ``bench/RESULTS.md`` (between its markers, above the part ``bench/run.py --write`` owns).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_waits
from measure import Table, write_section

from wsconform import backends, testee

WSCONFORM = Path(sys.executable).parent / "wsconform"
SAMPLE_INTERVAL = 0.5
TICKS = os.sysconf("SC_CLK_TCK")

#: (OK, INFORMATIONAL) of a correct run of the reference, per profile.
EXPECTED = {"no-deflate": (298, 3), "full": (514, 3)}

BEGIN = "<!-- engines: begin (written by bench/engines_side_by_side.py --write) -->"
END = "<!-- engines: end -->"
#: Each profile has its own section: a full-profile run leaves the no-deflate table alone.
MARKERS = {
    "no-deflate": (BEGIN, END),
    "full": (
        "<!-- engines full: begin (written by bench/engines_side_by_side.py --profile full "
        "--write) -->",
        "<!-- engines full: end -->",
    ),
}
TITLES = {
    "no-deflate": "## Engines side by side (issue 15: no-deflate)",
    "full": "## Engines side by side, the full profile (issue 16)",
}
HEADING = """Wall time and CPU of `wsconform run --agent reference` with each engine, alternating
in one session, each run against its own fresh reference server (`bench/engines_side_by_side.py`;
reproduce with `make bench-engines`, or `--profile full`). Engine CPU is the harness plus
Autobahn's Python 2 fuzzer (or the native engine in the harness's process), testee CPU the
reference server's, both from `/proc`. A run counts only when its verdicts are the
reference's and the strict gate passes."""


@dataclass(frozen=True)
class Config:
    """One way of running the selection: an engine and a job count."""

    engine: str
    jobs: int

    @property
    def name(self) -> str:
        return self.engine + (f" --jobs {self.jobs}" if self.jobs > 1 else "")

    def arguments(self) -> list[str]:
        # The local backend keeps Autobahn's fuzzer in our process tree (a container's CPU
        # would not be counted).
        backend = ["--backend", "local"] if self.engine == "autobahn" else []
        return ["--engine", self.engine, *backend, "--jobs", str(self.jobs)]


CONFIGS = {
    "autobahn": Config("autobahn", 1),
    "autobahn-j2": Config("autobahn", 2),
    "native": Config("native", 1),
    "native-j2": Config("native", 2),
}
BASELINE = CONFIGS["autobahn"]


@dataclass
class Run:
    """One timed run and what became of it."""

    config: Config
    repeat: int
    outdir: Path
    wall: float = 0.0
    engine_cpu: float = 0.0
    testee_cpu: float = 0.0
    problem: str | None = None  # why no time is reported for this run
    unavailable: bool = False  # the CLI refused the configuration


# --- CPU of a process tree --------------------------------------------------------------------


def _stat(pid: str) -> tuple[int, int, float] | None:
    """(ppid, start time, CPU seconds) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / TICKS


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


TESTEE_WORDS = [w for w in shlex.split(testee.reference_command()) if "{" not in w]


def is_testee(argv: Sequence[str]) -> bool:
    """Whether a command line is the reference server's, as `wsconform run` starts it."""
    return all(word in argv[1:] for word in TESTEE_WORDS)


@dataclass
class TreeSampler:
    """The CPU seconds of every testee process below ``root``, as last seen in ``/proc``."""

    root: int
    members: set[tuple[int, int]] = field(default_factory=set)  # (pid, start time)
    testees: dict[tuple[int, int], float] = field(default_factory=dict)

    def sample(self) -> None:
        table = {
            int(pid): found for pid in os.listdir("/proc") if pid.isdigit() if (found := _stat(pid))
        }
        known = {pid for pid, _ in self.members} | {self.root}
        grew = True
        while grew:  # descendants are found parent first, whatever the order of /proc
            grew = False
            for pid, (ppid, start, _) in table.items():
                if ppid in known and pid not in known:
                    known.add(pid)
                    self.members.add((pid, start))
                    grew = True
        for pid, start in self.members:
            now = table.get(pid)
            if now is None or now[1] != start:
                continue
            key = (pid, start)
            if key in self.testees or is_testee(_cmdline(pid)):
                self.testees[key] = now[2]

    @property
    def testee_cpu(self) -> float:
        return sum(self.testees.values())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- one run ------------------------------------------------------------------------------------


def run_once(config: Config, repeat: int, root: Path, profile: str, cases: str | None) -> Run:
    """Run the selection once with `config` into its own directory under `root`."""
    slug = config.name.replace(" --jobs ", "-j")
    run = Run(config, repeat, root / f"{slug}-{repeat + 1}")
    command = [str(WSCONFORM), "run", "--quiet", "--agent", "reference", "--gate", "strict"]
    command += ["--profile", profile, *config.arguments(), "--outdir", str(run.outdir)]
    command += ["--cases", cases] if cases else []
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    console = root / f"{slug}-{repeat + 1}.console.log"
    cpu_before = _children_cpu()
    started = time.monotonic()
    with console.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        sampler = TreeSampler(process.pid)
        while process.poll() is None:
            sampler.sample()
            time.sleep(SAMPLE_INTERVAL)
    run.wall = time.monotonic() - started
    total = _children_cpu() - cpu_before
    run.testee_cpu = sampler.testee_cpu
    run.engine_cpu = total - run.testee_cpu
    if process.returncode == 2 and not (run.outdir / "summary.json").exists():
        run.unavailable = True
        lines = console.read_text(errors="replace").strip().splitlines()
        run.problem = lines[-1] if lines else "refused (exit 2)"
    else:
        run.problem = verdict_problem(run.outdir, process.returncode, profile, cases)
    return run


def verdict_problem(outdir: Path, returncode: int, profile: str, cases: str | None) -> str | None:
    """What is wrong with a run's verdicts, None when they are what the reference gets."""
    summary_file = outdir / "summary.json"
    if not summary_file.exists():
        return f"no summary.json (exit {returncode})"
    summary = json.loads(summary_file.read_text())
    if summary["partial"]:
        return "partial run"
    if returncode != 0 or not summary["passed"]:
        return f"strict gate: exit {returncode}, {summary['summary']}"
    counts = summary["counts"]
    got = (counts["passed"], counts["informational"])
    if cases is None and got != EXPECTED[profile]:
        want = EXPECTED[profile]
        return f"{got[0]} OK + {got[1]} INFORMATIONAL, expected {want[0]} + {want[1]}"
    if sum(got) != len(summary["selected"]):
        return f"{sum(got)} of {len(summary['selected'])} selected cases passed"
    return None


# --- the session ----------------------------------------------------------------------------


def run_session(
    configs: Sequence[Config], repeats: int, root: Path, profile: str, cases: str | None
) -> list[Run]:
    """Every configuration `repeats` times, alternating, the order rotating each repeat."""
    runs = []
    for repeat in range(repeats):
        shift = repeat % len(configs)
        for config in [*configs[shift:], *configs[:shift]]:
            print(f"repeat {repeat + 1}/{repeats}: {config.name} ...", file=sys.stderr, flush=True)
            run = run_once(config, repeat, root, profile, cases)
            status = run.problem or "verdicts right"
            print(f"  {run.wall:.1f} s wall: {status}", file=sys.stderr, flush=True)
            runs.append(run)
    return runs


def _spread(values: Sequence[float], digits: int = 1) -> str:
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:.{digits}f}"
    return f"{middle:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def table(configs: Sequence[Config], runs: Sequence[Run]) -> Table:
    """One row per configuration over its runs with right verdicts; ratios paired by repeat."""
    columns = ["configuration", "runs", "wall s", "engine CPU s", "testee CPU s"]
    columns += ["engine / testee CPU", "wall / Autobahn sequential"]
    result = Table("Engines side by side (median, min-max)", columns)
    baseline = {r.repeat: r.wall for r in runs if r.config == BASELINE and r.problem is None}
    for config in configs:
        mine = [r for r in runs if r.config == config]
        good = [r for r in mine if r.problem is None]
        if any(r.unavailable for r in mine):
            reason = next(r.problem for r in mine if r.unavailable)
            result.rows.append([config.name, "0", f"not available ({reason})", *["-"] * 4])
            continue
        counted = f"{len(good)}" + (f" of {len(mine)}" if len(good) < len(mine) else "")
        if not good:
            result.rows.append([config.name, counted, "no time: wrong verdicts", *["-"] * 4])
            continue
        ratios = [r.wall / baseline[r.repeat] for r in good if r.repeat in baseline]
        result.rows.append(
            [
                config.name,
                counted,
                _spread([r.wall for r in good]),
                _spread([r.engine_cpu for r in good]),
                _spread([r.testee_cpu for r in good]),
                _spread([r.engine_cpu / r.testee_cpu for r in good if r.testee_cpu], 2),
                _spread(ratios, 2) if ratios else "-",
            ]
        )
    return result


def environment(profile: str, cases: str | None, repeats: int, loads: Sequence[str]) -> str:
    selection = f"--cases {cases}" if cases else f"--profile {profile}"
    return "\n".join(
        [
            f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
            f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}",
            f"- load average (1, 5, 15 min) at start and end: {loads[0]}; {loads[-1]}",
            f"- selection: {selection}, the reference server, {repeats} repeat(s); "
            f"Autobahn {backends.FUZZER_VERSION} on the local Python 2.7 backend",
        ]
    )


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(EXPECTED), default="no-deflate")
    parser.add_argument("--cases", help="wstest patterns, comma-separated (replaces the profile)")
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated, any of {', '.join(CONFIGS)} (default: all)",
    )
    parser.add_argument("--repeats", type=int, help="default: 3 for no-deflate, 1 for full")
    parser.add_argument("--outdir", type=Path, help="keep the runs here (default: temporary)")
    parser.add_argument("--write", type=Path, help="also write the section into this file")
    args = parser.parse_args(argv)
    names = args.configs.split(",")
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from {', '.join(CONFIGS)}")
    configs = [CONFIGS[name] for name in names]
    repeats = args.repeats or (1 if args.profile == "full" else 3)
    root = args.outdir or Path(tempfile.mkdtemp(prefix="wsconform-engines-"))
    root.mkdir(parents=True, exist_ok=True)

    loads = [_load()]
    runs = run_session(configs, repeats, root, args.profile, args.cases)
    loads.append(_load())
    pairs = [
        (a.outdir, n.outdir)
        for a in runs
        for n in runs
        if a.config == BASELINE and n.config == CONFIGS["native"] and a.repeat == n.repeat
        if a.problem is None and n.problem is None
    ]
    sections = [
        TITLES[args.profile] + "\n\n" + HEADING,
        environment(args.profile, args.cases, repeats, loads),
        table(configs, runs).render(),
        "#### Waits (issue 15: every case's timers as long as Autobahn's)\n\n"
        + engine_waits.compare_runs(pairs).render(),
    ]
    refused = [r for r in runs if r.problem is not None and not r.unavailable]
    if refused:
        sections.append(
            "No time reported for: "
            + "; ".join(f"{r.config.name} (repeat {r.repeat + 1}): {r.problem}" for r in refused)
        )
    text = "\n\n".join(sections)
    print(text)
    print(f"\nruns kept in {root}", file=sys.stderr)
    if args.write:
        write_section(args.write, *MARKERS[args.profile], text)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
