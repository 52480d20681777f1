"""The ``wsconform`` command: run the Autobahn fuzzer against a server, gate, report.

Each command maps its outcome onto the documented exit codes (see `EXIT_CODES`); results go to
stdout, progress and diagnostics to stderr, so ``wsconform run ... > summary.txt`` keeps the
verdict alone. An option that several commands share is declared once (the ``*_option``
factories and ``*_options`` groups), and a group of options that means one thing reaches each
command as one value (`_gathered`: ``selection``, ``gating``, ``reach``, ``options``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape

from wsconform import (
    __version__,
    access,
    backends,
    catalog,
    client_runner,
    engines,
    gate,
    parallel,
    pipeline,
    progress,
    render,
    results,
    runner,
    spec,
    testee,
)
from wsconform import agents as known_agents
from wsconform.engines import autobahn, choice
from wsconform.native import cases as native_cases

EXIT_CODES = """\
Exit codes:

\b
  0  passed
  1  conformance failures (cases outside the gate and the expectations), or a partial
     (interrupted) run; a testee that died mid-run fails the cases it never answered
  2  usage or configuration error (bad option, expectations file, malformed index.json,
     run directory in use)
  3  the fuzzer or the testee could not run (no result at all)
  4  regression against a baseline run
"""

AGREE_EXIT_CODES = """\
Exit codes:

\b
  0  the engines agree on every case (cases decided near a 9.x time limit, and cases whose
     Autobahn verdict changed between its own runs, are listed but do not fail)
  1  a case differs
  2  usage error
  3  a member could not be run
