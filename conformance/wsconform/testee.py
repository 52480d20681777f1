"""Starting the implementation under test: a command with a ``{port}`` placeholder.

Placeholders: ``{port}`` (required) and ``{host}``, filled into each word of the split
command; ``{python}``, the interpreter running wsconform, shell-quoted and filled in before
the split, so ``'{python} my_server.py {port}'`` runs the venv's Python even when the venv is
not activated (``python`` on PATH may be another one, without the testee's packages). Client
commands (`client_runner`) take ``{python}`` the same way.

The harness picks a free port, starts the command in its own session (so a Ctrl-C meant for
the harness does not kill the testee before the harness has stopped the fuzzer), waits until
the port accepts TCP connections (bounded), and stops the whole session afterwards. The
testee's stdout and stderr go to log files in the run's directory; their tails explain a
testee that never started or died mid-run.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

# Long enough for an interpreter to import a framework on a slow CI runner, short enough
# that a testee which will never listen fails the job quickly.
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
# A server given by --url is already running: a refusal is an answer (a closed port), not a
# server still starting, so it is retried only this long (a restart in progress) then reported.
REFUSED_GRACE = 2.0
POLL_INTERVAL = 0.01
STDOUT_LOG = "testee-stdout.log"
STDERR_LOG = "testee-stderr.log"


class TesteeError(Exception):
    """The testee could not be started, or nothing answers at its URL."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        message = super().__str__()
        if self.stderr_tail:
            return f"{message}\n--- testee stderr (tail) ---\n{self.stderr_tail}"
        return message


PYTHON = "{python}"


def with_python(template: str) -> str:
    """`template` with ``{python}`` replaced by this interpreter, shell-quoted."""
    return template.replace(PYTHON, shlex.quote(sys.executable))


def reference_command() -> str:
    """The command that runs our reference server: the default testee."""
    return f"{PYTHON} -m rfc6455 serve --host {{host}} --port {{port}}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def command_for(template: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """Split `template` like a shell would and fill in ``{port}`` (and ``{host}``, ``{python}``)."""
    if "{port}" not in template:
        raise ValueError(f"the server command must contain {{port}}: {template!r}")
    try:
        words = shlex.split(with_python(template))
    except ValueError as exc:
        raise ValueError(f"cannot parse the server command {template!r}: {exc}") from exc
    if not words:
        raise ValueError("the server command is empty")
    return [word.replace("{port}", str(port)).replace("{host}", host) for word in words]


def connection_error(host: str, port: int, timeout: float = 1.0) -> OSError | None:
    """Why a TCP connection to host:port fails, or None when it succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc


def accepts_connections(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to host:port succeeds."""
    return connection_error(host, port, timeout) is None


def wait_for_url(
    url: str, timeout: float = STARTUP_TIMEOUT, refused_grace: float = REFUSED_GRACE
) -> None:
    """Wait until the server behind `url` accepts TCP connections; TesteeError if it never does.

    Refusals end the wait after `refused_grace` seconds (nothing listens on that port);
    anything else (no route yet, a silent host) is retried until `timeout`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    started = time.monotonic()
    refused_since: float | None = None
    while (error := connection_error(parts.hostname, port)) is not None:
        now = time.monotonic()
        if isinstance(error, ConnectionRefusedError):
            refused_since = now if refused_since is None else refused_since
            if now - refused_since >= refused_grace:
                raise TesteeError(
                    f"{parts.hostname} refused connections on port {port} ({url}): nothing "
                    "listens there; start the server first, or check the port"
                )
        else:
            refused_since = None
        if now - started >= timeout:
            raise TesteeError(
                f"nothing accepts connections at {url} (waited {timeout:g} s; last: {error})"
            )
        time.sleep(POLL_INTERVAL)


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ('' when it is missing)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclass
class Testee:
    """A started testee process: its URL, its logs, and how it ended."""

    command: list[str]
    host: str
    port: int
    process: subprocess.Popen[bytes]
    logdir: Path
    stopped: bool = False

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def stderr_log(self) -> Path:
        return self.logdir / STDERR_LOG

    def exited(self) -> int | None:
        """The exit status when the testee exited on its own (or was stopped), else None."""
        return self.process.poll()

    def stderr_tail(self, lines: int = 20) -> str:
        return tail(self.stderr_log, lines)

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Block until the testee accepts TCP connections on its port.

        Raises TesteeError (with the stderr tail) when it exits first or the time runs out.
        """
        deadline = time.monotonic() + timeout
        while not accepts_connections(self.host, self.port, timeout=POLL_INTERVAL * 4):
            status = self.process.poll()
            if status is not None:
                raise TesteeError(
                    f"the testee exited with status {status} before accepting connections "
                    f"({shlex.join(self.command)})",
                    self.stderr_tail(),
                )
            if time.monotonic() >= deadline:
                self.stop()
                raise TesteeError(
                    f"the testee did not accept connections on port {self.port} within "
                    f"{timeout:g} s ({shlex.join(self.command)})",
                    self.stderr_tail(),
                )
            time.sleep(POLL_INTERVAL)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Terminate the testee's whole session; kill it if it does not go in time."""
        self.stopped = True
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        else:  # the leader is gone; children it left in its session must not linger
            self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def __enter__(self) -> Testee:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start(template: str, logdir: Path, host: str = "127.0.0.1", port: int | None = None) -> Testee:
    """Start the testee from `template` on a free port, logging into `logdir`.

    Does not wait: call `Testee.wait_ready`.
    """
    port = free_port(host) if port is None else port
    return launch(command_for(template, port, host), logdir, host, port)


def launch(
    command: list[str], logdir: Path, host: str = "", port: int = 0, role: str = "testee"
) -> Testee:
    """Run `command` in its own session, its output into `logdir`'s logs (a client under
    test is started this way too, with no port of its own)."""
    logdir.mkdir(parents=True, exist_ok=True)
    with open(logdir / STDOUT_LOG, "wb") as stdout, open(logdir / STDERR_LOG, "wb") as stderr:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        except OSError as exc:
            raise TesteeError(f"cannot start the {role} {shlex.join(command)}: {exc}") from exc
    return Testee(command=command, host=host, port=port, process=process, logdir=logdir)
