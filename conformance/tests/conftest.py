"""Shared fixtures for the harness tests: real testees, the real fuzzer, a fake one.

Every run here is real: the websockets echo testee (or a deliberately faulty one) on loopback,
the Autobahn fuzzer from the local backend. Selections stay small so each run takes seconds.
"""

from __future__ import annotations

import os
import shlex
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from wsconform import backends

ROOT = Path(__file__).resolve().parents[2]
TESTEES = ROOT / "conformance" / "testees"
PYTHON = shlex.quote(sys.executable)
PLUGIN = "wsconform.pytest_plugin"

# websockets 17.4 here: these cases FAIL (7.1.5: the echo of the message sent before a close
# frame goes missing; 9.3.1-9.3.3 and 9.4.1-9.4.3: 4 MiB in tiny fragments is too slow).
WEBSOCKETS_FAILURES = ("7.1.5", "9.3.1", "9.3.2", "9.3.3", "9.4.1", "9.4.2", "9.4.3")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes a minute or more (real provisioning)")
    # wsconform_run comes from the installed plugin, as in a user's suite (not imported here,
    # which would shadow the plugin's fixture and its options with a second copy).
    if not config.pluginmanager.has_plugin(PLUGIN):
        raise pytest.UsageError(
            f"the {PLUGIN} plugin is not loaded: install wsconform (make install), or pass "
            f"-p {PLUGIN} when plugin autoloading is off"
        )


@pytest.fixture
def echo_cmd() -> str:
    """The websockets echo testee as a --server-cmd template."""
    return echo_command()


@pytest.fixture
def faulty_cmd() -> Callable[..., str]:
    """Templates for the faulty testee: ``faulty_cmd("die", 3)``."""
    return faulty_command


@pytest.fixture
def wait_for() -> Callable[..., None]:
    """``wait_for(path, text)``: block until a log file shows `text` (bounded)."""
    return wait_for_text


@pytest.fixture
def env_without_ci_summary() -> dict[str, str]:
    """The environment for a harness subprocess, without CI summary side effects."""
    return harness_env()


def echo_command() -> str:
    """The websockets echo testee as a --server-cmd template."""
    return f"{PYTHON} {shlex.quote(str(TESTEES / 'websockets_echo.py'))} {{port}}"


def faulty_command(mode: str, at: int = 1) -> str:
    """The faulty echo testee (die / stall / mute at connection `at`) as a template."""
    script = shlex.quote(str(TESTEES / "faulty_echo.py"))
    return f"{PYTHON} {script} {{port}} {mode} {at}"


@pytest.fixture(scope="session")
def local_backend() -> backends.LocalBackend:
    """The real fuzzer from the user's cache (provisioned on first use)."""
    backend = backends.LocalBackend()
    try:
        backend.check()
    except backends.BackendError as exc:
        autobahn_unavailable(f"the local fuzzer cannot run here: {exc}")
    return backend


def autobahn_unavailable(reason: str) -> NoReturn:
    """Skip a test that needs the real fuzzer; under CI=true, where it must run, fail it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the Autobahn tests: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def fake_fuzzer_cache(tmp_path: Path) -> Path:
    """A cache root whose "provisioned" testsuite is a Python that is not a real wstest.

    It answers ``wstest -a`` like the real one, then crashes on any run, as a broken install
    would.
    """
    venv = tmp_path / "cache" / "wsconform" / f"autobahn-{backends.FUZZER_VERSION}"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = "-a" ]; then\n'
        f'  echo "Autobahn 0.10.9"; echo "AutobahnTestSuite {backends.FUZZER_VERSION}"; exit 0\n'
        "fi\n"
        'echo "Traceback (most recent call last):"\n'
        'echo "ImportError: No module named twisted.internet" >&2\n'
        "exit 1\n"
    )
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    wstest = venv / "bin" / "wstest"
    wstest.write_text(f'#!/bin/sh\nexec "{python}" "$0" "$@"\n')
    wstest.chmod(wstest.stat().st_mode | stat.S_IXUSR)
    (venv / backends.PROVISIONED_MARKER).write_text(backends.FUZZER_VERSION + "\n")
    return tmp_path / "cache" / "wsconform"


@pytest.fixture
def echo_server(tmp_path: Path) -> Iterator[str]:
    """A running websockets echo testee; yields its URL."""
    from wsconform import testee

    running = testee.start(echo_command(), tmp_path / "echo-logs")
    with running:
        running.wait_ready()
        yield running.url


def wait_for_text(path: Path, text: str, timeout: float = 60.0) -> None:
    """Block until `text` appears in the file at `path` (bounded, so a hang fails the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


@pytest.fixture
def unused_port() -> int:
    """A port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def harness_env(**extra: str) -> dict[str, str]:
    """The environment for a harness subprocess: line output, no CI summary side effects."""
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    env.update(extra)
    return env
