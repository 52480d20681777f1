"""``rfc6455.pulsar.wsgi``: ``pulsar.apps.wsgi``'s ``WsgiHandler`` and ``createServer``.

Invariants:
- ``WsgiHandler`` is rfc6455's middleware chain (``rfc6455.server.WsgiHandler``), which
  also checks at construction that every entry is callable: pulsar's documentation writes
  ``middleware=(..., wm)``, where ``...`` stands for the application's other middleware.
- ``createServer(callable=app).start()`` serves ``app`` on rfc6455's server
  (``rfc6455.server.run``) and blocks until SIGINT or SIGTERM, then shuts down gracefully.
  The address is pulsar's default, ``127.0.0.1:8060``, unless ``bind=`` says otherwise;
  as in pulsar, the command line's ``--bind``/``-b`` (``HOST`` or ``HOST:PORT``) overrides
  both, unless ``parse_console=False``. Once listening it prints ``serving on ws://HOST:PORT``
  (port 0 picks a free one).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..server import Server, WSGIApp, run
from ..server import WsgiHandler as _Chain

__all__ = [
    "DEFAULT_BIND",
    "DEFAULT_PORT",
    "WSGIServer",
    "WsgiHandler",
    "createServer",
    "parse_bind",
]

#: pulsar's default port, and its default ``--bind``: loopback on that port.
DEFAULT_PORT = 8060
DEFAULT_BIND = f"127.0.0.1:{DEFAULT_PORT}"


class WsgiHandler(_Chain):
    """rfc6455's middleware chain: the first non-``None`` answer wins, else 404."""

    def __init__(self, middleware: Sequence[WSGIApp] = ()) -> None:
        for index, entry in enumerate(middleware):
            if not callable(entry):
                hint = " (the docs' '...' stands for your other middleware)" if entry is ... else ""
                raise TypeError(f"middleware[{index}] is {entry!r}, not a WSGI callable{hint}")
        super().__init__(middleware)


class WSGIServer:
    """A WSGI app and the address to serve it on; ``start()`` serves it (blocking).

    ``options`` go to ``rfc6455.server.Server`` (``limits=``, ``shutdown_timeout=``, ...).
    ``argv`` is the command line to read ``--bind`` from (default ``sys.argv[1:]``); an
    unknown option there exits with a usage error, as pulsar's did.
    """

    def __init__(
        self,
        callable: WSGIApp,
        bind: str | None = None,
        *,
        argv: Sequence[str] | None = None,
        parse_console: bool = True,
        **options: Any,
    ) -> None:
        address = bind or DEFAULT_BIND
        if parse_console:
            console = _console().parse_args(sys.argv[1:] if argv is None else list(argv))
            address = console.bind or address
        self.callable = callable
        self.host, self.port = parse_bind(address)
        self.options = options

    def start(self) -> None:
        """Serve until SIGINT or SIGTERM (pulsar's ``start()`` also blocked)."""
        run(self.callable, self.host, self.port, ready=_announce, **self.options)


def createServer(callable: WSGIApp, **params: Any) -> WSGIServer:
    """pulsar's factory: ``createServer(callable=app, bind="HOST:PORT").start()``."""
    return WSGIServer(callable, **params)


def parse_bind(address: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[IPv6]:PORT`` as (host, port); the port defaults to 8060."""
    if address.startswith("unix:"):
        raise ValueError(f"bind {address!r}: unix sockets are not supported, only HOST:PORT")
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    else:
        host, port = address, ""
    try:
        number = int(port) if port else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"bind {address!r}: the port is not a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"bind {address!r}: the port is out of range")
    return host or "127.0.0.1", number


def _console() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve this WSGI application (rfc6455).")
    parser.add_argument(
        "-b",
        "--bind",
        metavar="ADDRESS",
        help=f"HOST or HOST:PORT to bind (default {DEFAULT_BIND})",
    )
    return parser


def _announce(server: Server) -> None:
    print(f"serving on {server.url}", flush=True)
