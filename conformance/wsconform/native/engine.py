"""The native engine's entry point: run cases against a server, write the fuzzer's output.

Invariants:
- Cases run one after another, one TCP connection each, in the order given, each on its
  event loop (``loop.Lanes``: asyncio's for paced writes, uvloop's for the rest), all in the
  calling thread.
- A finished case's report is on disk before the case is told finished, at the latest once
  the next case's opening handshake is sent (it is written while the testee answers), and
  events keep the order started, finished, started... ``index.json`` lists it within
  ``INDEX_EVERY`` seconds, and lists every finished case when the run ends however it ends
  (``asyncio.CancelledError``, Ctrl-C, a crash), so a partial run keeps every finished case.
  (Rewriting the whole index after each case cost a full no-deflate run about 10% of its
  wall time.)
- A server that refuses the TCP connection ends the run there, as the fuzzer does (it moves
  on to its next server); the cases not run have no entry.
- Masking keys and handshake nonces come from one seed per case, derived from the run's seed,
  which every report records: one case can be replayed alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from wsconform import access, catalog
from wsconform.native import cases, frames, handshake, report
from wsconform.native import loop as engine_loop
from wsconform.native.casedef import CaseSpec, SendMessage
from wsconform.native.connection import Connection
from wsconform.native.record import WireLog, shown_event
from wsconform.native.session import Session
from wsconform.native.verdict import EchoCheck, Observed, Rule, Verdict, decide

__all__ = ["CaseEvent", "CaseOutcome", "Stop", "play", "run"]


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    """A finished case, as ``index.json`` lists it."""

    case_id: str
    verdict: Verdict
    duration_ms: int
    remote_close_code: int | None


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """Progress: a case ``started``, ``finished`` (with its outcome), or the testee was
    ``unreachable`` (the run stops there)."""

    kind: Literal["started", "finished", "unreachable"]
    case_id: str
    position: int
    total: int
    outcome: CaseOutcome | None = None
    detail: str = ""


T = TypeVar("T")

# Seconds between rewrites of index.json while a run goes on (it is always written at the end).
INDEX_EVERY = 0.5


def _case_seed(seed: int, case_id: str) -> str:
    return f"{seed}:{case_id}"


def _auto_fragment(spec: CaseSpec) -> tuple[int, int]:
    for step in spec.script:
        if isinstance(step, SendMessage):
            return len(step.payload), step.fragment
    return 0, 0


def _judge(spec: CaseSpec, session: Session, connection: Connection) -> Verdict:
    flags = connection.flags
    close = spec.close
    seen = Observed(
        received=session.received,
        was_open=flags.was_open,
        closed_by_me=flags.closed_by_me,
        was_clean=flags.was_clean,
        dropped_by_me=flags.dropped_by_me,
        remote_close_code=flags.remote_code,
        tx_frames=flags.tx_frames,
        echoes=session.echoes,
        own=session.own_verdict,
    )
    return decide(
        spec.expected,
        close.closed_by_fuzzer,
        close.codes,
        close.require_clean,
        close.wrong_side_fatal,
        spec.rule,
        seen,
        auto_fragment=_auto_fragment(spec) if spec.rule is Rule.FRAME_COUNT else (0, 0),
    )


def _report(
    spec: CaseSpec,
    agent: str,
    seed: int,
    started: str,
    session: Session,
    connection: Connection,
    log: WireLog,
    verdict: Verdict,
    duration_ms: int,
) -> dict[str, Any]:
    info = catalog.describe(spec.case_id)
    flags = connection.flags
    opened = flags.was_open
    close = spec.close
    local_reason = flags.local_reason
    return {
        "agent": agent,
        "id": spec.case_id,
        "case": catalog.ALL_CASES.index(spec.case_id) + 1,
        "description": info.description,
        "expectation": info.expectation,
        "started": started,
        "duration": duration_ms,
        "behavior": verdict.behavior,
        "behaviorClose": verdict.behavior_close,
        "result": verdict.result,
        "resultClose": verdict.result_close,
        "expected": (
            {k: [shown_event(e) for e in v] for k, v in spec.expected.items()} if opened else {}
        ),
        "expectedClose": (
            {
                "closedByMe": close.closed_by_fuzzer,
                "closeCode": list(close.codes),
                "requireClean": close.require_clean,
                **({"closedByWrongEndpointIsFatal": True} if close.wrong_side_fatal else {}),
            }
            if opened
            else {}
        ),
        "received": [shown_event(e) for e in session.received],
        "closedByMe": flags.closed_by_me,
        "failedByMe": flags.failed_by_me,
        "droppedByMe": flags.dropped_by_me,
        "wasClean": flags.was_clean,
        "wasNotCleanReason": flags.not_clean_reason,
        "wasServerConnectionDropTimeout": flags.server_drop_timeout,
        "wasOpenHandshakeTimeout": flags.open_handshake_timeout,
        "wasCloseHandshakeTimeout": flags.close_handshake_timeout,
        "localCloseCode": flags.local_code,
        "localCloseReason": (
            local_reason.decode("utf-8", "replace") if local_reason is not None else None
        ),
        "remoteCloseCode": flags.remote_code,
        "remoteCloseReason": flags.remote_reason,
        "isServer": False,
        "reportTime": isinstance(spec.rule, EchoCheck),  # the fuzzer times its 9.x cases
        "txFrameStats": {str(k): v for k, v in sorted(flags.tx_frames.items())},
        "rxFrameStats": {str(k): v for k, v in sorted(flags.rx_frames.items())},
        "httpRequest": connection.http_request.decode("utf-8", "replace"),
        "httpResponse": connection.http_response.decode("utf-8", "replace"),
        "engine": report.ENGINE,
        "seed": seed,
        "caseSeed": _case_seed(seed, spec.case_id),
        "wirelog": log.entries,
        **session.report_extra(),
    }


async def play(
    spec: CaseSpec,
    where: handshake.Target,
    seed: int,
    agent: str,
    tls: ssl.SSLContext | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> tuple[CaseOutcome, dict[str, Any]]:
    """Run one case on a fresh connection (TLS over it with `tls`); its outcome and report.
    `meanwhile` runs once the opening handshake is sent, while the testee answers it.

    Raises ``OSError`` when the TCP connection (or the TLS handshake) cannot be made at all.
    """
    log = WireLog()
    session = Session(spec, log)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    keys = frames.MaskKeys(_case_seed(seed, spec.case_id))
    loop = asyncio.get_running_loop()
    connect_time = time.monotonic()

    def connect() -> Connection:
        connection = Connection(
            where, keys, log, session, offers=spec.offers, chop_gap=engine_loop.chop_gap(spec)
        )
        session.attach(connection)
        return connection

    _, connection = await loop.create_connection(
        connect, where.host, where.port, ssl=tls, server_hostname=where.host if tls else None
    )
    if meanwhile is not None:
        meanwhile()
    try:
        await connection.done
    except asyncio.CancelledError:  # the run stops: the case is not judged, its TCP is closed
        connection.drop(abort=True)
        raise
    end = session.clock.ended or time.monotonic()
    begin = session.clock.started or connect_time
    duration_ms = round(1000 * (end - begin))
    verdict = _judge(spec, session, connection)
    outcome = CaseOutcome(spec.case_id, verdict, duration_ms, connection.flags.remote_code)
    return outcome, _report(
        spec, agent, seed, started, session, connection, log, verdict, duration_ms
    )


class Stop:
    """Stops a run from any thread (its progress callback too): the case under way is
    cancelled, and no other starts. The run then raises ``asyncio.CancelledError``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requested = False
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def request(self) -> None:
        with self._lock:
            self._requested = True
            if self._task is not None and self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._task.cancel)

    def play(self, runner: asyncio.Runner, case: Coroutine[Any, Any, T]) -> T:
        """Run ``case`` to its end on ``runner``, cancellable by ``request``."""

        async def cancellable() -> T:
            with self._lock:
                if self._requested:
                    case.close()
                    raise asyncio.CancelledError
                self._task, self._loop = asyncio.current_task(), asyncio.get_running_loop()
            try:
                return await case
            finally:
                with self._lock:
                    self._task = None

        return runner.run(cancellable())


