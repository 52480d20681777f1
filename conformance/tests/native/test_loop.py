"""The engine's event loop: uvloop's where installed, asyncio's when asked for (or without
uvloop), chopped writes paced alike on both, and a read handled 64 KiB at a time once
deflate is agreed, whatever the loop read at once."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import socket
import time

import pytest
import uvloop

from wsconform.native import connection, loop, outbox


def test_uvloop_is_the_default_and_asyncio_can_be_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(loop.ENV, raising=False)
    assert loop.factory() is uvloop.new_event_loop and loop.name() == "uvloop"
    monkeypatch.setenv(loop.ENV, "asyncio")
    assert loop.factory() is None and loop.name() == "asyncio"
    monkeypatch.setenv(loop.ENV, "uvloop")
    assert loop.factory() is uvloop.new_event_loop and loop.name() == "uvloop"

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loop.run(which()).startswith("uvloop")
    monkeypatch.setenv(loop.ENV, "asyncio")
    assert loop.run(which()).startswith("asyncio")


def test_without_uvloop_the_default_is_asyncio_s_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loop.ENV, raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a)
    )
    assert loop.factory() is None and loop.name() == "asyncio"


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_chopped_writes_leave_at_least_the_chop_gap_apart(
    event_loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On either loop, over a real socket: one write per chop, in order, none sooner than
    ``CHOP_GAP`` after the one before (uvloop's turns alone would be faster). Nothing reads
    the other end while they leave, so the loop has nothing else to do between them."""
    monkeypatch.setenv(loop.ENV, event_loop)
    sent: list[tuple[float, bytes]] = []
    ours, theirs = socket.socketpair()

    async def play() -> bytes:
        running = asyncio.get_running_loop()
        transport, _ = await running.create_connection(asyncio.Protocol, sock=ours)
        out = outbox.Outbox(
            running, lambda data: sent.append((time.perf_counter(), data)), lambda: False
        )
        out.transport = transport  # type: ignore[assignment]
        out.send(bytes(range(40)), sync=False, chop=1)
        while len(sent) < 40:
            await asyncio.sleep(0.001)
        transport.close()
        received = b""
        while len(received) < 40:
            received += theirs.recv(40)
        theirs.close()
        return received

    assert loop.run(play()) == bytes(range(40))
    assert [data for _, data in sent] == [bytes([i]) for i in range(40)]
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(sent)]
    assert min(gaps) >= outbox.CHOP_GAP


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
