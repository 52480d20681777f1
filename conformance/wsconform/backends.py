"""How the Autobahn fuzzer runs: a local Python 2.7 install, or its Docker image.

Both backends take the same input (a `FuzzerSpec` and a run directory) and return the same
handle (`FuzzerProcess`: the fuzzer's output lines, an interrupt that keeps the cases already
run, a wait). The fuzzer's raw reports land in ``<rundir>/raw``. This module knows nothing of
testees, gating or rendering; it only makes ``wstest -m fuzzingclient`` (testing a server)
or ``wstest -m fuzzingserver`` (`FuzzingServerSpec`: testing clients) run somewhere.

The testsuite is pinned (`FUZZER_VERSION`): its verdicts are the product's verdicts, so a run
made here must be comparable with a run made anywhere else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from wsconform import access
from wsconform.engines import EngineError
from wsconform.results import RAW_DIR as RAW_DIR  # the fuzzer writes into <rundir>/raw

FUZZER_VERSION = "25.10.1"
DOCKER_IMAGE = f"crossbario/autobahn-testsuite:{FUZZER_VERSION}"
# virtualenv 20.22 dropped support for creating Python 2.7 environments.
VIRTUALENV_REQUIREMENT = "virtualenv<20.22"
PYTHON2_ENV = "WSCONFORM_PYTHON2"
BACKENDS = ("auto", "local", "docker")
# The protocol version the fuzzer speaks: 18 is RFC 6455's final draft number.
WEBSOCKET_VERSION = 18
SPEC_FILE = "spec.json"
# Written into the testsuite's virtualenv last, once its wstest has run: "finished".
PROVISIONED_MARKER = ".wsconform-provisioned"

Step = Callable[[str], None]


class BackendError(EngineError):
    """The fuzzer cannot run here; `hint` says what the user can do about it."""


@dataclass(frozen=True)
class FuzzerSpec:
    """What one fuzzingclient run tests: one server, one agent name, a case selection."""

    url: str
    agent: str
    cases: Sequence[str] = ("*",)
    exclude: Sequence[str] = ()
    reach: access.Access = access.PLAIN

    def as_json(self, outdir: str, url: str | None = None) -> dict[str, Any]:
        """The spec file wstest reads; `outdir` and `url` as seen from where wstest runs."""
        server = access.fuzzer_server(url or self.url, self.agent, self.reach, WEBSOCKET_VERSION)
        return {
            "outdir": outdir,
            "servers": [server],
            "cases": list(self.cases),
            "exclude-cases": list(self.exclude),
            "exclude-agent-cases": {},
        }

    def wstest_args(self) -> list[str]:
        """wstest's mode arguments for this spec."""
        return ["-m", "fuzzingclient"]

    def published_ports(self) -> dict[str, int]:
        """Ports a container must publish when it cannot share the host's network."""
        return {}


@dataclass(frozen=True)
class FuzzingServerSpec(FuzzerSpec):
    """What one fuzzingserver run offers the clients that connect to it.

    wstest listens on `url`'s port (on every interface) and runs the selected cases for any
    client that asks; `agent` is the name the client is told to file its results under.
    """

    def as_json(self, outdir: str, url: str | None = None) -> dict[str, Any]:
        """The spec wstest reads; the listening URL is the same wherever wstest runs."""
        return {
            "url": self.url,
            "outdir": outdir,
            "options": {},
            "cases": list(self.cases),
            "exclude-cases": list(self.exclude),
            "exclude-agent-cases": {},
        }

    def wstest_args(self) -> list[str]:
        # -u 0: no embedded web server (it would take port 8080, shared by concurrent runs).
        return ["-m", "fuzzingserver", "-u", "0"]

    def published_ports(self) -> dict[str, int]:
        port = urlsplit(self.url).port or 80
        return {f"{port}/tcp": port}


class FuzzerProcess(Protocol):
    """A running fuzzer, whichever backend started it."""

    def lines(self) -> Iterator[str]:
        """The fuzzer's output (stdout and stderr merged), line by line, until it exits."""
        ...

    def interrupt(self) -> None:
        """Stop early; the local backend still writes reports for the cases that finished."""
        ...

    def wait(self, timeout: float | None = None) -> int:
        """The fuzzer's exit status (killing it when `timeout` passes)."""
        ...