class _Books:
    """What a run writes and tells as it goes. A judged case's report is written (and the
    case told finished) once the next case's opening handshake is sent, while the testee
    answers it: about 1 ms a case that nothing else waits for. Events keep their order."""

    def __init__(
        self, outdir: Path, agent: str, total: int, tell: Callable[[CaseEvent], None]
    ) -> None:
        self._outdir, self._agent, self._total, self._tell = outdir, agent, total, tell
        self._entries: dict[str, report.IndexEntry] = {}
        self._indexed = time.monotonic()
        self._judged: list[tuple[int, CaseOutcome, dict[str, Any]]] = []
        self._upcoming: list[CaseEvent] = []

    def starting(self, position: int, spec: CaseSpec) -> None:
        self._upcoming.append(CaseEvent("started", spec.case_id, position, self._total))

    def judged(self, position: int, outcome: CaseOutcome, case_report: dict[str, Any]) -> None:
        self._judged.append((position, outcome, case_report))

    def record(self) -> None:
        """Write the judged cases' reports (and, now and then, the index); tell what
        happened."""
        for position, outcome, case_report in self._judged:
            report.write_case(self._outdir, case_report)
            self._entries[outcome.case_id] = report.IndexEntry(
                outcome.verdict.behavior,
                outcome.verdict.behavior_close,
                outcome.duration_ms,
                outcome.remote_close_code,
                report.report_filename(self._agent, outcome.case_id),
            )
            if time.monotonic() - self._indexed >= INDEX_EVERY:
                report.write_index(self._outdir, self._agent, self._entries)
                self._indexed = time.monotonic()
            self._tell(CaseEvent("finished", outcome.case_id, position, self._total, outcome))
        for event in self._upcoming:
            self._tell(event)
        self._judged.clear()
        self._upcoming.clear()

    def unreachable(self, position: int, spec: CaseSpec, exc: OSError) -> None:
        self.record()
        self._tell(CaseEvent("unreachable", spec.case_id, position, self._total, detail=str(exc)))

    def close(self) -> None:
        """Everything judged is on disk, and the index lists it."""
        self.record()
        report.write_index(self._outdir, self._agent, self._entries)


