"""Testing clients: the real fuzzing server, real clients (ours, websockets', broken ones).

Every run is real: wstest in fuzzingserver mode from the local backend, a client process
running the cases over loopback. Selections stay small, except one run of the quick profile
with our client under the strict gate (the client half of our CI compliance gate).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from harness_runs import interrupted

from wsconform import backends, client_runner, gate, pipeline, progress, results
from wsconform.client_runner import (
    ClientRunConfig,
    case_bound,
    client_command_for,
    execute,
    reference_client_command,
)
from wsconform.engines.autobahn import AutobahnEngine

ROOT = Path(__file__).resolve().parents[2]
PYTHON = shlex.quote(sys.executable)
WEBSOCKETS_CLIENT = (
    f"{PYTHON} {shlex.quote(str(ROOT / 'conformance' / 'testees' / 'websockets_client.py'))}"
    " {url} {agent}"
)

# A client that runs its first case properly, then does what `behavior` says.
BROKEN_CLIENT = """\
import asyncio, sys
from rfc6455.client import connect
from rfc6455.client_testee import run_case

async def main(url, agent, behavior):
    await run_case(url, 1, agent)
    if behavior == "hang":
        await asyncio.sleep(3600)
    if behavior == "stall":  # inside case 2, reading nothing
        ws = await connect(f"{url}/runCase?case=2&agent={agent}")
        print("stalling in case 2", flush=True)
        await asyncio.sleep(3600)
    print("broken client: giving up after case 1", file=sys.stderr, flush=True)
    sys.exit(3)