class Backend(Protocol):
    """Where wstest runs."""

    name: str

    def check(self) -> str:
        """Make sure the fuzzer can run (provisioning it if needed); describe what will run."""
        ...

    def start(self, spec: FuzzerSpec, rundir: Path) -> FuzzerProcess:
        """Write the spec into `rundir` and start the fuzzer, reports into ``rundir/raw``."""
        ...


def quiet(_: str) -> None:
    """Default progress callback: say nothing."""


# ---------------------------------------------------------------------------- local backend

# Runs wstest inside the fuzzer's own Python 2.7 (so it is Python 2 source). wstest writes its
# reports only once every case has run; an interrupted run (SIGINT/SIGTERM stop Twisted's
# reactor) would otherwise lose everything, so reports for the cases that finished are written
# when the reactor shuts down without having written them. Output is line-buffered by -u.
# wstest installs its reactor on import, so it is imported before twisted's reactor is.
# SIGINT is how wsconform stops it: a fuzzer started with SIGINT ignored (wsconform run in the
# background of a shell without job control) gets Python's handler back, for Twisted installs
# its own only over that one.
WSTEST_BOOTSTRAP = """\
import signal
import sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from autobahntestsuite import fuzzing, wstest
from twisted.internet import reactor
factories = []
plain_init = fuzzing.FuzzingClientFactory.__init__
plain_reports = fuzzing.FuzzingClientFactory.createReports
def tracking_init(self, *args, **kwargs):
    self.wsconform_reported = False
    factories.append(self)
    plain_init(self, *args, **kwargs)
def marking_reports(self, *args, **kwargs):
    self.wsconform_reported = True
    return plain_reports(self, *args, **kwargs)
def partial_reports():
    for factory in factories:
        if not factory.wsconform_reported:
            print("Interrupted: writing reports for %d finished cases" % sum(
                len(cases) for cases in factory.agents.values()))
            factory.createReports()
fuzzing.FuzzingClientFactory.__init__ = tracking_init
fuzzing.FuzzingClientFactory.createReports = marking_reports
reactor.addSystemEventTrigger("before", "shutdown", partial_reports)
sys.argv = ["wstest"] + sys.argv[1:]
wstest.run()
"""


