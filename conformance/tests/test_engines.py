"""The engine interface driven through the whole pipeline: a small in-process fake engine (per
case progress, Ctrl-C, a partial run), the choice of engine, and the native engine picked
where the Autobahn fuzzer cannot run.

The testee is real (the websockets echo server on loopback); the fake engine writes what an
engine must leave behind, the fuzzer's own format, one case at a time.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from wsconform import engines, gate, progress, results, runner
from wsconform.access import PLAIN, Access
from wsconform.cli import main
from wsconform.engines import choice
from wsconform.engines.native import NativeEngine
from wsconform.native import cases as native_cases


class _Views:
    """A progress view that remembers the case shown at each update."""

    def __init__(self) -> None:
        self.current: list[str | None] = []
        self.closed = False

    def update(self, state: progress.Progress) -> None:
        self.current.append(state.current)

    def category_done(self, state: progress.Progress, category: str, count: int) -> None:
        pass

    def close(self, state: progress.Progress) -> None:
        self.closed = True


class FakeRun:
    """Plays each case at once (OK/OK), except `stall_on`, which waits until cancelled."""

    def __init__(self, cases: Sequence[str], agent: str, raw: Path, stall_on: str | None):
        self._cases, self._agent, self._raw, self._stall_on = cases, agent, raw, stall_on
        self._events: queue.Queue[engines.Event | None] = queue.Queue()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

    @property
    def events(self) -> queue.Queue[engines.Event | None]:
        return self._events

    def _play(self) -> None:
        index: dict[str, dict[str, object]] = {}
        try:
            for case_id in self._cases:
                self._events.put(engines.Output(f"fake: {case_id} started"))
                self._events.put(engines.CaseStarted(case_id))
                if case_id == self._stall_on and self._cancelled.wait(60):
                    return
                report = f"fake_case_{case_id.replace('.', '_')}.json"
                (self._raw / report).write_text(json.dumps({"result": "fake", "resultClose": ""}))
                index[case_id] = {
                    "behavior": "OK",
                    "behaviorClose": "OK",
                    "duration": 1,
                    "remoteCloseCode": 1000,
                    "reportfile": report,
                }
                self._events.put(engines.CaseFinished(case_id, "OK", "OK"))
        finally:
            (self._raw / results.INDEX_FILE).write_text(json.dumps({self._agent: index}))
            self._events.put(None)

    def cancel(self) -> None:
        self._cancelled.set()

    def wait(self, timeout: float) -> int:
        self._thread.join(timeout)
        return 0


class FakeEngine:
    """An engine in-process, for the pipeline's own tests."""

    def __init__(
        self, stall_on: str | None = None, wait_for: Callable[..., None] | None = None
    ) -> None:
        self.stall_on = stall_on
        self.wait_for = wait_for

    @property
    def name(self) -> str:
        return "fake"

    def check(self, cases: Sequence[str], url: str = "", reach: Access = PLAIN) -> str:
        return "in-process fake"

    def slices(self, cases: Sequence[str], count: int) -> list[list[str]]:
        return [list(cases[k::count]) for k in range(count)]

    def warm_up(self) -> None:
        pass

    def start(
        self, cases: Sequence[str], url: str, agent: str, rundir: Path, reach: Access = PLAIN
    ) -> FakeRun:
        raw = rundir / results.RAW_DIR
        raw.mkdir(parents=True, exist_ok=True)
        if self.stall_on is not None and self.wait_for is not None:
            log, started = rundir / "fuzzer.log", f"fake: {self.stall_on} started"
            threading.Thread(
                target=_interrupt_when, args=(self.wait_for, log, started), daemon=True
            ).start()
        return FakeRun(cases, agent, raw, self.stall_on)


def _interrupt_when(wait_for: Callable[..., None], log: Path, text: str) -> None:
    """Ctrl-C once the engine's log shows `text`."""
    wait_for(log, text)
    os.kill(os.getpid(), signal.SIGINT)