"""
AGREEMENT_FILE = "agreement.md"
MAX_LISTED_FAILURES = 25
#: `wsconform cases` on a narrow terminal: descriptions get at least this many columns.
MIN_DESCRIPTION_WIDTH = 30
#: Where a run writes without --outdir: never a committed path (the published summaries in
#: reports/reference/ are refreshed only by an explicit --outdir, as `make conformance` does).
RUNS_DIR = Path("reports") / "runs"


F = TypeVar("F", bound=Callable[..., Any])


def _options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """One decorator for a group of options that several commands share."""

    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def _gathered(name: str, build: Callable[..., object], *fields: str) -> Callable[[F], F]:
    """Hand the command the options `fields` as one argument `name`, ``build(**values)``: a
    group of options that means one thing reaches each command as one value."""

    def apply(command: F) -> F:
        @functools.wraps(command)
        def gathered(**given: Any) -> Any:
            given[name] = build(**{field: given.pop(field) for field in fields})
            return command(**given)

        return cast(F, gathered)

    return apply


def _given(name: str) -> bool:
    """Did the user pass option `name` (not just get its default)?"""
    source = click.get_current_context().get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT)


PROFILE_HELP = "quick (1-7, 10), no-deflate (all but 12, 13), full (all 517)."
#: The --gate help of every command: what each rule accepts.
GATE_HELP = (
    "Pass rule for each case's verdicts (behavior/close): "
    + "; ".join(f"{name}: {rule}" for name, rule in gate.PRESET_RULES.items())
    + ". UNIMPLEMENTED fails under all three unless --allow-unimplemented."
)
EXPECTATIONS_HELP = "TOML file of known failures, each with its reason (see the README)."
ALLOW_UNIMPLEMENTED_HELP = (
    "Do not fail on UNIMPLEMENTED (12.x/13.x against a testee without permessage-deflate)."
)
QUIET_HELP = "One line per finished category."


def _choice_option(
    *names: str, choices: Sequence[str], default: str, help: str
) -> Callable[[F], F]:
    """An option that takes one of `choices`, its default shown in --help."""
    return click.option(
        *names, type=click.Choice(choices), default=default, show_default=True, help=help
    )


def _profile_option(help: str) -> Callable[[F], F]:
    return _choice_option("--profile", choices=sorted(catalog.PROFILES), default="full", help=help)


@dataclasses.dataclass(frozen=True)
class _Selection:
    """--profile, --cases and --exclude as given."""

    profile: str
    cases: tuple[str, ...]
    exclude: tuple[str, ...]

    def patterns(self) -> tuple[list[str], list[str]]:
        """The (cases, exclude) patterns they stand for."""
        return catalog.profile_selection(self.profile, self.cases, self.exclude)

    def given(self) -> dict[str, bool]:
        """Which of them the user passed (a --spec, which selects the cases, refuses them)."""
        return {
            "--profile": _given("profile"),
            "--cases": bool(self.cases),
            "--exclude": bool(self.exclude),
        }


#: --profile, --cases, --exclude: the case selection of run, run-client, compare and agree,
#: handed to the command as ``selection``.
selection_options = _options(
    _gathered("selection", _Selection, "profile", "cases", "exclude"),
    _profile_option("Case selection: " + PROFILE_HELP),
    click.option(
        "--cases",
        multiple=True,
        metavar="PATTERN",
        help="Cases to run (replaces the profile's); repeatable or comma-separated; "
        "wstest pattern semantics.",
    ),
    click.option(
        "--exclude",
        multiple=True,
        metavar="PATTERN",
        help="Cases to leave out (added to the profile's).",
    ),
)


def _gate_option(default: str = "strict", extra: str = "") -> Callable[[F], F]:
    return _choice_option(
        "--gate", "preset", choices=gate.PRESETS, default=default, help=GATE_HELP + extra
    )


def _baseline_option(help: str) -> Callable[[F], F]:
    return click.option("--baseline", type=click.Path(file_okay=False, path_type=Path), help=help)


_expectations_option = click.option(
    "--expectations", type=click.Path(dir_okay=False, path_type=Path), help=EXPECTATIONS_HELP
)
_allow_unimplemented_option = click.option(
    "--allow-unimplemented", is_flag=True, help=ALLOW_UNIMPLEMENTED_HELP
)


def _gate_settings(
    preset: str, expectations: Path | None, allow_unimplemented: bool, baseline: Path | None = None
) -> pipeline.GateSettings:
    """--gate, --expectations, --allow-unimplemented (and --baseline) as one value; a broken
    expectations file leaves with exit 2."""
    return pipeline.GateSettings(
        preset=preset,
        expectations=_load_expectations(_consoles()[1], expectations),
        allow_unimplemented=allow_unimplemented,
        baseline=baseline,
    )


#: --gate, --expectations, --baseline, --allow-unimplemented: how run and run-client gate,
#: handed to the command as ``gating``.
gate_options = _options(
    _gathered(
        "gating", _gate_settings, "preset", "expectations", "allow_unimplemented", "baseline"
    ),
    _gate_option(),
    _expectations_option,
    _baseline_option("An earlier run: exit 4 when a case regressed against it."),
    _allow_unimplemented_option,
)
#: --gate, --expectations, --allow-unimplemented: how gate and merge judge a finished run,
#: handed to the command as ``settings``.
judge_options = _options(
    _gathered("settings", _gate_settings, "preset", "expectations", "allow_unimplemented"),
    _gate_option(),
    _expectations_option,
    _allow_unimplemented_option,
)
#: --engine: what runs the cases.
engine_option = _choice_option(
    "--engine",
    choices=choice.ENGINES,
    default="auto",
    help="What runs the cases: autobahn (the real fuzzer), native (ours, Python 3 alone, "
    "servers only), auto: autobahn where Docker or Python 2.7 can run it, else native.",
)
#: --backend, --python2, --docker-image: where the autobahn engine runs the fuzzer.
backend_options = _options(
    _choice_option(
        "--backend",
        choices=backends.BACKENDS,
        default="auto",
        help="Where the autobahn engine runs the fuzzer: docker when a Docker engine answers, "
        "else local Python 2.7.",
    ),
    click.option(
        "--python2",
        metavar="PATH",
        help=f"Python 2.7 for the local backend (or ${backends.PYTHON2_ENV}).",
    ),
    click.option(
        "--docker-image",
        default=backends.DOCKER_IMAGE,
        show_default=True,
        help="Fuzzer image for the docker backend.",
    ),
)


@dataclasses.dataclass(frozen=True)
class _EngineOptions:
    """What runs the cases and how its progress shows: the options every running command
    shares."""

    engine: str
    backend: str
    python2: str | None
    docker_image: str
    quiet: bool
    clients: bool = False

    def choose(self, step: backends.Step) -> engines.Engine:
        """The engine these options name (``auto`` resolved); EngineError when none can run."""
        return choice.choose(
            self.engine,
            clients=self.clients,
            backend=self.backend,
            python2=self.python2 or None,
            image=self.docker_image,
            step=step,
        )

    def for_children(self, engine: engines.Engine) -> list[str]:
        """The options that make a child run (``--jobs``) use the very engine chosen here."""
        if not isinstance(engine, autobahn.AutobahnEngine):
            return ["--engine", engine.name]
        options = ["--engine", engine.name, "--backend", engine.backend.name]
        options += ["--docker-image", self.docker_image]
        return options + (["--python2", self.python2] if self.python2 else [])


def _engine_options(**fixed: Any) -> Callable[[F], F]:
    """Hand the command --engine, --backend, --python2, --docker-image and --quiet as one
    ``options``; `fixed` gives what the command does not let the user choose."""
    # clients is the command's to say (run-client), never an option.
    given = [
        f.name for f in dataclasses.fields(_EngineOptions) if f.name not in {*fixed, "clients"}
    ]
    return _gathered("options", functools.partial(_EngineOptions, **fixed), *given)


@dataclasses.dataclass(frozen=True)
class _RunArgs:
    """What run and run-client take alike, as given: --agent, the selection, the gate,
    --outdir and --startup-timeout."""

    agent: str | None
    selection: _Selection
    gating: pipeline.GateSettings
    outdir: Path | None
    startup_timeout: float

    def settings(self, named: bool, runs: Path) -> pipeline.RunSettings:
        """The run's settings: the agent (default: reference, or testee when the command
        `named` one to start), its run directory (default: ``runs/<agent>``), the cases and
        the gate."""
        agent = self.agent if self.agent is not None else "testee" if named else "reference"
        _check_agent(agent)
        chosen, excluded = self.selection.patterns()
        return pipeline.RunSettings(
            **vars(self.gating),
            agent=agent,
            outdir=self.outdir if self.outdir is not None else runs / agent,
            cases=chosen,
            exclude=excluded,
            startup_timeout=self.startup_timeout,
        )


#: Hands run and run-client their shared options as one ``run_args`` (below the options that
#: give ``selection`` and ``gating``, which it takes as they are gathered).
run_args = _gathered(
    "run_args", _RunArgs, "agent", "selection", "gating", "outdir", "startup_timeout"
)


def _outdir_option(help: str, **settings: Any) -> Callable[[F], F]:
    return click.option(
        "--outdir", type=click.Path(file_okay=False, path_type=Path), help=help, **settings
    )


def _startup_timeout_option(help: str | None = None) -> Callable[[F], F]:
    """--startup-timeout; its default is shown where it has a help text (run, run-client)."""
    return click.option(
        "--startup-timeout",
        type=click.FloatRange(min=0.1),
        default=testee.STARTUP_TIMEOUT,
        show_default=help is not None,
        help=help,
    )


def _quiet_option(help: str = QUIET_HELP) -> Callable[[F], F]:
    return click.option("--quiet", "-q", is_flag=True, help=help)


def _jobs_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True, help=help
    )


def _agents_option(metavar: str, before: str, after: str) -> Callable[[F], F]:
    """--agent of compare and agree: repeatable, its help naming the known agents between
    `before` and `after`."""
    return click.option(
        "--agent",
        "agent_specs",
        multiple=True,
        metavar=metavar,
        help=before + ", ".join(known_agents.AGENTS) + after,
    )


def _markdown_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--markdown",
        "markdown_copy",
        type=click.Path(dir_okay=False, path_type=Path),
        help=help,
    )


def _access(
    headers: tuple[str, ...], subprotocols: tuple[str, ...], ca_file: Path | None, insecure: bool
) -> access.Access:
    """The --header/--subprotocol/--ca-file/--insecure options as one value."""
    try:
        parsed = tuple(access.parse_header(h) for h in headers)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--header") from exc
    try:
        offered = access.subprotocols(subprotocols)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--subprotocol") from exc
    return access.Access(headers=parsed, subprotocols=offered, ca_file=ca_file, insecure=insecure)


#: --header, --subprotocol, --ca-file, --insecure: how a server under test is reached, handed
#: to the command as ``reach``.
access_options = _options(
    _gathered("reach", _access, "headers", "subprotocols", "ca_file", "insecure"),
    click.option(
        "--header",
        "headers",
        multiple=True,
        metavar="'NAME: VALUE'",
        help="An extra upgrade request header for the testee (repeatable; native engine).",
    ),
    click.option(
        "--subprotocol",
        "subprotocols",
        multiple=True,
        metavar="NAME",
        help="A subprotocol to offer the testee (repeatable).",
    ),
    click.option(
        "--ca-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Trust this CA (PEM) for a wss:// testee's certificate (native engine).",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        help="Do not verify a wss:// testee's certificate (the fuzzer never does).",
    ),
)
#: --spec: an existing Autobahn fuzzingclient spec.
spec_option = click.option(
    "--spec",
    "spec_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Run an existing Autobahn fuzzingclient.json unchanged: each servers[] entry is a "
    "running testee (url, agent, options, protocols), with its cases, exclude-cases and "
    "exclude-agent-cases; reports under --outdir (default: the spec's outdir)/<agent>.",
)

_AGENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def _load_spec(path: Path, reach: access.Access, conflicting: dict[str, bool]) -> spec.Spec:
    """The --spec file, refusing options that the spec itself gives."""
    given = [name for name, present in conflicting.items() if present]
    if given:
        raise click.UsageError(f"--spec gives the testees and the cases; drop {', '.join(given)}")
    try:
        return spec.load(path, reach)
    except spec.SpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--spec") from exc


def _consoles() -> tuple[Console, Console]:
    """stdout for results, stderr for progress and diagnostics."""
    return Console(highlight=False, soft_wrap=True), Console(
        stderr=True, highlight=False, soft_wrap=True
    )


def _fail(err: Console, code: int, message: str) -> None:
    """Print an error and leave with `code`."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(code)


