"""The engine's event loops: paced writes on asyncio's, every other case on uvloop's where
installed (one loop for all when asked for), and a read handled 64 KiB at a time once
deflate is agreed, whatever the loop read at once."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from wsconform.native import cases, connection, engine, handshake, lifecycle, loop, outbox


def _loop_module(lanes: loop.Lanes, case_id: str) -> str:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    return lanes.runner(cases.get(case_id)).run(which()).split(".")[0]


@pytest.mark.parametrize(
    ("wanted", "paced_on", "others_on", "named"),
    [
        ("", "asyncio", "uvloop", "uvloop; paced writes on asyncio"),
        ("asyncio", "asyncio", "asyncio", "asyncio"),
        ("uvloop", "uvloop", "uvloop", "uvloop"),
    ],
)
def test_paced_cases_play_on_asyncio_s_loop_the_others_on_uvloop(
    wanted: str, paced_on: str, others_on: str, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(loop.ENV, wanted)
    assert loop.name() == named
    with contextlib.closing(loop.Lanes()) as lanes:
        assert _loop_module(lanes, "3.4") == paced_on  # chopped into 1-byte writes
        assert _loop_module(lanes, "9.7.1") == others_on  # round trips
        assert _loop_module(lanes, "9.5.1") == others_on  # chopped, but a time limit decides
        assert _loop_module(lanes, "3.4") == paced_on  # the loops take turns


def test_without_uvloop_every_case_plays_on_asyncio_s_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(loop.ENV, raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a)
    )
    assert loop.name() == "asyncio"
    with contextlib.closing(loop.Lanes()) as lanes:
        assert _loop_module(lanes, "9.7.1") == _loop_module(lanes, "3.4") == "asyncio"


def test_a_script_is_paced_when_any_frame_is_chopped_or_sync_now_or_later() -> None:
    paced = {case_id for case_id in cases.DEFINED if loop.paced(cases.get(case_id).script)}
    # chopped: 1.x.8 (997-byte writes), 3.4, 4.x.5, 5.5/5.8/5.11/5.14, 9.5/9.6;
    # frame by frame (sync): 3.3, 4.x.4, 5.4/5.7/5.10/5.13 ...
    assert {"1.1.8", "1.2.8", "3.4", "4.1.5", "4.2.5", "5.5", "9.5.1", "9.6.6"} <= paced
    assert not {"1.1.1", "2.1", "5.19", "6.4.1", "7.1.1", "9.1.6", "9.3.1", "9.7.1"} & paced
    # A paced frame inside a later step counts too.
    from wsconform.native import casedef

    later = casedef.ContinueLater(1, (casedef.SendFrame(1, b"x", sync=True),))
    assert loop.paced((casedef.SendFrame(1, b"x"), later))
    assert not loop.paced((casedef.ContinueLater(1, (casedef.SendFrame(1, b"x"),)),))


def test_a_run_plays_each_case_on_its_loop(
    tmp_path: Path, echo_cmd: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wsconform import testee

    monkeypatch.delenv(loop.ENV, raising=False)
    played: list[tuple[str, str]] = []
    real_play = engine.play

    def play(spec: Any, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        async def recorded() -> Any:
            played.append((spec.case_id, type(asyncio.get_running_loop()).__module__))
            return await real_play(spec, *args, **kwargs)

        return recorded()

    monkeypatch.setattr(engine, "play", play)
    with testee.start(echo_cmd, tmp_path / "logs") as server:
        server.wait_ready()
        engine.run(server.url, "ws", ["1.1.1", "3.4", "2.1"], tmp_path / "run")
    assert [(case, module.split(".")[0]) for case, module in played] == [
        ("1.1.1", "uvloop"),
        ("3.4", "asyncio"),
        ("2.1", "uvloop"),
    ]


def test_queued_writes_leave_one_reactor_turn_apart_where_their_pace_can_change_the_verdict() -> (
    None
):
    """3.4 sends three frames octet by octet: after the first TCP write (the fuzzer's first two
    queued writes share one) each octet leaves at least ``CHOP_GAP`` after the one before,
    the pace a testee's reads race against. 9.5's chops (a time limit decides) do not wait."""
    from test_engine import answer_handshake

    assert loop.chop_gap(cases.get("3.4")) == loop.CHOP_GAP > 0
    assert loop.chop_gap(cases.get("9.5.1")) == loop.chop_gap(cases.get("1.1.1")) == 0

    async def reads_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_handshake(reader, writer)
        while await reader.read(65536):
            pass
        writer.close()

    async def play() -> dict[str, Any]:
        server = await asyncio.start_server(reads_only, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            target = handshake.target(f"ws://127.0.0.1:{port}")
            return (await engine.play(cases.get("3.4"), target, 7, "t"))[1]

    report = asyncio.run(play())
    sent = [e for e in report["wirelog"] if e["kind"] == "tx-octets"][1:]  # after the request
    assert len(sent) > 20 and sum(e["length"] for e in sent) > len(sent)
    times = [e["t"] for e in sent if e["length"] == 1]
    # The wire log keeps microseconds: a gap one short of CHOP_GAP is rounding, not haste.
    assert min(b - a for a, b in itertools.pairwise(times)) >= loop.CHOP_GAP - 2e-6


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_what_arrives_during_a_gap_is_read_before_the_next_queued_write(event_loop: str) -> None:
    """A testee that fails the connection mid-way through chopped octets sends its Close and
    closes TCP with ours unread: our next octet is answered by a reset, and asyncio then
    drops what it had received but not read. The fuzzer's reactor reads before it writes in
    a turn, so it has the Close by then; so must we. (A long gap makes the timing certain.)"""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def testee() -> None:
        conn, _ = listener.accept()
        conn.recv(1)  # the first octet
        conn.sendall(b"close")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # a reset: our next octet finds the connection gone

    class Reads(asyncio.Protocol):
        def __init__(self) -> None:
            self.lost = asyncio.get_running_loop().create_future()

        def data_received(self, data: bytes) -> None:
            received.append(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost.set_result(None)

    async def play() -> None:
        running = asyncio.get_running_loop()
        peer = threading.Thread(target=testee)
        peer.start()
        transport, protocol = await running.create_connection(Reads, *listener.getsockname()[:2])
        out = outbox.Outbox(running, lambda data: None, lambda: False, gap=0.2)
        out.transport = transport
        out.send(b"abc", False, 1)  # "a" now, "b" 0.2 s later, while the reset is in
        await asyncio.wait_for(protocol.lost, 5)
        peer.join()

    with asyncio.Runner(
        loop_factory=uvloop.new_event_loop if event_loop == "uvloop" else None
    ) as runner:
        runner.run(play())
    listener.close()
    assert b"".join(received) == b"close"


def test_a_large_read_is_handled_as_twisted_reads_once_deflate_is_agreed() -> None:
    # Only the splitting is under test: the connection's handling of each piece is replaced
    # by a recorder (the 12.x/13.x runs in test_deflate.py handle real reads on both loops).
    conn = connection.Connection.__new__(connection.Connection)
    seen: list[int] = []
    conn._received = lambda data: seen.append(len(data))  # type: ignore[method-assign]

    class Open:
        def is_closing(self) -> bool:
            return False

    conn._out = type("Out", (), {"transport": Open()})()  # type: ignore[assignment]
    conn.deflate = None
    conn.data_received(b"x" * 200_000)
    assert seen == [200_000]  # no deflate: read as read
    seen.clear()
    conn.deflate = object()  # type: ignore[assignment]
    conn.data_received(b"x" * 200_000)
    assert seen == [65536, 65536, 65536, 200_000 - 3 * 65536]


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_a_case_timer_never_fires_before_its_delay(event_loop: str) -> None:
    """A timer waits its whole delay on the monotonic clock, the wire log's, however the
    loop keeps its own: uvloop's counts whole milliseconds, so with the loop turning all the
    while (as during a case) a bare timer would fire up to a millisecond early."""
    factory = uvloop.new_event_loop if event_loop == "uvloop" else None
    waited: list[float] = []

    async def spin() -> None:
        while True:
            await asyncio.sleep(0)

    async def arm_while_the_loop_turns() -> None:
        fired = asyncio.Event()
        spinning = asyncio.ensure_future(spin())
        for _ in range(20):
            time.sleep(0.0003)  # somewhere inside a millisecond
            armed = time.monotonic()

            def fire(armed: float = armed) -> None:
                waited.append(time.monotonic() - armed)
                fired.set()

            lifecycle.Deadline(asyncio.get_running_loop(), 0.005, fire)
            await fired.wait()
            fired.clear()
        spinning.cancel()

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(arm_while_the_loop_turns())
    assert len(waited) == 20
    assert min(waited) >= 0.005
