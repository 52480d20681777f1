"""Backends: finding Python 2.7, provisioning, running the real fuzzer; docker's config.

The local backend runs the real wstest against a real testee over loopback. The docker backend
is checked through its pure container configuration, and run for real only when an engine
answers (none does on the development machines: that test says so when it skips).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
from pathlib import Path

import pytest

from wsconform import backends, results, testee


def _drain(process: backends.FuzzerProcess) -> list[str]:
    return list(process.lines())


# ------------------------------------------------------------------------ finding Python 2.7


def test_explicit_python_that_is_not_2_7_is_refused_with_a_hint() -> None:
    with pytest.raises(backends.BackendError) as caught:
        backends.find_python2(sys.executable)
    assert "not Python 2.7" in str(caught.value)
    assert "pyenv install 2.7" in caught.value.hint
    assert "--backend docker" in caught.value.hint


def test_python2_from_environment_variable_must_run(tmp_path: Path) -> None:
    missing = str(tmp_path / "python2.7")
    with pytest.raises(backends.BackendError, match="does not run"):
        backends.find_python2(env={backends.PYTHON2_ENV: missing, "PATH": ""})


def test_no_python2_anywhere_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(backends.BackendError) as caught:
        backends.find_python2(env={"PATH": str(tmp_path)})
    assert "no Python 2.7 found" in str(caught.value)
    assert backends.PYTHON2_ENV in caught.value.hint


def test_python2_is_found_on_this_machine() -> None:
    try:
        found = backends.find_python2()
    except backends.BackendError as exc:
        pytest.skip(f"no Python 2.7 here: {exc}")
    version = backends.python_version(found)
    assert version is not None and version[:2] == (2, 7)


def test_explicit_python2_wins_over_discovery() -> None:
    try:
        found = backends.find_python2()
    except backends.BackendError as exc:
        pytest.skip(f"no Python 2.7 here: {exc}")
    assert backends.find_python2(env={backends.PYTHON2_ENV: found, "PATH": ""}) == found


def test_cache_root_honors_xdg_cache_home(tmp_path: Path) -> None:
    assert backends.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "wsconform"
    assert backends.cache_root({}) == Path.home() / ".cache" / "wsconform"


# ---------------------------------------------------------------------------------- the spec


def test_spec_names_one_server_with_the_agent_and_the_cases() -> None:
    spec = backends.FuzzerSpec("ws://127.0.0.1:9001", "me", ["1.1.1", "2.*"], ["2.11"])
    body = spec.as_json("/out")
    assert body == {
        "outdir": "/out",
        "servers": [{"url": "ws://127.0.0.1:9001", "agent": "me", "options": {"version": 18}}],
        "cases": ["1.1.1", "2.*"],
        "exclude-cases": ["2.11"],
        "exclude-agent-cases": {},
    }
    assert spec.as_json("/reports", "ws://elsewhere:1")["servers"][0]["url"] == "ws://elsewhere:1"


# ------------------------------------------------------------------------------ local backend


def test_provisioned_wstest_reports_the_pinned_version(
    local_backend: backends.LocalBackend,
) -> None:
    assert local_backend.venv is not None
    assert backends.wstest_version(local_backend.venv) == backends.FUZZER_VERSION


def test_local_fuzzer_runs_cases_and_writes_index(
    local_backend: backends.LocalBackend, echo_server: str, tmp_path: Path
) -> None:
    spec = backends.FuzzerSpec(echo_server, "echo", ["1.1.1", "1.1.2", "2.1"])
    process = local_backend.start(spec, tmp_path)
    output = _drain(process)
    assert process.wait(60) == 0
    started = [line for line in output if line.startswith("Running test case ID")]
    assert [line.split()[4] for line in started] == ["1.1.1", "1.1.2", "2.1"]
    written = json.loads((tmp_path / backends.SPEC_FILE).read_text())
    assert written["outdir"] == str((tmp_path / results.RAW_DIR).resolve())
    index = json.loads((tmp_path / results.RAW_DIR / "index.json").read_text())
    assert sorted(index["echo"]) == ["1.1.1", "1.1.2", "2.1"]
    assert index["echo"]["1.1.1"]["behavior"] == "OK"


@pytest.mark.parametrize("inherited", ["SIGINT handled", "SIGINT ignored"])
def test_interrupted_local_fuzzer_still_reports_the_finished_cases(
    local_backend: backends.LocalBackend,
    tmp_path: Path,
    faulty_cmd: object,
    wait_for: object,
    inherited: str,
) -> None:
    assert callable(faulty_cmd) and callable(wait_for)
    # The testee never answers the handshake of connection 4: the fuzzer hangs on case 2.2.
    running = testee.start(faulty_cmd("stall", 4), tmp_path / "testee")
    with running:
        running.wait_ready()
        spec = backends.FuzzerSpec(running.url, "stall", ["1.1.1", "1.1.2", "2.1", "2.2", "2.3"])
        # As when wsconform runs in the background of a script: an ignored SIGINT stays
        # ignored across exec, and the fuzzer must still stop on wsconform's interrupt.
        handler = signal.getsignal(signal.SIGINT)
        if inherited == "SIGINT ignored":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process = local_backend.start(spec, tmp_path)
        finally:
            signal.signal(signal.SIGINT, handler)
        lines = backends.output_reader(process)
        wait_for(running.logdir / testee.STDOUT_LOG, "stalling at connection 4")
        process.interrupt()
        assert process.wait(60) == 0
    output = []
    while (line := lines.get(timeout=30)) is not None:
        output.append(line)
    assert any("Interrupted: writing reports for 3 finished cases" in line for line in output)
    index = json.loads((tmp_path / results.RAW_DIR / "index.json").read_text())
    assert sorted(index["stall"]) == ["1.1.1", "1.1.2", "2.1"]


def test_fuzzer_crash_on_a_bad_spec_exits_nonzero_without_index(
    local_backend: backends.LocalBackend, echo_server: str, tmp_path: Path
) -> None:
    process = local_backend.start(backends.FuzzerSpec(echo_server, "x", ["99.9"]), tmp_path)
    output = _drain(process)
    assert process.wait(60) != 0
    assert any("Traceback" in line for line in output)
    assert not (tmp_path / results.RAW_DIR / "index.json").exists()


def _broken_cache(root: Path) -> Path:
    """A cache whose testsuite was finished once and no longer starts (its interpreter gone)."""
    venv = backends.venv_path(root)
    (venv / "bin").mkdir(parents=True)
    wstest = venv / "bin" / "wstest"
    wstest.write_text(f"#!{root / 'deleted' / 'python'}\n")
    wstest.chmod(0o755)
    (venv / backends.PROVISIONED_MARKER).write_text(backends.FUZZER_VERSION + "\n")
    return venv


def test_broken_install_is_discarded_and_a_failed_rebuild_says_why(tmp_path: Path) -> None:
    venv = _broken_cache(tmp_path)
    steps: list[str] = []
    backend = backends.LocalBackend(python2=shutil.which("false") or "/bin/false", root=tmp_path)
    backend.step = steps.append
    with pytest.raises(backends.BackendError) as caught:
        backend.check()
    assert "not Python 2.7" in str(caught.value)
    assert any("does not run, rebuilding" in step for step in steps)
    assert not venv.exists()  # never trusted again


def test_wstest_version_runs_the_console_script_itself(tmp_path: Path) -> None:
    venv = _broken_cache(tmp_path)
    with pytest.raises(backends.BackendError) as caught:
        backends.wstest_version(venv)
    assert "does not run" in str(caught.value)
    assert f"remove {venv}" in caught.value.hint


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_broken_install_is_rebuilt_by_check(tmp_path: Path) -> None:
    try:
        backends.find_python2()
    except backends.BackendError as exc:
        pytest.skip(f"no Python 2.7 here: {exc}")
    venv = _broken_cache(tmp_path)
    backend = backends.LocalBackend(root=tmp_path)
    assert backend.check() == f"local wstest {backends.FUZZER_VERSION} ({venv})"
    assert backends.wstest_version(venv) == backends.FUZZER_VERSION


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_provisioning_from_scratch_is_atomic_and_happens_once(tmp_path: Path) -> None:
    try:
        python2 = backends.find_python2()
    except backends.BackendError as exc:
        pytest.skip(f"no Python 2.7 here: {exc}")
    root = tmp_path / "cache"
    steps: list[str] = []
    venvs: list[Path] = []
    errors: list[BaseException] = []

    def provision() -> None:
        try:
            venvs.append(backends.provision(python2, root, steps.append))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    runs = [threading.Thread(target=provision) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert not errors
    venv = root / f"autobahn-{backends.FUZZER_VERSION}"
    assert venvs == [venv, venv]
    assert backends.wstest_version(venv) == backends.FUZZER_VERSION
    installs = [s for s in steps if s == f"installing autobahntestsuite=={backends.FUZZER_VERSION}"]
    assert len(installs) == 1  # the second run waited for the first, then reused its work
    assert sorted(p.name for p in root.iterdir()) == [venv.name, f"{venv.name}.lock"]


# ----------------------------------------------------------------------------- docker backend


def test_container_on_linux_uses_host_network_and_mounts_spec_and_reports(tmp_path: Path) -> None:
    config = backends.container_config(
        backends.DOCKER_IMAGE, tmp_path / "cfg", tmp_path / "raw", "Linux", "1000:1000"
    )
    assert config["image"] == "crossbario/autobahn-testsuite:25.10.1"
    assert config["command"] == ["wstest", "-m", "fuzzingclient", "-s", "/config/spec.json"]
    assert config["network_mode"] == "host"
    assert "extra_hosts" not in config
    assert config["volumes"] == {
        str((tmp_path / "cfg").resolve()): {"bind": "/config", "mode": "ro"},
        str((tmp_path / "raw").resolve()): {"bind": "/reports", "mode": "rw"},
    }
    assert config["user"] == "1000:1000"
    assert config["detach"] is True


def test_container_elsewhere_reaches_the_host_by_its_alias(tmp_path: Path) -> None:
    config = backends.container_config("img:1", tmp_path, tmp_path, "Darwin")
    assert "network_mode" not in config
    assert config["extra_hosts"] == {"host.docker.internal": "host-gateway"}
    assert "user" not in config


def test_testee_url_is_rewritten_for_the_container_only_off_linux() -> None:
    url = "ws://127.0.0.1:9001/echo?x=1"
    assert backends.url_for_container(url, "Linux") == url
    assert backends.url_for_container(url, "Darwin") == "ws://host.docker.internal:9001/echo?x=1"
    assert backends.url_for_container("ws://example.org:80/", "Windows") == "ws://example.org:80/"


def test_docker_without_engine_is_a_clear_error() -> None:
    if backends.docker_available():
        pytest.skip("a Docker engine answers here")
    with pytest.raises(backends.BackendError) as caught:
        backends.docker_client()
    assert "no Docker engine answers" in str(caught.value)
    assert "--backend local" in caught.value.hint


def test_auto_picks_docker_only_when_an_engine_answers() -> None:
    chosen = backends.choose("auto")
    expected = "docker" if backends.docker_available() else "local"
    assert chosen.name == expected


def test_unknown_backend_names_the_valid_ones() -> None:
    with pytest.raises(backends.BackendError, match="auto, local, docker"):
        backends.choose("podman")


def test_docker_backend_runs_the_fuzzer(tmp_path: Path, echo_server: str) -> None:
    if not backends.docker_available():
        pytest.skip("no Docker engine answers here (docker.from_env().ping() failed)")
    backend = backends.DockerBackend()
    backend.check()
    process = backend.start(backends.FuzzerSpec(echo_server, "echo", ["1.1.1"]), tmp_path)
    output = _drain(process)
    assert process.wait(300) == 0, output
    index = json.loads((tmp_path / results.RAW_DIR / "index.json").read_text())
    assert index["echo"]["1.1.1"]["behavior"] == "OK"
