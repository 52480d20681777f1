"""Case pages of ours rendered while the run goes on, in a worker process, so that the end
of a run does not wait for them (301 pages took a native no-deflate run 1-2 s at its end).

Invariants:
- A page is submitted only once its engine has written the case's JSON report in full (the
  engine reports a case finished after writing it) and named that report because it writes
  no page of its own (``engines.CaseFinished.report_file``): Autobahn's are never touched.
- Each page links to the index page the run's reports will be written to, so it is the page
  ``render.write_reports`` would have written; ``finish`` names only the pages the worker
  wrote in full, and ``write_reports`` renders every other page as before: a worker that
  fails, is slow or is interrupted loses no page.
- The worker is a child process (``python -m wsconform.casepages RAW INDEX``) fed report
  names on its stdin, one a line; it prints each page's name once the page is written. No
  thread of this process serves it, so the engine's thread keeps the interpreter to itself.
  It runs in a session of its own, so a terminal's Ctrl-C reaches only the run, and never
  outlives the run: ``finish`` waits for it (after an interrupt, ``STOP_TIMEOUT`` at most,
  then kills it), and it ends when its stdin does, should the run die first.
- The worker runs at a lower priority (``WORKER_NICENESS``, where the system has ``nice``):
  it renders what is done, and must not take CPU from the testee and the engine while they
  play the next case (9.x verdicts are time limits); at the end of the run, with nothing
  else to run, it goes at full speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from wsconform import render, results

__all__ = ["BackgroundPages"]

# How long an interrupted run waits for the worker to stop before killing it.
STOP_TIMEOUT = 5.0
# How much the worker lowers its priority (``nice`` increment).
WORKER_NICENESS = 10


class BackgroundPages:
    """Renders case pages in one worker process while the engine plays the next cases."""

    def __init__(self, raw_dir: Path, index_page: Path) -> None:
        self._raw_dir, self._index_page = raw_dir, index_page
        self._worker: subprocess.Popen[str] | None = None

    def submit(self, report_file: str) -> None:
        """Render the page of a finished case (its JSON report ``report_file``)."""
        if self._worker is None:
            self._worker = subprocess.Popen(
                [sys.executable, "-m", __name__, str(self._raw_dir), str(self._index_page)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # a terminal's Ctrl-C is the run's, not the worker's
            )
        assert self._worker.stdin is not None
        try:
            self._worker.stdin.write(report_file + "\n")
            self._worker.stdin.flush()
        except BrokenPipeError:  # the worker died: the end of the run writes the pages
            pass

    def finish(self, *, interrupted: bool = False) -> results.RenderedPages:
        """Wait for the submitted pages (interrupted: ``STOP_TIMEOUT`` at most); the pages
        written, for ``render.write_reports`` to keep."""
        worker = self._worker
        if worker is None:
            return results.RenderedPages(self._index_page, frozenset())
        try:
            printed, _ = worker.communicate(timeout=STOP_TIMEOUT if interrupted else None)
        except subprocess.TimeoutExpired:
            worker.kill()
            printed, _ = worker.communicate()
        # A line without its newline was cut short by the worker's end: not a page.
        names = printed.split("\n")[:-1] if printed else []
        return results.RenderedPages(self._index_page, frozenset(names))


def _serve(raw_dir: Path, index_page: Path) -> None:
    """The worker: a page for each report named on stdin, its name printed once written."""
    for line in sys.stdin:
        report_file = line.rstrip("\n")
        try:
            report = json.loads((raw_dir / report_file).read_text("utf-8"))
            page = results.page_name(report_file)
            render.write_case_page(raw_dir / page, report, index_page, json_href=report_file)
        except Exception as exc:  # the end of the run renders it, or says why
            print(f"case page for {report_file} not written: {exc}", file=sys.stderr)
            continue
        print(page, flush=True)


if __name__ == "__main__":
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICENESS)
    _serve(Path(sys.argv[1]), Path(sys.argv[2]))
