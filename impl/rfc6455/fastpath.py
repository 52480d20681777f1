"""The upgrade request's head, parsed with httptools (llhttp) when it is a plain one.

Why: h11 spends about 40 us of the server's 120 us of Python per WebSocket handshake
(measured in the running server, ``bench/RESULTS.md``); llhttp parses the same head in a
few. h11 stays the server's HTTP/1.1 engine for everything else.

Invariants:
- Only a first read that holds the complete head of a ``GET`` with one ``Host`` that asks
  to upgrade, and announces no body (no ``Content-Length``, no ``Transfer-Encoding``), is
  parsed here. Anything else, and anything llhttp rejects, gives ``None``: the bytes go to
  h11, which answers them as it answers every other request. The WebSocket handshake's
  own checks (``rfc6455.handshake``) run on both paths alike.
- Nothing is consumed: the caller still holds every byte, and feeds them to h11 whenever
  the answer is not a 101 (h11 then frames that response, and reads what follows).
- Without httptools installed (it is a compiled package), this module answers ``None``
  and the server runs on h11 alone.
"""

from __future__ import annotations

import importlib
import re
from typing import Any


def _load_httptools() -> Any:
    try:
        return importlib.import_module("httptools")
    except ImportError:  # it ships wheels for the usual platforms; h11 alone does otherwise
        return None


httptools: Any = _load_httptools()

__all__ = ["AVAILABLE", "UpgradeRequest", "parse_upgrade_request"]

#: Whether httptools is installed and the fast path is in use.
AVAILABLE = httptools is not None

# llhttp is more lenient than h11 in places (it takes "GET  / HTTP/1.1", two spaces, and
# keeps a value's trailing whitespace, which h11 strips), so the grammar h11 holds a request
# to is checked here too (RFC 7230 §3.1.1, §3.2): the request line, then every header field
# line in one pass, ``field-name ":" OWS field-value`` with the value as llhttp gives it (no
# whitespace at either end). A request that fails it goes to h11, which answers it as it
# always does. Each line matches in one way only: the check takes linear time.
_REQUEST_LINE = re.compile(rb"GET ([^\x00-\x20\x7f]+) HTTP/([0-9]\.[0-9])\r\n")
_FIELD_LINES = re.compile(
    rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*"
    rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?\r\n)*\r\n"
)
# Once the lines are valid, a field named N starts each "\nN:" of the lowered head.
_BODY_FIELDS = (b"\ncontent-length:", b"\ntransfer-encoding:")  # such a request goes to h11
_HOST_FIELD = b"\nhost:"


class UpgradeRequest:
    """The parts of a request the server reads, as h11's ``Request`` offers them."""

    __slots__ = ("_items", "head_end", "http_version", "method", "target")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http_version: bytes,
        items: list[tuple[bytes, bytes]],
        head_end: int,
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self._items = items
        #: Where the head ends in the bytes parsed: what follows is the WebSocket stream.
        self.head_end = head_end

    @property
    def headers(self) -> UpgradeRequest:
        return self

    def raw_items(self) -> list[tuple[bytes, bytes]]:
        """The header fields as received: (name, value), names in their original case."""
        return self._items


class _Fields:
    """httptools' callback: the header fields, nothing more (the request line's parts come
    from ``_REQUEST_LINE``; llhttp signals the end of the head by its upgrade)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[bytes, bytes]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.items.append((name, value))


def parse_upgrade_request(data: bytes) -> UpgradeRequest | None:
    """The upgrade request at the start of ``data``, or ``None`` for h11 to handle it."""
    if httptools is None:
        return None
    line = _REQUEST_LINE.match(data)
    if line is None:
        return None
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head_end = end + 4
    fields_start = line.end()
    if _FIELD_LINES.fullmatch(data, fields_start, head_end) is None:
        return None
    lowered = data[fields_start - 1 : head_end].lower()  # from the request line's "\n"
    if _BODY_FIELDS[0] in lowered or _BODY_FIELDS[1] in lowered:
        return None
    if lowered.count(_HOST_FIELD) != 1:
        return None
    fields = _Fields()
    parser: Any = httptools.HttpRequestParser(fields)
    try:
        parser.feed_data(data[:head_end])
    except httptools.HttpParserUpgrade:
        pass  # the expected end: llhttp stops where the upgraded protocol begins
    except httptools.HttpParserError:
        return None
    else:
        return None  # not an upgrade as llhttp reads it
    if not parser.should_upgrade():
        return None
    target, version = line.group(1, 2)
    return UpgradeRequest(b"GET", target, version, fields.items, head_end)
