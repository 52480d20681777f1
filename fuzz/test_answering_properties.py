"""The server's answering pass against the reference path: the same session, fed the same
reads, does the same with ``Connection.receive_answering`` (``_answer_reads``) as with every
event through ``Shell._process``.

The same hook calls in the same order, the same bytes written (replies, Pongs, the Close and
its code: which error wins when a frame breaks several rules), the same close code, the same
hook failures logged, the same exception escaping a read, whatever the handler does in its
``on_message``: reply or not, with any kind of reply, raise, send or close by itself, or
return an awaitable. Runs on the codec in use (compiled, or pure Python with
``RFC6455_NO_SPEEDUPS=1``), so both twins of ``answer_messages`` are held to the reference.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    chunked,
    doubly_broken_text,
    hostile_streams,
    whole_message_runs,
    whole_messages,
)

from rfc6455.handler import WEBSOCKET_KEY, WS
from rfc6455.session import WebSocketSession


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


class ReferenceSession(WebSocketSession):
    """The server's session with every read through ``_process``, one event at a time."""

    __slots__ = ()
    _answer_reads = False


class Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.records.append((record.getMessage(), None if error is None else repr(error)))


def run_session(
    answer_reads: bool, chunks: list[bytes], actions: list[str], limit: int | None
) -> tuple[object, ...]:
    """Everything a server session does with ``chunks``, each one read."""

    async def main() -> tuple[object, ...]:
        handler = Scripted(actions)
        environ: dict[str, Any] = {"PATH_INFO": "/"}
        role = WebSocketSession if answer_reads else ReferenceSession
        session = role(handler, environ, max_message_size=limit)
        environ[WEBSOCKET_KEY] = session
        transport = RecordingTransport()
        session.start(transport)
        escaped: list[str] = []
        for chunk in chunks:
            session.get_buffer.view[: len(chunk)] = chunk
            try:
                session.buffer_updated(len(chunk))
            except BaseException as exc:  # (compared: on both paths)
                escaped.append(type(exc).__name__)
            for _ in range(4):  # a suspended hook's task runs, and what it resumes
                await asyncio.sleep(0)
        return (
            handler.calls,
            b"".join(transport.written),
            transport.ended,
            session.close_code,
            session.connection.failure.__class__,
            escaped,
        )

    failures = Failures()
    logger = logging.getLogger("rfc6455")
    logger.addHandler(failures)
    try:
        result = asyncio.run(main())
    finally:
        logger.removeHandler(failures)
    return (*result, failures.records)


@st.composite
def client_streams(draw: st.DrawFn) -> bytes:
    """What a client sends: mostly whole messages (so the pass answers several per read),
    then anything (control frames, fragments, broken frames, text broken twice)."""
    stream = draw(whole_messages())
    tail = st.one_of(
        st.just(b""),
        whole_message_runs(masked=True),
        hostile_streams(masked=True),
        doubly_broken_text(masked=True),
    )
    return stream + draw(tail)


@settings(max_examples=300)
@given(
    stream=client_streams(),
    data=st.data(),
    actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=6),
    limit=st.one_of(st.none(), st.integers(0, 200)),
)
def test_server_answers_reads_as_the_reference_path_does(
    stream: bytes, data: st.DataObject, actions: list[str], limit: int | None
) -> None:
    chunks = data.draw(st.one_of(st.just([stream]), chunked(stream)), label="chunks")
    chunks = [chunk for chunk in chunks if chunk]
    answered = run_session(True, chunks, actions, limit)
    assert answered == run_session(False, chunks, actions, limit)


def test_a_read_whose_hook_fails_the_connection_still_hands_out_its_messages_first() -> None:
    # The reference parsed the whole read before any hook ran: the messages after the one
    # whose hook failed the connection (and the one whose ``send`` then raised) are still
    # handed out, before ``on_close``; the answering pass must keep them, in that order.
    empty = b"\x80\x00\x00\x00\x00"  # masked with a zero key, no payload
    stream = b"\x82" + empty + b"\x82" + empty + b"\x81" + empty + b"\x82" + empty
    answered = run_session(True, [stream], ["send", "fail"], None)
    assert answered == run_session(False, [stream], ["send", "fail"], None)
    assert [call for call, _ in answered[0]] == ["message"] * 4 + ["close"]
