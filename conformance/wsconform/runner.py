"""One conformance run: spec → backend runs the fuzzer against the testee → results → gate →
render.

The runner owns the run directory for the run's whole life (a lock file in it: two runs never
write the same reports), starts and stops the testee, relays the fuzzer's output to the
progress view, and turns every way a run can end into data: a finished run, a testee that died
(the cases it never answered are failed with its stderr tail as the reason), an interrupted
run (partial, the cases that finished kept), or a `RunError` carrying the exit code for a run
that could not happen at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import shutil
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wsconform import backends, catalog, gate, progress, render, results, testee

LOCK_FILE = ".wsconform.lock"
FUZZER_LOG = "fuzzer.log"
BASELINE_DIFF = "baseline-diff.md"
OUTPUT_TAIL_LINES = 30
# How long an interrupted fuzzer gets to write the reports of the cases that finished.
INTERRUPT_GRACE = 60.0

Say = Callable[[str], None]


class RunError(Exception):
    """The run could not happen; `exit_code` is what the process exits with."""

    exit_code = gate.EXIT_RUN_ERROR

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}\n{self.detail}" if self.detail else message


class ConfigError(RunError):
    """The user asked for something that cannot be run (exit 2)."""

    exit_code = gate.EXIT_USAGE


class OutdirBusy(ConfigError):
    """Another run holds the lock on this run directory."""


class FuzzerCrashed(RunError):
    """wstest exited abnormally or wrote no index.json (exit 3)."""


@dataclass(frozen=True)
class RunSettings:
    """What a server run and a client run share: the agent, where the reports go, which
    cases, how they are gated; already validated for types by the CLI."""

    agent: str
    outdir: Path
    cases: Sequence[str] = ("*",)
    exclude: Sequence[str] = ()
    preset: str = "strict"
    expectations: Sequence[gate.Expectation] = ()
    allow_unimplemented: bool = False
    baseline: Path | None = None
    startup_timeout: float = testee.STARTUP_TIMEOUT


@dataclass(frozen=True)
class RunConfig(RunSettings):
    """Everything one `wsconform run` needs: the shared settings and the server under test."""

    url: str | None = None
    server_cmd: str | None = None
    # (K, N): run only slice K of N of the selection (a CI matrix shard; see parallel).
    shard: tuple[int, int] | None = None


@dataclass
class RunOutcome:
    """A run that produced reports (complete or partial)."""

    results: results.RunResults
    report: gate.GateReport
    paths: dict[str, Path]
    exit_code: int
    interrupted: bool = False
    regressions: gate.DiffReport | None = None
    notes: list[str] = field(default_factory=list)


def load_run(path: Path, agent: str | None = None) -> results.RunResults:
    """A finished run from DIR: ours (summary.json + raw/) or a directory wstest wrote.

    ResultsError (exit 2) when DIR holds no readable run.
    """
    if not path.is_dir():
        raise results.ResultsError(f"{path} is not a directory")
    ours = path / backends.RAW_DIR
    rendered = (path / results.INDEX_FILE).exists() or (path / results.SUMMARY_FILE).exists()
    if not rendered and (ours / results.INDEX_FILE).exists():  # ours, reports never rendered
        return results.load(ours, agent)
    return results.load(path, agent)


@contextlib.contextmanager
def exclusive(outdir: Path) -> Iterator[None]:
    """Hold the run directory's lock for the block; OutdirBusy when another run holds it.

    The lock file goes when the block ends, however it ends, and so does a run directory the
    block created and left empty: a run refused on a bad option leaves nothing behind.
    """
    created = not outdir.exists()
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / LOCK_FILE
    while True:
        lock = open(path, "a")  # noqa: SIM115 (closed below; "w" would wipe the holder's pid)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise OutdirBusy(
                f"another wsconform run is writing into {outdir}",
                "hint: wait for it, or pass a different --outdir",
            ) from None
        if _is_open_as(lock.fileno(), path):
            break
        lock.close()  # the holder removed the file as it finished: lock the new one
    try:
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield
    finally:
        path.unlink()  # still locked: a run that opens it now retries on the next file
        lock.close()
        if created:
            with contextlib.suppress(OSError):  # not empty: the run wrote its reports
                outdir.rmdir()


def _is_open_as(descriptor: int, path: Path) -> bool:
    """Is `descriptor` the file at `path` (not one unlinked since it was opened)?"""
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False


def selection(config: RunSettings, shard: tuple[int, int] | None = None) -> list[str]:
    """The case ids a run asks for (`shard`'s slice), in the fuzzer's order; ConfigError when
    none."""
    try:
        return catalog.selection(config.cases, config.exclude, shard)
    except catalog.CaseSelectionError as exc:
        raise ConfigError(
            str(exc), "hint: `wsconform cases PATTERN` lists what a pattern selects"
        ) from exc


def execute(
    config: RunConfig, backend: backends.Backend, view: progress.View, say: Say
) -> RunOutcome:
    """Run the fuzzer against the configured testee, then gate and render the reports."""
    selected = selection(config, config.shard)
    baseline = load_baseline(config.baseline)
    with exclusive(config.outdir):
        raw = config.outdir / backends.RAW_DIR
        if raw.exists():  # stale per-case reports of an earlier run must not be mixed in
            shutil.rmtree(raw)
        try:
            say(f"fuzzer: {backend.check()}")
        except backends.BackendError as exc:
            raise RunError(f"the fuzzer cannot run: {exc}") from exc
        with _started_testee(config, say) as (url, running):
            # The resolved ids, not the patterns: what runs is exactly what we track.
            spec = backends.FuzzerSpec(url, config.agent, selected)
            say(f"running {len(selected)} cases against {url} (agent {config.agent!r})")
            fuzz = _fuzz(backend, spec, config.outdir, selected, view)
            died = running.exited() if running is not None and not running.stopped else None
            stderr_tail = running.stderr_tail() if running is not None else ""
        run = _collect(config, selected, fuzz, died, stderr_tail)
        report = gate.evaluate(run, config.preset, config.expectations, config.allow_unimplemented)
        paths = render.write_reports(run, report, config.outdir)
        paths[FUZZER_LOG] = config.outdir / FUZZER_LOG
        exit_code = report.exit_code
        regressions = None
        if baseline is not None:
            regressions = gate.diff(baseline, run)
            paths[BASELINE_DIFF] = config.outdir / BASELINE_DIFF
            paths[BASELINE_DIFF].write_text(render.diff_markdown(regressions))
            if regressions.regressions:
                exit_code = gate.EXIT_REGRESSION
        return RunOutcome(
            results=run,
            report=report,
            paths=paths,
            exit_code=exit_code,
            interrupted=fuzz.interrupted,
            regressions=regressions,
            notes=list(run.notes),
        )


def load_baseline(path: Path | None) -> results.RunResults | None:
    """The --baseline run of a server or client run; ConfigError when it cannot be read."""
    if path is None:
        return None
    try:
        return load_run(path)
    except results.ResultsError as exc:
        raise ConfigError(f"cannot read the baseline run {path}: {exc}") from exc


@contextlib.contextmanager
def _started_testee(config: RunConfig, say: Say) -> Iterator[tuple[str, testee.Testee | None]]:
    """The URL to fuzz, and the testee process when we started it (stopped on the way out)."""
    if config.url is not None:
        try:
            testee.wait_for_url(config.url, config.startup_timeout)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        except testee.TesteeError as exc:
            raise RunError(str(exc)) from exc
        yield config.url, None
        return
    template = config.server_cmd or testee.reference_command()
    try:
        running = testee.start(template, config.outdir)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    except testee.TesteeError as exc:
        raise RunError(str(exc)) from exc
    try:
        say(f"testee: {' '.join(running.command)}")
        try:
            running.wait_ready(config.startup_timeout)
        except testee.TesteeError as exc:
            raise RunError(str(exc)) from exc
        yield running.url, running
    finally:
        running.stop()


@dataclass
class _Fuzzing:
    """How the fuzzer process ended."""

    status: int
    interrupted: bool
    tail: list[str]
    connection_failed: progress.ConnectionFailed | None


def _fuzz(
    backend: backends.Backend,
    spec: backends.FuzzerSpec,
    outdir: Path,
    selected: list[str],
    view: progress.View,
) -> _Fuzzing:
    """Run the fuzzer to its end (or to Ctrl-C), logging and relaying its output."""
    try:
        process = backend.start(spec, outdir)
    except backends.BackendError as exc:
        raise RunError(f"the fuzzer cannot run: {exc}") from exc
    tracker = progress.Progress(view, cases=selected)
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    failed: progress.ConnectionFailed | None = None
    interrupted = False
    lines = backends.output_reader(process)
    # Line-buffered: parallel runs follow each job's progress in this log.
    with open(outdir / FUZZER_LOG, "w", buffering=1) as log:

        def relay(line: str) -> None:
            nonlocal failed
            log.write(line + "\n")
            tail.append(line)
            event = tracker.feed(line)
            if isinstance(event, progress.ConnectionFailed):
                failed = event

        try:
            _drain(lines, relay)
        except KeyboardInterrupt:
            interrupted = True
            process.interrupt()
            # A second Ctrl-C stops waiting for the reports.
            with contextlib.suppress(KeyboardInterrupt):
                _drain(lines, relay, INTERRUPT_GRACE)
        status = process.wait(INTERRUPT_GRACE)
    # wstest moves on (or stops) only once a case is finished, unless it was interrupted.
    tracker.finish(completed=not interrupted)
    return _Fuzzing(status, interrupted, list(tail), failed)


def _drain(
    lines: queue.Queue[str | None], relay: Callable[[str], None], timeout: float | None = None
) -> None:
    """Relay lines until the fuzzer's output ends (or `timeout` passes without a line)."""
    while True:
        try:
            # A bounded wait keeps the main thread responsive to Ctrl-C.
            line = lines.get(timeout=0.2 if timeout is None else timeout)
        except queue.Empty:
            if timeout is None:
                continue
            return
        if line is None:
            return
        relay(line)


def _collect(
    config: RunConfig,
    selected: list[str],
    fuzz: _Fuzzing,
    died: int | None,
    stderr_tail: str,
) -> results.RunResults:
    """The run's results, with what happened to the cases that never ran."""
    raw = config.outdir / backends.RAW_DIR
    excluded = catalog.excluded_by(config.cases, config.exclude)
    output_tail = "\n".join(fuzz.tail)
    if not (raw / "index.json").exists():
        if not fuzz.interrupted:
            raise FuzzerCrashed(
                f"the fuzzer exited with status {fuzz.status} without writing its reports",
                f"--- fuzzer output (tail) ---\n{output_tail}",
            )
        run = results.RunResults(agent=config.agent, outdir=raw, cases={})
    else:
        if fuzz.status != 0 and not fuzz.interrupted:
            raise FuzzerCrashed(
                f"the fuzzer exited with status {fuzz.status}",
                f"--- fuzzer output (tail) ---\n{output_tail}",
            )
        try:
            run = results.load(raw, config.agent)
        except results.ResultsError as exc:
            if not fuzz.interrupted:
                raise FuzzerCrashed(f"the fuzzer's reports cannot be read: {exc}") from exc
            run = results.RunResults(agent=config.agent, outdir=raw, cases={})
    run.selected = list(selected)
    run.excluded = excluded
    if config.shard is not None:  # merge checks that every slice of the split is there
        index, count = config.shard
        chosen = len(catalog.select(config.cases, config.exclude))
        run.notes.append(f"shard {index}/{count}: {len(selected)} of {chosen} selected cases")
    missing = [case for case in selected if case not in run.cases]
    if fuzz.interrupted:
        run.partial = True
        run.notes.append(
            f"interrupted: {len(run.cases)} of {len(selected)} cases finished; the rest did not run"
        )
    elif died is not None:
        reason = f"the testee exited with status {died} during the run"
        if stderr_tail:
            reason += f"; its stderr ended with:\n{stderr_tail}"
        if missing:  # mark_missing notes the reason
            run = results.mark_missing(run, missing, reason)
        else:
            run.notes.append(reason)
    elif fuzz.connection_failed is not None and missing:
        failure = fuzz.connection_failed
        reason = f"the fuzzer could not connect to {failure.url}: {failure.reason}"
        run = results.mark_missing(run, missing, reason)
    return run
