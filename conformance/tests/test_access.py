"""Reaching a testee beyond ws://host:port: wss:// with a CA file or --insecure, an IPv6
literal, a path and query, extra headers and a subprotocol, each seen by a real server (a
websockets echo server on a thread of this process, TLS from a self-signed certificate made
here by the ``openssl`` command)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from wsconform import access

RUN_TIMEOUT = 240
CASES = "1.1.1,2.1"


@dataclass
class EchoServer:
    """What the server saw: each upgrade request and the subprotocol each connection chose."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    subprotocols: list[str | None] = field(default_factory=list)


@contextlib.contextmanager
def echo_server(host: str, tls: ssl.SSLContext | None = None) -> Iterator[EchoServer]:
    """An echo server at `host` on a free port (TLS with `tls`), on its own event loop."""
    seen = EchoServer()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop: asyncio.Future[None] = loop.create_future()

    async def echo(connection: ServerConnection) -> None:
        seen.subprotocols.append(connection.subprotocol)
        async for message in connection:
            await connection.send(message)

    def record(connection: ServerConnection, request: Request) -> None:
        seen.requests.append(request)

    def chat(connection: ServerConnection, offered: Sequence[str]) -> str | None:
        return "chat" if "chat" in offered else None  # none offered: none chosen

    async def main() -> None:
        async with serve(
            echo, host, 0, ssl=tls, process_request=record, select_subprotocol=chat
        ) as server:
            seen.port = next(iter(server.sockets)).getsockname()[1]
            ready.set()
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the echo server did not start"
    try:
        yield seen
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (it makes the test certificate)")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[EchoServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with echo_server("127.0.0.1", context) as seen:
        yield seen


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "wsconform", "run", "-q", "--gate", "strict", "--cases", CASES,
         "--outdir", "out", *args],
        cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip


def test_native_reaches_a_wss_testee_it_trusts_through_a_ca_file_with_path_headers_subprotocol(
    tmp_path: Path, tls_server: EchoServer, certificate: tuple[Path, Path]
) -> None:
    url = f"wss://127.0.0.1:{tls_server.port}/echo/room?id=7&x=y"
    done = run(
        "--engine", "native", "--url", url, "--ca-file", str(certificate[0]),
        "--header", "X-Token: abc 123", "--header", "X-Trace: 1", "--subprotocol", "chat",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 cases: 2 passed" in done.stdout
    request = tls_server.requests[-1]
    assert request.path == "/echo/room?id=7&x=y"
    assert request.headers["X-Token"] == "abc 123"
    assert request.headers["X-Trace"] == "1"
    assert request.headers["Sec-WebSocket-Protocol"] == "chat"
    assert request.headers["Host"] == f"127.0.0.1:{tls_server.port}"
    assert tls_server.subprotocols[-1] == "chat"


def test_native_takes_an_unverifiable_wss_testee_only_when_insecure(
    tmp_path: Path, tls_server: EchoServer
) -> None:
    url = f"wss://127.0.0.1:{tls_server.port}/"
    refused = run("--engine", "native", "--url", url, cwd=tmp_path / "verified")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "certificate verify failed" in refused.stdout.lower()
    assert not tls_server.requests  # no upgrade request went to an unverified server
    done = run("--engine", "native", "--url", url, "--insecure", cwd=tmp_path / "insecure")
    assert done.returncode == 0, done.stdout + done.stderr


def test_autobahn_reaches_a_wss_testee_with_a_subprotocol_when_insecure(
    local_backend: object, tmp_path: Path, tls_server: EchoServer
) -> None:
    url = f"wss://127.0.0.1:{tls_server.port}/tls?x=1"
    args = ("--engine", "autobahn", "--url", url, "--insecure", "--subprotocol", "chat")
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tls_server.requests[-1].path == "/tls?x=1"
    assert tls_server.subprotocols[-1] == "chat"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--header", "X-Token: abc"), "cannot send extra request headers"),
        (("--ca-file", __file__), "cannot take a CA file"),
    ],
)
def test_autobahn_refuses_what_its_spec_cannot_carry(
    local_backend: object, tmp_path: Path, option: tuple[str, str], message: str
) -> None:
    with echo_server("127.0.0.1") as seen:
        url = f"ws://127.0.0.1:{seen.port}/"
        done = run("--engine", "autobahn", "--url", url, *option, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not seen.requests


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_native_reaches_an_ipv6_literal_url(tmp_path: Path) -> None:
    with echo_server("::1") as seen:
        done = run("--engine", "native", "--url", f"ws://[::1]:{seen.port}/v6", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert seen.requests[-1].path == "/v6"
    assert seen.requests[-1].headers["Host"] == f"[::1]:{seen.port}"  # RFC 3986 §3.2.2


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_autobahn_refuses_an_ipv6_literal_it_would_send_a_broken_host_for(
    local_backend: object, tmp_path: Path
) -> None:
    # The fuzzer writes "Host: ::1:PORT" (no brackets): servers that check it answer 400.
    with echo_server("::1") as seen:
        done = run("--engine", "autobahn", "--url", f"ws://[::1]:{seen.port}/", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "IPv6" in done.stderr
    assert not seen.requests


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("X-Token abc", "expected 'Name: value'"),
        ("Bad Name: x", "expected 'Name: value'"),
        ("Sec-WebSocket-Key: x", "written by the engine itself"),
    ],
)
def test_a_header_option_is_checked(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        access.parse_header(text)
