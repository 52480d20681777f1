"""The engine's event loop: asyncio's by default, uvloop's when asked for, and a read
handled 64 KiB at a time once deflate is agreed, whatever the loop read at once."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from wsconform.native import connection, loop


def test_asyncio_is_the_default_and_uvloop_can_be_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(loop.ENV, raising=False)
    assert loop.factory() is None and loop.name() == "asyncio"
    monkeypatch.setenv(loop.ENV, "uvloop")
    assert loop.factory() is uvloop.new_event_loop and loop.name() == "uvloop"
    monkeypatch.setenv(loop.ENV, "asyncio")
    assert loop.factory() is None and loop.name() == "asyncio"

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loop.run(which()).startswith("asyncio")
    monkeypatch.setenv(loop.ENV, "uvloop")
    assert loop.run(which()).startswith("uvloop")


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
