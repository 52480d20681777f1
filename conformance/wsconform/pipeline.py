"""The one run pipeline of every command: select → run (an engine) → results → gate → render.

Invariants:
- Each step is a function over data: `selection` (settings → case ids, in the fuzzer's
  order), a run step the command brings (case ids → ``results.RunResults``: a server run, a
  client run, the merge of parallel jobs), and `judge` (results → gate report, the reports on
  disk, the baseline diff, the exit code). `execute` chains them; `run`, `run-client`,
  `compare`, `merge`, `gate` and the pytest plugin all end in `judge`.
- A run directory is written by one run at a time (`exclusive`), and a run never mixes its
  raw output with an earlier run's (`execute` clears ``raw/`` first).
- A run that cannot happen at all is a `RunError` carrying its exit code (3, or 2 for a
  `ConfigError`); everything else, a partial run included, is a `RunOutcome`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wsconform import access, catalog, engines, gate, render, results, testee

LOCK_FILE = ".wsconform.lock"
#: The engine's own output, line by line, in the run directory.
FUZZER_LOG = "fuzzer.log"
BASELINE_DIFF = "baseline-diff.md"

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
    """The engine exited abnormally or wrote no index.json (exit 3)."""


@dataclass(frozen=True, kw_only=True)
class GateSettings:
    """How a run is judged: the pass rule, the known failures, the baseline."""

    preset: str = "strict"
    expectations: Sequence[gate.Expectation] = ()
    allow_unimplemented: bool = False
    baseline: Path | None = None


@dataclass(frozen=True, kw_only=True)
class RunSettings(GateSettings):
    """What every run shares: the agent, where the reports go, which cases, how they are
    gated; already validated for types by the CLI."""

    agent: str
    outdir: Path
    cases: Sequence[str] = ("*",)
    exclude: Sequence[str] = ()
    startup_timeout: float = testee.STARTUP_TIMEOUT


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


#: How an engine cuts a selection into slices (``Engine.slices``).
Split = Callable[[Sequence[str], int], list[list[str]]]


def selection(
    settings: RunSettings, shard: tuple[int, int] | None = None, split: Split | None = None
) -> list[str]:
    """The case ids a run asks for (`shard`'s slice, as `split` cuts it: the engine's way),
    in the fuzzer's order; ConfigError when none."""
    try:
        if shard is None or split is None:
            return catalog.selection(settings.cases, settings.exclude, shard)
        index, count = shard
        return split(catalog.selection(settings.cases, settings.exclude), count)[index - 1]
    except catalog.CaseSelectionError as exc:
        raise ConfigError(
            str(exc), "hint: `wsconform cases PATTERN` lists what a pattern selects"
        ) from exc


def prepare(
    engine: engines.Engine,
    selected: Sequence[str],
    say: Say,
    url: str = "",
    reach: access.Access = access.PLAIN,
) -> results.EngineInfo:
    """Check that `engine` can run `selected` here (provisioning it if needed) against `url`
    (a started testee's when empty) reached as `reach` says, and say which engine runs them;
    ConfigError for cases or access it cannot honour, RunError when it cannot run."""
    try:
        detail = engine.check(selected, url, reach)
    except engines.UnsupportedCases as exc:
        raise ConfigError(str(exc)) from exc
    except engines.EngineError as exc:
        raise RunError(str(exc)) from exc
    info = results.EngineInfo(engine.name, detail)
    say(f"engine: {render.engine_line(info)}")
    return info


def load_run(path: Path, agent: str | None = None) -> results.RunResults:
    """A finished run from DIR: ours (summary.json + raw/) or a directory wstest wrote.

    ResultsError (exit 2) when DIR holds no readable run.
    """
    if not path.is_dir():
        raise results.ResultsError(f"{path} is not a directory")
    ours = path / results.RAW_DIR
    rendered = (path / results.INDEX_FILE).exists() or (path / results.SUMMARY_FILE).exists()
    if not rendered and (ours / results.INDEX_FILE).exists():  # ours, reports never rendered
        return results.load(ours, agent)
    return results.load(path, agent)


def load_baseline(path: Path | None) -> results.RunResults | None:
    """The --baseline run; ConfigError when it cannot be read."""
    if path is None:
        return None
    try:
        return load_run(path)
    except results.ResultsError as exc:
        raise ConfigError(f"cannot read the baseline run {path}: {exc}") from exc


def execute(
    settings: RunSettings,
    play: Callable[[list[str]], results.RunResults],
    shard: tuple[int, int] | None = None,
    split: Split | None = None,
) -> RunOutcome:
    """Select (`shard`'s slice as `split` cuts the selection), then `play` the selection
    into a fresh ``raw/`` under the run directory's lock, then `judge` what it gave."""
    selected = selection(settings, shard, split)
    baseline = load_baseline(settings.baseline)
    with exclusive(settings.outdir):
        raw = settings.outdir / results.RAW_DIR
        if raw.exists():  # stale per-case reports of an earlier run must not be mixed in
            shutil.rmtree(raw)
        return judge(play(selected), settings, settings.outdir, baseline)


def judge(
    run: results.RunResults,
    settings: GateSettings,
    outdir: Path | None,
    baseline: results.RunResults | None = None,
) -> RunOutcome:
    """Gate `run`, write its reports into `outdir` (none when None), compare it with the
    `baseline` (exit 4 when a case regressed)."""
    report = gate.evaluate(
        run, settings.preset, settings.expectations, settings.allow_unimplemented
    )
    paths = render.write_reports(run, report, outdir) if outdir is not None else {}
    if outdir is not None and (outdir / FUZZER_LOG).is_file():
        paths[FUZZER_LOG] = outdir / FUZZER_LOG
    exit_code = report.exit_code
    regressions = None
    if baseline is not None:
        regressions = gate.diff(baseline, run)
        if outdir is not None:
            paths[BASELINE_DIFF] = outdir / BASELINE_DIFF
            paths[BASELINE_DIFF].write_text(render.diff_markdown(regressions))
        if regressions.regressions:
            exit_code = gate.EXIT_REGRESSION
    return RunOutcome(
        results=run,
        report=report,
        paths=paths,
        exit_code=exit_code,
        interrupted=run.partial,
        regressions=regressions,
        notes=list(run.notes),
    )


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