def _load_expectations(err: Console, path: Path | None) -> list[gate.Expectation]:
    if path is None:
        return []
    try:
        return list(gate.load_expectations(path))
    except gate.GateConfigError as exc:
        _fail(err, gate.EXIT_USAGE, str(exc))
        raise AssertionError("unreachable") from exc


def _load_run(err: Console, path: Path, agent: str | None) -> results.RunResults:
    try:
        return pipeline.load_run(path, agent)
    except results.ResultsError as exc:
        _fail(err, gate.EXIT_USAGE, f"cannot read the run in {path}: {exc}")
        raise AssertionError("unreachable") from exc


def _print_verdict(
    out: Console,
    run: results.RunResults,
    report: gate.GateReport,
    written: dict[str, Path] | None = None,
) -> None:
    """Failures, notes, where the reports are, the summary line, and what to do next."""
    failures = [v for v in report.verdicts if v.failing or v.outcome == "unexpected-pass"]
    for verdict in failures[:MAX_LISTED_FAILURES]:
        result = verdict.result
        verdicts = f"{result.behavior}/{result.behavior_close}" if result is not None else "-"
        reason = " ".join(verdict.reason.split())[:160]
        out.print(f"{verdict.outcome:>16}  {verdict.case_id:<9} {verdicts:<24} {escape(reason)}")
    if len(failures) > MAX_LISTED_FAILURES:
        out.print(f"{'':>16}  ... and {len(failures) - MAX_LISTED_FAILURES} more")
    for note in [*run.notes, *report.notes]:
        out.print(f"note: {escape(note)}")
    if written:
        out.print(
            f"reports: {written['html']} ({written['markdown'].name}, {written['junit'].name},"
            f" {written['json'].name})"
        )
    out.print(render.summary_line(report))
    if report.partial:
        out.print("next: the run is partial; run it again to completion")
    elif not report.passed:
        where = written["markdown"] if written else "the fuzzer's case reports"
        out.print(
            f"next: read each failure in {where}; accept known ones with reasons in an "
            "expectations file (--expectations)"
        )


