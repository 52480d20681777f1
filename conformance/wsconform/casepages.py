"""Case pages of ours rendered while the run goes on, in a worker process, so that the end
of a run does not wait for them (301 pages took a native no-deflate run 1-2 s at its end).

Invariants:
- A page is submitted only once its engine has written the case's JSON report in full (the
  engine reports a case finished after writing it) and named that report because it writes
  no page of its own (``engines.CaseFinished.report_file``): Autobahn's are never touched.
- Each page links to the index page the run's reports will be written to, so it is the page
  ``render.write_reports`` would have written; ``finish`` names only the pages rendered
  without error, and ``write_reports`` renders every other page as before: a worker that
  fails, is slow or is interrupted loses no page.
- The worker never outlives the run: ``finish`` waits for what was submitted, or (after an
  interrupt) cancels what has not begun.
- The worker is a spawned process, not a fork of this one (which runs the engine's thread),
  and ignores Ctrl-C: the run handles it.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import signal
from pathlib import Path

from wsconform import render, results

__all__ = ["BackgroundPages"]


def _render(raw_dir: str, report_file: str, page_file: str, index_page: str) -> str:
    """One case page from its JSON report, written beside it; returns the page's name."""
    raw = Path(raw_dir)
    report = json.loads((raw / report_file).read_text("utf-8"))
    render.write_case_page(raw / page_file, report, Path(index_page), json_href=report_file)
    return page_file


def _ignore_interrupts() -> None:
    """Ctrl-C is the run's to handle: the worker just stops when the run shuts it down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class BackgroundPages:
    """Renders case pages in one worker process while the engine plays the next cases."""

    def __init__(self, raw_dir: Path, index_page: Path) -> None:
        self._raw_dir, self._index_page = raw_dir, index_page
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._pending: list[concurrent.futures.Future[str]] = []

    def submit(self, report_file: str) -> None:
        """Render the page of a finished case (its JSON report ``report_file``)."""
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts,
            )
        self._pending.append(
            self._executor.submit(
                _render,
                str(self._raw_dir),
                report_file,
                results.page_name(report_file),
                str(self._index_page),
            )
        )

    def finish(self, *, interrupted: bool = False) -> results.RenderedPages:
        """Wait for the submitted pages (interrupted: only those already begun); the pages
        written, for ``render.write_reports`` to keep."""
        if self._executor is None:
            return results.RenderedPages(self._index_page, frozenset())
        self._executor.shutdown(wait=True, cancel_futures=interrupted)
        done = frozenset(
            future.result()
            for future in self._pending
            if not future.cancelled() and future.exception() is None
        )
        return results.RenderedPages(self._index_page, done)