def cache_root(env: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/wsconform`` (default ``~/.cache/wsconform``): shared by all runs."""
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wsconform"


def python_version(executable: str) -> tuple[int, ...] | None:
    """The interpreter's (major, minor, micro), or None when it does not run."""
    try:
        done = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", done.stdout.strip())
    if done.returncode != 0 or match is None:
        return None
    return tuple(int(part) for part in match.groups())


NO_PYTHON2_HINT = (
    "the Autobahn testsuite runs on Python 2.7 only: install it (e.g. `pyenv install 2.7.18`) "
    f"and pass --python2 PATH or set {PYTHON2_ENV}, or use --backend docker"
)


def find_python2(explicit: str | None = None, env: dict[str, str] | None = None) -> str:
    """Locate Python 2.7: `explicit`, then ``$WSCONFORM_PYTHON2``, ``python2.7`` on PATH, pyenv.

    An explicitly named interpreter that is not 2.7 is an error, not skipped: the user asked
    for it.
    """
    env = dict(os.environ) if env is None else env
    named = explicit or env.get(PYTHON2_ENV)
    if named:
        version = python_version(named)
        if version is None or version[:2] != (2, 7):
            found = (
                "does not run" if version is None else "is Python " + ".".join(map(str, version))
            )
            raise BackendError(f"{named} {found}, not Python 2.7", NO_PYTHON2_HINT)
        return named
    candidates: list[str] = []
    on_path = shutil.which("python2.7", path=env.get("PATH"))
    if on_path:
        candidates.append(on_path)
    candidates.extend(_pyenv_pythons(env))
    for candidate in candidates:
        version = python_version(candidate)
        if version is not None and version[:2] == (2, 7):
            return candidate
    raise BackendError(
        f"no Python 2.7 found (looked at --python2, ${PYTHON2_ENV}, python2.7 on PATH, pyenv)",
        NO_PYTHON2_HINT,
    )


def _pyenv_pythons(env: dict[str, str]) -> list[str]:
    """Python 2.7 interpreters pyenv knows about, newest first."""
    pyenv = shutil.which("pyenv", path=env.get("PATH"))
    if pyenv is None:
        return []
    try:
        listed = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    versions = [
        v.strip() for v in listed.stdout.splitlines() if re.fullmatch(r"2\.7\.\d+", v.strip())
    ]
    versions.sort(key=lambda v: int(v.rsplit(".", 1)[1]), reverse=True)
    found = []
    for version in versions:
        prefix = subprocess.run(
            [pyenv, "prefix", version], capture_output=True, text=True, timeout=30, check=False
        )
        executable = Path(prefix.stdout.strip()) / "bin" / "python2.7"
        if prefix.returncode == 0 and executable.exists():
            found.append(str(executable))
    return found


def wstest_version(venv: Path) -> str:
    """The testsuite version ``bin/wstest -a`` reports; BackendError if it does not run.

    The console script itself is run (not ``bin/python bin/wstest``), so an interpreter line
    that points nowhere is caught here rather than by the first user who runs it by hand.
    """
    try:
        done = subprocess.run(
            [str(venv / "bin" / "wstest"), "-a"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(
            f"wstest in {venv} does not run: {exc}", _reprovision_hint(venv)
        ) from exc
    match = re.search(r"AutobahnTestSuite (\S+)", done.stdout)
    if done.returncode != 0 or match is None:
        tail = _tail(done.stdout + done.stderr)
        raise BackendError(
            f"wstest in {venv} does not run (exit {done.returncode}):\n{tail}",
            _reprovision_hint(venv),
        )
    return match.group(1)


def _reprovision_hint(venv: Path) -> str:
    return f"remove {venv} and run again to provision the testsuite afresh"


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _run_step(command: list[str], step: Step, what: str) -> None:
    """Run one provisioning command, relaying its output lines to `step`."""
    step(what)
    output: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            if line.strip():
                step(f"{what}: {line.strip()[:100]}")
    if process.returncode != 0:
        raise BackendError(
            f"{what} failed (exit {process.returncode}):\n" + "\n".join(output[-20:]),
            "check the package registry is reachable, or use --backend docker",
        )


def ensure_virtualenv(step: Step = quiet) -> None:
    """Install ``virtualenv<20.22`` into this interpreter's environment when it is missing."""
    probe = subprocess.run(
        [sys.executable, "-c", "import virtualenv; print(virtualenv.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    version = tuple(int(p) for p in re.findall(r"\d+", probe.stdout)[:2])
    if probe.returncode == 0 and version < (20, 22):
        return
    _run_step(
        [sys.executable, "-m", "pip", "install", VIRTUALENV_REQUIREMENT],
        step,
        f"installing {VIRTUALENV_REQUIREMENT}",
    )


def provision(python2: str, root: Path | None = None, step: Step = quiet) -> Path:
    """The virtualenv holding ``autobahntestsuite==FUZZER_VERSION``, created once per cache.

    Built in its final place (a virtualenv's scripts name their interpreter by absolute path,
    so one built elsewhere and moved cannot run), under a lock so two runs never provision
    twice. A marker written last, once ``wstest -a`` has answered with the pinned version,
    tells a finished environment from a half-built one; anything without it is rebuilt.
    """
    root = cache_root() if root is None else root
    venv = venv_path(root)
    if _provisioned(venv):
        return venv
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"autobahn-{FUZZER_VERSION}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            step("waiting for another run that is provisioning the testsuite")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if _provisioned(venv):
            return venv
        if venv.exists():  # half-built or broken: replaced, never used
            shutil.rmtree(venv)
        try:
            ensure_virtualenv(step)
            _run_step(
                [sys.executable, "-m", "virtualenv", "--no-download", "-p", python2, str(venv)],
                step,
                "creating a Python 2.7 virtualenv",
            )
            _run_step(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    f"autobahntestsuite=={FUZZER_VERSION}",
                ],
                step,
                f"installing autobahntestsuite=={FUZZER_VERSION}",
            )
            installed = wstest_version(venv)
            if installed != FUZZER_VERSION:
                raise BackendError(f"provisioned wstest reports {installed}, not {FUZZER_VERSION}")
            (venv / PROVISIONED_MARKER).write_text(installed + "\n")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
    step(f"provisioned autobahntestsuite {FUZZER_VERSION} in {venv}")
    return venv


def venv_path(root: Path) -> Path:
    """Where the pinned testsuite lives inside a cache root."""
    return root / f"autobahn-{FUZZER_VERSION}"


def discard(venv: Path) -> None:
    """Remove a provisioned environment that no longer runs, so the next check rebuilds it."""
    shutil.rmtree(venv, ignore_errors=True)


def _provisioned(venv: Path) -> bool:
    return (venv / PROVISIONED_MARKER).is_file()


class LocalFuzzer:
    """wstest as a child process of ours, in its own session (so we decide how it stops)."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        self._process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

    def lines(self) -> Iterator[str]:
        assert self._process.stdout is not None
        with self._process.stdout as output:  # the pipe is closed once the output ends
            for line in output:
                yield line.rstrip("\n")

    def interrupt(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self._process.wait()


@dataclass
class LocalBackend:
    """wstest from a virtualenv provisioned in the user's cache from a local Python 2.7."""

    python2: str | None = None
    root: Path | None = None
    step: Step = quiet
    name: str = "local"
    venv: Path | None = field(default=None, init=False)

    def check(self) -> str:
        """Provision on first use; a cached install is run before it is trusted.

        One that no longer starts (its interpreter moved, a package deleted) is rebuilt once.
        """
        venv = venv_path(cache_root() if self.root is None else self.root)
        if _provisioned(venv):
            try:
                version = wstest_version(venv)
            except BackendError as broken:
                self.step(f"the cached testsuite does not run, rebuilding it: {broken}")
                discard(venv)
            else:
                self.venv = venv
                return f"local wstest {version} ({venv})"
        venv = provision(find_python2(self.python2), venv.parent, self.step)
        version = wstest_version(venv)
        self.venv = venv
        return f"local wstest {version} ({venv})"

    def start(self, spec: FuzzerSpec, rundir: Path) -> FuzzerProcess:
        if self.venv is None:
            self.check()
        assert self.venv is not None
        rundir = rundir.resolve()
        raw = rundir / RAW_DIR
        raw.mkdir(parents=True, exist_ok=True)
        spec_path = rundir / SPEC_FILE
        spec_path.write_text(json.dumps(spec.as_json(str(raw)), indent=2) + "\n")
        python = str(self.venv / "bin" / "python")
        command = [
            python,
            "-u",
            "-c",
            WSTEST_BOOTSTRAP,
            *spec.wstest_args(),
            "-s",
            str(spec_path),
        ]
        return LocalFuzzer(command, rundir)


# --------------------------------------------------------------------------- docker backend

CONTAINER_CONFIG_DIR = "/config"
CONTAINER_REPORTS_DIR = "/reports"
DOCKER_HOST_ALIAS = "host.docker.internal"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def url_for_container(url: str, system: str) -> str:
    """The testee's URL as the container sees it.

    On Linux the container shares the host's network, so the URL is unchanged; elsewhere
    (Docker Desktop) the host is reached through `host.docker.internal`.
    """
    if system == "Linux":
        return url
    parts = urlsplit(url)
    if parts.hostname not in _LOOPBACK_HOSTS:
        return url
    netloc = DOCKER_HOST_ALIAS + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def container_config(
    image: str,
    config_dir: Path,
    reports_dir: Path,
    system: str,
    user: str | None = None,
    mode_args: Sequence[str] = ("-m", "fuzzingclient"),
    ports: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``docker.containers.run`` that run the fuzzer once.

    Pure: what the container gets is decided here and unit-tested, apart from any engine.
    """
    config: dict[str, Any] = {
        "image": image,
        "command": ["wstest", *mode_args, "-s", f"{CONTAINER_CONFIG_DIR}/{SPEC_FILE}"],
        "volumes": {
            str(config_dir.resolve()): {"bind": CONTAINER_CONFIG_DIR, "mode": "ro"},
            str(reports_dir.resolve()): {"bind": CONTAINER_REPORTS_DIR, "mode": "rw"},
        },
        "environment": {"PYTHONUNBUFFERED": "1"},
        "detach": True,
    }
    if system == "Linux":
        config["network_mode"] = "host"
    else:
        config["extra_hosts"] = {DOCKER_HOST_ALIAS: "host-gateway"}
        if ports:  # a fuzzing server in the container, reached from the host
            config["ports"] = dict(ports)
    if user is not None:
        config["user"] = user
    return config


def docker_client() -> Any:
    """A docker SDK client whose engine answers a ping; BackendError otherwise."""
    try:
        import docker
    except ImportError as exc:
        raise BackendError(
            "the docker SDK is not installed", "pip install 'wsconform[docker]'"
        ) from exc
    hint = "start Docker (or set DOCKER_HOST), or use --backend local"
    # The SDK leaks the socket of a failed connection to a unix socket: probe it ourselves.
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://"):
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(host.removeprefix("unix://"))
        except OSError as exc:
            raise BackendError(f"no Docker engine answers ({host}: {exc.strerror})", hint) from exc
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types for "no engine"
        raise BackendError(
            f"no Docker engine answers ({exc.__class__.__name__}: {exc})", hint
        ) from exc
    return client


class DockerFuzzer:
    """wstest in a container; its logs are the output, its exit status the status."""

    def __init__(self, client: Any, config: dict[str, Any]) -> None:
        self._container = client.containers.run(**config)

    def lines(self) -> Iterator[str]:
        pending = b""
        for chunk in self._container.logs(stream=True, follow=True):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", "replace")
        if pending:
            yield pending.decode("utf-8", "replace")

    def interrupt(self) -> None:
        with contextlib.suppress(Exception):
            self._container.stop(timeout=10)

    def wait(self, timeout: float | None = None) -> int:
        try:
            status = self._container.wait(timeout=timeout)
        except Exception:
            self._container.kill()
            status = self._container.wait()
        finally:
            with contextlib.suppress(Exception):
                self._container.remove(force=True)
        return int(status.get("StatusCode", 1))


@dataclass
class DockerBackend:
    """The testsuite's own image, pulled once (pinned tag, overridable)."""

    image: str = DOCKER_IMAGE
    step: Step = quiet
    name: str = "docker"
    client: Any = field(default=None, init=False)

    def check(self) -> str:
        self.client = docker_client()
        self._ensure_image()
        return f"docker image {self.image}"

    def _ensure_image(self) -> None:
        import docker.errors

        try:
            self.client.images.get(self.image)
            return
        except docker.errors.ImageNotFound:
            pass
        repository, _, tag = self.image.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = self.image, "latest"
        self.step(f"pulling {self.image}")
        layers: dict[str, str] = {}
        for event in self.client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise BackendError(f"pulling {self.image} failed: {event['error']}")
            if "id" in event and "status" in event:
                layers[event["id"]] = event["status"]
                done = sum(1 for s in layers.values() if s in ("Pull complete", "Already exists"))
                self.step(f"pulling {self.image}: {done}/{len(layers)} layers")

    def start(self, spec: FuzzerSpec, rundir: Path) -> FuzzerProcess:
        if self.client is None:
            self.check()
        system = platform.system()
        raw = rundir / RAW_DIR
        raw.mkdir(parents=True, exist_ok=True)
        config_dir = rundir / "docker-config"
        config_dir.mkdir(exist_ok=True)
        body = spec.as_json(CONTAINER_REPORTS_DIR, url_for_container(spec.url, system))
        (config_dir / SPEC_FILE).write_text(json.dumps(body, indent=2) + "\n")
        user = f"{os.getuid()}:{os.getgid()}" if hasattr(os, "getuid") else None
        config = container_config(
            self.image,
            config_dir,
            raw,
            system,
            user,
            mode_args=spec.wstest_args(),
            ports=spec.published_ports(),
        )
        return DockerFuzzer(self.client, config)


# ----------------------------------------------------------------------------- selection


def docker_available() -> bool:
    """True when a Docker engine answers here."""
    try:
        docker_client().close()
    except BackendError:
        return False
    return True


def choose(
    name: str,
    python2: str | None = None,
    image: str = DOCKER_IMAGE,
    step: Step = quiet,
    root: Path | None = None,
) -> Backend:
    """The backend called `name`; `auto` is docker when an engine answers, else local."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}", "choose one of " + ", ".join(BACKENDS))
    if name == "docker" or (name == "auto" and docker_available()):
        return DockerBackend(image=image, step=step)
    return LocalBackend(python2=python2, root=root, step=step)


def output_reader(process: FuzzerProcess) -> queue.Queue[str | None]:
    """The fuzzer's lines on a queue (None at the end), read by a daemon thread.

    The runner's main thread waits on the queue, so Ctrl-C reaches it promptly instead of
    arriving inside a blocked read.
    """
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        try:
            for line in process.lines():
                lines.put(line)
        finally:
            lines.put(None)

    threading.Thread(target=pump, name="fuzzer-output", daemon=True).start()
    return lines
