"""The native engine: `wsconform.native` run in-process, on an event loop of its own thread.

Invariants:
- The engine itself is `wsconform.native`'s (``run``); this adapter only runs it on a thread
  and turns its per-case callbacks into engine events. Its log lines for a started
  case and an unreachable testee are worded as wstest's (`progress.started_line`), so one
  parser follows either engine's ``fuzzer.log`` (the parallel runner reads its jobs' logs).
- Cancelling stops the engine (``native.Stop``): it has written every finished case already,
  and ``index.json`` lists them (a partial run).
- Only server cases: the engine has no fuzzing-server mode (testing clients is Autobahn's).
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wsconform import access, native, progress, results
from wsconform.engines import (
    CaseFinished,
    CaseStarted,
    Event,
    Output,
    Refusing,
    Unreachable,
    UnsupportedCases,
)
from wsconform.native import cases as native_cases
from wsconform.native import loop as native_loop
from wsconform.native import report as native_report
from wsconform.native import slices as native_slices

__all__ = ["NativeEngine", "NativeRun"]

#: At most this many unsupported ids are named in the error.
SHOWN_UNSUPPORTED = 5


class NativeRun:
    """`native.run` on its own thread, as engine events."""

    def __init__(
        self,
        cases: Sequence[str],
        url: str,
        agent: str,
        raw: Path,
        seed: int | None,
        reach: access.Access = access.PLAIN,
    ):
        self._cases, self._url, self._agent, self._raw, self._seed = cases, url, agent, raw, seed
        self._reach = reach
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._status = 0
        self._stop = native.Stop()
        self._thread = threading.Thread(target=self._main, name="native-engine", daemon=True)
        self._thread.start()

    @property
    def events(self) -> queue.Queue[Event | None]:
        return self._events

    def _main(self) -> None:
        try:
            native.run(
                self._url,
                self._agent,
                self._cases,
                self._raw,
                seed=self._seed,
                progress=self._tell,
                reach=self._reach,
                stop=self._stop,
            )
        except asyncio.CancelledError:
            pass
        except Exception:
            self._status = 1
            for line in traceback.format_exc().splitlines():
                self._events.put(Output(line))
        finally:
            self._events.put(None)

    def _tell(self, event: native.CaseEvent) -> None:
        if event.kind == "started":
            self._events.put(Output(progress.started_line(event.case_id, self._agent, self._url)))
            self._events.put(CaseStarted(event.case_id))
        elif event.kind == "finished" and event.outcome is not None:
            verdict = event.outcome.verdict
            self._events.put(
                Output(
                    f"Case {event.case_id} ({event.position}/{event.total}): {verdict.behavior}"
                    f" / {verdict.behavior_close} in {event.outcome.duration_ms} ms"
                )
            )
            self._events.put(
                CaseFinished(
                    event.case_id,
                    verdict.behavior,
                    verdict.behavior_close,
                    native_report.report_filename(self._agent, event.case_id),
                )
            )
        elif event.kind == "unreachable":
            self._events.put(Output(progress.connection_failed_line(self._url, event.detail)))
            self._events.put(Unreachable(self._url, event.detail))

    def cancel(self) -> None:
        self._stop.request()

    def wait(self, timeout: float) -> int:
        self._thread.join(timeout)
        if self._thread.is_alive():  # a case that ignores cancellation: leave it to die with us
            self.cancel()
            return 1
        return self._status


@dataclass
class NativeEngine(Refusing):
    """Our own engine: Python 3 alone, in-process, the server cases it defines."""

    name = "native"
    #: The run's seed for masking keys and nonces (recorded in every report); None: random.
    seed: int | None = None

    def refusal(self, url: str, reach: access.Access) -> str | None:
        """What the engine does not do of `reach`."""
        return access.native_refusal(url, reach)

    def ready(self, cases: Sequence[str]) -> str:
        """UnsupportedCases when the selection holds cases the engine does not define."""
        unsupported = [case for case in cases if case not in native_cases.DEFINED]
        if unsupported:
            shown = ", ".join(unsupported[:SHOWN_UNSUPPORTED])
            more = "" if len(unsupported) <= SHOWN_UNSUPPORTED else ", ..."
            categories = sorted({c.split(".")[0] for c in native_cases.DEFINED}, key=int)
            raise UnsupportedCases(
                f"the native engine does not run {len(unsupported)} of the selected cases"
                f" ({shown}{more}); it runs categories {', '.join(categories)}",
                "leave them out, or pass --engine autobahn where Docker or Python 2.7 can run "
                "the fuzzer",
            )
        version = ".".join(map(str, sys.version_info[:3]))
        return f"native engine, in-process (Python {version}, {native_loop.name()})"

    def slices(self, cases: Sequence[str], count: int) -> list[list[str]]:
        """Cases that send the same compressed messages stay in one job (`native.slices`)."""
        return native_slices.split(cases, count)

    def warm_up(self) -> None:
        """Import the engine (its connection layer, its loop) while the testee starts."""
        native_loop.name()
        native.run  # noqa: B018 (the import is the point)

    def start(
        self,
        cases: Sequence[str],
        url: str,
        agent: str,
        rundir: Path,
        reach: access.Access = access.PLAIN,
    ) -> NativeRun:
        raw = rundir / results.RAW_DIR
        raw.mkdir(parents=True, exist_ok=True)
        return NativeRun(list(cases), url, agent, raw, self.seed, reach)
