"""The ``wsconform`` command through its real entry points; each exit code provoked for real.

Runs that start the fuzzer go through a subprocess (``python -m wsconform``, the console
script's own ``main``), so signals, exit statuses and the cwd-relative report folder are the
real ones; quick commands use click's CliRunner on the same ``main``.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from harness_runs import interrupted, wsconform

from wsconform import pipeline
from wsconform.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXPECTATIONS = ROOT / "conformance" / "testees" / "websockets.expectations.toml"


@pytest.fixture
def env(env_without_ci_summary: dict[str, str]) -> dict[str, str]:
    return env_without_ci_summary


# ------------------------------------------------------------------------------------ exit 0


def test_passing_run_exits_0_with_quiet_progress_and_reports_under_cwd(
    local_backend: object, tmp_path: Path, echo_cmd: str, env: dict[str, str]
) -> None:
    done = wsconform(
        "run", "--server-cmd", echo_cmd, "--agent", "echo", "--cases", "1.1.1,2.1",
        "--cases", "2.2", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.rstrip().splitlines()[-1]
        == "3 cases: 3 passed, 0 informational, 0 failed (strict)"
    )
    # Not a terminal: one line per finished category instead of a live bar.
    assert "[1/3] 1 Framing: 1 cases done" in done.stderr
    assert "[3/3] 2 Pings/Pongs: 2 cases done" in done.stderr
    reports = tmp_path / "reports" / "runs" / "echo"
    for name in ("summary.json", "summary.md", "junit.xml", "index.html", "raw/index.json"):
        assert (reports / name).is_file(), name
    assert not (reports / pipeline.LOCK_FILE).exists()


def checkout_of_reports(path: Path) -> Path:
    """A git checkout holding this tree's committed reports/ and its ignore rules."""
    tracked = subprocess.run(
        ["git", "ls-files", ".gitignore", "reports"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "reports/reference/summary.md" in tracked
    for name in tracked:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, path / name)
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "checkout"]):
        git = ["git", "-c", "user.name=wsconform", "-c", "user.email=wsconform@localhost"]
        subprocess.run([*git, *command], cwd=path, check=True)
    return path