@click.group(epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wsconform")
def main() -> None:
    """Drive a WebSocket server through the Autobahn|Testsuite fuzzer, gate CI on the result,
    and write reports (Markdown, JUnit XML, JSON, HTML)."""


@main.command(epilog=EXIT_CODES)
@click.option(
    "--url",
    help="Fuzz a server that is already running at this ws:// or wss:// URL (a path, a query "
    "and an IPv6 literal such as ws://[::1]:9001/ are fine).",
)
@click.option(
    "--server-cmd",
    metavar="CMD",
    help="Start the testee with this command; {port} (and {host}) are filled in, and "
    "{python} is the interpreter running wsconform (e.g. '{python} my_server.py {port}'). "
    "Default (no --url either): the reference server, {python} -m rfc6455 serve.",
)
@click.option(
    "--agent", help="Name of the implementation under test (default: reference, or testee)."
)
@selection_options
@gate_options
@_outdir_option("Run directory (default: reports/runs/<agent>).")
@engine_option
@backend_options
@_startup_timeout_option("Seconds the testee gets to accept connections.")
@_quiet_option(
    "One line per finished category instead of the live bar "
    "(also when $CI is set or not on a terminal)."
)
@_jobs_option(
    "Split the cases across N engine processes (the fuzzer's or the native engine's, each "
    "with its own testee), merged into one report; opt-in, never the default."
)
@click.option(
    "--shard",
    metavar="K/N",
    help="Run only slice K of N of the selection (deterministic; for CI matrices); "
    "combine the slices with `wsconform merge`.",
)
@access_options
@spec_option
@_engine_options()
@run_args
def run(
    url: str | None,
    server_cmd: str | None,
    run_args: _RunArgs,
    options: _EngineOptions,
    jobs: int,
    shard: str | None,
    reach: access.Access,
    spec_file: Path | None,
) -> None:
    """Run the fuzzer against a server, gate the verdicts, write the reports."""
    out, err = _consoles()
    if spec_file is not None:
        conflicting = {
            "--url": url is not None,
            "--server-cmd": server_cmd is not None,
            "--agent": run_args.agent is not None,
            **run_args.selection.given(),
            "--jobs": jobs > 1,
            "--shard": shard is not None,
        }
        loaded = _load_spec(spec_file, reach, conflicting)
        base = run_args.outdir or loaded.outdir or RUNS_DIR
        configs = [
            runner.RunConfig(
                **vars(run_args.gating),
                agent=server.agent,
                outdir=base / server.agent,
                cases=list(loaded.cases),
                exclude=loaded.exclude_for(server),
                url=server.url,
                reach=server.reach,
                startup_timeout=run_args.startup_timeout,
            )
            for server in loaded.servers
        ]
        _run_and_report(out, err, [_server_run(c, 1, options) for c in configs], options)
        return
    if url is not None and server_cmd is not None:
        raise click.UsageError("give --url or --server-cmd, not both")
    if server_cmd is not None and "{port}" not in server_cmd:
        raise click.BadParameter("must contain {port}", param_hint="--server-cmd")
    named = url is not None or server_cmd is not None
    settings = run_args.settings(named, RUNS_DIR)
    config = runner.RunConfig(
        **vars(settings), url=url, server_cmd=server_cmd, reach=reach, shard=_shard(shard, jobs)
    )
    if jobs > 1 and (reach.options or reach.origin is not None):
        raise click.UsageError("--jobs cannot split a run that carries a spec's options")
    _run_and_report(out, err, [_server_run(config, jobs, options)], options)


def _server_run(config: runner.RunConfig, jobs: int, options: _EngineOptions) -> _Run:
    """One server run: in this process, or split across `jobs` child runs."""

    def execute(
        engine: engines.Engine, view: progress.View, say: pipeline.Say
    ) -> pipeline.RunOutcome:
        if jobs > 1:
            children = options.for_children(engine) + access.cli_arguments(config.reach)
            return parallel.run_jobs(config, jobs, engine, view, say, children)
        return runner.execute(config, engine, view, say)

    return _Run(config.agent, config.outdir, config.baseline, execute, "the fuzzer started")


@main.command("run-client", epilog=EXIT_CODES)
@click.option(
    "--client-cmd",
    metavar="CMD",
    help="The client under test; {url} (the fuzzing server) and {agent} are filled in, and "
    "{python} is the interpreter running wsconform. It runs every case itself: "
    "/getCaseCount, /runCase?case=N&agent=A echoing each message, /updateReports. "
    "Default: our client, {python} -m rfc6455 client-testee.",
)
@click.option("--agent", help="Name of the client under test (default: reference, or testee).")
@selection_options
@gate_options
@_outdir_option("Run directory (default: reports/runs/clients/<agent>).")
@engine_option
@backend_options
@_startup_timeout_option("Seconds the fuzzing server gets to listen.")
@click.option(
    "--case-timeout",
    type=click.FloatRange(min=0.1),
    default=client_runner.CASE_TIMEOUT,
    show_default=True,
    help="Seconds without progress (no case started or finished) before the client is "
    "stopped and the case it hung on is failed; cases the fuzzer gives a time limit "
    "(9.x: 100 s, 12.x/13.x: up to 480 s) get that limit on top.",
)
@_quiet_option()
@_engine_options(clients=True)
@run_args
def run_client(
    client_cmd: str | None,
    run_args: _RunArgs,
    options: _EngineOptions,
    case_timeout: float,
) -> None:
    """Run a client through the fuzzing server's cases, gate the verdicts, write the reports."""
    out, err = _consoles()
    if options.engine == "native":
        raise click.BadParameter(
            "the native engine tests servers only; clients run with autobahn (or auto)",
            param_hint="--engine",
        )
    if client_cmd is not None:
        for placeholder in ("{url}", "{agent}"):
            if placeholder not in client_cmd:
                raise click.BadParameter(f"must contain {placeholder}", param_hint="--client-cmd")
    settings = run_args.settings(client_cmd is not None, RUNS_DIR / "clients")
    config = client_runner.ClientRunConfig(
        **vars(settings), client_cmd=client_cmd, case_timeout=case_timeout
    )

    def execute(
        chosen: engines.Engine, view: progress.View, say: pipeline.Say
    ) -> pipeline.RunOutcome:
        assert isinstance(chosen, autobahn.AutobahnEngine)  # choose(clients=True) says so
        return client_runner.execute(config, chosen, view, say)

    _run_and_report(
        out,
        err,
        [_Run(config.agent, config.outdir, config.baseline, execute, "the client ran")],
        options,
    )


def _check_agent(agent: str) -> None:
    if not _AGENT.fullmatch(agent):
        raise click.BadParameter(
            "letters, digits and . _ + - only (it names the report directory)",
            param_hint="--agent",
        )


@dataclasses.dataclass(frozen=True)
class _Run:
    """One run a command makes: its agent, reports, baseline, and how it executes."""

    agent: str
    outdir: Path
    baseline: Path | None
    execute: Callable[[engines.Engine, progress.View, pipeline.Say], pipeline.RunOutcome]
    started: str


#: Which exit code wins when a command makes several runs: usage, then no result at all,
#: then a regression, then failures.
_EXIT_SEVERITY = (0, gate.EXIT_FAILURES, gate.EXIT_REGRESSION, gate.EXIT_RUN_ERROR, gate.EXIT_USAGE)


def _worst(codes: list[int]) -> int:
    return max(codes, key=_EXIT_SEVERITY.index, default=0)


def _run_and_report(out: Console, err: Console, runs: list[_Run], options: _EngineOptions) -> None:
    """Choose the engine, make each run, print each verdict and leave with the worst exit
    code; a run that cannot start leaves a message, not a traceback, and the next one runs."""
    try:
        engine = options.choose(_step_printer(err))
    except engines.EngineError as exc:
        _fail(err, gate.EXIT_RUN_ERROR, str(exc))
        return
    codes = []
    for run in runs:
        if len(runs) > 1:
            out.print(f"[bold]{escape(run.agent)}[/]")
        try:
            outcome = run.execute(engine, progress.make_view(err, options.quiet), err.print)
        except pipeline.RunError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            codes.append(exc.exit_code)
            continue
        except engines.EngineError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            codes.append(gate.EXIT_RUN_ERROR)
            continue
        except KeyboardInterrupt:
            _fail(err, gate.EXIT_RUN_ERROR, f"interrupted before {run.started}; nothing written")
            return
        if outcome.interrupted:
            err.print("interrupted: the partial report is kept and marked partial")
        _print_verdict(out, outcome.results, outcome.report, outcome.paths)
        if outcome.regressions is not None and outcome.regressions.regressions:
            out.print(
                f"{len(outcome.regressions.regressions)} regressions against {run.baseline}:"
                f" see {run.outdir / pipeline.BASELINE_DIFF}"
            )
        codes.append(outcome.exit_code)
        if outcome.interrupted:
            break
    sys.exit(_worst(codes))


def _step_printer(err: Console) -> backends.Step:
    """Provisioning progress: each new step on its own line (pip's chatter folded away)."""
    last = ""

    def step(message: str) -> None:
        nonlocal last
        head = message.split(":", 1)[0]
        if head != last:
            last = head
            err.print(f"[dim]{escape(message)}[/]")

    return step


@main.command("gate", epilog=EXIT_CODES)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--agent", help="The agent to gate when the run holds several.")
@judge_options
@_baseline_option("Exit 4 when a case regressed against this run.")
@_outdir_option("Also write the reports here.")
def gate_command(
    directory: Path,
    agent: str | None,
    settings: pipeline.GateSettings,
    baseline: Path | None,
    outdir: Path | None,
) -> None:
    """Gate an existing run: ours (reports/runs/<agent>) or a directory wstest wrote elsewhere."""
    out, err = _consoles()
    run_results = _load_run(err, directory, agent)
    base = _load_run(err, baseline, None) if baseline is not None else None
    outcome = pipeline.judge(run_results, settings, outdir, base)
    _print_verdict(out, run_results, outcome.report, outcome.paths or None)
    if outcome.regressions is not None and outcome.regressions.regressions:
        out.print(render.diff_markdown(outcome.regressions))
    sys.exit(outcome.exit_code)


@main.command(epilog=EXIT_CODES)
@click.argument("base", type=click.Path(file_okay=False, path_type=Path))
@click.argument("new", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-agent", help="The agent to read from BASE when it holds several.")
@click.option("--new-agent", help="The agent to read from NEW when it holds several.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 4 when a case regressed.")
def diff(
    base: Path, new: Path, base_agent: str | None, new_agent: str | None, fail_on_regression: bool
) -> None:
    """List regressions and fixes between two runs (durations ignored)."""
    out, err = _consoles()
    changes = gate.diff(_load_run(err, base, base_agent), _load_run(err, new, new_agent))
    out.print(escape(render.diff_markdown(changes)))
    if fail_on_regression and changes.regressions:
        sys.exit(gate.EXIT_REGRESSION)


def _shard(value: str | None, jobs: int) -> tuple[int, int] | None:
    """--shard K/N as (K, N); a usage error when malformed or combined with --jobs."""
    if value is None:
        return None
    if jobs > 1:
        raise click.UsageError("give --shard or --jobs, not both")
    try:
        return catalog.parse_shard(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from exc


@main.command("merge", epilog=EXIT_CODES)
@click.argument(
    "directories", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path)
)
@_outdir_option("Where the merged run is written.", required=True)
@click.option("--agent", help="The agent to merge when the runs hold several.")
@judge_options
def merge(
    directories: tuple[Path, ...],
    outdir: Path,
    agent: str | None,
    settings: pipeline.GateSettings,
) -> None:
    """Combine shard runs (`run --shard K/N`) into one run, then gate it and write its reports."""
    out, err = _consoles()
    try:
        with pipeline.exclusive(outdir):
            merged = parallel.merge_runs(list(directories), outdir, agent)
            outcome = pipeline.judge(merged, settings, outdir)
    except results.ResultsError as exc:
        _fail(err, gate.EXIT_USAGE, f"cannot merge: {exc}")
        return
    except pipeline.RunError as exc:
        _fail(err, exc.exit_code, str(exc))
        return
    _print_verdict(out, outcome.results, outcome.report, outcome.paths)
    sys.exit(outcome.exit_code)


@main.command("compare", epilog=EXIT_CODES)
@_agents_option(
    "NAME[=CMD]",
    "An implementation to run: a known name (",
    ") or NAME=CMD with {port}. Repeatable; the matrix keeps this order.",
)
@click.option(
    "--run",
    "run_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Add an existing run directory to the matrix without running it again.",
)
@selection_options
@_jobs_option("Fuzzer processes per agent run.")
@_gate_option("standard", " Applies to each agent's own reports; the matrix shows raw verdicts.")
@_outdir_option(
    "compare.md, compare.html, and one run directory per agent.",
    default=Path("reports") / "compare",
    show_default=True,
)
@_markdown_option("Also write the Markdown matrix here (e.g. reports/peers.md).")
@engine_option
@backend_options
@_startup_timeout_option()
@_quiet_option()
@_engine_options()
def compare_command(
    agent_specs: tuple[str, ...],
    run_dirs: tuple[Path, ...],
    selection: _Selection,
    jobs: int,
    preset: str,
    outdir: Path,
    markdown_copy: Path | None,
    options: _EngineOptions,
    startup_timeout: float,
) -> None:
    """Run several implementations through the same cases; render one comparison matrix."""
    from wsconform import compare  # here, as agree's below: `run` starts sooner without them

    out, err = _consoles()
    if len(agent_specs) + len(run_dirs) < 2:
        raise click.UsageError("compare needs at least two agents (--agent or --run)")
    planned = []
    for given in agent_specs:
        try:
            name, template = known_agents.resolve(given)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--agent") from exc
        if not _AGENT.fullmatch(name):
            raise click.BadParameter(
                f"{name!r}: letters, digits and . _ + - only", param_hint="--agent"
            )
        known = known_agents.AGENTS.get(name)
        planned.append((name, template, known.notes if known and "=" not in given else template))
    chosen, excluded = selection.patterns()
    runs, notes, walls = [], {}, {}
    failed = 0
    try:
        chosen_engine = options.choose(_step_printer(err))
    except engines.EngineError as exc:
        _fail(err, gate.EXIT_RUN_ERROR, str(exc))
        return
    for name, template, note in planned:
        config = runner.RunConfig(
            agent=name,
            outdir=outdir / name,
            cases=chosen,
            exclude=excluded,
            server_cmd=template,
            preset=preset,
            startup_timeout=startup_timeout,
        )
        err.print(f"[bold]{escape(name)}[/]: {escape(note)}")
        started = time.monotonic()
        view = progress.make_view(err, options.quiet)
        try:
            outcome = _server_run(config, jobs, options).execute(chosen_engine, view, err.print)
        except pipeline.RunError as exc:
            err.print(f"[bold red]error:[/] {escape(name)}: {escape(str(exc))}")
            failed += 1
            continue
        walls[name] = time.monotonic() - started
        notes[name] = note
        runs.append(outcome.results)
        err.print(f"{escape(name)}: {render.summary_line(outcome.report)}")
    for directory in run_dirs:
        loaded = _load_run(err, directory, None)
        notes[loaded.agent] = f"existing run {directory}"
        runs.append(loaded)
    try:
        matrix = compare.build(runs, notes, walls)
    except ValueError as exc:
        _fail(err, gate.EXIT_USAGE, str(exc))
        return
    paths = compare.write(matrix, outdir, markdown_copy)
    for line in compare.summary_lines(matrix):
        out.print(escape(line))
    out.print(f"{len(matrix.differences())} cases differ between agents")
    written = ", ".join(str(p) for key, p in paths.items() if key != "html")
    out.print(f"matrix: {paths['html']} ({written})")
    if failed:
        _fail(err, gate.EXIT_RUN_ERROR, f"{failed} agent(s) could not run; the matrix omits them")


@main.command("agree", epilog=AGREE_EXIT_CODES)
@click.option(
    "--server-cmd",
    metavar="CMD",
    help="The testee, started fresh for every run of either engine ({port}, {host}, {python} "
    "as in run).",
)
@click.option("--url", help="A testee that is already running (both engines use the same one).")
@_agents_option(
    "NAME",
    "A panel member: a known agent (",
    "), NAME=CMD with {port}, broken:MODE (conformance/testees/broken_echo.py) or broken:all. "
    "Repeatable.",
)
@selection_options
@_outdir_option(
    "Where each member's runs go (<outdir>/<member>/autobahn, native, rerun...), and agreement.md.",
    default=RUNS_DIR / "agree",
    show_default=True,
)
@_markdown_option("Also write the agreement Markdown here (e.g. reports/agreement.md).")
@backend_options
@click.option("--seed", type=int, help="The native engine's seed (masking keys; default: random).")
@_startup_timeout_option()
@_quiet_option()
@access_options
@spec_option
@_engine_options(engine="autobahn")
def agree_command(
    server_cmd: str | None,
    url: str | None,
    agent_specs: tuple[str, ...],
    selection: _Selection,
    outdir: Path,
    markdown_copy: Path | None,
    options: _EngineOptions,
    seed: int | None,
    startup_timeout: float,
    reach: access.Access,
    spec_file: Path | None,
) -> None:
    """Run the Autobahn fuzzer and the native engine against the same testee and list every
    case where they differ, with both sides' details."""
    from wsconform import agreement

    out, err = _consoles()
    testees = sum(1 for given in (server_cmd, url, spec_file) if given is not None)
    if testees > 1 or (testees and agent_specs):
        raise click.UsageError("give one of --server-cmd, --url, --agent or --spec")
    if server_cmd is not None and "{port}" not in server_cmd:
        raise click.BadParameter("must contain {port}", param_hint="--server-cmd")
    panel: list[tuple[agreement.Member, list[str]]] = []
    if spec_file is not None:
        loaded = _load_spec(spec_file, reach, selection.given())
        for server in loaded.servers:
            member = agreement.Member(
                server.agent, server.agent, url=server.url, reach=server.reach
            )
            panel.append((member, _agree_selection(err, loaded.cases, loaded.exclude_for(server))))
    else:
        if agent_specs:
            try:
                found = agreement.members(agent_specs)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--agent") from exc
        elif server_cmd is not None or url is not None:
            found = [agreement.Member("testee", "testee", server_cmd, url)]
        else:
            found = agreement.members(["reference"])
        found = [dataclasses.replace(m, reach=reach) for m in found]
        chosen, excluded = selection.patterns()
        # Without --cases, the profile's cases that the native engine defines.
        ids = _agree_selection(err, chosen, excluded, defined_only=not selection.cases)
        panel = [(member, ids) for member in found]
    try:
        fuzzer = options.choose(_step_printer(err))
    except engines.EngineError as exc:
        _fail(err, gate.EXIT_RUN_ERROR, str(exc))
        return
    both = agreement.Engines(
        fuzzer, choice.NativeEngine(seed), lambda: progress.make_view(err, options.quiet), err.print
    )
    found_agreements, failed = [], 0
    for member, ids in panel:
        err.print(f"[bold]{escape(member.label)}[/]: {len(ids)} cases, both engines")
        try:
            result = agreement.run_member(member, ids, outdir / member.name, both)
        except pipeline.RunError as exc:
            err.print(f"[bold red]error:[/] {escape(member.label)}: {escape(str(exc))}")
            failed = failed or exc.exit_code
            continue
        except KeyboardInterrupt:
            _fail(err, gate.EXIT_RUN_ERROR, "interrupted: no agreement written")
            return
        found_agreements.append(result)
        for finding in result.findings:
            for line in agreement.finding_lines(result.label, finding):
                out.print(escape(line))
        out.print(escape(agreement.summary_line(result)))
    text = agreement.report(found_agreements)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / AGREEMENT_FILE).write_text(text, "utf-8")
    if markdown_copy is not None:
        markdown_copy.write_text(text, "utf-8")
    out.print(f"agreement: {outdir / AGREEMENT_FILE}")
    if failed:
        _fail(err, failed, "some members could not run; the agreement omits them")
    if any(a.differs for a in found_agreements):
        out.print("next: read each difference above; both engines' runs are under " + str(outdir))
        sys.exit(gate.EXIT_FAILURES)


def _agree_selection(
    err: Console, cases: Sequence[str], exclude: Sequence[str], defined_only: bool = False
) -> list[str]:
    """The case ids of an agreement run; with `defined_only`, those the native engine
    defines (saying which were left out)."""
    try:
        ids = catalog.select(list(cases), list(exclude))
    except catalog.CaseSelectionError as exc:
        raise click.BadParameter(str(exc), param_hint="--cases") from exc
    if defined_only:
        left_out = [c for c in ids if c not in native_cases.DEFINED]
        ids = [c for c in ids if c in native_cases.DEFINED]
        if left_out:
            categories = sorted({catalog.category_of(c) for c in left_out}, key=int)
            err.print(
                f"{len(left_out)} cases left out (categories {', '.join(categories)}): the "
                "native engine does not define them"
            )
    if not ids:
        raise click.UsageError("no case to compare")
    return ids


@main.command("cases")
@click.argument("patterns", nargs=-1)
@click.option(
    "--exclude",
    multiple=True,
    metavar="PATTERN",
    help="Cases to leave out (added to the profile's); repeatable or comma-separated.",
)
@_profile_option("The selection when no PATTERNS are given: " + PROFILE_HELP)
def cases_command(patterns: tuple[str, ...], exclude: tuple[str, ...], profile: str) -> None:
    """List the cases a selection means (wstest's pattern semantics: '*' is a wildcard
    anchored at the start; '12.*.1' also selects 12.1.10)."""
    out, err = _consoles()
    chosen, excluded = catalog.profile_selection(profile, patterns, exclude)
    try:
        selected = catalog.select(chosen, excluded)
    except catalog.CaseSelectionError as exc:
        _fail(err, gate.EXIT_USAGE, str(exc))
        return
    width = max((len(case) for case in selected), default=0)
    # A terminal gets each description wrapped to its width; a pipe or file gets it whole.
    columns = max(out.width, width + 2 + MIN_DESCRIPTION_WIDTH) if out.is_terminal else None
    for case in selected:
        head = f"{case:<{width}}  "
        description = " ".join(catalog.describe(case).description.split())
        if columns is not None:
            indent = " " * len(head)
            description = textwrap.fill(
                description, columns, initial_indent=head, subsequent_indent=indent
            )
        else:
            description = head + description
        out.print(escape(description))
    summary = f"{len(selected)} {'case' if len(selected) == 1 else 'cases'}"
    if excluded:
        summary += f" (excluding {', '.join(excluded)})"
    out.print(summary)
    if not selected:
        _fail(err, gate.EXIT_USAGE, f"no case matches {' '.join(chosen)}")


@main.command()
@click.option("--python2", metavar="PATH", help="Python 2.7 to check.")
@click.option(
    "--provision",
    is_flag=True,
    help="Provision the local fuzzer now (or rebuild a broken one) instead of on first use.",
)
def doctor(python2: str | None, provision: bool) -> None:
    """What can run the cases here (the autobahn engine: Python 2.7, the fuzzer, Docker; the
    native engine), and what to do about what is missing; exit 3 when Autobahn cannot run."""
    out, _ = _consoles()
    usable = []

    def report(name: str, ok: bool, detail: str) -> None:
        mark = "[green]ok[/]  " if ok else "[red]no[/]  "
        out.print(f"{mark}{name}: {escape(detail)}")

    report("python", True, f"{sys.version.split()[0]} ({sys.executable})")
    venv = backends.venv_path(backends.cache_root())
    try:
        python2_path = backends.find_python2(python2)
        version = backends.python_version(python2_path) or ()
        report("python 2.7", True, f"{'.'.join(map(str, version))} ({python2_path})")
    except backends.BackendError as exc:
        python2_path = None
        report("python 2.7", False, f"{exc.args[0]}; {exc.hint}")
    if python2_path is not None and provision:
        try:
            backend = backends.LocalBackend(python2_path, step=lambda line: out.print(escape(line)))
            report("local fuzzer", True, backend.check())
            usable.append("local")
        except backends.BackendError as exc:
            report("local fuzzer", False, str(exc))
    elif (venv / backends.PROVISIONED_MARKER).exists():
        try:
            report(
                "local fuzzer", True, f"autobahntestsuite {backends.wstest_version(venv)} ({venv})"
            )
            usable.append("local")
        except backends.BackendError as exc:
            report("local fuzzer", False, str(exc))
    elif python2_path is not None:
        report(
            "local fuzzer",
            True,
            f"not provisioned yet: the first `wsconform run` installs it into {venv}",
        )
        usable.append("local")
    else:
        report("local fuzzer", False, f"not provisioned ({venv}) and no Python 2.7 to provision it")
    try:
        client = backends.docker_client()
        version = client.version().get("Version", "?")
        report("docker", True, f"engine {version}; image {backends.DOCKER_IMAGE}")
        usable.append("docker")
    except backends.BackendError as exc:
        report("docker", False, f"{exc.args[0]}; {exc.hint}")
    reference = shutil.which(sys.executable) is not None and _module_exists("rfc6455.__main__")
    report(
        "reference server",
        reference,
        "python -m rfc6455 serve"
        if reference
        else "rfc6455.__main__ is missing: install wsconform",
    )
    report("native engine", True, choice.NativeEngine().check())
    if usable:
        where = "docker" if "docker" in usable else "local"
        out.print(f"next: `wsconform run` will use the autobahn engine ({where} backend)")
    else:
        out.print(
            "next: install Python 2.7 or start a Docker engine, then run `wsconform doctor` "
            "again; until then `wsconform run` uses the native engine (servers only)"
        )
        sys.exit(gate.EXIT_RUN_ERROR)


def _module_exists(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