def _run(engine: engines.Engine, outdir: Path, url: str, view: _Views) -> runner.RunOutcome:
    config = runner.RunConfig(agent="fake", outdir=outdir, url=url, cases=["1.1.*"])
    return runner.execute(config, engine, view, lambda _: None)


def test_pipeline_runs_a_fake_engine_case_by_case(tmp_path: Path, echo_server: str) -> None:
    view = _Views()
    outcome = _run(FakeEngine(), tmp_path, echo_server, view)
    assert outcome.exit_code == gate.EXIT_OK
    assert list(outcome.results.cases) == [f"1.1.{i}" for i in range(1, 9)]
    assert view.current[:8] == [f"1.1.{i}" for i in range(1, 9)]  # one update per case
    assert view.closed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["engine"] == {"name": "fake", "detail": "in-process fake"}
    assert "fake: 1.1.8 started" in (tmp_path / "fuzzer.log").read_text()


def test_ctrl_c_keeps_a_partial_run_without_the_case_in_flight(
    tmp_path: Path, echo_server: str, wait_for: Callable[..., None]
) -> None:
    outcome = _run(FakeEngine("1.1.3", wait_for), tmp_path, echo_server, _Views())
    assert outcome.interrupted and outcome.results.partial
    assert list(outcome.results.cases) == ["1.1.1", "1.1.2"]
    assert outcome.exit_code == gate.EXIT_FAILURES
    ran = {v.case_id: v.outcome for v in outcome.report.verdicts}
    assert ran["1.1.2"] == "passed" and ran["1.1.3"] == "skipped"


def test_native_engine_refuses_cases_it_does_not_define(monkeypatch: pytest.MonkeyPatch) -> None:
    # It defines every catalog case today; a case it lacks (as 12.x once were) is refused.
    assert NativeEngine().check(["1.1.1", "12.1.1"]).startswith("native engine")
    without_deflate = {c for c in native_cases.DEFINED if not c.startswith(("12.", "13."))}
    monkeypatch.setattr(native_cases, "DEFINED", without_deflate)
    with pytest.raises(engines.UnsupportedCases, match=r"12\.1\.1"):
        NativeEngine().check(["1.1.1", "12.1.1"])


def test_unknown_engine_names_the_valid_ones() -> None:
    with pytest.raises(engines.EngineError, match="auto, autobahn, native"):
        choice.choose("wstest")


def test_run_client_with_the_native_engine_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["run-client", "--engine", "native"])
    assert result.exit_code == gate.EXIT_USAGE
    assert "servers only" in result.output


def test_auto_picks_native_where_autobahn_cannot_run_and_the_run_passes(
    tmp_path: Path, env_without_ci_summary: dict[str, str]
) -> None:
    """Issue 15's acceptance run: no Docker, no Python 2.7, no provisioned testsuite; `auto`
    runs the native engine over the no-deflate profile (301 cases) and the strict gate passes
    with 298 OK and 3 INFORMATIONAL."""
    env = {
        **env_without_ci_summary,
        "WSCONFORM_PYTHON2": sys.executable,  # named, but Python 3: not usable
        "PATH": str(Path(sys.executable).parent),  # this venv's bin: no python2.7, no pyenv
        "DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # no provisioned testsuite
    }
    done = subprocess.run(
        [sys.executable, "-m", "wsconform", "run", "--profile", "no-deflate", "--gate", "strict",
         "--quiet", "--outdir", str(tmp_path / "run")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == gate.EXIT_OK, done.stdout + done.stderr
    assert "auto chose native" in done.stderr
    assert "engine: native" in done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["engine"]["name"] == "native"
    assert len(summary["selected"]) == 301
    chosen = set(summary["selected"])
    behaviors = Counter(case["behavior"] for case in summary["cases"] if case["id"] in chosen)
    assert behaviors == {"OK": 298, "INFORMATIONAL": 3}
    assert summary["preset"] == "strict" and summary["passed"]
    assert "Engine: native" in (tmp_path / "run" / "summary.md").read_text()
    assert "engine <code>native" in (tmp_path / "run" / "index.html").read_text()