def run(
    url: str,
    agent: str,
    case_ids: Sequence[str],
    outdir: Path,
    *,
    seed: int | None = None,
    progress: Callable[[CaseEvent], None] | None = None,
    reach: access.Access = access.PLAIN,
    stop: Stop | None = None,
) -> Path:
    """Run ``case_ids`` against the server at ``url`` (reached as `reach` says), each case on
    its loop (``loop.Lanes``); ``outdir`` then holds ``index.json`` and one report per
    finished case, also after ``stop`` or Ctrl-C (which end the run with
    ``asyncio.CancelledError`` and ``KeyboardInterrupt``)."""
    where = handshake.target(url, reach.subprotocols, reach.request_headers())
    tls = access.tls_context(url, reach)
    specs = [cases.get(case_id) for case_id in case_ids]
    run_seed = secrets.randbits(63) if seed is None else seed
    outdir.mkdir(parents=True, exist_ok=True)
    books = _Books(outdir, agent, len(specs), progress or (lambda _: None))
    stop = stop or Stop()
    try:
        with contextlib.closing(engine_loop.Lanes()) as lanes:
            for position, spec in enumerate(specs, 1):
                books.starting(position, spec)
                case = play(spec, where, run_seed, agent, tls, meanwhile=books.record)
                try:
                    outcome, case_report = stop.play(lanes.runner(spec), case)
                except OSError as exc:
                    books.unreachable(position, spec, exc)
                    break
                books.judged(position, outcome, case_report)
    finally:
        books.close()
    return outdir
