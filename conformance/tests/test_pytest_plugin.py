"""pytest_plugin: the ``wsconform_run`` fixture, its options and its terminal summary.

The loading tests run the venv's own ``pytest`` in a scratch project outside the tree, with
wsconform installed as a user installs it, once for every documented way to enable the plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from wsconform import backends, gate, pipeline

PLUGIN = "wsconform.pytest_plugin"
PYTEST = Path(sys.executable).with_name("pytest")


def scratch_pytest(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The venv's ``pytest ARGS`` run in `project`, as a user runs it there."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k != "GITHUB_STEP_SUMMARY"
    }
    environment.update(env or {})
    return subprocess.run(
        [str(PYTEST), "-p", "no:cacheprovider", *args],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def write_project(project: Path, tests: str, conftest: str | None = None) -> Path:
    project.mkdir(parents=True, exist_ok=True)
    (project / "test_conformance.py").write_text(tests)
    if conftest is not None:
        (project / "conftest.py").write_text(conftest)
    return project


FIXTURE_IS_THERE = """
def test_fixture_and_options_are_there(wsconform_run, pytestconfig):
    assert callable(wsconform_run)
    assert pytestconfig.getoption("wsconform_gate") == "lenient"
    assert pytestconfig.getoption("wsconform_cases") == ["1.1.1,1.1.2"]
"""
CONFTEST = f"pytest_plugins = [{PLUGIN!r}]\n"


@pytest.mark.parametrize(
    ("conftest", "args", "env"),
    [
        pytest.param(None, (), {}, id="installed entry point alone"),
        pytest.param(None, ("-p", PLUGIN), {}, id="-p"),
        pytest.param(CONFTEST, (), {}, id="pytest_plugins in conftest"),
        pytest.param(CONFTEST, ("-p", PLUGIN), {}, id="conftest and -p"),
        pytest.param(
            None, ("-p", PLUGIN), {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, id="-p, autoload off"
        ),
    ],
)
def test_every_documented_way_loads_the_plugin_once(
    tmp_path: Path, conftest: str | None, args: tuple[str, ...], env: dict[str, str]
) -> None:
    project = write_project(tmp_path / "project", FIXTURE_IS_THERE, conftest)
    done = scratch_pytest(
        project, *args, "--wsconform-gate", "lenient", "--wsconform-cases", "1.1.1,1.1.2", env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_unknown_option_values_are_usage_errors_naming_the_choices(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", FIXTURE_IS_THERE)
    done = scratch_pytest(project, "--wsconform-gate", "strictest")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown gate 'strictest'; choose one of strict, standard, lenient" in done.stderr
    done = scratch_pytest(project, "--wsconform-profile", "quik")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown profile 'quik' (closest: quick)" in done.stderr
    done = scratch_pytest(project, "--wsconform-cases", "1.1.1,6.4.99")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown case id '6.4.99'" in done.stderr
    done = scratch_pytest(project, "--wsconform-expectations", "missing.toml")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "missing.toml" in done.stderr


SETTINGS_AND_SUMMARY = """
import pytest

def test_command_line_settings_apply(wsconform_run):
    outcome = wsconform_run(agent="reference")
    assert outcome.report.preset == "lenient"
    assert outcome.results.selected == ["1.1.1", "1.1.2"]

def test_the_call_wins_over_the_command_line(wsconform_run):
    with pytest.warns(DeprecationWarning, match="gate="):
        outcome = wsconform_run(agent="renamed", cases="1.1.1", preset="standard")
    assert outcome.report.preset == "standard"
    assert outcome.results.selected == ["1.1.1"]

def test_a_failing_gate_fails_the_test(wsconform_run):
    wsconform_run(server_cmd={faulty!r}, agent="mute", profile="quick", cases=["1.1.1"])
"""


@pytest.mark.autobahn
def test_fixture_takes_command_line_settings_and_summarises_each_run(
    local_backend: backends.LocalBackend, tmp_path: Path, faulty_cmd: Callable[..., str]
) -> None:
    tests = SETTINGS_AND_SUMMARY.format(faulty=faulty_cmd("mute"))
    project = write_project(tmp_path / "project", tests, CONFTEST)
    reports = tmp_path / "reports"
    done = scratch_pytest(
        project,
        "--wsconform-gate=lenient",
        "--wsconform-cases=1.1.1,1.1.2",
        "--wsconform-backend=local",
        f"--wsconform-outdir={reports}",
    )
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert "1 failed, 2 passed" in done.stdout
    summary = done.stdout.split(" wsconform ", 1)[1].splitlines()
    node = "test_conformance.py::test_"
    assert summary[1] == (
        f"{node}command_line_settings_apply: reference: 2 cases: 2 passed, 0 informational,"
        " 0 failed (lenient); gate passed (exit 0); reports: "
        f"{reports / 'test_command_line_settings_apply' / 'reference' / 'summary.md'}"
    )
    assert summary[2].startswith(
        f"{node}the_call_wins_over_the_command_line: renamed: 1 case: 1 passed,"
    )
    assert summary[3].startswith(
        f"{node}a_failing_gate_fails_the_test: mute: 1 case: 0 passed, 0 informational, "
        "1 failed (lenient); gate FAILED (exit 1)"
    )
    assert (reports / "test_a_failing_gate_fails_the_test" / "mute" / "junit.xml").is_file()


@pytest.mark.autobahn
def test_fixture_runs_and_gates(
    local_backend: backends.LocalBackend,
    wsconform_run: Callable[..., pipeline.RunOutcome],
    echo_cmd: str,
) -> None:
    outcome = wsconform_run(server_cmd=echo_cmd, cases=["1.1.1", "1.1.2"], backend="local")
    assert outcome.exit_code == gate.EXIT_OK
    assert outcome.paths["junit"].is_file()


@pytest.mark.autobahn
def test_fixture_fails_the_test_with_the_failing_cases(
    local_backend: backends.LocalBackend,
    wsconform_run: Callable[..., pipeline.RunOutcome],
    faulty_cmd: Callable[..., str],
) -> None:
    with pytest.raises(pytest.fail.Exception) as caught:
        wsconform_run(server_cmd=faulty_cmd("mute"), cases="1.1.1", backend="local")
    message = str(caught.value)
    assert "1 case: 0 passed, 0 informational, 1 failed (strict)" in message
    assert "  1.1.1: " in message
    assert "summary.md" in message


@pytest.mark.autobahn
def test_fixture_fails_the_test_saying_why_a_run_could_not_happen(
    local_backend: backends.LocalBackend,
    wsconform_run: Callable[..., pipeline.RunOutcome],
    unused_port: int,
) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"wsconform could not run: .*refused"):
        wsconform_run(url=f"ws://127.0.0.1:{unused_port}", cases="1.1.1", backend="local")
