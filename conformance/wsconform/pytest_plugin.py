"""The same gate from inside a pytest suite: the ``wsconform_run`` fixture.

Installed, the plugin is loaded by its ``pytest11`` entry point, registered under its module's
name, so the explicit ways (``-p wsconform.pytest_plugin`` on the command line, or
``pytest_plugins = ["wsconform.pytest_plugin"]`` in the root conftest) name the plugin that is
already there instead of registering it twice. Then::

    def test_my_server_conforms(wsconform_run):
        wsconform_run(server_cmd="{python} -m myserver --port {port}", profile="quick",
                      gate="standard", expectations="autobahn.expectations.toml")

The call runs the real fuzzer against the testee, writes the usual reports into the test's
temporary directory (or ``outdir``), and fails the test with the summary line and the failing
cases unless the gate passes; it returns the `RunOutcome` either way when ``check=False``.

Invariants:
- Each setting comes from the call when given there, else from the command line
  (``--wsconform-gate``, ``--wsconform-profile``, ...), else from the CLI's own default.
- Case selection is `catalog.profile_selection`, the CLI's resolver: comma lists, profiles.
- Every run is listed in pytest's terminal summary (verdict counts, gate outcome, reports);
  the line travels as a ``user_properties`` entry, so it also reaches JUnit XML.
- Loading the plugin imports nothing of the harness: the fuzzer machinery is imported on first
  use (or when a ``--wsconform-*`` option needs checking), so suites that never ask pay nothing.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from wsconform.pipeline import RunOutcome

#: The ``user_properties`` key of a run's summary line.
PROPERTY = "wsconform"
#: The defaults of the options, as the CLI's (``wsconform run``).
DEFAULTS: dict[str, Any] = {
    "gate": "strict",
    "profile": "full",
    "cases": (),
    "exclude": (),
    "expectations": None,
    "allow_unimplemented": False,
    "engine": "auto",
    "backend": "auto",
    "outdir": None,
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsconform", "wsconform (the wsconform_run fixture)")
    group.addoption(
        "--wsconform-gate",
        metavar="RULE",
        help="Pass rule when the call gives none: strict (the default), standard or lenient, "
        "as `wsconform run --gate` (its --help says what each accepts).",
    )
    group.addoption(
        "--wsconform-profile",
        metavar="NAME",
        help="Case selection when the call gives none: quick, no-deflate or full (the "
        "default), as `wsconform run --profile`.",
    )
    group.addoption(
        "--wsconform-cases",
        action="append",
        metavar="PATTERN",
        help="Cases to run, replacing the profile's (repeatable or comma-separated; wstest "
        "pattern semantics, as `wsconform cases` lists them).",
    )
    group.addoption(
        "--wsconform-exclude",
        action="append",
        metavar="PATTERN",
        help="Cases to leave out, added to the profile's (repeatable or comma-separated).",
    )
    group.addoption(
        "--wsconform-expectations",
        metavar="FILE",
        help="TOML file of accepted verdicts, with reasons.",
    )
    group.addoption(
        "--wsconform-allow-unimplemented",
        action="store_true",
        default=None,
        help="Do not fail on UNIMPLEMENTED (e.g. no permessage-deflate).",
    )
    group.addoption(
        "--wsconform-engine",
        metavar="NAME",
        help="What runs the cases when the call gives none: auto (the default), autobahn or "
        "native, as `wsconform run --engine`.",
    )
    group.addoption(
        "--wsconform-backend",
        metavar="NAME",
        help="Where the fuzzer runs when the call gives none: auto (the default), docker or "
        "local, as `wsconform run --backend`.",
    )
    group.addoption(
        "--wsconform-outdir",
        metavar="DIR",
        help="Write each run's reports under DIR/<test name>/<agent> instead of the test's "
        "temporary directory (e.g. to keep them as CI artifacts).",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Check the --wsconform-* options up front, with the harness's own messages."""
    given = _command_line(config)
    if not given:
        return
    from wsconform import backends, catalog
    from wsconform import gate as gates
    from wsconform.engines import choice

    try:
        if "engine" in given and given["engine"] not in choice.ENGINES:
            raise ValueError(
                f"--wsconform-engine: unknown engine {given['engine']!r}; "
                f"choose one of {', '.join(choice.ENGINES)}"
            )
        if "gate" in given and given["gate"] not in gates.PRESETS:
            raise ValueError(
                f"--wsconform-gate: unknown gate {given['gate']!r}; "
                f"choose one of {', '.join(gates.PRESETS)}"
            )
        if "backend" in given and given["backend"] not in backends.BACKENDS:
            raise ValueError(
                f"--wsconform-backend: unknown backend {given['backend']!r}; "
                f"choose one of {', '.join(backends.BACKENDS)}"
            )
        chosen, excluded = catalog.profile_selection(
            given.get("profile", DEFAULTS["profile"]),
            given.get("cases", ()),
            given.get("exclude", ()),
        )
        if not catalog.select(chosen, excluded):
            raise ValueError(f"--wsconform-cases: no case matches {' '.join(chosen)}")
        if "expectations" in given:
            gates.load_expectations(Path(given["expectations"]))
    except (ValueError, catalog.CaseSelectionError, gates.GateConfigError) as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line per wsconform run of the session: verdict counts, gate outcome, reports."""
    # A test's teardown report carries every property its setup and call recorded.
    lines = [
        str(value)
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "teardown"
        for name, value in report.user_properties
        if name == PROPERTY
    ]
    if not lines:
        return
    terminalreporter.section("wsconform")
    for line in lines:
        terminalreporter.write_line(line)


def _command_line(config: pytest.Config) -> dict[str, Any]:
    """The --wsconform-* options given on the command line (or in addopts)."""
    given = {name: config.getoption(f"wsconform_{name}") for name in DEFAULTS}
    return {name: value for name, value in given.items() if value is not None}


class RunFixture:
    """What ``wsconform_run`` is: call it to run and gate."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self._request = request
        self._tmp_path = tmp_path
        self._given = _command_line(request.config)

    def _setting(self, name: str, value: Any) -> Any:
        """`value` when the call gives it, else the command line's, else the default."""
        if value is not None:
            return value
        return self._given.get(name, DEFAULTS[name])

    def __call__(
        self,
        *,
        server_cmd: str | None = None,
        url: str | None = None,
        agent: str = "testee",
        profile: str | None = None,
        cases: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        gate: str | None = None,
        expectations: str | Path | None = None,
        allow_unimplemented: bool | None = None,
        outdir: str | Path | None = None,
        engine: str | None = None,
        backend: str | None = None,
        check: bool = True,
        preset: str | None = None,
    ) -> RunOutcome:
        from wsconform import catalog, engines, pipeline, render, runner
        from wsconform import gate as gates
        from wsconform.engines import choice

        if preset is not None:
            warnings.warn(
                "wsconform_run(preset=...) is now gate=..., as the CLI's --gate",
                DeprecationWarning,
                stacklevel=2,
            )
            gate = gate if gate is not None else preset
        if outdir is None:
            reports_root = self._given.get("outdir")
            outdir = (
                Path(reports_root) / _safe_name(self._request.node.name) / agent
                if reports_root is not None
                else self._tmp_path / "wsconform" / agent
            )
        chosen, excluded = catalog.profile_selection(
            self._setting("profile", profile),
            self._setting("cases", cases),
            self._setting("exclude", exclude),
        )
        expectations_file = self._setting("expectations", expectations)
        config = runner.RunConfig(
            agent=agent,
            outdir=Path(outdir),
            cases=chosen,
            exclude=excluded,
            url=url,
            server_cmd=server_cmd,
            preset=self._setting("gate", gate),
            expectations=(
                gates.load_expectations(Path(expectations_file)) if expectations_file else ()
            ),
            allow_unimplemented=self._setting("allow_unimplemented", allow_unimplemented),
        )
        log: list[str] = []
        try:
            picked = choice.choose(
                self._setting("engine", engine), backend=self._setting("backend", backend)
            )
            outcome = runner.execute(config, picked, _SilentView(), log.append)
        except (engines.EngineError, pipeline.RunError) as exc:
            pytest.fail(f"wsconform could not run: {exc}", pytrace=False)
        verdict = "gate passed" if outcome.exit_code == gates.EXIT_OK else "gate FAILED"
        self._request.node.user_properties.append(
            (
                PROPERTY,
                f"{self._request.node.nodeid}: {agent}: {render.summary_line(outcome.report)}; "
                f"{verdict} (exit {outcome.exit_code}); reports: {outcome.paths['markdown']}",
            )
        )
        if check and outcome.exit_code != gates.EXIT_OK:
            failing = [v for v in outcome.report.verdicts if v.failing]
            lines = [render.summary_line(outcome.report)]
            lines += [f"  {v.case_id}: {v.reason}" for v in failing[:20]]
            lines += [f"  note: {note}" for note in outcome.notes]
            lines.append(f"reports: {outcome.paths['markdown']}")
            pytest.fail("\n".join(lines), pytrace=False)
        return outcome


def _safe_name(name: str) -> str:
    """A test's name as a directory name (parameter ids hold brackets, slashes, spaces)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_") or "test"


class _SilentView:
    """Progress inside pytest: captured output has no use for a bar."""

    def update(self, state: object) -> None:
        pass

    def category_done(self, state: object, category: str, count: int) -> None:
        pass

    def close(self, state: object) -> None:
        pass


@pytest.fixture
def wsconform_run(request: pytest.FixtureRequest, tmp_path: Path) -> RunFixture:
    """Run the Autobahn fuzzer against a testee and fail the test unless the gate passes."""
    return RunFixture(request, tmp_path)
