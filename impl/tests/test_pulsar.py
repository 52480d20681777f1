"""Tests of ``rfc6455.pulsar``: pulsar's documented echo example, run as a script with only
its import changed, serves a real client (websockets); then each mapped calling convention."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import rfc6455
from rfc6455.pulsar import ws, wsgi
from rfc6455.server import Server

EXAMPLE = Path(__file__).with_name("pulsar_echo_example.py")


class Echo(ws.WS):
    def on_message(self, environ: MutableMapping[str, Any], message: str | bytes) -> str | bytes:
        return message


def hello(environ: MutableMapping[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


# -- the seed's example, as a script -----------------------------------------------------------
async def test_pulsar_echo_example_serves_a_real_client() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--bind",
        "127.0.0.1:0",  # pulsar's --bind; port 0: a free one, announced on stdout
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
        assert line.startswith("serving on ws://127.0.0.1:")
        async with connect(line.removeprefix("serving on ") + "/echo") as client:
            await client.send("Hello")
            assert await client.recv() == "Hello"
            await client.send(b"\x00\xffbinary")
            assert await client.recv() == b"\x00\xffbinary"
        assert client.close_code == 1000
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    assert process.returncode == 0, stderr.decode()
    # The example's own on_open and on_close hooks ran, once each.
    assert stdout.decode().splitlines() == ["WebSocket opened", "WebSocket closed"]


def test_create_server_binds_pulsars_default_address() -> None:
    server = wsgi.createServer(callable=hello, argv=[])
    assert (server.host, server.port) == ("127.0.0.1", 8060)
    assert server.callable is hello


def test_command_line_bind_overrides_the_bind_argument() -> None:
    # pulsar's order: defaults, then the parameters given in code, then the command line.
    assert wsgi.createServer(callable=hello, bind="127.0.0.1:9000", argv=[]).port == 9000
    server = wsgi.createServer(callable=hello, bind="127.0.0.1:9000", argv=["-b", "::1"])
    assert (server.host, server.port) == ("::1", 8060)
    ignored = wsgi.createServer(callable=hello, bind=":9001", parse_console=False)
    assert (ignored.host, ignored.port) == ("127.0.0.1", 9001)


def test_create_server_refuses_an_unknown_command_line_option() -> None:
    with pytest.raises(SystemExit) as exit_info:
        wsgi.createServer(callable=hello, argv=["--workers", "4"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("0.0.0.0", ("0.0.0.0", 8060)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:9001", ("::1", 9001)),
        (":0", ("127.0.0.1", 0)),
    ],
)
def test_parse_bind_reads_pulsars_address_forms(address: str, expected: tuple[str, int]) -> None:
    assert wsgi.parse_bind(address) == expected


@pytest.mark.parametrize(
    ("address", "problem"),
    [("unix:/tmp/sock", "unix sockets"), ("host:http", "not a number"), ("h:70000", "range")],
)
def test_parse_bind_refuses_what_it_cannot_serve(address: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        wsgi.parse_bind(address)


# -- ws.WebSocket: pulsar's two documented forms -------------------------------------------
async def test_websocket_with_a_route_serves_only_that_path() -> None:
    app = wsgi.WsgiHandler(middleware=[ws.WebSocket("/echo", Echo()), hello])
    async with Server(app) as server:
        async with connect(server.url + "/echo") as client:
            await client.send("on the route")
            assert await client.recv() == "on the route"
        # Another path falls through the middleware: the next one answers it, not with a 101.
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server.url + "/elsewhere"):
                pass
        assert refused.value.response.status_code == 200
        assert refused.value.response.body == b"hello"


def test_websocket_takes_the_handle_by_name_or_first() -> None:
    handle = Echo()
    assert ws.WebSocket(handle=handle).handle is handle
    assert ws.WebSocket(handle).route is None
    assert ws.WebSocket("echo", handle).route == "/echo"


def test_websocket_refuses_a_missing_or_doubled_handle_and_route_variables() -> None:
    with pytest.raises(TypeError, match="needs a handle"):
        ws.WebSocket("/echo")
    with pytest.raises(TypeError, match="extensions= by name"):
        ws.WebSocket(Echo(), Echo())
    with pytest.raises(ValueError, match="route variables"):
        ws.WebSocket("/room/<id>", Echo())


def test_wsgi_handler_explains_the_docs_ellipsis() -> None:
    with pytest.raises(TypeError, match=r"middleware\[0\] is Ellipsis.*other middleware"):
        wsgi.WsgiHandler(middleware=(..., ws.WebSocket(handle=Echo())))


def test_ws_names_are_rfc6455s_own() -> None:
    assert (ws.WS, ws.Frame, ws.FrameParser) == (rfc6455.WS, rfc6455.Frame, rfc6455.FrameParser)
    assert issubclass(ws.WebSocket, rfc6455.WebSocket)
    assert issubclass(wsgi.WsgiHandler, rfc6455.WsgiHandler)
    assert ws.Frame("Hello", final=True).build_frame("Hello") == bytes.fromhex("810548656c6c6f")
