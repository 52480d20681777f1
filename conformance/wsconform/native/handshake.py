"""The opening handshake as the fuzzer does it: its request, and its checks of the response.

Invariants:
- The request offers no extension and no subprotocol unless asked; cases 12.x and 13.x offer
  permessage-deflate (``deflate.Offer``), written after the key as the fuzzer writes it; the
  user's extra headers follow the fuzzer's own lines.
- ``check_response`` applies the fuzzer's checks in its order and returns the first failure as
  text (the connection is then dropped and the case fails "never completed"), or None, with
  the permessage-deflate parameters the answer settled (None when it settled none).
- Header names are compared case-insensitively; a repeated header is joined with ", " and
  counted, as the fuzzer's parser does.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from wsconform.native import deflate

__all__ = ["Target", "accept_for", "check_response", "parse_head", "request", "target"]

# RFC 6455 §1.3: the GUID the accept value is derived with.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
USER_AGENT = "wsconform-native (Autobahn|Testsuite 25.10.1 semantics)"
END_OF_HEAD = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Target:
    """Where the testee is: TCP host and port, and the request target and Host header."""

    host: str
    port: int
    resource: str
    host_header: str
    protocols: tuple[str, ...] = field(default=())
    #: Extra request lines (the user's --header, a spec's origin), after the fuzzer's own.
    headers: tuple[tuple[str, str], ...] = field(default=())


def target(
    url: str, protocols: tuple[str, ...] = (), headers: tuple[tuple[str, str], ...] = ()
) -> Target:
    """Parse ``ws://host:port/path?query`` or ``wss://...`` (IPv6 literals in brackets)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"the native engine speaks ws:// and wss://, not {parts.scheme}://")
    if parts.hostname is None:
        raise ValueError(f"no host in {url!r}")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    shown_host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Target(parts.hostname, port, resource, f"{shown_host}:{port}", protocols, headers)


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept value a server must answer ``key`` with (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def request(where: Target, nonce: bytes, offers: Sequence[deflate.Offer] = ()) -> tuple[bytes, str]:
    """The upgrade request (offering ``offers``) and its Sec-WebSocket-Key."""
    key = base64.b64encode(nonce).decode("ascii")
    lines = [
        f"GET {where.resource} HTTP/1.1",
        f"User-Agent: {USER_AGENT}",
        f"Host: {where.host_header}",
        "Upgrade: WebSocket",
        "Connection: Upgrade",
        "Pragma: no-cache",
        "Cache-Control: no-cache",
        f"Sec-WebSocket-Key: {key}",
    ]
    if where.protocols:
        lines.append(f"Sec-WebSocket-Protocol: {','.join(where.protocols)}")
    if offers:
        lines.append(f"Sec-WebSocket-Extensions: {deflate.offers_header(offers)}")
    lines.append("Sec-WebSocket-Version: 13")
    lines += [f"{name}: {value}" for name, value in where.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"), key


def parse_head(head: bytes) -> tuple[str, dict[str, str], dict[str, int]]:
    """Status line, headers (lower-case names, repeats joined) and how often each appeared."""
    lines = head.decode("utf-8", "replace").splitlines()
    headers: dict[str, str] = {}
    counts: dict[str, int] = {}
    for line in lines[1:]:
        colon = line.find(":")
        if colon <= 0:
            continue
        name, value = line[:colon].strip().lower(), line[colon + 1 :].strip()
        if name in headers:
            headers[name] += f", {value}"
            counts[name] += 1
        else:
            headers[name] = value
            counts[name] = 1
    return (lines[0].strip() if lines else ""), headers, counts


def check_response(
    head: bytes, key: str, protocols: tuple[str, ...] = (), offered: bool = False
) -> tuple[str | None, deflate.Agreed | None]:
    """Why the response ``head`` (up to and with its blank line) is refused, or None; and the
    permessage-deflate parameters it settled (``offered``: did we offer the extension?)."""
    status_line, headers, counts = parse_head(head)
    words = status_line.split()
    if len(words) < 2:
        return f"Bad HTTP response status line '{status_line}'", None
    if words[0] != "HTTP/1.1":
        return f"Unsupported HTTP version ('{words[0]}')", None
    try:
        status = int(words[1])
    except ValueError:
        return f"Bad HTTP status code ('{words[1]}')", None
    if status != 101:
        return f"WebSocket connection upgrade failed ({status})", None
    refusal = _header_refusal(headers, counts, key)
    if refusal is not None:
        return refusal, None
    agreed = None
    if "sec-websocket-extensions" in headers:
        if counts["sec-websocket-extensions"] > 1:
            return "HTTP Sec-WebSocket-Extensions header appears more than once", None
        refusal, agreed = deflate.response_refusal(headers["sec-websocket-extensions"], offered)
        if refusal is not None:
            return refusal, None
    if "sec-websocket-protocol" in headers:
        if counts["sec-websocket-protocol"] > 1:
            return "HTTP Sec-WebSocket-Protocol header appears more than once", None
        chosen = headers["sec-websocket-protocol"].strip()
        if chosen and chosen not in protocols:
            return f"subprotocol selected by server ({chosen}) not requested", None
    return None, agreed


def _header_refusal(headers: dict[str, str], counts: dict[str, int], key: str) -> str | None:
    """The upgrade and accept checks, in the fuzzer's order."""
    if "upgrade" not in headers:
        return "HTTP Upgrade header missing"
    if headers["upgrade"].strip().lower() != "websocket":
        return "HTTP Upgrade header different from 'websocket'"
    if "connection" not in headers:
        return "HTTP Connection header missing"
    if not any(t.strip().lower() == "upgrade" for t in headers["connection"].split(",")):
        return "HTTP Connection header does not include 'upgrade'"
    if "sec-websocket-accept" not in headers:
        return "HTTP Sec-WebSocket-Accept header missing in opening handshake reply"
    if counts["sec-websocket-accept"] > 1:
        return "HTTP Sec-WebSocket-Accept header appears more than once"
    if headers["sec-websocket-accept"].strip() != accept_for(key):
        return "HTTP Sec-WebSocket-Accept bogus value"
    return None
