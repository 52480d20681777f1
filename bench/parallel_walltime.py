"""Wall time of a full reference run with ``--jobs 1`` against ``--jobs 2``, and their verdicts.

Runs ``wsconform run`` (the reference server, all 517 cases unless ``--cases`` narrows it)
twice, once per job count, each into its own directory; checks both runs got the same verdict
(behavior and behaviorClose) on every case; prints the two wall times and their ratio. Exits
1 when the verdicts differ. Takes 20 to 30 minutes on 2 cores; not part of ``make test``.

Usage: ``python bench/parallel_walltime.py [--jobs 2] [--cases PATTERN,...] [--outdir DIR]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wsconform import runner


def timed_run(outdir: Path, jobs: int, cases: str) -> float:
    """Run the reference server through `cases` with `jobs` fuzzers; the wall seconds taken."""
    command = [sys.executable, "-m", "wsconform", "run", "--quiet", "--agent", "reference"]
    command += ["--outdir", str(outdir), "--jobs", str(jobs), "--cases", cases]
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    started = time.monotonic()
    done = subprocess.run(command, env=env, check=False)
    elapsed = time.monotonic() - started
    if done.returncode not in (0, 1):  # 1: conformance failures still make a comparable run
        sys.exit(f"wsconform run --jobs {jobs} failed with status {done.returncode}")
    return elapsed


def verdicts(outdir: Path) -> dict[str, tuple[str, str]]:
    run = runner.load_run(outdir)
    return {c.case_id: (c.behavior, c.behavior_close) for c in run.cases.values()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="the parallel run's job count")
    parser.add_argument("--cases", default="*", help="wstest patterns, comma-separated")
    parser.add_argument("--outdir", type=Path, help="keep both runs here (default: temporary)")
    args = parser.parse_args()
    root = args.outdir or Path(tempfile.mkdtemp(prefix="wsconform-walltime-"))
    serial_dir, parallel_dir = root / "jobs-1", root / f"jobs-{args.jobs}"
    serial = timed_run(serial_dir, 1, args.cases)
    parallel = timed_run(parallel_dir, args.jobs, args.cases)
    one, many = verdicts(serial_dir), verdicts(parallel_dir)
    differing = sorted(c for c in one.keys() | many.keys() if one.get(c) != many.get(c))
    print(f"cases: {len(one)} (--jobs 1), {len(many)} (--jobs {args.jobs})")
    print(f"wall time --jobs 1: {serial:.1f} s")
    print(f"wall time --jobs {args.jobs}: {parallel:.1f} s")
    print(f"ratio (jobs 1 / jobs {args.jobs}): {serial / parallel:.2f}x")
    print(f"runs kept in {root}")
    if differing:
        print(f"verdicts differ on {len(differing)} cases: {', '.join(differing[:20])}")
        return 1
    print("verdicts: identical on every case")
    return 0


if __name__ == "__main__":
    sys.exit(main())
