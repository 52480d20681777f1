"""The ``wsconform`` command run as a user runs it (``python -m wsconform``, the console
script's own ``main``), shared by the tests that need its real exit status, signals and
cwd-relative report folder.

Every run is bounded by a timeout, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

#: Seconds a run of a small selection gets.
RUN_TIMEOUT = 240.0
#: Seconds an interrupted run gets to write its partial report.
INTERRUPTED_TIMEOUT = 120.0


def command(args: Sequence[str]) -> list[str]:
    """``python -m wsconform ARGS``, on the interpreter running the tests."""
    return [sys.executable, "-m", "wsconform", *args]


def wsconform(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = RUN_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m wsconform ARGS`` to its end, its output captured as text."""
    return subprocess.run(
        command(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def interrupted(
    args: Sequence[str],
    env: dict[str, str],
    under_way: Callable[[], None],
    timeout: float = INTERRUPTED_TIMEOUT,
    *,
    whole_group: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Start ``python -m wsconform ARGS``; once `under_way` returns, press Ctrl-C (SIGINT)
    and wait for the run to end; killed if it does not within `timeout` seconds. With
    `whole_group` the signal goes to the harness's process group, as a terminal's Ctrl-C
    does (its helper processes get it too)."""
    harness = subprocess.Popen(
        command(args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=whole_group,
    )
    try:
        under_way()
        if whole_group:
            os.killpg(harness.pid, signal.SIGINT)
        else:
            harness.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        stdout, stderr = harness.communicate(timeout=timeout)
    finally:
        if harness.poll() is None:
            harness.kill()
    return subprocess.CompletedProcess(harness.args, harness.returncode, stdout, stderr)
