"""Testing a client: the fuzzing server, the client's case loop, bounds, then gate and render.

A client run is the server run turned around. wstest runs as a fuzzing server
(`backends.FuzzingServerSpec`) on a free port; the client command, with ``{url}`` and
``{agent}`` filled in, runs *all* the selected cases itself, as Autobahn's client testees do
(``/getCaseCount``, then ``/runCase?case=N&agent=A`` for N = 1..count, echoing every message,
then ``/updateReports?agent=A``). Meanwhile the harness

- relays the fuzzer's output (``Running test case ID ...`` as each case starts) to the same
  progress view as a server run, and to ``fuzzer.log``;
- asks ``/getCaseStatus?case=N&agent=A`` for each case in turn: the fuzzer answers once the
  case has finished, with its behavior, which marks progress (and a failing case is
  reported as it happens);
- bounds the client: when neither a case starts nor a case finishes for ``case_timeout``
  seconds (plus the fuzzer's own time limit for the case due, `case_bound`), the client
  is stopped, the case it hung on is failed with that reason, and the
  cases it never ran are failed too (``results.mark_missing``); a client that exits early
  has its unrun cases failed with its stderr tail, like a testee that died;
- asks ``/updateReports`` itself at the end (whether or not the client did), then stops the
  fuzzer and reads ``index.json`` from the run's ``raw/``.

Selection, gate, reports and exit codes are the pipeline's, as for a server run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import shlex
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from wsconform import backends, catalog, engines, pipeline, progress, results, runner, testee
from wsconform.engines import autobahn

#: Seconds without progress (no case started, none finished) before the client counts as
#: hung, on top of the time limit the fuzzer itself gives the case (`FUZZER_CASE_LIMITS`).
#: Outside 9.x, 12.x and 13.x the fuzzer's own waits are 10 s at most.
CASE_TIMEOUT = 60.0
#: The longest time limit the fuzzer sets on a case of the category (its WAITSECS): 100 s
#: in 9.x (9.1.3-9.1.6, ...), up to 480 s in 12.x and 13.x (1000 messages of 128 KiB).
FUZZER_CASE_LIMITS = {"9": 100.0, "12": 480.0, "13": 480.0}
#: Seconds the client gets to call /updateReports and exit once its last case finished.
CLIENT_EXIT_GRACE = 15.0
#: Seconds the fuzzer gets to report a case whose connection ended as the client exited.
LAST_STATUS_GRACE = 2.0
#: Seconds for one request of ours to the fuzzing server (/updateReports).
REQUEST_TIMEOUT = 60.0
POLL_INTERVAL = 0.1
# How long a stopped fuzzing server gets to exit.
STOP_GRACE = 30.0

_PASSING = ("OK", "INFORMATIONAL")


def reference_client_command() -> str:
    """The command that runs our own client through the cases: the default client."""
    return f"{testee.PYTHON} -m rfc6455 client-testee --url {{url}} --agent {{agent}}"


def case_bound(case_id: str, case_timeout: float = CASE_TIMEOUT) -> float:
    """Seconds the client may go without progress while case `case_id` is due."""
    return case_timeout + FUZZER_CASE_LIMITS.get(catalog.category_of(case_id), 0.0)


def client_command_for(template: str, url: str, agent: str) -> list[str]:
    """Split `template` like a shell would and fill in ``{url}`` and ``{agent}`` (and
    ``{python}``, as `testee.command_for` does)."""
    for placeholder in ("{url}", "{agent}"):
        if placeholder not in template:
            raise ValueError(f"the client command must contain {placeholder}: {template!r}")
    try:
        words = shlex.split(testee.with_python(template))
    except ValueError as exc:
        raise ValueError(f"cannot parse the client command {template!r}: {exc}") from exc
    return [word.replace("{url}", url).replace("{agent}", agent) for word in words]


@dataclass(frozen=True, kw_only=True)
class ClientRunConfig(pipeline.RunSettings):
    """Everything one `wsconform run-client` needs: the shared settings and the client under
    test."""

    client_cmd: str | None = None
    case_timeout: float = CASE_TIMEOUT


@dataclass
class _Watch:
    """What happened while the client ran its cases."""

    finished: dict[str, str] = field(default_factory=dict)  # case id -> behavior
    hung_on: str | None = None  # the case the client hung on (stopped by us)
    hung_after: float = 0.0  # seconds without progress before it was stopped
    client_status: int | None = None  # its exit status when it exited on its own
    interrupted: bool = False
    in_flight: str | None = None  # interrupted: the case the fuzzer had started last


def execute(
    config: ClientRunConfig,
    engine: autobahn.AutobahnEngine,
    view: progress.View,
    say: pipeline.Say,
) -> pipeline.RunOutcome:
    """Run the client through the fuzzing server's cases, then gate and render the reports.

    Only the Autobahn engine has a fuzzing-server mode; its backend runs wstest here.
    """
    backend = engine.backend

    def play(selected: list[str]) -> results.RunResults:
        info = pipeline.prepare(engine, selected, say)
        port = testee.free_port()
        url = f"ws://127.0.0.1:{port}"
        template = config.client_cmd or reference_client_command()
        try:
            command = client_command_for(template, url, config.agent)
        except ValueError as exc:
            raise pipeline.ConfigError(str(exc)) from exc
        spec = backends.FuzzingServerSpec(url, config.agent, selected)
        try:
            process = backend.start(spec, config.outdir)
        except backends.BackendError as exc:
            raise pipeline.RunError(f"the fuzzer cannot run: {exc}") from exc
        session = _FuzzingSession(process, config.outdir, selected, view)
        try:
            session.wait_listening(port, config.startup_timeout)
            say(f"fuzzing server on {url}; {len(selected)} cases for agent {config.agent!r}")
            say(f"client: {shlex.join(command)}")
            try:
                client = testee.launch(command, config.outdir, role="client")
            except testee.TesteeError as exc:
                raise pipeline.RunError(str(exc)) from exc
            try:
                watch = session.watch(client, url, config, say)
            finally:
                client.stop()
            session.update_reports(url, config.agent)
        finally:
            session.stop()
        if watch.interrupted:
            watch.in_flight = session.last_started
        run = _collect(config, selected, watch, client.stderr_tail(), session.tail())
        run.engine = info
        return run

    return pipeline.execute(config, play)


async def case_status(url: str, number: int, agent: str) -> str:
    """The behavior of case `number` for `agent`, once the fuzzer has finished it."""
    from rfc6455.client import connect  # here: every other command starts 0.15 s sooner

    query = f"{url}/getCaseStatus?case={number}&agent={quote(agent, safe='')}"
    async with connect(query, extensions=(), open_timeout=REQUEST_TIMEOUT) as ws:
        message = await ws.recv()
    answer = json.loads(message)
    behavior = answer.get("behavior") if isinstance(answer, dict) else None
    return behavior if isinstance(behavior, str) else "?"


async def _update_reports(url: str, agent: str) -> None:
    from rfc6455.client import connect

    query = f"{url}/updateReports?agent={quote(agent, safe='')}"
    async with connect(query, extensions=(), open_timeout=REQUEST_TIMEOUT) as ws:
        await ws.wait_closed()


class _FuzzingSession:
    """The running fuzzing server: its output relayed to the log, the tail and the progress."""

    def __init__(
        self,
        process: backends.FuzzerProcess,
        outdir: Path,
        selected: list[str],
        view: progress.View,
    ) -> None:
        self._fuzzer = autobahn.FuzzerRun(process)
        self._log = open(outdir / pipeline.FUZZER_LOG, "w")  # noqa: SIM115 (closed in stop)
        self._tail: deque[str] = deque(maxlen=runner.OUTPUT_TAIL_LINES)
        self._tracker = progress.Progress(view, cases=selected)
        self._selected = selected
        self._ended = False
        self._all_finished = False
        self.last_activity = time.monotonic()
        #: The last case the fuzzer started: every case it started before is finished.
        self.last_started: str | None = None

    def tail(self) -> str:
        return "\n".join(self._tail)

    def pump(self, timeout: float = 0.0) -> None:
        """Relay the output available now (waiting up to `timeout` for the first line)."""
        events = self._fuzzer.events
        while not self._ended:
            try:
                event = events.get(timeout=timeout) if timeout else events.get_nowait()
            except queue.Empty:
                return
            timeout = 0.0
            if event is None:
                self._ended = True
            elif isinstance(event, engines.Output):
                self._log.write(event.line + "\n")
                self._tail.append(event.line)
            elif isinstance(event, engines.CaseStarted):
                self._tracker.start(event.case_id)
                self.last_started = event.case_id
                self.last_activity = time.monotonic()

    def _crashed(self, when: str) -> pipeline.FuzzerCrashed:
        status = self._fuzzer.wait(STOP_GRACE)
        return pipeline.FuzzerCrashed(
            f"the fuzzing server exited with status {status} {when}",
            f"--- fuzzer output (tail) ---\n{self.tail()}",
        )

    def wait_listening(self, port: int, timeout: float) -> None:
        """Block until the fuzzing server accepts connections; FuzzerCrashed if it never does."""
        deadline = time.monotonic() + timeout
        while not testee.accepts_connections("127.0.0.1", port, timeout=0.2):
            self.pump(testee.POLL_INTERVAL)
            if self._ended:
                raise self._crashed("before listening")
            if time.monotonic() >= deadline:
                raise pipeline.FuzzerCrashed(
                    f"the fuzzing server did not listen on port {port} within {timeout:g} s",
                    f"--- fuzzer output (tail) ---\n{self.tail()}",
                )

    def watch(
        self, client: testee.Testee, url: str, config: ClientRunConfig, say: pipeline.Say
    ) -> _Watch:
        """Follow the client through the cases until it exits, hangs, or Ctrl-C."""
        watch = _Watch()
        try:
            asyncio.run(self._follow(client, url, config, say, watch))
        except KeyboardInterrupt:
            watch.interrupted = True
        return watch

    async def _follow(
        self,
        client: testee.Testee,
        url: str,
        config: ClientRunConfig,
        say: pipeline.Say,
        watch: _Watch,
    ) -> None:
        self.last_activity = time.monotonic()
        number = 1
        status: asyncio.Task[str] | None = None
        exited_at: float | None = None
        try:
            while number <= len(self._selected):
                case_id = self._selected[number - 1]
                if status is None:
                    status = asyncio.create_task(case_status(url, number, config.agent))
                await asyncio.wait({status}, timeout=POLL_INTERVAL)
                self.pump()
                if self._ended:
                    raise self._crashed("while the client was running")
                if status.done():
                    if status.cancelled() or status.exception() is not None:
                        status = None  # the query failed (e.g. refused): ask again
                        await asyncio.sleep(POLL_INTERVAL)
                        continue
                    behavior = status.result()
                    watch.finished[case_id] = behavior
                    if behavior not in _PASSING:
                        say(f"case {case_id}: {behavior}")
                    self.last_activity = time.monotonic()
                    status = None
                    number += 1
                    continue
                now = time.monotonic()
                if exited_at is None and client.exited() is not None:
                    exited_at = now
                if exited_at is not None:
                    if now - exited_at >= LAST_STATUS_GRACE:
                        watch.client_status = client.exited()
                        return  # the client is gone; what it did not run is missing
                elif now - self.last_activity >= case_bound(case_id, config.case_timeout):
                    watch.hung_on = case_id
                    watch.hung_after = case_bound(case_id, config.case_timeout)
                    say(
                        f"case {case_id}: the client made no progress for "
                        f"{watch.hung_after:g} s; stopping it"
                    )
                    return
            # Every case finished: the client still asks for the reports and exits.
            self._all_finished = True
            deadline = time.monotonic() + CLIENT_EXIT_GRACE
            while client.exited() is None and time.monotonic() < deadline:
                await asyncio.sleep(POLL_INTERVAL)
                self.pump()
        finally:
            if status is not None:
                status.cancel()
                with contextlib.suppress(BaseException):
                    await status

    def update_reports(self, url: str, agent: str) -> None:
        """Have the fuzzer write its reports with every case finished so far."""
        if self._ended:
            return
        from rfc6455.errors import WebSocketError

        try:
            asyncio.run(asyncio.wait_for(_update_reports(url, agent), REQUEST_TIMEOUT))
        except (OSError, TimeoutError, WebSocketError) as exc:
            self._tail.append(f"(wsconform) /updateReports failed: {exc}")
        self.pump()

    def stop(self) -> None:
        """Stop the fuzzing server (it runs until told) and relay the rest of its output."""
        self._fuzzer.cancel()
        deadline = time.monotonic() + STOP_GRACE
        while not self._ended and time.monotonic() < deadline:
            self.pump(0.2)
        self._fuzzer.wait(STOP_GRACE)
        self._tracker.finish(completed=self._all_finished)
        self._log.close()


def _collect(
    config: ClientRunConfig,
    selected: list[str],
    watch: _Watch,
    stderr_tail: str,
    output_tail: str,
) -> results.RunResults:
    """The run's results, with what happened to the cases the client never finished."""
    raw = config.outdir / results.RAW_DIR
    excluded = catalog.excluded_by(config.cases, config.exclude)
    run = results.RunResults(agent=config.agent, outdir=raw, cases={})
    if (raw / results.INDEX_FILE).exists():
        try:
            run = results.load(raw, config.agent)
        except results.ResultsError as exc:
            run.notes.append(f"no results for agent {config.agent!r}: {exc}")
    elif not watch.interrupted:
        raise pipeline.FuzzerCrashed(
            "the fuzzing server wrote no reports",
            f"--- fuzzer output (tail) ---\n{output_tail}",
        )
    run.selected = list(selected)
    run.excluded = excluded
    if not run.cases and not watch.interrupted:
        detail = f"--- client stderr (tail) ---\n{stderr_tail}" if stderr_tail else ""
        raise pipeline.RunError(
            f"the client ran no case (exit status {watch.client_status}); "
            "it must connect to the fuzzing server's /runCase?case=N&agent=A for N = 1..count",
            detail,
        )
    missing = [case for case in selected if case not in run.cases]
    if watch.interrupted:
        # The case in flight was cut short by stopping the client: not a verdict. The cases
        # the fuzzer started before it are finished, whether or not their status reached us.
        if watch.in_flight is not None and watch.in_flight not in watch.finished:
            run.cases.pop(watch.in_flight, None)
        run.partial = True
        run.notes.append(
            f"interrupted: {len(run.cases)} of {len(selected)} cases finished; the rest did not run"
        )
    elif watch.hung_on is not None:
        hung = watch.hung_on
        reason = (
            f"the client hung on case {hung}: no progress for {watch.hung_after:g} s, "
            "so it was stopped"
        )
        run.cases.pop(hung, None)  # whatever the fuzzer made of the killed connection
        run = results.mark_missing(run, [hung], reason)
        rest = [case for case in missing if case != hung]
        if rest:
            run = results.mark_missing(
                run, rest, f"not run: the client was stopped after hanging on case {hung}"
            )
    elif missing:
        reason = f"not run by the client (it exited with status {watch.client_status})"
        if stderr_tail:
            reason += f"; its stderr ended with:\n{stderr_tail}"
        run = results.mark_missing(run, missing, reason)
    return run
