"""Shared test support for rfc6455: coroutine tests, a raw HTTP/1.1 peer over loopback, and
the echo testee (``python -m rfc6455 serve``) in its own process.

``async def`` tests run in a fresh event loop each (``asyncio.run``), so the servers they
start live and die inside the test; no plugin is needed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rfc6455.frame import Frame, FrameParser, Role


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests with ``asyncio.run``."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


class RawPeer:
    """A TCP client that speaks bytes, for what a high-level client will not send.

    ``request()`` writes raw bytes and reads one HTTP response head (and its body when it
    has a Content-Length); ``frames()`` parses server frames from what follows.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser(13, Role.CLIENT)

    @classmethod
    async def connect(cls, port: int) -> RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(data)
        return await self.read_response()

    async def read_response(self) -> tuple[int, dict[str, str], bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = await self._read_chunked()
        return status, headers, body

    async def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return bytes(body)
            body += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    def send_frame(self, frame: Frame) -> None:
        frame.masking_key = os.urandom(4)
        self.writer.write(frame.build_frame())

    async def next_frame(self) -> Frame | None:
        """The next server frame, or ``None`` if TCP closed first."""
        while True:
            frame = self.parser.next_frame()
            if frame is not None:
                return frame
            data = await self.reader.read(65536)
            if not data:
                return None
            self.parser.feed(data)

    async def at_eof(self) -> bool:
        """Whether the server closed TCP (reads and discards until EOF); then closes our end,
        as the connection is over."""
        while await self.reader.read(65536):
            pass
        self.writer.close()
        return True

    def close(self) -> None:
        self.writer.close()


def _upgrade_request(path: str = "/", extra: str = "", *, key: str | None = None) -> bytes:
    """A valid upgrade request as bytes, with ``extra`` header lines (each ending CRLF)."""
    key = key or base64.b64encode(os.urandom(16)).decode("ascii")
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode("latin-1")


# Helpers reach tests as fixtures: several test directories of this repository have a
# conftest.py outside any package, so ``import conftest`` would be ambiguous.


@pytest.fixture
def raw_peer() -> Iterator[Callable[[int], Any]]:
    """``await raw_peer(port)``: a connected ``RawPeer``."""
    yield RawPeer.connect


@pytest.fixture
def upgrade_request() -> Iterator[Callable[..., bytes]]:
    """``upgrade_request(path="/", extra="")``: a valid upgrade request as bytes."""
    yield _upgrade_request


@dataclass
class EchoTestee:
    """A running ``python -m rfc6455 serve``: its process and the line it printed."""

    process: asyncio.subprocess.Process
    line: str  # "serving on ws://HOST:PORT"

    @property
    def url(self) -> str:
        return self.line.removeprefix("serving on ")

    @property
    def port(self) -> int:
        return int(self.line.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def _echo_testee(*args: str, stderr: bool = False) -> AsyncIterator[EchoTestee]:
    """Start the echo testee on a free port with ``args``; stop it (SIGTERM) on exit.

    ``stderr=True`` pipes its log (``process.stderr``); else it goes to the test's stderr.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rfc6455",
        "serve",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if stderr else None,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
        yield EchoTestee(process, line)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


@pytest.fixture
def echo_testee() -> Iterator[Callable[..., Any]]:
    """``async with echo_testee(*args, stderr=False) as testee``: ``python -m rfc6455 serve``."""
    yield _echo_testee
