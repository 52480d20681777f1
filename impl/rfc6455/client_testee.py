"""The client testee: our client through the Autobahn fuzzing server's case loop.

The fuzzing server (``wstest -m fuzzingserver``) tests clients. Its protocol, followed here
as Autobahn's own client testees do: ``/getCaseCount`` answers with the number of selected
cases as one text message; ``/runCase?case=N&agent=A`` (N from 1) runs case N, and the client
echoes every message it receives (text as text, binary as binary) until the connection
closes; ``/updateReports?agent=A`` writes the reports. A case that cannot even connect is
logged and skipped: the fuzzer records nothing for it and the harness reports it missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .client import connect
from .errors import ConnectionClosed, HandshakeError, InvalidState
from .extensions import ClientExtensionFactory, ClientPerMessageDeflate

__all__ = [
    "DEFAULT_TESTEE_MAX_SIZE",
    "add_command",
    "case_count",
    "command",
    "run_case",
    "run_cases",
    "testee_extensions",
    "update_reports",
]

logger = logging.getLogger("rfc6455.client_testee")

#: Above Autobahn's largest message (16 MiB, 9.1.6/9.2.6), as for the server testee.
DEFAULT_TESTEE_MAX_SIZE = 64 * 2**20
#: Seconds for one control request (case count, reports) or one case's opening handshake.
REQUEST_TIMEOUT = 30.0
#: Seconds the fuzzer has to finish a closing handshake; its cases answer within 1 s.
CLOSE_TIMEOUT = 10.0


def testee_extensions(deflate: bool = True) -> list[ClientExtensionFactory]:
    """The testee's offer: permessage-deflate with ``client_no_context_takeover``.

    The fuzzing server's 13.2, 13.5 and 13.6 accept an offer only when it lets them ask for
    ``client_no_context_takeover`` (RFC 7692 §7.1.1.2); without it those cases are
    UNIMPLEMENTED. Compressing without context takeover is always acceptable to the server.
    """
    if not deflate:
        return []
    return [ClientPerMessageDeflate(client_no_context_takeover=True)]


def _endpoint(base: str, path: str) -> str:
    return base.rstrip("/") + path


async def case_count(base: str) -> int:
    """How many cases the fuzzing server will run (``/getCaseCount``)."""
    async with connect(
        _endpoint(base, "/getCaseCount"), extensions=(), open_timeout=REQUEST_TIMEOUT
    ) as ws:
        message = await asyncio.wait_for(ws.recv(), REQUEST_TIMEOUT)
    count = json.loads(message)
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"/getCaseCount answered {message!r}, not a case count")
    return count


async def run_case(
    base: str,
    number: int,
    agent: str,
    *,
    max_size: int | None = DEFAULT_TESTEE_MAX_SIZE,
    deflate: bool = True,
) -> int | None:
    """Run case ``number``: echo every message until the fuzzer closes; the close code."""
    url = _endpoint(base, f"/runCase?case={number}&agent={quote(agent, safe='')}")
    async with connect(
        url,
        extensions=testee_extensions(deflate),
        max_message_size=max_size,
        open_timeout=REQUEST_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
    ) as ws:
        async for message in ws:
            try:
                await ws.send(message)
            except (ConnectionClosed, InvalidState):
                break
    return ws.close_code


async def update_reports(base: str, agent: str) -> None:
    """Ask the fuzzer to write its reports (``/updateReports``)."""
    url = _endpoint(base, f"/updateReports?agent={quote(agent, safe='')}")
    async with connect(url, extensions=(), open_timeout=REQUEST_TIMEOUT) as ws:
        await asyncio.wait_for(ws.wait_closed(), REQUEST_TIMEOUT)


async def run_cases(
    base: str,
    agent: str,
    *,
    max_size: int | None = DEFAULT_TESTEE_MAX_SIZE,
    deflate: bool = True,
    say: Callable[[str], None] = print,
) -> int:
    """The whole loop: every case in order, then the reports; the number of cases run."""
    count = await case_count(base)
    say(f"running {count} cases against {base} as agent {agent!r}")
    ran = 0
    for number in range(1, count + 1):
        try:
            code = await run_case(base, number, agent, max_size=max_size, deflate=deflate)
        except (OSError, TimeoutError, HandshakeError) as exc:
            logger.warning("case %d could not run: %s", number, exc)
            continue
        ran += 1
        logger.info("case %d/%d done (close code %s)", number, count, code)
    await update_reports(base, agent)
    say(f"ran {ran} of {count} cases; reports updated")
    return ran


# -- ``python -m rfc6455 client-testee`` ------------------------------------------------------


def _size(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("a size is a number of bytes, 0 for no limit")
    return value


def add_command(commands: Any) -> None:
    """Add ``client-testee`` to ``python -m rfc6455``'s subcommands (an argparse subparsers)."""
    parser = commands.add_parser(
        "client-testee",
        help="run our client through the Autobahn fuzzing server's cases",
        description="Run every case the fuzzing server at --url selects, echoing each "
        "message, then ask it to update its reports.",
    )
    parser.add_argument("--url", required=True, help="the fuzzing server, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", required=True, help="the agent name the reports are filed under")
    parser.add_argument(
        "--max-size",
        type=_size,
        default=DEFAULT_TESTEE_MAX_SIZE,
        help=f"largest message in bytes, 0 for no limit (default {DEFAULT_TESTEE_MAX_SIZE})",
    )
    parser.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer permessage-deflate (default: yes)",
    )
    # INFO: each case's outcome, and why a connection ended abnormally (rfc6455.client).
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def command(args: argparse.Namespace) -> int:
    """Run ``client-testee``: 0 when the loop ran to its end, 1 when the fuzzer is unreachable."""
    try:
        asyncio.run(
            run_cases(
                args.url,
                args.agent,
                max_size=args.max_size or None,
                deflate=args.deflate,
                say=lambda line: print(line, flush=True),
            )
        )
    except (OSError, TimeoutError, HandshakeError, ConnectionClosed, ValueError) as exc:
        print(f"client-testee: cannot talk to the fuzzing server at {args.url}: {exc}", flush=True)
        return 1
    return 0
