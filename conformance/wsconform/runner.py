"""A server run's step of the pipeline: the testee started, the fuzzer run against it, results.

The runner starts and stops the testee, relays the fuzzer's output to the progress view and to
``fuzzer.log``, and turns every way a run can end into data: a finished run, a testee that died
(the cases it never answered are failed with its stderr tail as the reason), an interrupted
run (partial, the cases that finished kept), or a `RunError` carrying the exit code for a run
that could not happen at all. Selection, the run directory's lock, gate and reports are
`pipeline`'s.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from wsconform import (
    access,
    casepages,
    catalog,
    engines,
    pipeline,
    progress,
    render,
    results,
    testee,
)

OUTPUT_TAIL_LINES = 30
# How long an interrupted engine gets to write the reports of the cases that finished.
INTERRUPT_GRACE = 60.0


@dataclass(frozen=True, kw_only=True)
class RunConfig(pipeline.RunSettings):
    """Everything one `wsconform run` needs: the shared settings and the server under test."""

    url: str | None = None
    server_cmd: str | None = None
    #: How the engine reaches the testee beyond its URL (TLS, headers, subprotocols).
    reach: access.Access = access.PLAIN
    # (K, N): run only slice K of N of the selection (a CI matrix shard; see parallel).
    shard: tuple[int, int] | None = None


def execute(
    config: RunConfig, engine: engines.Engine, view: progress.View, say: pipeline.Say
) -> pipeline.RunOutcome:
    """Run the engine against the configured testee, then gate and render the reports."""

    def play(selected: list[str]) -> results.RunResults:
        info = pipeline.prepare(engine, selected, say, config.url or "", config.reach)
        with _started_testee(config, say, engine) as (url, running):
            say(f"running {len(selected)} cases against {url} (agent {config.agent!r})")
            fuzz = _fuzz(engine, selected, url, config, view)
            died = running.exited() if running is not None and not running.stopped else None
            stderr_tail = running.stderr_tail() if running is not None else ""
        run = _collect(config, selected, fuzz, died, stderr_tail)
        run.engine = info
        return run

    return pipeline.execute(config, play, config.shard, engine.slices)


@contextlib.contextmanager
def _started_testee(
    config: RunConfig, say: pipeline.Say, engine: engines.Engine
) -> Iterator[tuple[str, testee.Testee | None]]:
    """The URL to fuzz, and the testee process when we started it (stopped on the way out).
    While it starts, the engine and the report templates load on a thread of their own."""
    warm_up = threading.Thread(target=_warm_up, args=(engine,), name="warm-up", daemon=True)
    if config.url is not None:
        warm_up.start()
        try:
            testee.wait_for_url(config.url, config.startup_timeout)
        except ValueError as exc:
            raise pipeline.ConfigError(str(exc)) from exc
        except testee.TesteeError as exc:
            raise pipeline.RunError(str(exc)) from exc
        yield config.url, None
        return
    template = config.server_cmd or testee.reference_command()
    try:
        running = testee.start(template, config.outdir)
    except ValueError as exc:
        raise pipeline.ConfigError(str(exc)) from exc
    except testee.TesteeError as exc:
        raise pipeline.RunError(str(exc)) from exc
    warm_up.start()  # once the testee is spawned: the thread would slow the spawn down
    try:
        say(f"testee: {' '.join(running.command)}")
        try:
            running.wait_ready(config.startup_timeout)
        except testee.TesteeError as exc:
            raise pipeline.RunError(str(exc)) from exc
        yield running.url, running
    finally:
        running.stop()


def _warm_up(engine: engines.Engine) -> None:
    """Load what the run needs after its testee is up: imports, taken off the start's path.
    A failure here is left to happen again, and be reported, where the import is needed."""
    with contextlib.suppress(Exception):
        engine.warm_up()
        render.environment()


@dataclass
class _Fuzzing:
    """How the engine ended."""

    status: int
    interrupted: bool
    tail: list[str]
    unreachable: engines.Unreachable | None
    rendered: results.RenderedPages


def _fuzz(
    engine: engines.Engine, selected: list[str], url: str, config: RunConfig, view: progress.View
) -> _Fuzzing:
    """Run the engine to its end (or to Ctrl-C), logging and relaying its output."""
    try:
        running = engine.start(selected, url, config.agent, config.outdir, config.reach)
    except engines.EngineError as exc:
        raise pipeline.RunError(str(exc)) from exc
    tracker = progress.Progress(view, cases=selected)
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    unreachable: engines.Unreachable | None = None
    raw = config.outdir / results.RAW_DIR
    pages = casepages.BackgroundPages(raw, render.index_page(config.outdir, raw))
    # Line-buffered: parallel runs follow each job's progress in this log.
    with open(config.outdir / pipeline.FUZZER_LOG, "w", buffering=1) as log:

        def relay(event: engines.Event) -> None:
            nonlocal unreachable
            if isinstance(event, engines.Output):
                log.write(event.line + "\n")
                tail.append(event.line)
            elif isinstance(event, engines.CaseStarted):
                tracker.start(event.case_id)
            elif isinstance(event, engines.CaseFinished) and event.report_file is not None:
                pages.submit(event.report_file)
            elif isinstance(event, engines.Unreachable):
                unreachable = event

        try:
            ended = engines.follow(running, relay, INTERRUPT_GRACE)
        except BaseException:
            pages.finish(interrupted=True)
            raise
        rendered = pages.finish(interrupted=ended.interrupted)
    # An engine moves on (or stops) only once a case is finished, unless it was interrupted.
    tracker.finish(completed=not ended.interrupted)
    return _Fuzzing(ended.status, ended.interrupted, list(tail), unreachable, rendered)


def _collect(
    config: RunConfig,
    selected: list[str],
    fuzz: _Fuzzing,
    died: int | None,
    stderr_tail: str,
) -> results.RunResults:
    """The run's results, with what happened to the cases that never ran."""
    raw = config.outdir / results.RAW_DIR
    excluded = catalog.excluded_by(config.cases, config.exclude)
    output_tail = "\n".join(fuzz.tail)
    if not (raw / "index.json").exists():
        if not fuzz.interrupted:
            raise pipeline.FuzzerCrashed(
                f"the fuzzer exited with status {fuzz.status} without writing its reports",
                f"--- fuzzer output (tail) ---\n{output_tail}",
            )
        run = results.RunResults(agent=config.agent, outdir=raw, cases={})
    else:
        if fuzz.status != 0 and not fuzz.interrupted:
            raise pipeline.FuzzerCrashed(
                f"the fuzzer exited with status {fuzz.status}",
                f"--- fuzzer output (tail) ---\n{output_tail}",
            )
        try:
            run = results.load(raw, config.agent)
        except results.ResultsError as exc:
            if not fuzz.interrupted:
                raise pipeline.FuzzerCrashed(f"the fuzzer's reports cannot be read: {exc}") from exc
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
    elif fuzz.unreachable is not None and missing:
        failure = fuzz.unreachable
        reason = f"the fuzzer could not connect to {failure.url}: {failure.reason}"
        run = results.mark_missing(run, missing, reason)
    run.rendered = fuzz.rendered
    return run
