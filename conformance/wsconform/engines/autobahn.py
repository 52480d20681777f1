"""The Autobahn engine: the real fuzzer (``wstest``) from a local Python 2.7 or Docker.

Invariants:
- Which backend runs wstest, and how, is `backends`'; this adapter only turns its process
  into the engine interface: each output line is an `Output` event, then the event the line
  announces (`progress.parse_line`: a case started, the testee unreachable).
- wstest writes ``index.json`` and the case reports when it ends (also when interrupted: the
  cases that finished); it never reports a case finishing as it happens.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wsconform import access, backends, progress
from wsconform.engines import (
    CaseStarted,
    EngineError,
    Event,
    Output,
    Refusing,
    Unreachable,
)

__all__ = ["AutobahnEngine", "FuzzerRun"]


class FuzzerRun:
    """A running wstest (either mode) as engine events, read by a daemon thread so the
    caller's thread waits on a queue and Ctrl-C reaches it at once."""

    def __init__(self, process: backends.FuzzerProcess) -> None:
        self._process = process
        self._events: queue.Queue[Event | None] = queue.Queue()
        threading.Thread(target=self._pump, name="fuzzer-output", daemon=True).start()

    @property
    def events(self) -> queue.Queue[Event | None]:
        return self._events

    def _pump(self) -> None:
        try:
            for line in self._process.lines():
                self._events.put(Output(line))
                announced = progress.parse_line(line)
                if isinstance(announced, progress.CaseStarted):
                    self._events.put(CaseStarted(announced.case_id))
                elif isinstance(announced, progress.ConnectionFailed):
                    self._events.put(Unreachable(announced.url, announced.reason))
        finally:
            self._events.put(None)

    def cancel(self) -> None:
        self._process.interrupt()

    def wait(self, timeout: float) -> int:
        return self._process.wait(timeout)


@dataclass
class AutobahnEngine(Refusing):
    """wstest in fuzzingclient mode against a server, through `backend`."""

    name = "autobahn"
    backend: backends.Backend

    def refusal(self, url: str, reach: access.Access) -> str | None:
        """What the fuzzer's spec cannot say (extra headers, a CA file)."""
        return access.autobahn_refusal(url, reach)

    def ready(self, cases: Sequence[str]) -> str:
        """The fuzzer runs every catalog case; provision it on first use."""
        try:
            return f"{self.backend.check()} ({self.backend.name} backend)"
        except backends.BackendError as exc:
            raise _cannot_run(exc) from exc

    def start(
        self,
        cases: Sequence[str],
        url: str,
        agent: str,
        rundir: Path,
        reach: access.Access = access.PLAIN,
    ) -> FuzzerRun:
        # The resolved ids, not the patterns: what runs is exactly what we track.
        spec = backends.FuzzerSpec(url, agent, list(cases), reach=reach)
        try:
            return FuzzerRun(self.backend.start(spec, rundir))
        except backends.BackendError as exc:
            raise _cannot_run(exc) from exc


def _cannot_run(exc: backends.BackendError) -> EngineError:
    """A backend's failure as the engine's, its hint kept."""
    return EngineError(f"the fuzzer cannot run: {exc.args[0]}", exc.hint)