asyncio.run(main(*sys.argv[1:4]))
"""


class Lines:
    """A progress view that remembers each update (for the live bar's cases)."""

    def __init__(self) -> None:
        self.current: list[str | None] = []
        self.closed_at: tuple[int, int] | None = None

    def update(self, state: progress.Progress) -> None:
        self.current.append(state.current)

    def category_done(self, state: progress.Progress, category: str, count: int) -> None:
        pass

    def close(self, state: progress.Progress) -> None:
        self.closed_at = (state.done, state.total)


def _run(
    backend: backends.Backend, outdir: Path, said: list[str] | None = None, **options: object
) -> pipeline.RunOutcome:
    settings: dict[str, object] = {"agent": "client", "outdir": outdir}
    settings.update(options)
    config = ClientRunConfig(**settings)  # type: ignore[arg-type]
    engine = AutobahnEngine(backend)
    return execute(config, engine, Lines(), (said if said is not None else []).append)


def _broken_client(tmp_path: Path, behavior: str) -> str:
    script = tmp_path / "broken_client.py"
    script.write_text(BROKEN_CLIENT)
    return f"{PYTHON} {shlex.quote(str(script))} {{url}} {{agent}} {behavior}"


# ----------------------------------------------------------------------------- pure parts


def test_client_command_fills_url_and_agent() -> None:
    command = client_command_for("client --url {url} --name={agent}", "ws://h:1", "me")
    assert command == ["client", "--url", "ws://h:1", "--name=me"]
    assert "rfc6455 client-testee" in reference_client_command()


def test_client_command_fills_python_with_this_interpreter() -> None:
    command = client_command_for("{python} client.py {url} {agent}", "ws://h:1", "me")
    assert command == [sys.executable, "client.py", "ws://h:1", "me"]


@pytest.mark.parametrize("template", ["client {url}", "client {agent}", "client 'unclosed {url}"])
def test_client_command_without_placeholders_or_unparsable_is_refused(template: str) -> None:
    with pytest.raises(ValueError):
        client_command_for(template, "ws://h:1", "me")


def test_case_bound_adds_the_time_limit_the_fuzzer_gives_the_case() -> None:
    assert case_bound("1.1.1", 5.0) == 5.0
    assert case_bound("9.1.6", 5.0) == 105.0  # "Did not receive message within 100 seconds"
    assert case_bound("12.2.16", 5.0) == 485.0  # 1000 messages of 128 KiB: 480 s


def test_fuzzing_server_spec_is_what_wstest_fuzzingserver_reads() -> None:
    spec = backends.FuzzingServerSpec("ws://127.0.0.1:9001", "me", ["1.1.1"], ["2.*"])
    assert spec.as_json("/reports", "ws://elsewhere:1") == {
        "url": "ws://127.0.0.1:9001",
        "outdir": "/reports",
        "options": {},
        "cases": ["1.1.1"],
        "exclude-cases": ["2.*"],
        "exclude-agent-cases": {},
    }
    assert spec.wstest_args() == ["-m", "fuzzingserver", "-u", "0"]
    assert backends.FuzzerSpec("ws://x:1", "a").wstest_args() == ["-m", "fuzzingclient"]


def test_fuzzing_server_container_publishes_its_port_off_linux(tmp_path: Path) -> None:
    spec = backends.FuzzingServerSpec("ws://127.0.0.1:9001", "me")
    options = {"mode_args": spec.wstest_args(), "ports": spec.published_ports()}
    darwin = backends.container_config("img:1", tmp_path, tmp_path, "Darwin", **options)
    assert darwin["command"][:5] == ["wstest", "-m", "fuzzingserver", "-u", "0"]
    assert darwin["ports"] == {"9001/tcp": 9001}
    linux = backends.container_config("img:1", tmp_path, tmp_path, "Linux", **options)
    assert linux["network_mode"] == "host"
    assert "ports" not in linux


def test_run_client_refuses_a_command_without_placeholders(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wsconform", "run-client", "--client-cmd", "client {url}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == gate.EXIT_USAGE
    assert "{agent}" in done.stderr


# ------------------------------------------------------------------------------ real runs


@pytest.mark.autobahn
@pytest.mark.timeout(600)
def test_reference_client_passes_the_quick_profile_under_the_strict_gate(
    local_backend: backends.LocalBackend, tmp_path: Path
) -> None:
    outdir = tmp_path / "reports" / "runs" / "clients" / "reference"
    done = subprocess.run(
        [sys.executable, "-m", "wsconform", "run-client", "--profile", "quick", "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=540,
        check=False,
    )
    assert done.returncode == gate.EXIT_OK, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("(strict)")
    assert "247 cases: 244 passed, 3 informational, 0 failed" in done.stdout
    for name in ("summary.json", "summary.md", "junit.xml", "index.html"):
        assert (outdir / name).is_file()
    index = json.loads((outdir / "raw" / "index.json").read_text())
    assert len(index["reference"]) == 247


@pytest.mark.autobahn
@pytest.mark.timeout(300)
def test_websockets_client_verdict_counts_match_the_raw_fuzzer(
    local_backend: backends.LocalBackend, tmp_path: Path
) -> None:
    # 3.x/4.x/5.15 are NON-STRICT for websockets, 7.1.5 FAILED: every verdict kind shows up.
    cases = ["1.1.1", "2.1", "3.*", "4.*", "5.15", "7.1.5", "7.1.6"]
    outcome = _run(
        local_backend,
        tmp_path / "run",
        agent="websockets",
        client_cmd=WEBSOCKETS_CLIENT,
        cases=cases,
        preset="standard",
    )
    index = json.loads((tmp_path / "run" / "raw" / "index.json").read_text())["websockets"]
    raw = collections.Counter(entry["behavior"] for entry in index.values())
    ours = collections.Counter(case.behavior for case in outcome.results.cases.values())
    assert ours == raw
    assert raw["NON-STRICT"] > 0 and raw["FAILED"] > 0
    counts = outcome.report.counts
    assert counts["failed"] == raw["FAILED"]
    assert counts["informational"] == raw["INFORMATIONAL"]
    assert outcome.exit_code == gate.EXIT_FAILURES


@pytest.mark.autobahn
@pytest.mark.timeout(300)
def test_hanging_client_is_stopped_and_its_case_reported_failed(
    local_backend: backends.LocalBackend, tmp_path: Path
) -> None:
    said: list[str] = []
    outcome = _run(
        local_backend,
        tmp_path / "run",
        said,
        client_cmd=_broken_client(tmp_path, "hang"),
        cases=["1.1.1", "1.1.2", "1.1.3"],
        case_timeout=3.0,
    )
    cases = outcome.results.cases
    assert cases["1.1.1"].behavior == "OK"  # finished before the hang, reported by us
    assert cases["1.1.2"].behavior == "FAILED"
    assert "hung on case 1.1.2" in cases["1.1.2"].result
    assert cases["1.1.3"].behavior == "FAILED"
    assert "not run" in cases["1.1.3"].result
    assert outcome.exit_code == gate.EXIT_FAILURES
    assert any("1.1.2" in line and "no progress" in line for line in said)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["agent"] == "client"


@pytest.mark.autobahn
@pytest.mark.timeout(300)
def test_client_that_exits_early_fails_the_cases_it_never_ran(
    local_backend: backends.LocalBackend, tmp_path: Path
) -> None:
    outcome = _run(
        local_backend,
        tmp_path / "run",
        client_cmd=_broken_client(tmp_path, "exit"),
        cases=["1.1.1", "1.1.2"],
    )
    cases = outcome.results.cases
    # The client never asked for /updateReports: the harness did, so case 1 is reported.
    assert cases["1.1.1"].behavior == "OK"
    assert cases["1.1.2"].behavior == "FAILED"
    assert "exited with status 3" in cases["1.1.2"].result
    assert "giving up after case 1" in cases["1.1.2"].result
    assert outcome.exit_code == gate.EXIT_FAILURES
    loaded = results.load(tmp_path / "run")
    assert loaded.cases["1.1.2"].behavior == "FAILED"


@pytest.mark.autobahn
@pytest.mark.timeout(300)
def test_client_that_runs_no_case_is_a_run_error(
    local_backend: backends.LocalBackend, tmp_path: Path
) -> None:
    command = f"{PYTHON} -c 'import sys; sys.exit(\"cannot start\")' {{url}} {{agent}}"
    with pytest.raises(pipeline.RunError) as caught:
        _run(local_backend, tmp_path / "run", client_cmd=command, cases=["1.1.1"])
    assert caught.value.exit_code == gate.EXIT_RUN_ERROR
    assert "cannot start" in str(caught.value)


@pytest.mark.autobahn
@pytest.mark.timeout(300)
def test_interrupted_client_run_keeps_a_partial_report_without_the_case_in_flight(
    local_backend: backends.LocalBackend,
    tmp_path: Path,
    wait_for: Callable[..., None],
    env_without_ci_summary: dict[str, str],
) -> None:
    harness = interrupted(
        ["run-client", "--quiet", "--agent", "stall",
         "--client-cmd", _broken_client(tmp_path, "stall"), "--cases", "1.1.1,1.1.2,1.1.3",
         "--outdir", str(tmp_path / "run")],
        env_without_ci_summary,
        lambda: wait_for(tmp_path / "run" / "testee-stdout.log", "stalling in case 2"),
    )  # fmt: skip
    stdout, stderr = harness.stdout, harness.stderr
    assert harness.returncode == gate.EXIT_FAILURES, stderr
    assert "partial" in stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["partial"] is True
    ran = {case["id"]: case["outcome"] for case in summary["cases"]}
    # Stopping the client cut 1.1.2 short: no verdict, not a failure. 1.1.1 counts when its
    # status reached the harness before the interrupt.
    assert ran["1.1.2"] == "skipped" and ran["1.1.3"] == "skipped"
    assert ran["1.1.1"] in ("passed", "skipped")
    assert "run it again to completion" in stdout


@pytest.mark.autobahn
@pytest.mark.timeout(300)
def test_interrupted_client_run_keeps_the_cases_finished_before_the_one_in_flight(
    local_backend: backends.LocalBackend,
    tmp_path: Path,
    wait_for: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The status poll lags behind (here: never answers), as under heavy load: case 1.1.1 is
    # finished by the fuzzer but never confirmed to the harness when Ctrl-C comes.
    async def lagging_status(url: str, number: int, agent: str) -> str:
        await asyncio.sleep(3600)
        return "?"

    monkeypatch.setattr(client_runner, "case_status", lagging_status)
    outdir = tmp_path / "run"

    def interrupt_when_stalled() -> None:
        wait_for(outdir / "testee-stdout.log", "stalling in case 2")
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C delivers

    threading.Thread(target=interrupt_when_stalled, daemon=True).start()
    outcome = _run(
        local_backend,
        outdir,
        agent="stall",
        client_cmd=_broken_client(tmp_path, "stall"),
        cases=["1.1.1", "1.1.2", "1.1.3"],
    )
    assert outcome.interrupted
    assert outcome.exit_code == gate.EXIT_FAILURES
    ran = {v.case_id: v.outcome for v in outcome.report.verdicts}
    assert ran == {"1.1.1": "passed", "1.1.2": "skipped", "1.1.3": "skipped"}
