"""A server session driven read by read, and everything it does: the harness of the
answering differential tests (``test_answering_properties``) and of the ``native-server-read``
fuzz target (``native_targets``).

Invariants:
- ``run_session`` gives everything observable of a session fed ``chunks``, one read each:
  the hook calls in order, the bytes written, how TCP ended, the close code, the failure's
  type, the exceptions that escaped a read, and the error lines logged. Two paths that agree
  on it behave alike for the peer and the application.
- The paths (``READS``): ``compiled``, the server session as it runs (its read compiled
  where the accelerator is in use); ``python``, the same answering read in Python
  (``Shell.buffer_updated``); ``reference``, every read through the events one at a time
  (``_answer_reads`` off). A session class may also be given directly.
- Every run is on one event loop (``shared_loop``); a run ends its session as TCP going
  away does before it returns, so nothing of one run acts during another.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from rfc6455.handler import WEBSOCKET_KEY, WS
from rfc6455.session import WebSocketSession
from rfc6455.shell import Shell


class RecordingTransport(asyncio.Transport):
    """What the session writes, and whether it closed or dropped TCP."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False
        self.ended: list[str] = []

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.ended.append("close")

    def abort(self) -> None:
        self.closing = True
        self.ended.append("abort")

    def write_eof(self) -> None:
        self.ended.append("eof")

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Stopped(BaseException):
    """Not an ``Exception``: it escapes the read, on either path."""


#: What the scripted ``on_message`` does, one action per message in turn.
ACTIONS = (
    "none",
    "echo",
    "ascii",
    "text",
    "bytearray",
    "memoryview",
    "surrogate",  # a str UTF-8 cannot encode: ``send`` raises, out of the read
    "raise",  # 1011
    "stop",
    "close",  # ``ws.close()`` from the hook, then a reply that is not sent
    "send",  # ``ws.send()`` from the hook (written at once), then the echo
    "ping",
    "fail",  # the connection failed from the hook: over at once, ``Closed`` pending
    "awaitable",  # a coroutine: handling suspends until it is done
)


class Scripted(WS):
    def __init__(self, actions: list[str]) -> None:
        self.actions = actions
        self.calls: list[tuple[str, object]] = []

    def on_message(self, environ: Any, message: str | bytes) -> Any:
        self.calls.append(("message", message))
        action = self.actions[(len(self.calls) - 1) % len(self.actions)]
        ws = environ[WEBSOCKET_KEY]
        if action == "raise":
            raise ValueError("the hook failed")
        if action == "stop":
            raise Stopped()
        if action == "close":
            ws.close(4000, "done")
            return message
        if action == "send":
            ws.send("sent by the hook")
            return message
        if action == "fail":
            ws.connection.fail(1008, "policy")
            return message
        if action == "ping":
            ws.ping(b"p")
            return None
        if action == "awaitable":
            return self._later(message)
        replies = {
            "none": None,
            "echo": message,
            "ascii": "pong",
            "text": "κόσμε",
            "bytearray": bytearray(b"ba"),
            "memoryview": memoryview(b"mv"),
            "surrogate": "a\ud800",
        }
        return replies[action]

    async def _later(self, message: str | bytes) -> str | bytes:
        await asyncio.sleep(0)
        return message

    def on_ping(self, environ: Any, payload: bytes) -> None:
        self.calls.append(("ping", payload))

    def on_pong(self, environ: Any, payload: bytes) -> None:
        self.calls.append(("pong", payload))

    def on_close(self, environ: Any) -> None:
        self.calls.append(("close", environ[WEBSOCKET_KEY].close_code))


class PythonReadSession(WebSocketSession):
    """The server's session with its answering read in Python, compiled or not."""

    __slots__ = ()
    buffer_updated = Shell.buffer_updated


class ReferenceSession(WebSocketSession):
    """The server's session with every read through ``_process``, one event at a time."""

    __slots__ = ()
    _answer_reads = False


#: Loop turns a suspended hook gets after each read (the scripted awaitable takes three).
SUSPENDED_TURNS = 16

#: The paths ``run_session`` compares, by name.
READS: dict[str, type[WebSocketSession]] = {
    "compiled": WebSocketSession,
    "python": PythonReadSession,
    "reference": ReferenceSession,
}


class Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.records.append((record.getMessage(), None if error is None else repr(error)))


def run_session(
    read: str | type[WebSocketSession],
    chunks: list[bytes],
    actions: list[str],
    limit: int | None,
) -> tuple[object, ...]:
    """Everything a server session does with ``chunks``, each one read, on the path
    ``read`` names (``READS``) or with that session class; ``limit``: the largest message."""
    role = READS[read] if isinstance(read, str) else read

    async def main() -> tuple[object, ...]:
        handler = Scripted(actions)
        environ: dict[str, Any] = {"PATH_INFO": "/"}
        session = role(handler, environ, max_message_size=limit)
        environ[WEBSOCKET_KEY] = session
        transport = RecordingTransport()
        session.start(transport)
        escaped: list[str] = []
        for chunk in chunks:
            session.get_buffer.view[: len(chunk)] = chunk
            try:
                session.buffer_updated(len(chunk))
            except BaseException as exc:  # (compared: on every path)
                escaped.append(type(exc).__name__)
            # A suspended hook's task runs, and what it resumes (nothing else of a
            # session's waits for the loop but its timers, seconds away).
            for _ in range(SUSPENDED_TURNS):
                if session._task is None:
                    break
                await asyncio.sleep(0)
        return session, (  # (copies: ending the session below adds to its records)
            list(handler.calls),
            b"".join(transport.written),
            list(transport.ended),
            session.close_code,
            session.connection.failure.__class__,
            escaped,
        )

    loop = shared_loop()
    failures = Failures()
    logger = logging.getLogger("rfc6455")
    logger.addHandler(failures)
    try:
        session, result = loop.run_until_complete(main())
    finally:
        logger.removeHandler(failures)
    loop.run_until_complete(_end(session))
    return (*result, failures.records)


@functools.cache
def shared_loop() -> asyncio.AbstractEventLoop:
    """The event loop of every run: a new loop per run cost more than most runs."""
    return asyncio.new_event_loop()


async def _end(session: WebSocketSession) -> None:
    """End a run's session as TCP going away does, unlogged: no task or timer of it
    outlives the run on the shared loop, to act (or log) during another run."""
    logging.disable(logging.CRITICAL)
    try:
        if session._task is not None:
            session._task.cancel()
            await asyncio.sleep(0)
        # The hooks of events still pending run: a scripted ``Stopped`` ends them.
        with contextlib.suppress(BaseException):
            session.connection_lost(None)
        for _ in range(SUSPENDED_TURNS):
            if session._task is None:
                break
            await asyncio.sleep(0)
    finally:
        logging.disable(logging.NOTSET)
