"""The testee process: placeholder filling, readiness, stderr tails, teardown (real processes)."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from wsconform import testee

PYTHON = shlex.quote(sys.executable)


def test_command_for_fills_port_and_host_in_every_word() -> None:
    command = testee.command_for("srv --listen {host}:{port} --name 'a b'", 8123, "127.0.0.2")
    assert command == ["srv", "--listen", "127.0.0.2:8123", "--name", "a b"]


def test_command_for_fills_python_with_this_interpreter_as_one_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", "/opt/my venv/bin/python3")
    command = testee.command_for("{python} -m srv --port {port}", 8123)
    assert command == ["/opt/my venv/bin/python3", "-m", "srv", "--port", "8123"]
    # Shell-quoted, so it stays one word inside a double-quoted shell command too.
    nested = testee.command_for('sh -c "{python} srv.py {port}"', 8123)
    assert nested == ["sh", "-c", "'/opt/my venv/bin/python3' srv.py 8123"]


def test_command_without_port_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\{port\}"):
        testee.command_for("srv --port 9000", 8123)


def test_unbalanced_quotes_in_command_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        testee.command_for("srv 'oops {port}", 8123)


def test_free_port_is_not_listening() -> None:
    port = testee.free_port()
    assert not testee.accepts_connections("127.0.0.1", port)


def test_echo_testee_starts_answers_and_stops(tmp_path: Path, echo_cmd: str) -> None:
    running = testee.start(echo_cmd, tmp_path)
    with running:
        running.wait_ready()
        assert running.url == f"ws://127.0.0.1:{running.port}"

        async def round_trip() -> str | bytes:
            async with connect(running.url) as client:
                await client.send("hello")
                return await client.recv()

        assert asyncio.run(round_trip()) == "hello"
    assert running.exited() is not None
    assert not testee.accepts_connections("127.0.0.1", running.port)


def test_testee_that_exits_at_start_reports_its_stderr(tmp_path: Path) -> None:
    command = f"{PYTHON} -c 'import sys; sys.exit(\"cannot bind port \" + sys.argv[1])' {{port}}"
    running = testee.start(command, tmp_path)
    with pytest.raises(testee.TesteeError) as caught:
        running.wait_ready()
    assert f"cannot bind port {running.port}" in caught.value.stderr_tail
    assert "exited with status 1" in str(caught.value)


def test_testee_that_never_listens_times_out_with_its_stderr(tmp_path: Path) -> None:
    command = (
        f'{PYTHON} -c \'import sys, time; print("warming up", file=sys.stderr, flush=True);'
        " time.sleep(600)' {port}"
    )
    running = testee.start(command, tmp_path)
    with pytest.raises(testee.TesteeError) as caught:
        running.wait_ready(timeout=0.5)
    assert "did not accept connections" in str(caught.value)
    assert "warming up" in str(caught.value)
    assert running.exited() is not None  # it was stopped, not left running


def test_stop_ends_the_testees_whole_session(tmp_path: Path, echo_cmd: str) -> None:
    # A shell wrapper whose background child would outlive a plain terminate().
    inner = echo_cmd.replace("{port}", "$1")
    command = f"sh -c {shlex.quote('sleep 600 & exec ' + inner)} sh {{port}}"
    running = testee.start(command, tmp_path)
    running.wait_ready()
    group = os.getpgid(running.process.pid)
    running.stop()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("a process of the testee's session survived stop()")


def test_wait_for_url_refuses_non_websocket_urls() -> None:
    with pytest.raises(ValueError, match="ws://"):
        testee.wait_for_url("http://127.0.0.1:80/")


def test_wait_for_url_to_a_closed_port_says_the_port_refused() -> None:
    # The start-up timeout is long; the refusal ends the wait (retried for the grace only).
    with pytest.raises(testee.TesteeError, match=r"127\.0\.0\.1 refused connections on port"):
        testee.wait_for_url(f"ws://127.0.0.1:{testee.free_port()}/", timeout=60)


def test_wait_for_url_gives_up_at_the_timeout_when_connections_are_not_refused() -> None:
    with pytest.raises(testee.TesteeError, match="nothing accepts connections"):
        # No refusal ever lasts the grace: the timeout ends the wait.
        testee.wait_for_url(f"ws://127.0.0.1:{testee.free_port()}/", 0.3, refused_grace=60)


def test_reference_command_runs_the_rfc6455_server_on_the_placeholder_port() -> None:
    command = testee.command_for(testee.reference_command(), 9000)
    assert command[:3] == [sys.executable, "-m", "rfc6455"]
    assert command[command.index("--port") + 1] == "9000"
