"""``python -m rfc6455``: command-line entry points.

``serve`` runs the echo testee that the Autobahn fuzzer drives: every text message is sent
back as text, every binary message as binary, on any path; permessage-deflate (RFC 7692) is
accepted unless ``--no-deflate`` is given. It prints one line,
``serving on ws://HOST:PORT``, once it listens (``--port 0`` picks a free port), and shuts
down gracefully on SIGINT or SIGTERM. The ``--max-connections``, ``--handshake-timeout``,
``--ping-interval`` and ``--ping-timeout`` options set the server's ``Limits``.

``client-testee --url URL --agent NAME`` runs our client (``rfc6455.client``) through the
Autobahn fuzzing server's case loop (``rfc6455.client_testee``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import MutableMapping, Sequence
from typing import Any

from . import client_testee
from .extensions import ServerExtensionFactory, ServerPerMessageDeflate
from .handler import WS
from .limits import DEFAULT_LIMITS, Limits
from .middleware import WebSocket
from .server import LOOPS, Server, WsgiHandler, run
from .version import __version__

__all__ = ["EchoWS", "echo_app", "main"]

#: The echo testee's default message limit: above Autobahn's largest message (16 MiB).
DEFAULT_SERVE_MAX_SIZE = 64 * 2**20


class EchoWS(WS):
    """Sends every message back as it came: text as text, binary as binary."""

    def on_message(self, environ: MutableMapping[str, Any], message: str | bytes) -> str | bytes:
        return message


def echo_app(max_size: int | None = DEFAULT_SERVE_MAX_SIZE, *, deflate: bool = True) -> WsgiHandler:
    """The echo testee's WSGI chain: WebSocket upgrades on any path, 404 for the rest."""
    extensions: list[ServerExtensionFactory] = [ServerPerMessageDeflate()] if deflate else []
    return WsgiHandler(middleware=[WebSocket(EchoWS(), extensions, max_message_size=max_size)])


def _size(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("a size is a number of bytes, 0 for no limit")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("a time is a number of seconds, 0 for none")
    return value


def _limits(args: argparse.Namespace) -> Limits:
    """The server's ``Limits`` from the command line; 0 means "no limit" / "off"."""
    return Limits(
        max_connections=args.max_connections or None,
        handshake_timeout=args.handshake_timeout or None,
        closing_timeout=args.closing_timeout or DEFAULT_LIMITS.closing_timeout,
        ping_interval=args.ping_interval or None,
        ping_timeout=args.ping_timeout or None,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rfc6455", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--version", action="version", version=f"rfc6455 {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the echo server (the Autobahn testee)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=9001, help="port; 0 picks a free one")
    serve.add_argument(
        "--max-size",
        type=_size,
        default=DEFAULT_SERVE_MAX_SIZE,
        help=f"largest message in bytes, 0 for no limit (default {DEFAULT_SERVE_MAX_SIZE})",
    )
    serve.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="accept permessage-deflate offers (default: yes)",
    )
    serve.add_argument(
        "--closing-timeout",
        type=float,
        default=5.0,
        help="seconds the peer has to finish the closing handshake (default 5)",
    )
    serve.add_argument(
        "--max-connections",
        type=_size,
        default=DEFAULT_LIMITS.max_connections,
        help="connections served at once, more get 503; 0 for no limit "
        f"(default {DEFAULT_LIMITS.max_connections})",
    )
    serve.add_argument(
        "--handshake-timeout",
        type=_seconds,
        default=DEFAULT_LIMITS.handshake_timeout,
        help="seconds a request may take to arrive, then 408; 0 for none "
        f"(default {DEFAULT_LIMITS.handshake_timeout:g})",
    )
    serve.add_argument(
        "--ping-interval",
        type=_seconds,
        default=DEFAULT_LIMITS.ping_interval,
        help="seconds between keepalive Pings; 0 for none "
        f"(default {DEFAULT_LIMITS.ping_interval:g})",
    )
    serve.add_argument(
        "--ping-timeout",
        type=_seconds,
        default=DEFAULT_LIMITS.ping_timeout,
        help="seconds the Pong may take, then Close 1011; 0 for no limit "
        f"(default {DEFAULT_LIMITS.ping_timeout:g})",
    )
    serve.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="event loop: uvloop where installed (auto, the default), or asyncio's own",
    )
    # INFO: each connection that ends abnormally logs why (rfc6455.session), so a harness
    # report's testee log explains how a case ended.
    serve.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    client_testee.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.command == "client-testee":
        return client_testee.command(args)
    if args.command == "serve":

        def ready(server: Server) -> None:
            print(f"serving on {server.url}", flush=True)
            loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
            logging.getLogger("rfc6455.server").debug("event loop: %s", loop)

        run(
            echo_app(args.max_size or None, deflate=args.deflate),
            args.host,
            args.port,
            ready=ready,
            loop=args.loop,
            limits=_limits(args),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