def git_status(checkout: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=checkout, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_runs_with_the_default_outdir_leave_the_checkout_clean(
    local_backend: object, tmp_path: Path, env: dict[str, str]
) -> None:
    checkout = checkout_of_reports(tmp_path / "checkout")
    for command in ("run", "run-client"):
        done = wsconform(command, "--cases", "1.1.1", "-q", cwd=checkout, env=env)
        assert done.returncode == 0, done.stderr
    assert git_status(checkout) == ""
    assert (checkout / "reports" / "runs" / "reference" / "summary.md").is_file()
    assert (checkout / "reports" / "runs" / "clients" / "reference" / "summary.md").is_file()
    # make conformance's explicit --outdir is what refreshes a committed summary.
    done = wsconform("run", "--cases", "1.1.1", "-q", "--outdir", "reports/reference",
                     cwd=checkout, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert git_status(checkout) == " M reports/reference/summary.md\n"


def test_python_placeholder_is_the_interpreter_of_an_unactivated_console_script(
    local_backend: object, tmp_path: Path, env: dict[str, str]
) -> None:
    testee = ROOT / "conformance" / "testees" / "websockets_echo.py"
    console_script = Path(sys.executable).with_name("wsconform")
    env.update(PATH="/usr/bin:/bin")  # not activated: `python` here lacks the venv's packages
    done = subprocess.run(
        [str(console_script), "run", "--server-cmd", f"{{python}} '{testee}' {{port}}",
         "--cases", "1.1.1", "-q", "--outdir", str(tmp_path / "run")],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 case: 1 passed" in done.stdout
    assert f"testee: {sys.executable} {testee} " in done.stderr


def test_console_script_is_installed_and_documents_exit_codes() -> None:
    script = Path(sys.executable).with_name("wsconform")
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    done = subprocess.run(
        [str(script), "run", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    for code in ("0  passed", "1  conformance failures", "2  usage", "3  the fuzzer", "4  regr"):
        assert code in done.stdout


# ------------------------------------------------------------------------------------ exit 1


def test_websockets_failures_exit_1_and_pass_with_the_expectations_file(
    local_backend: object, tmp_path: Path, echo_cmd: str, env: dict[str, str]
) -> None:
    base = ["run", "--server-cmd", echo_cmd, "--agent", "websockets", "--gate", "standard"]
    cases = ["--cases", "7.1.4,7.1.5,7.1.6"]
    failing = wsconform(*base, *cases, "--outdir", str(tmp_path / "a"), env=env)
    assert failing.returncode == 1, failing.stderr
    assert "failed  7.1.5" in failing.stdout
    assert "3 cases: 1 passed, 1 informational, 1 failed (standard)" in failing.stdout
    accepted = wsconform(
        *base, *cases, "--expectations", str(EXPECTATIONS), "--outdir", str(tmp_path / "b"),
        env=env,
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "1 expected failure" in accepted.stdout


def _interrupted_at_case_2_2(
    tmp_path: Path,
    faulty_cmd: Callable[..., str],
    wait_for: Callable[..., None],
    env: dict[str, str],
    *options: str,
    whole_group: bool = False,
) -> subprocess.CompletedProcess[str]:
    """A run of five cases, Ctrl-C while the testee stalls the handshake of connection 4
    (case 2.2): the run is surely under way, three cases finished."""
    return interrupted(
        ["run", *options, "--server-cmd", faulty_cmd("stall", 4), "--agent", "stall",
         "--cases", "1.1.1,1.1.2,2.1,2.2,2.3", "--outdir", str(tmp_path)],
        env, lambda: wait_for(tmp_path / "testee-stdout.log", "stalling at connection 4"),
        whole_group=whole_group,
    )  # fmt: skip


def test_interrupted_run_keeps_a_partial_report_and_exits_1(
    local_backend: object,
    tmp_path: Path,
    faulty_cmd: Callable[..., str],
    wait_for: Callable[..., None],
    env: dict[str, str],
) -> None:
    harness = _interrupted_at_case_2_2(tmp_path, faulty_cmd, wait_for, env)
    stdout, stderr = harness.stdout, harness.stderr
    assert harness.returncode == 1, stderr
    assert "partial" in stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["partial"] is True
    ran = {case["id"]: case["outcome"] for case in summary["cases"]}
    assert ran == {
        "1.1.1": "passed", "1.1.2": "passed", "2.1": "passed",
        "2.2": "skipped", "2.3": "skipped",
    }  # fmt: skip
    assert "run it again to completion" in stdout


def test_ctrl_c_on_a_native_run_keeps_the_finished_cases_pages_without_a_traceback(
    tmp_path: Path,
    faulty_cmd: Callable[..., str],
    wait_for: Callable[..., None],
    env: dict[str, str],
) -> None:
    # Case pages are rendered in a worker process as cases finish (casepages); Ctrl-C from a
    # terminal reaches it too, and must neither print its traceback nor lose a page.
    harness = _interrupted_at_case_2_2(
        tmp_path, faulty_cmd, wait_for, env, "--engine", "native", whole_group=True
    )
    assert harness.returncode == 1, harness.stderr
    assert "Traceback" not in harness.stderr
    pages = sorted(page.name for page in (tmp_path / "raw").glob("*_case_*.html"))
    assert pages == ["stall_case_1_1_1.html", "stall_case_1_1_2.html", "stall_case_2_1.html"]
    for page in pages:
        assert 'href="../index.html"' in (tmp_path / "raw" / page).read_text()


# ------------------------------------------------------------------------------------ exit 2


def test_unknown_gate_preset_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["run", "--gate", "strictest"])
    assert result.exit_code == 2
    assert "'strictest' is not one of 'strict', 'standard', 'lenient'" in result.output


def test_server_command_without_port_placeholder_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["run", "--server-cmd", "python srv.py 9000"])
    assert result.exit_code == 2
    assert "must contain {port}" in result.output


def test_unknown_case_id_is_a_usage_error_naming_the_closest(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["run", "--cases", "1.1.9", "--outdir", str(tmp_path), "--backend", "local"]
    )
    assert result.exit_code == 2
    assert "unknown case id '1.1.9'" in result.output


def test_malformed_expectations_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[expect]]\ncase = "7.1.5"\nbehavior = ["FAILED"]\n')  # no reason
    result = CliRunner().invoke(main, ["run", "--expectations", str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.output


def test_gate_on_malformed_index_json_exits_2(
    local_backend: object, tmp_path: Path, echo_cmd: str, env: dict[str, str]
) -> None:
    assert wsconform("run", "--server-cmd", echo_cmd, "--cases", "1.1.1",
                     "--outdir", str(tmp_path), env=env).returncode == 0  # fmt: skip
    raw = tmp_path / "raw"
    index = raw / "index.json"
    index.write_text(index.read_text()[:-20])  # cut off: no longer JSON
    done = wsconform("gate", str(raw), env=env)
    assert done.returncode == 2
    assert "index.json is not valid JSON" in done.stderr


def test_second_run_into_a_busy_outdir_exits_2(
    tmp_path: Path, echo_cmd: str, env: dict[str, str]
) -> None:
    with pipeline.exclusive(tmp_path):
        done = wsconform(
            "run", "--server-cmd", echo_cmd, "--cases", "1.1.1", "--outdir", str(tmp_path),
            "--backend", "local", env=env,
        )  # fmt: skip
    assert done.returncode == 2
    assert f"another wsconform run is writing into {tmp_path}" in done.stderr


def test_run_refused_on_a_bad_option_leaves_no_lock_and_no_folder(
    local_backend: object, tmp_path: Path, env: dict[str, str]
) -> None:
    outdir = tmp_path / "reports" / "runs" / "testee"
    done = wsconform("run", "--server-cmd", "srv 'unclosed {port}", "--cases", "1.1.1",
                     cwd=tmp_path, env=env)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "cannot parse the server command" in done.stderr
    assert not (outdir / pipeline.LOCK_FILE).exists()
    assert not outdir.exists()


# ------------------------------------------------------------------------------------ exit 3


def test_testee_that_does_not_start_exits_3_with_its_stderr(
    local_backend: object, tmp_path: Path, env: dict[str, str]
) -> None:
    command = f"{sys.executable} -c 'import sys; sys.exit(\"no such config file\")' {{port}}"
    done = wsconform(
        "run", "--server-cmd", command, "--cases", "1.1.1", "--outdir", str(tmp_path), env=env
    )
    assert done.returncode == 3
    assert "exited with status 1 before accepting connections" in done.stderr
    assert "no such config file" in done.stderr


def test_fuzzer_crash_exits_3_with_its_output_tail(
    tmp_path: Path, fake_fuzzer_cache: Path, echo_cmd: str, env: dict[str, str]
) -> None:
    env = {**env, "XDG_CACHE_HOME": str(fake_fuzzer_cache.parent)}
    done = wsconform(
        "run", "--server-cmd", echo_cmd, "--cases", "1.1.1", "--outdir", str(tmp_path / "out"),
        "--backend", "local", env=env,
    )  # fmt: skip
    assert done.returncode == 3
    assert "the fuzzer exited with status 1" in done.stderr
    assert "No module named twisted.internet" in done.stderr


def test_no_python2_and_no_fuzzer_exits_3_saying_what_to_install(
    tmp_path: Path, echo_cmd: str, env: dict[str, str]
) -> None:
    env = {**env, "XDG_CACHE_HOME": str(tmp_path / "empty-cache")}
    done = wsconform(
        "run", "--server-cmd", echo_cmd, "--cases", "1.1.1", "--outdir", str(tmp_path / "out"),
        "--backend", "local", "--python2", sys.executable, env=env,
    )  # fmt: skip
    assert done.returncode == 3
    assert "not Python 2.7" in done.stderr
    assert "pyenv install 2.7" in done.stderr


# ------------------------------------------------------------------------------------ exit 4


def test_regression_against_baseline_exits_4_and_diff_lists_it(
    local_backend: object,
    tmp_path: Path,
    echo_cmd: str,
    faulty_cmd: Callable[..., str],
    env: dict[str, str],
) -> None:
    cases = ["--cases", "1.1.1,1.1.2"]
    base, new = tmp_path / "base", tmp_path / "new"
    assert wsconform("run", "--server-cmd", echo_cmd, *cases, "--outdir", str(base),
                     env=env).returncode == 0  # fmt: skip
    regressed = wsconform(
        "run", "--server-cmd", faulty_cmd("mute"), *cases, "--outdir", str(new),
        "--baseline", str(base), env=env,
    )  # fmt: skip
    assert regressed.returncode == 4, regressed.stderr
    assert "2 regressions against" in regressed.stdout
    listed = wsconform("diff", str(base), str(new), env=env)
    assert listed.returncode == 0
    assert "1.1.1" in listed.stdout and "1.1.2" in listed.stdout
    assert wsconform("diff", str(base), str(new), "--fail-on-regression").returncode == 4
    assert wsconform("diff", str(base), str(base), "--fail-on-regression").returncode == 0
    regated = wsconform("gate", str(new), "--baseline", str(base), env=env)
    assert regated.returncode == 4


# -------------------------------------------------------------------------- cases and doctor


def test_cases_lists_what_a_pattern_selects_with_wstest_semantics() -> None:
    result = CliRunner().invoke(main, ["cases", "12.*.1"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.splitlines()[:-1]]
    assert listed[:3] == ["12.1.1", "12.1.10", "12.1.11"]  # anchored at the start only
    assert "12.2.1" in listed and "12.2.10" in listed
    assert result.output.splitlines()[-1] == f"{len(listed)} cases"


def test_cases_shows_whole_descriptions_when_not_on_a_terminal() -> None:
    result = CliRunner().invoke(main, ["cases", "9.3.1"])
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "9.3.1  Send fragmented text message message with message payload of length "
        "4 * 2**20 (4M). Sent out in fragments of 64.",
        "1 case",
    ]


def in_terminal(args: list[str], columns: int) -> str:
    """``python -m wsconform ARGS`` on a real pseudo-terminal `columns` wide; its output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    with subprocess.Popen(
        [sys.executable, "-m", "wsconform", *args],
        stdin=slave, stdout=slave, stderr=slave, env=env,
    ) as process:  # fmt: skip
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(master)
        assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_cases_wraps_descriptions_to_the_terminals_width() -> None:
    lines = in_terminal(["cases", "9.3.1", "9.3.2"], columns=60).splitlines()
    assert max(len(line) for line in lines) <= 60
    assert lines[0].startswith("9.3.1  Send fragmented text message")
    assert lines[1].startswith("       ")  # continued under the description
    assert "fragments of 64." in " ".join(lines)
    assert lines[-1] == "2 cases"


def test_cases_with_profile_and_exclude() -> None:
    result = CliRunner().invoke(main, ["cases", "--profile", "no-deflate", "--exclude", "9.*"])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "247 cases (excluding 12.*, 13.*, 9.*)"


def test_cases_pattern_that_selects_nothing_exits_2() -> None:
    result = CliRunner().invoke(main, ["cases", "8.*"])
    assert result.exit_code == 2
    assert "selects no case" in result.output


def test_gate_reads_a_directory_the_fuzzer_wrote_elsewhere(
    local_backend: object, tmp_path: Path, echo_cmd: str, env: dict[str, str]
) -> None:
    assert wsconform("run", "--server-cmd", echo_cmd, "--cases", "1.1.1", "--outdir",
                     str(tmp_path / "run"), env=env).returncode == 0  # fmt: skip
    foreign = tmp_path / "foreign"
    shutil.copytree(tmp_path / "run" / "raw", foreign)  # only what wstest itself wrote
    result = CliRunner().invoke(main, ["gate", str(foreign), "--outdir", str(tmp_path / "re")])
    assert result.exit_code == 0, result.output
    assert "1 case: 1 passed, 0 informational, 0 failed (strict)" in result.output
    assert (tmp_path / "re" / "junit.xml").is_file()


def test_doctor_reports_the_local_backend_and_the_missing_engine() -> None:
    result = CliRunner().invoke(main, ["doctor"])
    lines = result.output.splitlines()
    assert any(line.startswith("ok") and "python 2.7" in line for line in lines), result.output
    assert any("local fuzzer" in line for line in lines)
    assert any("docker" in line for line in lines)
    assert result.exit_code == 0
    assert lines[-1].startswith("next: `wsconform run` will use the")


def test_doctor_without_any_backend_exits_3(tmp_path: Path) -> None:
    env = {
        "XDG_CACHE_HOME": str(tmp_path),
        "PATH": str(tmp_path),
        "DOCKER_HOST": "unix:///nonexistent.sock",
    }
    result = CliRunner().invoke(main, ["doctor"], env=env)
    assert result.exit_code == 3, result.output
    assert "no Python 2.7 found" in result.output
    assert "next: install Python 2.7 or start a Docker engine" in result.output
    assert os.environ.get("PATH")  # CliRunner restored the real environment
